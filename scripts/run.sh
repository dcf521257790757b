#!/usr/bin/env bash
# The run command: prepares a Debian 12 machine (as root, see setup.sh), builds blitzd
# (release) and runs it in the foreground with the bundled config; Ctrl-C stops it.
#
#   ./scripts/run.sh [BLITZD-ARGS...]     e.g. ./scripts/run.sh --config my.json
#
# Without arguments blitzd runs config/blitzd.json (http://127.0.0.1:8080/). The build lives in
# build-release/ (BLITZ_BUILD_PREFIX=x uses x-release/).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/setup.sh

dir=${BLITZ_BUILD_PREFIX:-build}-release
if [ -f "$dir/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$dir" -Dbuildtype=release -Dtests=false -Dbenchmarks=false \
        -Dexamples=false >/dev/null
else
    meson setup "$dir" -Dbuildtype=release -Dtests=false -Dbenchmarks=false -Dexamples=false
fi
ninja -C "$dir" -j "$(nproc)" tools/blitzd/blitzd

if [ "$#" -eq 0 ]; then
    set -- --config config/blitzd.json
fi
echo "starting $dir/tools/blitzd/blitzd $*" >&2
exec "$dir/tools/blitzd/blitzd" "$@"
