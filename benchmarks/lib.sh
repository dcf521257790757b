# shellcheck shell=bash disable=SC2034,SC2154
# (clk_tck is used, and root set, by the scripts that source this file.)
# Shared by the load benchmarks (benchmarks/load.sh, benchmarks/h2.sh); sourced, not run. Each
# script sets `set -euo pipefail`, $root (the repository) and $RESULTS before calling what needs
# them. Defines no server or scenario: those stay in the scripts.
#
# Process bookkeeping: every background process a script starts goes into `started` (and out of
# it with `forget` once reaped), and the EXIT trap installed here kills those and nothing else.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# has LIST WORD: whether WORD is one of the words of LIST.
has() { [[ " $1 " == *" $2 "* ]]; }

# --- processes --------------------------------------------------------------------------------
# PIDs this script started and has not reaped yet (a reaped PID may belong to someone else).
started=()
forget() {
    local p keep=()
    for p in "${started[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    started=("${keep[@]}")
}
cleanup() {
    local p
    for p in "${started[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# raise_nofile: the servers and the idle connections need more descriptors than the usual 1024.
raise_nofile() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}

port_busy() { ss -Htln "sport = :$1" | grep -q .; }

# free_port PORT [TAKEN...]: PORT, or the first port above it that nothing listens on and that is
# not one of TAKEN.
free_port() {
    local port=$1
    shift
    while port_busy "$port" || has "$*" "$port"; do
        port=$((port + 1))
    done
    echo "$port"
}

# wait_answer PID LOG URL [CURL_ARG...]: waits until URL answers (any status), while PID lives;
# prints the end of LOG when it does not.
wait_answer() {
    local pid=$1 logfile=$2 target=$3 i
    shift 3
    for i in $(seq 600); do
        if curl -sk -o /dev/null --max-time 1 "$@" "$target"; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$logfile" >&2
    return 1
}

# stop_pid PID: SIGTERM (the way every server here stops cleanly, which callgrind needs to write
# its output), SIGKILL after 60 s; reaps it.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "process $pid ignored SIGTERM for 60 s; killing it"
        kill -KILL "$pid"
    fi
    wait "$pid" 2>/dev/null || true
    forget "$pid"
}

# cpu_ticks PID: user+system time of the process, all its threads, in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
clk_tck=$(getconf CLK_TCK)

# --- building ---------------------------------------------------------------------------------
# blitzd_binary DIR [MESON_OPTION...]: configures DIR (release, without tests, benchmarks and
# examples, plus the options given) when it is not a build directory yet, brings blitzd up to
# date in it and prints the binary's path. Build output goes to stderr.
blitzd_binary() {
    local dir=$1
    shift
    if [ ! -f "$dir/meson-private/coredata.dat" ]; then
        meson setup "$dir" -Dbuildtype=release "$@" -Dtests=false -Dbenchmarks=false \
            -Dexamples=false >&2
    fi
    ninja -C "$dir" tools/blitzd/blitzd >&2
    echo "$dir/tools/blitzd/blitzd"
}

# build_idle_conns OUT: compiles benchmarks/idle_conns.cpp to OUT.
build_idle_conns() {
    c++ -std=c++20 -O2 -Wall -Wextra -o "$1" "$root/benchmarks/idle_conns.cpp" -lssl -lcrypto
}

# make_cert DIR: DIR/tls.pem and DIR/tls.key, the ECDSA P-256 certificate every server serves.
make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout "$1/tls.key" -out "$1/tls.pem" 2>"$1/openssl-req.log" ||
        die "openssl could not make the certificate: $(cat "$1/openssl-req.log")"
}

