#!/usr/bin/env bash
# The test command: prepares a Debian 12 machine (as root, see setup.sh) and runs every test.
#
#   ./scripts/test.sh
#
# Stages, each in its own build directory (reconfigured in place on later runs):
#   gcc      g++, debugoptimized, -Werror: every meson test (unit, integration on both
#            backends) except the install test
#   install  meson install into a temporary DESTDIR, examples/installed built against it with
#            pkg-config and with CMake, run and queried (tests/install)
#   release  what scripts/run.sh builds (-O3, no tests) compiles with -Werror, and that blitzd
#            accepts config/blitzd.json (GCC warns differently at -O3)
#   clang    clang 14 + lld, -Werror, -O0: everything compiles; the tests except
#            integration/install
#   openssl  g++ -O0 built with -Dtls=openssl (the system OpenSSL instead of BoringSSL): the
#            unit tests of what links the TLS library, and the TLS integration cases against
#            its blitzd
#   asan     g++ -O0 with AddressSanitizer + UndefinedBehaviorSanitizer: every meson test but
#            the schema test
#   fuzz     clang libFuzzer targets, each for a bounded time (suite 'fuzz')
#
# The last line is "N passed, N failed": tests over every meson test run, where a stage that
# fails before its tests run (configure, compile) counts as one failure. The exit status is 0
# only when every stage passed.
#
# Environment (for development; CI uses the defaults):
#   BLITZ_BUILD_PREFIX  build directory prefix (default "build": build, build-clang, ...)
#   BLITZ_STAGES        stages to run (default "gcc install release clang openssl asan fuzz")
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix=${BLITZ_BUILD_PREFIX:-build}
stages=${BLITZ_STAGES:-gcc install release clang openssl asan fuzz}
jobs=2

total_passed=0
total_failed=0
summary=()
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT

note() { printf '\n=== %s\n' "$*"; }

# configure DIR MESON-OPTIONS...: sets DIR up, or reconfigures it with the (possibly changed)
# options; a directory meson cannot reconfigure is wiped and set up again.
configure() {
    local dir=$1
    shift
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$dir" "$@" || meson setup --wipe "$dir" "$@"
    else
        meson setup "$dir" "$@"
    fi
}

# meson_tests DIR MESON-TEST-ARGS...: runs meson test and adds its results to the totals.
stage_passed=0
stage_failed=0
meson_tests() {
    local dir=$1 log=$1/meson-logs/testlog.json rc=0 all passed skipped
    shift
    rm -f "$log"
    meson test -C "$dir" --no-rebuild --num-processes "$jobs" --print-errorlogs "$@" || rc=$?
    if [ ! -f "$log" ]; then
        # No test ran: either none matched (fine) or meson failed before running any.
        [ "$rc" -eq 0 ] || stage_failed=$((stage_failed + 1))
        return "$rc"
    fi
    # testlog.json has one object per test; output inside it is escaped, so only the
    # top-level "result" key matches.
    all=$(grep -c '"result": "' "$log")
    passed=$(grep -cE '"result": "(OK|EXPECTEDFAIL)"' "$log")
    skipped=$(grep -c '"result": "SKIP"' "$log")
    stage_passed=$((stage_passed + passed))
    stage_failed=$((stage_failed + all - passed - skipped))
    if [ "$rc" -ne 0 ] && [ "$all" -eq "$((passed + skipped))" ]; then
        stage_failed=$((stage_failed + 1))
    fi
    if [ "$all" -ne "$((passed + skipped))" ]; then
        failure_excerpts "$log" >>"$failures"
    fi
    return "$rc"
}

