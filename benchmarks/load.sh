#!/usr/bin/env bash
# Load benchmark: blitzd (io_uring and epoll backends) against Debian's nginx, measured the way
# README.md (Benchmarks) describes: same machine, same run, interleaved, medians, ratios.
#
#   benchmarks/load.sh [--quick] [--no-blitzd] [--servers "nginx blitzd-epoll ..."]
#                      [--parts "throughput instructions memory"]
#
# Every server answers GET / with a 13-byte "Hello, World!" (text/plain, 200), runs one worker
# pinned to CPU $SERVER_CPU, and is loaded from CPU $CLIENT_CPU, all on loopback.
#   throughput    s1: wrk, $CONNS keep-alive connections; s1p: the same pipelined $DEPTH deep.
#                 $WARMUP s warm-up, $DURATION s measured, $REPS repetitions with the server
#                 order rotated each time; medians of requests/s, p50, p99, and server CPU per
#                 request (utime+stime of the server process, all threads, from /proc/PID/stat
#                 over the measured run, divided by the requests wrk completed).
#   instructions  the server under callgrind answers exactly $N1, then (new process) $N2
#                 requests (h2load --h1); instructions/request = (Ir2 - Ir1) / (N2 - N1).
#                 User space only: read it together with CPU per request.
#   memory        $IDLE_CONNS keep-alive connections, one request each, left idle: the server's
#                 VmRSS growth divided by their number (kernel socket memory is not in RSS).
#
# Environment (defaults in brackets): DURATION [10] WARMUP [2] REPS [3] CONNS [64] DEPTH [16]
# N1 [10000] N2 [50000] IDLE_CONNS [5000] SERVER_CPU [0] CLIENT_CPU [1] PORT [18080]
# BLITZD [build-release/tools/blitzd/blitzd, brought up to date] RESULTS [benchmarks/results/DATE].
# --quick: DURATION=3 WARMUP=1 REPS=1 N1=2000 N2=6000 IDLE_CONNS=1000, for trying the script.
#
# Needs: nginx, wrk, valgrind, h2load (nghttp2-client), a C++ compiler, curl; as root
# scripts/setup.sh installs them (this script runs it when root). Kills only what it started.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

servers="blitzd-io_uring blitzd-epoll nginx"
parts="throughput instructions memory"
while [ "$#" -gt 0 ]; do
    case $1 in
    --quick)
        : "${DURATION:=3}" "${WARMUP:=1}" "${REPS:=1}" "${N1:=2000}" "${N2:=6000}"
        : "${IDLE_CONNS:=1000}"
        ;;
    --no-blitzd) servers="nginx" ;;
    --servers) servers=$2; shift ;;
    --parts) parts=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "load.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPS=${REPS:-3}
CONNS=${CONNS:-64}
DEPTH=${DEPTH:-16}
N1=${N1:-10000}
N2=${N2:-50000}
IDLE_CONNS=${IDLE_CONNS:-5000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-18080}
RESULTS=${RESULTS:-$root/benchmarks/results/$(date +%Y%m%d-%H%M%S)}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

for s in $servers; do
    case $s in
    nginx | blitzd-io_uring | blitzd-epoll) ;;
    *) die "unknown server '$s' (nginx, blitzd-io_uring, blitzd-epoll)" ;;
    esac
done

# --- tools ------------------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
    "$root/scripts/setup.sh"
fi
for tool in nginx wrk valgrind h2load curl taskset c++; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh as root)"
done
nginx=$(command -v nginx)

if [[ " $servers " == *" blitzd-"* ]]; then
    if [ -z "${BLITZD:-}" ]; then
        dir=$root/build-release
        if [ ! -f "$dir/meson-private/coredata.dat" ]; then
            meson setup "$dir" -Dbuildtype=release -Dtests=false -Dbenchmarks=false \
                -Dexamples=false >&2
        fi
        ninja -C "$dir" tools/blitzd/blitzd >&2
        BLITZD=$dir/tools/blitzd/blitzd
    fi
    [ -x "$BLITZD" ] || die "blitzd binary $BLITZD not found"
fi

mkdir -p "$RESULTS"
log "results in $RESULTS"

# The servers and the idle connections need more descriptors than the usual 1024.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- process bookkeeping ----------------------------------------------------------------------
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