# --- measuring --------------------------------------------------------------------------------
# idle_rss PID N OUT TXT IDLE_CONNS_ARG...: with server PID running (and warmed up), runs
# idle_conns (pinned to $CLIENT_CPU; its output in TXT) with the arguments given until its N
# connections are idle, and writes "bytes_per_connection rss0_kB rss1_kB" to OUT: the server's
# VmRSS growth divided by N (kernel socket memory is not in RSS).
idle_rss() {
    local pid=$1 n=$2 out=$3 txt=$4 client i rss0 rss1
    shift 4
    rss0=$(rss_kb "$pid")
    taskset -c "$CLIENT_CPU" "$@" >"$txt" 2>&1 &
    client=$!
    started+=("$client")
    for i in $(seq 600); do
        grep -q '^ready' "$txt" && break
        kill -0 "$client" 2>/dev/null || die "idle_conns: $(cat "$txt")"
        sleep 0.1
    done
    grep -q '^ready' "$txt" || die "idle_conns did not finish in 60 s"
    sleep 1
    rss1=$(rss_kb "$pid")
    kill -TERM "$client"
    wait "$client" 2>/dev/null || true
    forget "$client"
    echo "$rss0 $rss1" | awk -v n="$n" '{printf "%.0f %d %d\n", ($2 - $1) * 1024 / n, $1, $2}' >"$out"
}

# callgrind_total OUT DEST: the total instruction count of callgrind output file OUT into DEST.
callgrind_total() {
    [ -f "$1" ] || die "callgrind wrote no $1"
    awk '/^summary:/ {print $2}' "$1" >"$2"
    [ -s "$2" ] || die "no summary line in $1"
}

# ir_per_request ID [A B]: (Ir(B) - Ir(A)) / (B - A) into $RESULTS/ir.ID from $RESULTS/ir.ID.A and
# $RESULTS/ir.ID.B (A, B: $N1, $N2 unless given).
ir_per_request() {
    local a=${2:-$N1} b=${3:-$N2}
    paste -d' ' "$RESULTS/ir.$1.$a" "$RESULTS/ir.$1.$b" |
        awk -v a="$a" -v b="$b" '{printf "%.0f\n", ($2 - $1) / (b - a)}' >"$RESULTS/ir.$1"
}

# ir_of ID: the instructions per request of $RESULTS/ir.ID, or "-".
ir_of() {
    if [ -s "$RESULTS/ir.$1" ]; then cat "$RESULTS/ir.$1"; else echo -; fi
}

# rotated LIST REP: LIST (words) rotated left by REP-1, so every server goes first in turn.
rotated() {
    local order rep=$2 i
    read -ra order <<<"$1"
    for i in "${!order[@]}"; do
        echo "${order[$(((i + rep - 1) % ${#order[@]}))]}"
    done
}

# --- reporting --------------------------------------------------------------------------------
# median FILE COLUMN: of the numeric values in COLUMN ("-" when there are none).
median() {
    awk -v c="$2" '$c != "-" {print $c}' "$1" | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) print "-"
        else if (NR % 2) print v[(NR + 1) / 2]
        else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# latency MICROSECONDS: "850us", "1.19ms", or "-".
latency() {
    awk -v v="$1" 'BEGIN {
        if (v == "-") print "-"
        else if (v < 1000) printf "%.0fus\n", v
        else printf "%.2fms\n", v / 1000 }'
}

# ratio_cell A B: "1.23x" (A/B), or "-" when either is missing.
ratio_cell() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-" || a == "" || b == "" || b + 0 <= 0) print "-"
        else printf "%.2fx\n", a / b }'
}

# verdict VALUE OP LIMIT: "met" or "missed" (OP: >=, <= or <; a trailing "x" on VALUE is
# ignored); "-" when VALUE is missing.
verdict() {
    awk -v v="${1%x}" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "-" || v == "") { print "-"; exit }
        if (op == ">=") ok = v + 0 >= l
        else if (op == "<=") ok = v + 0 <= l
        else ok = v + 0 < l
        print ok ? "met" : "missed" }'
}

# mem_of FILE: the bytes per connection in a memory result FILE, or "-".
mem_of() {
    if [ -s "$1" ]; then cut -d' ' -f1 "$1"; else echo -; fi
}
