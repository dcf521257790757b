#!/usr/bin/env bash
# The install test (tests/install/meson.build registers it):
#   1. `meson install` the build into a temporary DESTDIR and check the installed files;
#   2. compile every installed public header on its own (self-contained, warning-free);
#   3. build examples/installed with its Makefile (pkg-config) and with its CMakeLists.txt
#      (find_package(blitz), version check included), shared and static;
#   4. run each program on a free port, query it with curl, stop it with SIGTERM (exit 0).
#
#   install_test.sh SOURCE_ROOT BUILD_ROOT CXX
set -euo pipefail

src=$1
build=$2
cxx=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/blitz-install-test.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

step() { echo "== $*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step "meson install --destdir $work/root"
meson install -C "$build" --no-rebuild --quiet --destdir "$work/root"

pc=$(find "$work/root" -path '*/pkgconfig/blitz.pc')
[ -n "$pc" ] && [ "$(printf '%s\n' "$pc" | wc -l)" -eq 1 ] || fail "expected one blitz.pc, found: ${pc:-none}"
prefix=$(sed -n 's/^prefix=//p' "$pc")
version=$(sed -n 's/^Version: *//p' "$pc")
[ -n "$prefix" ] && [ -n "$version" ] || fail "blitz.pc lacks prefix= or Version:"
dest_prefix="$work/root$prefix"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
# The .pc file names the final prefix; point it at the staged copy instead.
pkg_config="pkg-config --define-variable=prefix=$dest_prefix"
libdir=$($pkg_config --variable=libdir blitz)
includedir=$($pkg_config --variable=includedir blitz)
echo "prefix $prefix, version $version, libdir $libdir"

step "installed files"
for f in "$includedir/blitz/blitz.hpp" "$includedir/blitz/version.hpp" \
    "$libdir/libblitz.so" "$libdir/libblitz.so.0" "$libdir/libblitz.a" \
    "$libdir/cmake/blitz/blitzConfig.cmake" "$libdir/cmake/blitz/blitzConfigVersion.cmake"; do
    [ -e "$f" ] || fail "not installed: ${f#"$work/root"}"
done
grep -q "\"$version\"" "$includedir/blitz/version.hpp" || fail "version.hpp does not say $version"
if grep -rn '@[A-Z_]*@' "$libdir/cmake/blitz" "$includedir/blitz"; then
    fail "unsubstituted @VARIABLES@ in installed files"
fi

step "each public header compiles on its own"
for h in "$includedir"/blitz/*.hpp; do
    printf '#include <blitz/%s>\n#include <blitz/%s>\n' "${h##*/}" "${h##*/}" >"$work/header.cpp"
    "$cxx" -std=c++20 -Wall -Wextra -Werror -fsyntax-only -I"$includedir" "$work/header.cpp" ||
        fail "blitz/${h##*/} does not compile on its own"
done

# Starts PROGRAM on a free port, checks its routes, stops it with SIGTERM and expects exit 0.
serve_and_check() {
    local program=$1 out="$work/serve.out" url="" i rc
    echo "-- $program"
    if ldd "$program" | grep -q 'libblitz\.so'; then
        ldd "$program" | grep 'libblitz\.so' | grep -qF "$libdir/" ||
            fail "$program loads libblitz.so from outside the staged tree: $(ldd "$program" | grep libblitz)"
    fi
    # BoringSSL exports the unversioned OpenSSL names: both in one process would clash.
    if ldd "$program" | grep -q 'libssl\.so\.0' && ldd "$program" | grep -q 'libssl\.so\.3'; then
        fail "$program loads BoringSSL and OpenSSL together"
    fi
    "$program" 127.0.0.1:0 >"$out" 2>&1 &
    server_pid=$!
    for i in $(seq 100); do
        url=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$out" | head -n 1 || true)
        [ -n "$url" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$out" >&2; fail "$program printed no URL"; }

    expect 200 "Hello from a C++ handler" "${url}hello"
    expect 200 "ok" "${url}healthz"
    expect 401 "missing or wrong X-Api-Key" "${url}private"
    expect 200 "private hello to blitz-install-test" -H 'X-Api-Key: s3cret' -A blitz-install-test "${url}private"
    expect 404 "" "${url}nowhere"
    curl -sS --max-time 5 -D - -o /dev/null "${url}private" | tr -d '\r' | grep -qi '^cache-control: no-store$' ||
        fail "$program: the filter's response header is missing"

    kill -TERM "$server_pid"
    for i in $(seq 100); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        cat "$out" >&2
        fail "$program still runs 10 s after SIGTERM"
    fi
    rc=0
    wait "$server_pid" || rc=$?
    server_pid=""
    [ "$rc" -eq 0 ] || { cat "$out" >&2; fail "$program exited with status $rc after SIGTERM"; }
}

# expect STATUS BODY-SUBSTRING CURL-ARGS...
expect() {
    local status=$1 body=$2 got
    shift 2
    got=$(curl -sS --max-time 5 -o "$work/body" -w '%{http_code}' "$@") || fail "curl $* failed"
    [ "$got" = "$status" ] || fail "curl $*: status $got, expected $status"
    grep -qF -- "$body" "$work/body" || fail "curl $*: body $(head -c 200 "$work/body"), expected '$body'"
}

step "installed blitzd finds every library it needs (the TLS library outside the loader path too)"
blitzd_bin=$(find "$work/root" -type f -name blitzd -perm -u+x | head -n 1)
[ -n "$blitzd_bin" ] || fail "blitzd not installed"
if LD_LIBRARY_PATH=$libdir ldd "$blitzd_bin" | grep 'not found'; then
    fail "installed blitzd misses a library"
fi
LD_LIBRARY_PATH=$libdir "$blitzd_bin" --version >/dev/null || fail "installed blitzd does not run"

step "pkg-config: make -C examples/installed"
cp -r "$src/examples/installed" "$work/make"
make -C "$work/make" CXX="$cxx" PKG_CONFIG="$pkg_config" \
    CXXFLAGS="-O2 -Wall -Wextra -Wno-missing-field-initializers -Werror" \
    LDFLAGS="-Wl,-rpath,$libdir"
serve_and_check "$work/make/example"
serve_and_check "$work/make/example-static"
ldd "$work/make/example-static" | grep -q libblitz && fail "example-static links libblitz.so"

step "CMake: find_package(blitz) in examples/installed"
cp -r "$src/examples/installed" "$work/cmake"
cmake -S "$work/cmake" -B "$work/cmake/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$dest_prefix"
cmake --build "$work/cmake/build"
[ -x "$work/cmake/build/example_static" ] || fail "CMake did not define blitz::blitz_static"
serve_and_check "$work/cmake/build/example"
serve_and_check "$work/cmake/build/example_static"

step "CMake: blitzConfigVersion.cmake accepts $version and refuses other major versions"
major=${version%%.*}
mkdir -p "$work/version"
cat >"$work/version/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(blitz_version_check LANGUAGES CXX)
find_package(blitz $((major + 1)) QUIET)
if(blitz_FOUND)
  message(FATAL_ERROR "find_package(blitz $((major + 1))) accepted \${blitz_VERSION}")
endif()
find_package(blitz $version EXACT REQUIRED)
find_package(blitz $major REQUIRED)
CMAKE
cmake -S "$work/version" -B "$work/version/build" -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_PREFIX_PATH="$dest_prefix" >"$work/version.log" 2>&1 ||
    { cat "$work/version.log" >&2; fail "version check"; }

echo "install test passed"