# failure_excerpts TESTLOG.JSON: each failed test's name and the part of its output around the
# first failure, so that the end of a long CI log still says what broke.
failure_excerpts() {
    python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    test = json.loads(line)
    if test.get("result") in ("OK", "EXPECTEDFAIL", "SKIP"):
        continue
    out = (test.get("stdout") or "").splitlines()
    at = next((i for i, l in enumerate(out) if "FAILED" in l or "failed" in l), len(out) - 20)
    print(f"--- {test['name']}: {test['result']}")
    print("\n".join(out[max(0, at - 12):at + 28]))
PY
}

# counted_run NAME COMMAND...: runs a test that is not a meson test of the stage's build, and
# counts it as one test; the end of a failed run's output goes to the failure excerpts.
counted_run() {
    local name=$1 out rc=0
    shift
    out=$(mktemp)
    "$@" >"$out" 2>&1 || rc=$?
    tail -n 5 "$out"
    if [ "$rc" -eq 0 ]; then
        stage_passed=$((stage_passed + 1))
    else
        stage_failed=$((stage_failed + 1))
        { echo "--- $name: exit $rc"; tail -n 60 "$out"; } >>"$failures"
    fi
    rm -f "$out"
    return "$rc"
}

# build DIR [TARGETS...]: compiles; a failure counts as one failed test.
build() {
    local dir=$1
    shift
    # -k 0: report every compile error at once, not just the first.
    if ! ninja -C "$dir" -j "$jobs" -k 0 "$@"; then
        stage_failed=$((stage_failed + 1))
        return 1
    fi
}

stage_gcc() {
    configure "$prefix" -Dbuildtype=debugoptimized -Dwerror=true || return 1
    build "$prefix" || return 1
    meson_tests "$prefix" --no-suite install
}

stage_install() {
    configure "$prefix" -Dbuildtype=debugoptimized -Dwerror=true || return 1
    build "$prefix" || return 1
    if [ -z "$(meson test -C "$prefix" --list --suite install 2>/dev/null)" ]; then
        echo "no test in suite 'install': tests/meson.build must include tests/install" >&2
        stage_failed=$((stage_failed + 1))
        return 1
    fi
    meson_tests "$prefix" --suite install
}

stage_release() {
    configure "$prefix-release" -Dbuildtype=release -Dtests=false -Dbenchmarks=false \
        -Dexamples=false || return 1
    build "$prefix-release" tools/blitzd/blitzd || return 1
    if "$prefix-release/tools/blitzd/blitzd" --check-config --config config/blitzd.json; then
        stage_passed=$((stage_passed + 1))
    else
        stage_failed=$((stage_failed + 1))
        return 1
    fi
}

stage_clang() {
    # -O0: a compile check (clang's warnings do not depend on the optimiser), and twice as
    # fast to build.
    CC=clang CXX=clang++ configure "$prefix-clang" -Dbuildtype=debug -Dwerror=true \
        -Dcpp_link_args=-fuse-ld=lld || return 1
    build "$prefix-clang" || return 1
    meson_tests "$prefix-clang" --no-suite integration --no-suite install
}

stage_openssl() {
    # The TLS layer is written against the API BoringSSL and OpenSSL 3 share; this proves the
    # OpenSSL build compiles and passes what touches TLS: the tests of the code that links the
    # TLS library (the TLS layer, upstreams, the config, the engine) and blitzd.
    configure "$prefix-openssl" -Dtls=openssl -Dbuildtype=debug -Dwerror=true \
        -Dbenchmarks=false -Dexamples=false || return 1
    build "$prefix-openssl" tools/blitzd/blitzd tests/tls/tls_tests \
        tests/upstream/upstream_tests tests/config/config_tests tests/server/server_tests ||
        return 1
    meson_tests "$prefix-openssl" unit-tls unit-upstream unit-config server-io_uring server-epoll
    # The TLS cases of the integration tests against this build's blitzd. Their program talks to
    # blitzd over sockets and links no TLS library, so it is the gcc build's (built there, which
    # after the gcc stage is a no-op), as is the test backend.
    if [ ! -f "$prefix/meson-private/coredata.dat" ]; then
        configure "$prefix" -Dbuildtype=debugoptimized -Dwerror=true || return 1
    fi
    build "$prefix" tests/integration/integration_tests tests/backend/blitz_test_backend ||
        return 1
    counted_run integration-tls env BLITZD="$prefix-openssl/tools/blitzd/blitzd" \
        BLITZ_BACKEND_EXE="$prefix/tests/backend/blitz_test_backend" BLITZ_TEST_BACKEND=io_uring \
        timeout 300 "$prefix/tests/integration/integration_tests" --colour-mode none '[tls]'
}

