#!/bin/sh
# Usage: promtool_check.sh SAMPLE_PROGRAM
# Runs the exposition sample program and checks its output with `promtool check metrics`
# (parse errors and lint problems both fail). Exits 77 (meson's SKIP) without promtool.
set -u
sample=$1
if ! command -v promtool >/dev/null 2>&1; then
    echo "SKIP: promtool not found (Debian package prometheus)"
    exit 77
fi
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
if ! "$sample" >"$out"; then
    echo "FAIL: $sample exited with an error"
    exit 1
fi
for family in blitz_requests_total blitz_request_duration_seconds process_start_time_seconds; do
    if ! grep -q "^# TYPE $family " "$out"; then
        echo "FAIL: the sample lacks the family $family"
        exit 1
    fi
done
if ! promtool check metrics <"$out"; then
    echo "FAIL: promtool rejected the exposition:"
    cat "$out"
    exit 1
fi
echo "promtool accepted $(wc -l <"$out") lines"