while ss -Htln "sport = :$PORT" | grep -q .; do
    PORT=$((PORT + 1))
done
url=http://127.0.0.1:$PORT/

c++ -std=c++20 -O2 -Wall -Wextra -o "$RESULTS/idle_conns" "$here/idle_conns.cpp"

sed -e "s|@WORKDIR@|$RESULTS|g" -e "s|@PORT@|$PORT|g" "$here/nginx.conf.in" >"$RESULTS/nginx.conf"
for backend in io_uring epoll; do
    cat >"$RESULTS/blitzd-$backend.json" <<JSON
{
  "workers": 1,
  "backend": "$backend",
  "log": { "level": "info" },
  "limits": { "max_requests_per_connection": 0, "max_connection_age_ms": 86400000 },
  "listeners": [{ "name": "bench", "address": "127.0.0.1:$PORT" }],
  "routes": [
    {
      "name": "hello",
      "match": { "path": "/" },
      "respond": { "status": 200, "body": "Hello, World!", "content_type": "text/plain" }
    }
  ]
}
JSON
done

# server_cmd NAME: the command line that runs server NAME in the foreground.
server_cmd() {
    case $1 in
    nginx) echo "$nginx -p $RESULTS -e $RESULTS/nginx-error.log -c $RESULTS/nginx.conf" ;;
    blitzd-*) echo "$BLITZD --config $RESULTS/$1.json" ;;
    esac
}

# start_server NAME [WRAPPER...]: starts it pinned to SERVER_CPU, sets $server_pid, waits until
# it answers. The PID is the server's own (taskset and valgrind exec it).
server_pid=""
start_server() {
    local name=$1 i
    shift
    # shellcheck disable=SC2046
    taskset -c "$SERVER_CPU" "$@" $(server_cmd "$name") >"$RESULTS/$name.log" 2>&1 &
    server_pid=$!
    started+=("$server_pid")
    for i in $(seq 600); do
        if curl -s -o /dev/null --max-time 1 "$url"; then
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$RESULTS/$name.log" >&2
    die "$name did not start"
}

stop_server() {
    local i
    kill -TERM "$server_pid" 2>/dev/null || true
    for i in $(seq 600); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        log "server $server_pid ignored SIGTERM for 60 s; killing it"
        kill -KILL "$server_pid"
    fi
    wait "$server_pid" 2>/dev/null || true
    forget "$server_pid"
    server_pid=""
}

cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
clk_tck=$(getconf CLK_TCK)

