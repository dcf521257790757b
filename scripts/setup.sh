#!/usr/bin/env bash
# Installs everything Blitz needs to build, run and test on Debian 12 (bookworm), as root.
# Idempotent: packages already present are left alone; backports are enabled once.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (it installs Debian packages)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

main_packages=(
    ca-certificates build-essential pkgconf ninja-build cmake git
    clang lld libclang-rt-14-dev
    liburing-dev libsimdjson-dev libbenchmark-dev libre2-dev libc-ares-dev
    android-libboringssl-dev libssl-dev openssl
    curl nginx-light haproxy wrk valgrind nghttp2-client procps iproute2
    # HTTP/2: nghttp2 for the codec, python3-h2 for the frame-level tests (tests/h2),
    # python3-grpcio for the gRPC client and server of tests/grpc. Minimal images have no python3.
    libnghttp2-dev python3 python3-h2 python3-grpcio
    # The config schema test validates every example against docs/config.schema.json; promtool
    # (from prometheus) checks the metrics exposition.
    python3-jsonschema prometheus
)
backports_packages=(meson libcatch2-dev)

missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
}

bpo=/etc/apt/sources.list.d/bookworm-backports.sources
if [ ! -f "$bpo" ]; then
    uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
    fi
    cat >"$bpo" <<SRC
Types: deb
URIs: ${uri:-http://deb.debian.org/debian}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    rm -f /var/lib/blitz-apt-updated
fi

need_main=$(missing "${main_packages[@]}")
need_bpo=$(missing "${backports_packages[@]}")
if [ -n "$need_main$need_bpo" ]; then
    if [ ! -f /var/lib/blitz-apt-updated ] || ! apt-cache policy meson | grep -q bookworm-backports; then
        apt-get update
        touch /var/lib/blitz-apt-updated
    fi
    if [ -n "$need_main" ]; then
        # shellcheck disable=SC2086
        apt-get install -y --no-install-recommends $need_main
    fi
    if [ -n "$need_bpo" ]; then
        # shellcheck disable=SC2086
        apt-get install -y --no-install-recommends -t bookworm-backports $need_bpo
    fi
fi
