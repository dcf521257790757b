#!/usr/bin/env bash
# What observability costs (issue 6: under 5% of instructions and 3% of requests/s per
# request): benchmarks/load.sh's s1 (local answer) and s2 (proxied) for three builds of the same
# commit, io_uring and epoll:
#   off      HEAD with the per-request metric updates removed (benchmarks/no-metrics.patch, applied
#            to a temporary worktree): the engine as if it had no metrics
#   metrics  HEAD as it ships (metrics are always on)
#   log      HEAD with a JSON access log and request ids on the listener (load.sh's BLITZ_OBSERVE=1)
#
#   benchmarks/observe_cost.sh [--parts "instructions throughput"]   (default: instructions)
#
# Builds HEAD into build-release (as load.sh does) and the patched copy into a temporary
# directory removed at the end. The patch names lines of lib/server: when they change, `git apply`
# refuses it and the script stops; refresh the patch (delete the same lines again) then.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
parts=instructions
if [ "${1:-}" = --parts ]; then
    parts=${2:?--parts needs a value}
fi

work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/src" 2>/dev/null || true; rm -rf "$work"' EXIT
git -C "$root" worktree add -q --detach "$work/src" HEAD
git -C "$work/src" apply "$root/benchmarks/no-metrics.patch"
release() {
    if [ ! -f "$2/meson-private/coredata.dat" ]; then
        meson setup "$2" "$1" -Dbuildtype=release -Dtests=false -Dbenchmarks=false -Dexamples=false >/dev/null
    fi
    ninja -C "$2" tools/blitzd/blitzd >/dev/null
    echo "$2/tools/blitzd/blitzd"
}
off=$(release "$work/src" "$work/build")
on=$(release "$root" "$root/build-release")

run() {
    local name=$1 binary=$2 observe=$3
    echo "=== $name"
    BLITZD=$binary BLITZ_OBSERVE=$observe RESULTS="$work/results-$name" \
        bash "$root/benchmarks/load.sh" --servers "blitzd-io_uring blitzd-epoll" \
        --scenarios "s1 s2" --parts "$parts" 2>/dev/null |
        grep -E '^(s[12]p?:|  (blitzd|server))' || true
}
run off "$off" 0
run metrics "$on" 0
run log "$on" 1