# Checks the server's answer once and records it, so the comparison is visibly like for like.
check_response() {
    local name=$1 body
    curl -s -D "$RESULTS/$name.response" -o "$RESULTS/$name.body" "$url"
    body=$(cat "$RESULTS/$name.body")
    [ "$body" = "Hello, World!" ] || die "$name answered '$body'"
    grep -qi '^content-type: text/plain' "$RESULTS/$name.response" ||
        die "$name: no text/plain Content-Type"
    if [[ $name == blitzd-* ]]; then
        local backend=${name#blitzd-}
        grep -q "backend $backend" "$RESULTS/$name.log" ||
            die "$name does not run the $backend backend: $(grep -m1 backend "$RESULTS/$name.log")"
    fi
}

# --- throughput -------------------------------------------------------------------------------
# wrk_run NAME SCENARIO REP: warm-up, then the measured run; appends
# "rps p50_us p99_us cpu_us_per_req errors" to $RESULTS/SCENARIO.NAME.
wrk_run() {
    local name=$1 scenario=$2 rep=$3 out args t0 t1 requests
    args=(-t1 -c"$CONNS" --latency)
    if [ "$scenario" = s1p ]; then
        args+=(-s "$here/pipeline.lua")
    fi
    local tail_args=()
    [ "$scenario" = s1p ] && tail_args=(-- "$DEPTH")
    taskset -c "$CLIENT_CPU" wrk "${args[@]}" -d"${WARMUP}s" "$url" "${tail_args[@]}" >/dev/null
    out=$RESULTS/wrk.$scenario.$name.$rep.txt
    t0=$(cpu_ticks "$server_pid")
    taskset -c "$CLIENT_CPU" wrk "${args[@]}" -d"${DURATION}s" "$url" "${tail_args[@]}" >"$out"
    t1=$(cpu_ticks "$server_pid")
    requests=$(awk '/requests in/ {print $1}' "$out")
    [ -n "$requests" ] && [ "$requests" -gt 0 ] || die "wrk reported no requests ($out)"
    awk -v ticks=$((t1 - t0)) -v hz="$clk_tck" -v n="$requests" '
        function us(v) {
            if (v ~ /us$/) return v + 0
            if (v ~ /ms$/) return v * 1000
            if (v ~ /s$/) return v * 1000000
            return v
        }
        /^Requests\/sec:/ { rps = $2 }
        # wrk prints 0.00us for percentiles it failed to compute (it happens when pipelining):
        # recorded as "-" and left out of the medians.
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        /Socket errors:/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { errors += $5 }
        END {
            p50 = p50 > 0 ? sprintf("%.0f", p50) : "-"
            p99 = p99 > 0 ? sprintf("%.0f", p99) : "-"
            printf "%.0f %s %s %.2f %d\n", rps, p50, p99, ticks / hz * 1e6 / n, errors
        }
    ' "$out" >>"$RESULTS/$scenario.$name"
}

throughput() {
    local order=($servers) rep i name
    for rep in $(seq "$REPS"); do
        for i in "${!order[@]}"; do
            name=${order[$(((i + rep - 1) % ${#order[@]}))]}
            log "throughput: rep $rep/$REPS, $name"
            start_server "$name"
            check_response "$name"
            wrk_run "$name" s1 "$rep"
            wrk_run "$name" s1p "$rep"
            stop_server
        done
    done
}

# --- instructions per request -----------------------------------------------------------------
# callgrind_ir NAME N: runs NAME under callgrind for exactly N requests; writes the total
# instruction count to $RESULTS/ir.NAME.N.
callgrind_ir() {
    local name=$1 n=$2 out summary
    out=$RESULTS/callgrind.$name.$n.out
    start_server "$name" valgrind --tool=callgrind --callgrind-out-file="$out"
    summary=$(taskset -c "$CLIENT_CPU" h2load --h1 -t1 -c"$CONNS" -n"$n" "$url" |
        grep '^requests:' || true)
    echo "$summary" >"$RESULTS/h2load.$name.$n.txt"
    stop_server
    [[ $summary == *" $n succeeded, 0 failed"* ]] || die "$name under callgrind: ${summary:-h2load failed}"
    awk '/^summary:/ {print $2}' "$out" >"$RESULTS/ir.$name.$n"
    [ -s "$RESULTS/ir.$name.$n" ] || die "no summary line in $out"
}

instructions() {
    local name
    for name in $servers; do
        log "instructions: $name under callgrind, $N1 then $N2 requests"
        callgrind_ir "$name" "$N1"
        callgrind_ir "$name" "$N2"
        paste -d' ' "$RESULTS/ir.$name.$N1" "$RESULTS/ir.$name.$N2" |
            awk -v a="$N1" -v b="$N2" '{printf "%.0f\n", ($2 - $1) / (b - a)}' >"$RESULTS/ir.$name"
    done
}

# --- memory per idle connection ---------------------------------------------------------------
memory() {
    local name rss0 rss1 client i
    for name in $servers; do
        log "memory: $name, $IDLE_CONNS idle connections"
        start_server "$name"
        # A short load first, so lazily built per-worker state is not counted per connection.
        taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null
        sleep 0.5
        rss0=$(rss_kb "$server_pid")
        taskset -c "$CLIENT_CPU" "$RESULTS/idle_conns" 127.0.0.1 "$PORT" "$IDLE_CONNS" \
            >"$RESULTS/idle.$name.txt" 2>&1 &
        client=$!
        started+=("$client")
        for i in $(seq 600); do
            grep -q '^ready' "$RESULTS/idle.$name.txt" && break
            kill -0 "$client" 2>/dev/null || die "idle_conns: $(cat "$RESULTS/idle.$name.txt")"
            sleep 0.1
        done
        grep -q '^ready' "$RESULTS/idle.$name.txt" || die "idle_conns did not finish in 60 s"
        sleep 1
        rss1=$(rss_kb "$server_pid")
        kill -TERM "$client"
        wait "$client" 2>/dev/null || true
        forget "$client"
        stop_server
        echo "$rss0 $rss1" | awk -v n="$IDLE_CONNS" '{printf "%.0f %d %d\n", ($2 - $1) * 1024 / n, $1, $2}' \
            >"$RESULTS/mem.$name"
    done
}

# --- report -----------------------------------------------------------------------------------
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

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

report() {
    local scenario name rps p50 p99 cpu err ir mem
    echo "Blitz load benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs"
    echo "server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU, $CONNS connections, loopback"
    echo "nginx: $("$nginx" -v 2>&1 | sed 's/.*: //'); blitzd: ${BLITZD:-not run}"
    if [[ " $parts " == *" throughput "* ]]; then
        for scenario in s1 s1p; do
            echo
            if [ "$scenario" = s1 ]; then
                echo "s1: keep-alive, ${DURATION} s measured after ${WARMUP} s warm-up, median of $REPS"
            else
                echo "s1p: pipelined, depth $DEPTH, ${DURATION} s measured after ${WARMUP} s warm-up, median of $REPS"
            fi
            printf '  %-16s %10s %9s %9s %13s %7s\n' server req/s p50 p99 "CPU us/req" errors
            for name in $servers; do
                rps=$(median "$RESULTS/$scenario.$name" 1)
                p50=$(latency "$(median "$RESULTS/$scenario.$name" 2)")
                p99=$(latency "$(median "$RESULTS/$scenario.$name" 3)")
                cpu=$(median "$RESULTS/$scenario.$name" 4)
                err=$(awk '{s += $5} END {print s}' "$RESULTS/$scenario.$name")
                printf '  %-16s %10.0f %9s %9s %13.2f %7d\n' "$name" "$rps" "$p50" "$p99" "$cpu" "$err"
            done
        done
    fi
    if [[ " $parts " == *" instructions "* ]]; then
        echo
        echo "instructions per request (callgrind, ($N2 - $N1) requests)"
        for name in $servers; do
            printf '  %-16s %10s\n' "$name" "$(cat "$RESULTS/ir.$name")"
        done
    fi
    if [[ " $parts " == *" memory "* ]]; then
        echo
        echo "memory per idle keep-alive connection ($IDLE_CONNS connections, VmRSS growth)"
        for name in $servers; do
            read -r mem rss0 rss1 <"$RESULTS/mem.$name"
            printf '  %-16s %8s B   (RSS %s -> %s kB)\n' "$name" "$mem" "$rss0" "$rss1"
        done
    fi
    if [[ " $servers " == *" nginx "* ]] && [[ " $servers " == *" blitzd-"* ]]; then
        echo
        echo "blitzd / nginx (req/s: higher is better; CPU, instructions, memory: lower is better)"
        printf '  %-16s %9s %11s %9s %11s %11s %9s\n' server "s1 req/s" "s1 CPU/req" \
            "s1p req/s" "s1p CPU/req" "instr/req" "idle mem"
        for name in $servers; do
            [ "$name" = nginx ] && continue
            local cells=()
            if [[ " $parts " == *" throughput "* ]]; then
                for scenario in s1 s1p; do
                    cells+=("$(ratio "$(median "$RESULTS/$scenario.$name" 1)" "$(median "$RESULTS/$scenario.nginx" 1)")")
                    cells+=("$(ratio "$(median "$RESULTS/$scenario.$name" 4)" "$(median "$RESULTS/$scenario.nginx" 4)")")
                done
            else
                cells+=(- - - -)
            fi
            if [[ " $parts " == *" instructions "* ]]; then
                cells+=("$(ratio "$(cat "$RESULTS/ir.$name")" "$(cat "$RESULTS/ir.nginx")")")
            else
                cells+=(-)
            fi
            if [[ " $parts " == *" memory "* ]]; then
                cells+=("$(ratio "$(cut -d' ' -f1 "$RESULTS/mem.$name")" "$(cut -d' ' -f1 "$RESULTS/mem.nginx")")")
            else
                cells+=(-)
            fi
            printf '  %-16s %9s %11s %9s %11s %11s %9s\n' "$name" "${cells[@]}"
        done
    fi
}

for part in $parts; do
    case $part in
    throughput | instructions | memory) "$part" ;;
    *) die "unknown part '$part' (throughput, instructions, memory)" ;;
    esac
done
report | tee "$RESULTS/summary.txt"