stage_asan() {
    # -O0 builds four times faster than -O2 with the sanitizers, and the tests still take
    # well under a minute; they run slower than usual, so their timeouts are stretched.
    configure "$prefix-asan" -Dbuildtype=debug -Dwerror=true \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false || return 1
    build "$prefix-asan" || return 1
    # Not the schema test (suite 'config'): it runs blitzd --check-config a thousand times to
    # compare messages, which the sanitizers only slow down (the parser's memory safety is what
    # unit-config and the fuzz targets check).
    meson_tests "$prefix-asan" --timeout-multiplier 3 --no-suite config
}

stage_fuzz() {
    local targets
    CC=clang CXX=clang++ configure "$prefix-fuzz" -Dbuildtype=debugoptimized -Dwerror=true \
        -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbenchmarks=false -Dexamples=false || return 1
    # Only the fuzz targets (and what they link): the rest of this tree is not run here.
    targets=$(ninja -C "$prefix-fuzz" -t targets all |
        awk -F': ' '$1 ~ /^tests\/fuzz\/[^\/]+$/ && $2 ~ /_LINKER/ {print $1}')
    if [ -z "$targets" ]; then
        echo "no fuzz targets under tests/fuzz" >&2
        stage_failed=$((stage_failed + 1))
        return 1
    fi
    # shellcheck disable=SC2086
    build "$prefix-fuzz" $targets || return 1
    meson_tests "$prefix-fuzz" --suite fuzz
}

fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

overall_start=$SECONDS
note "setup (scripts/setup.sh)"
start=$SECONDS
if ./scripts/setup.sh; then
    summary+=("$(printf '%-8s %-5s %-22s %s' setup ok - "$(fmt_time $((SECONDS - start)))")")
else
    summary+=("$(printf '%-8s %-5s %-22s %s' setup FAIL - "$(fmt_time $((SECONDS - start)))")")
    total_failed=$((total_failed + 1))
fi

failed_stages=0
for stage in $stages; do
    if ! declare -F "stage_$stage" >/dev/null; then
        echo "unknown stage '$stage' (known: gcc install release clang openssl asan fuzz)" >&2
        exit 2
    fi
    note "stage $stage"
    stage_passed=0
    stage_failed=0
    start=$SECONDS
    "stage_$stage"
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$stage_failed" -eq 0 ]; then
        stage_failed=1  # failed in configure or in a check of its own
    fi
    result=ok
    if [ "$rc" -ne 0 ] || [ "$stage_failed" -ne 0 ]; then
        result=FAIL
        failed_stages=$((failed_stages + 1))
    fi
    total_passed=$((total_passed + stage_passed))
    total_failed=$((total_failed + stage_failed))
    summary+=("$(printf '%-8s %-5s %-22s %s' "$stage" "$result" \
        "$stage_passed passed, $stage_failed failed" "$(fmt_time $((SECONDS - start)))")")
done

if [ -s "$failures" ]; then
    note "failed tests"
    cat "$failures"
fi
note "summary ($(fmt_time $((SECONDS - overall_start))))"
printf '%-8s %-5s %-22s %s\n' stage result tests time
printf '%s\n' "${summary[@]}"
echo "$total_passed passed, $total_failed failed"
[ "$failed_stages" -eq 0 ] && [ "$total_failed" -eq 0 ]
