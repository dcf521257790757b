#!/usr/bin/env bash
# HTTP/2 benchmark (issue 5): blitzd against Debian's nginx and h2o with h2load, measured the
# way /work/shared/BENCHMARKS.md and README.md (Benchmarks) describe: same machine, same run,
# interleaved, medians, ratios. benchmarks/load.sh does the same for HTTP/1.1; both share
# benchmarks/lib.sh.
#
#   benchmarks/h2.sh [--quick] [--no-blitzd] [--servers "blitzd-io_uring nginx h2o ..."]
#                    [--scenarios "s4c s4"] [--parts "throughput instructions memory"]
#
# Every server runs one worker (one event-loop thread) pinned to CPU $SERVER_CPU, answers GET /
# with the same 13-byte "Hello, World!" (text/plain, 200), speaks HTTP/2 only as below, and is
# loaded from CPU $CLIENT_CPU on loopback by h2load with $CONNS connections of $STREAMS
# concurrent streams each (h2load -t1 -c64 -m16).
#   s4c  cleartext HTTP/2 with prior knowledge (h2c) on $PORT.
#   s4   HTTP/2 over TLS 1.3 (ALPN h2) on $TLS_PORT: the same ECDSA P-256 certificate (made here
#        with openssl) for every server, X25519, the suite h2load prefers
#        (TLS_AES_128_GCM_SHA256), resumption off; the report shows what each negotiated.
# Servers (--servers, any of; "blitzd" is blitzd-io_uring):
#   blitzd-io_uring, blitzd-epoll  BLITZD with "workers": 1 and that backend: a plain listener
#       (h2c by prior knowledge is automatic) and a TLS listener (ALPN default h2,http/1.1), the
#       route / answering the body as load.sh's s1 does.
#   nginx  benchmarks/nginx_h2.conf.in ("listen ... http2" and "listen ... ssl http2", one
#       single-process worker).
#   h2o    benchmarks/h2o.conf.in (num-threads: 1; the body is a file served with file.file, see
#       there why and what it costs h2o).
# Parts:
#   throughput    per repetition and server (the order rotated each time): start the server,
#                 check its answers (curl --http2-prior-knowledge and --http2, kept in
#                 NAME.s4c.response/.body and NAME.s4.*), then per scenario h2load for $WARMUP s
#                 (warm-up, new connections) and for $DURATION s measured (h2load -D; or
#                 exactly $REQUESTS requests when REQUESTS is set), each bounded by
#                 $RUN_TIMEOUT s. Medians over $REPS repetitions of requests/s, h2load's mean
#                 request time, and server CPU per request: utime+stime of the server process
#                 (all threads) from /proc/PID/stat over the measured h2load run (its 64
#                 connection set-ups and TLS handshakes included, a few ms of CPU) divided by
#                 the requests h2load completed. The load generator has one core: the fastest
#                 servers saturate it, so req/s stops separating them and CPU per request
#                 (with instructions) is what does.
#   instructions  the server under callgrind answers exactly $N1, then (new process) $N2
#                 requests (h2load -t1 -c$CG_CONNS -m$STREAMS -n N); instructions/request =
#                 (Ir2 - Ir1) / (N2 - N1), so start-up, shut-down and the $CG_CONNS connection
#                 set-ups (TLS handshakes for s4) cancel out. User space only: read it together
#                 with CPU per request. Readiness is polled with ss, not with requests, so both
#                 runs see exactly the requests of h2load.
#   memory        $IDLE_CONNS idle HTTP/2 connections (benchmarks/idle_conns.cpp), after a 1 s
#                 h2load warm-up so lazily built per-worker state is not counted: the server's
#                 VmRSS growth divided by their number (kernel socket memory is not in RSS).
#                 Two kinds per scenario: "settings", a connection that completed the preface
#                 and SETTINGS exchange and never sent a request (--h2), and "+GET", one that
#                 also had one GET answered (--h2-request; its fields sent with incremental
#                 indexing, as browsers do, so the HPACK decoder keeps a dynamic table). Over
#                 TLS each connection is a full handshake.
# The report ends with ratios to h2o and the targets of issue 5: req/s >= 1.00x h2o's, server
# CPU per request <= 0.75x h2o's, memory per idle connection <= the lower of nginx's and h2o's.
#
# Environment (defaults in brackets): DURATION [10] WARMUP [2] REPS [3] REQUESTS [unset: runs
# last DURATION s] RUN_TIMEOUT [DURATION + 60] CONNS [64] STREAMS [16] CG_CONNS [4] N1 [4000]
# N2 [20000] IDLE_CONNS [3000] SERVER_CPU [0] CLIENT_CPU [1] PORT [18180] TLS_PORT [PORT+1]
# RESULTS [benchmarks/results/h2-DATE] H2O [h2o on PATH]
# BLITZD [build-release/tools/blitzd/blitzd, brought up to date].
# --quick: DURATION=3 WARMUP=1 REPS=1 N1=2000 N2=6000 IDLE_CONNS=1000, for trying the script.
#
# Needs: nginx, h2o (Debian's h2o package), h2load (nghttp2-client), valgrind, curl with HTTP/2,
# openssl, a C++ compiler and the OpenSSL headers (libssl-dev: idle_conns). As root
# scripts/setup.sh installs most of them (this script runs it when root). Kills only what it
# started.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=benchmarks/lib.sh
. "$here/lib.sh"
t_start=$(date +%s)

servers="blitzd-io_uring nginx h2o"
scenarios="s4c s4"
parts="throughput instructions memory"
while [ "$#" -gt 0 ]; do
    case $1 in
    --quick)
        : "${DURATION:=3}" "${WARMUP:=1}" "${REPS:=1}" "${N1:=2000}" "${N2:=6000}"
        : "${IDLE_CONNS:=1000}"
        ;;
    --no-blitzd) servers="nginx h2o" ;;
    --servers) servers=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    --parts) parts=$2; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "h2.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPS=${REPS:-3}
REQUESTS=${REQUESTS:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-$((DURATION + 60))}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-16}
CG_CONNS=${CG_CONNS:-4}
N1=${N1:-4000}
N2=${N2:-20000}
IDLE_CONNS=${IDLE_CONNS:-3000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-18180}
RESULTS=${RESULTS:-$root/benchmarks/results/h2-$(date +%Y%m%d-%H%M%S)}

normalized=""
for s in $servers; do
    [ "$s" = blitzd ] && s=blitzd-io_uring
    case $s in
    nginx | h2o | blitzd-io_uring | blitzd-epoll) ;;
    *) die "unknown server '$s' (nginx, h2o, blitzd-io_uring or blitzd, blitzd-epoll)" ;;
    esac
    has "$normalized" "$s" || normalized+="${normalized:+ }$s"
done
servers=$normalized
[ -n "$servers" ] || die "no servers"
for s in $scenarios; do
    case $s in
    s4 | s4c) ;;
    *) die "unknown scenario '$s' (s4c: h2c, s4: h2 over TLS)" ;;
    esac
done
[ -n "$scenarios" ] || die "no scenarios"
for part in $parts; do
    case $part in
    throughput | instructions | memory) ;;
    *) die "unknown part '$part' (throughput, instructions, memory)" ;;
    esac
done

# --- tools ------------------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
    "$root/scripts/setup.sh"
fi
tools="h2load curl taskset ss c++ openssl timeout"
has "$parts" instructions && tools+=" valgrind"
has "$servers" nginx && tools+=" nginx"
for tool in $tools; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh as root)"
done
nginx=$(command -v nginx || true)
if has "$servers" h2o; then
    H2O=${H2O:-$(command -v h2o || true)}
    if [ -z "$H2O" ] || [ ! -x "$H2O" ]; then
        die "h2o not found (apt-get install h2o, or set H2O)"
    fi
fi
if [[ " $servers " == *" blitzd-"* ]]; then
    [ -n "${BLITZD:-}" ] || BLITZD=$(blitzd_binary "$root/build-release")
    [ -x "$BLITZD" ] || die "blitzd binary $BLITZD not found"
fi

mkdir -p "$RESULTS"
log "results in $RESULTS"
raise_nofile

PORT=$(free_port "$PORT")
TLS_PORT=$(free_port "${TLS_PORT:-$((PORT + 1))}" "$PORT")

# url SCENARIO: what h2load requests.
url() {
    case $1 in
    s4c) echo "http://127.0.0.1:$PORT/" ;;
    s4) echo "https://127.0.0.1:$TLS_PORT/" ;;
    esac
}
# port_of SCENARIO
port_of() {
    case $1 in
    s4c) echo "$PORT" ;;
    s4) echo "$TLS_PORT" ;;
    esac
}

build_idle_conns "$RESULTS/idle_conns"
make_cert "$RESULTS"
printf 'Hello, World!' >"$RESULTS/hello.txt"
fill() {
    sed -e "s|@WORKDIR@|$RESULTS|g" -e "s|@PORT@|$PORT|g" -e "s|@TLS_PORT@|$TLS_PORT|g" \
        -e "s|@CERT@|$RESULTS/tls.pem|g" -e "s|@KEY@|$RESULTS/tls.key|g" -e "s|@USER@|$2|g" "$1"
}
fill "$here/nginx_h2.conf.in" "" >"$RESULTS/nginx_h2.conf"
h2o_user="# (not root: h2o keeps the user it runs as)"
[ "$(id -u)" -eq 0 ] && h2o_user="user: root"
fill "$here/h2o.conf.in" "$h2o_user" >"$RESULTS/h2o.conf"
for backend in io_uring epoll; do
    cat >"$RESULTS/blitzd-$backend-h2.json" <<JSON
{
  "workers": 1,
  "backend": "$backend",
  "log": { "level": "info" },
  "limits": {
    "max_requests_per_connection": 0,
    "max_connection_age_ms": 86400000,
    "idle_timeout_ms": 300000
  },
  "listeners": [
    { "name": "h2c", "address": "127.0.0.1:$PORT" },
    {
      "name": "h2",
      "address": "127.0.0.1:$TLS_PORT",
      "tls": {
        "certificates": [{ "cert": "$RESULTS/tls.pem", "key": "$RESULTS/tls.key" }],
        "session_tickets": false
      }
    }
  ],
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
    nginx) echo "$nginx -p $RESULTS -e $RESULTS/nginx-h2-error.log -c $RESULTS/nginx_h2.conf" ;;
    h2o) echo "$H2O -c $RESULTS/h2o.conf" ;;
    blitzd-*) echo "$BLITZD --config $RESULTS/$1-h2.json" ;;
    esac
}

# wait_listening PID LOG PORT...: waits until something listens on every PORT (they were free
# when the script started), while PID lives.
wait_listening() {
    local pid=$1 logfile=$2 i p ok
    shift 2
    for i in $(seq 600); do
        ok=1
        for p in "$@"; do
            port_busy "$p" || ok=""
        done
        [ -n "$ok" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$logfile" >&2
    return 1
}

# start_server NAME [WRAPPER...]: starts NAME pinned to SERVER_CPU, sets $server_pid, waits
# until it listens on both ports. The PID is the server's own (taskset and valgrind exec it).
server_pid=""
start_server() {
    local name=$1 logfile
    shift
    # Under a wrapper (valgrind) the log is named after it, so the plain run's log stays.
    logfile=$RESULTS/$name${1:+.$(basename "$1")}.log
    # shellcheck disable=SC2046
    taskset -c "$SERVER_CPU" "$@" $(server_cmd "$name") >"$logfile" 2>&1 &
    server_pid=$!
    started+=("$server_pid")
    wait_listening "$server_pid" "$logfile" "$PORT" "$TLS_PORT" || die "$name did not start"
}
stop_server() {
    stop_pid "$server_pid"
    server_pid=""
}

# check_response NAME: checks the server's HTTP/2 answer in every scenario once per start and
# records it (headers and body), so the comparison is visibly like for like.
check_response() {
    local name=$1 scenario file body args
    for scenario in $scenarios; do
        file=$RESULTS/$name.$scenario
        case $scenario in
        s4c) args=(--http2-prior-knowledge) ;;
        s4) args=(--http2 --cacert "$RESULTS/tls.pem" --resolve "localhost:$TLS_PORT:127.0.0.1") ;;
        esac
        local target
        target=$(url "$scenario")
        [ "$scenario" = s4 ] && target="https://localhost:$TLS_PORT/"
        curl -s --max-time 10 "${args[@]}" -D "$file.response" -o "$file.body" "$target" ||
            die "$name ($scenario): curl failed (does it speak HTTP/2 here? see $RESULTS/$name.log)"
        head -n 1 "$file.response" | grep -q '^HTTP/2 200' ||
            die "$name ($scenario) answered '$(head -n 1 "$file.response" | tr -d '\r')', not HTTP/2 200"
        body=$(cat "$file.body")
        [ "$body" = "Hello, World!" ] || die "$name ($scenario) answered '$body'"
        grep -qi '^content-type: text/plain' "$file.response" ||
            die "$name ($scenario): no text/plain content-type"
    done
    if [[ $name == blitzd-* ]]; then
        grep -q "backend ${name#blitzd-}" "$RESULTS/$name.log" ||
            die "$name does not run the ${name#blitzd-} backend: $(grep -m1 backend "$RESULTS/$name.log")"
    fi
}

# --- throughput -------------------------------------------------------------------------------
# busy_ticks: user, nice and system time of all CPUs together (/proc/stat), in clock ticks.
busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4; exit}' /proc/stat; }

# h2load_run NAME SCENARIO REP: warm-up, then the measured run; appends
# "rps mean_us cpu_us_per_req errors requests other_cpu_percent" to $RESULTS/SCENARIO.NAME and
# what the warm-up negotiated (protocol; TLS version, suite and key exchange) to
# $RESULTS/proto.SCENARIO.NAME. other_cpu_percent: the CPU time every process but the server and
# h2load used during the measured run, in percent of one CPU: how much the run was disturbed.
h2load_run() {
    local name=$1 scenario=$2 rep=$3 target out warm t0 t1 measure proto
    target=$(url "$scenario")
    local args=(-t1 -c"$CONNS" -m"$STREAMS")
    warm=$RESULTS/h2load.warm.$scenario.$name.$rep.txt
    timeout "$RUN_TIMEOUT" taskset -c "$CLIENT_CPU" h2load "${args[@]}" -D "$WARMUP" "$target" \
        >"$warm" 2>&1 || die "$name ($scenario): the warm-up failed or took over $RUN_TIMEOUT s ($warm)"
    proto=$(sed -n 's/^Application protocol: //p' "$warm")
    case $scenario.$proto in
    s4c.h2c | s4.h2) ;;
    *) die "$name ($scenario): h2load negotiated '$proto' ($warm)" ;;
    esac
    {
        sed -n 's/^\(TLS Protocol\|Cipher\|Server Temp Key\): //p' "$warm" | tr '\n' ' '
        echo "$proto"
    } >"$RESULTS/proto.$scenario.$name"
    if [ -n "$REQUESTS" ]; then
        measure=(-n "$REQUESTS")
    else
        measure=(-D "$DURATION")
    fi
    out=$RESULTS/h2load.$scenario.$name.$rep.txt
    local busy0 busy1 w0 w1 client
    busy0=$(busy_ticks)
    w0=$(date +%s.%N)
    t0=$(cpu_ticks "$server_pid")
    # (times: the CPU time of the subshell's waited-for children, h2load's, for "other CPU".)
    (
        rc=0
        timeout "$RUN_TIMEOUT" taskset -c "$CLIENT_CPU" h2load "${args[@]}" "${measure[@]}" \
            "$target" >"$out" 2>&1 || rc=$?
        times >"$out.times"
        exit "$rc"
    ) || die "$name ($scenario): h2load failed or took over $RUN_TIMEOUT s ($out)"
    t1=$(cpu_ticks "$server_pid")
    w1=$(date +%s.%N)
    busy1=$(busy_ticks)
    client=$(awk 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$out.times")
    awk -v ticks=$((t1 - t0)) -v hz="$clk_tck" -v busy=$((busy1 - busy0)) -v client="$client" \
        -v wall="$(awk -v a="$w0" -v b="$w1" 'BEGIN {print b - a}')" '
        function us(v) {
            if (v ~ /us$/) return v + 0
            if (v ~ /ms$/) return v * 1000
            if (v ~ /s$/) return v * 1000000
            return v
        }
        /^finished in/ { rps = $4 }
        /^requests:/ { done = $6; errors = $10 + $12 + $14 }
        /^status codes:/ { errors += $7 + $9 }
        /^time for request:/ { mean = us($6) }
        END {
            if (done <= 0) exit 1
            other = (busy / hz - ticks / hz - client) / wall * 100
            printf "%.0f %.0f %.2f %d %d %.0f\n", rps, mean, ticks / hz * 1e6 / done, errors,
                done, other < 0 ? 0 : other
        }
    ' "$out" >>"$RESULTS/$scenario.$name" || die "$name ($scenario): h2load completed no request ($out)"
}

throughput() {
    local rep name scenario
    for rep in $(seq "$REPS"); do
        for name in $(rotated "$servers" "$rep"); do
            log "throughput $scenarios: rep $rep/$REPS, $name"
            start_server "$name"
            check_response "$name"
            for scenario in $scenarios; do
                h2load_run "$name" "$scenario" "$rep"
            done
            stop_server
        done
    done
}

# --- instructions per request -----------------------------------------------------------------
# callgrind_ir SCENARIO NAME N: runs NAME under callgrind for exactly N requests; writes the
# total instruction count to $RESULTS/ir.SCENARIO.NAME.N.
callgrind_ir() {
    local scenario=$1 name=$2 n=$3 id out summary
    id=$scenario.$name
    out=$RESULTS/callgrind.$id.$n.out
    # nginx exits on SIGTERM at once, h2o and blitzd after closing their connections (h2load
    # has closed them already); callgrind writes its output at the exit either way.
    start_server "$name" valgrind --tool=callgrind --callgrind-out-file="$out"
    summary=$(timeout $((RUN_TIMEOUT * 5)) taskset -c "$CLIENT_CPU" h2load -t1 -c"$CG_CONNS" \
        -m"$STREAMS" -n"$n" "$(url "$scenario")" | grep '^requests:' || true)
    echo "$summary" >"$RESULTS/h2load.$id.$n.txt"
    stop_server
    [[ $summary == *" $n succeeded, 0 failed"* ]] || die "$name under callgrind: ${summary:-h2load failed}"
    callgrind_total "$out" "$RESULTS/ir.$id.$n"
}

instructions() {
    local name scenario
    for name in $servers; do
        for scenario in $scenarios; do
            log "instructions $scenario: $name under callgrind, $N1 then $N2 requests"
            callgrind_ir "$scenario" "$name" "$N1"
            callgrind_ir "$scenario" "$name" "$N2"
            ir_per_request "$scenario.$name"
        done
    done
}

# --- memory per idle connection ---------------------------------------------------------------
# idle_memory NAME SCENARIO KIND: KIND settings (--h2) or request (--h2-request); writes
# "bytes_per_connection rss0_kB rss1_kB" to $RESULTS/mem.SCENARIO.KIND.NAME.
idle_memory() {
    local name=$1 scenario=$2 kind=$3 args=()
    [ "$scenario" = s4 ] && args+=(--tls)
    if [ "$kind" = settings ]; then args+=(--h2); else args+=(--h2-request); fi
    start_server "$name"
    timeout "$RUN_TIMEOUT" taskset -c "$CLIENT_CPU" h2load -t1 -c"$CONNS" -m"$STREAMS" -D 1 \
        "$(url "$scenario")" >/dev/null 2>&1 || die "$name ($scenario): the warm-up failed"
    sleep 0.5
    idle_rss "$server_pid" "$IDLE_CONNS" "$RESULTS/mem.$scenario.$kind.$name" \
        "$RESULTS/idle.$scenario.$kind.$name.txt" "$RESULTS/idle_conns" "${args[@]}" 127.0.0.1 \
        "$(port_of "$scenario")" "$IDLE_CONNS"
    stop_server
}

memory() {
    local name scenario kind
    for name in $servers; do
        for scenario in $scenarios; do
            for kind in settings request; do
                log "memory $scenario ($kind): $name, $IDLE_CONNS idle connections"
                idle_memory "$name" "$scenario" "$kind"
            done
        done
    done
}

# --- report -----------------------------------------------------------------------------------
scenario_title() {
    case $1 in
    s4c) echo "s4c: h2c (prior knowledge)" ;;
    s4) echo "s4: h2 over TLS 1.3" ;;
    esac
}

# mem_cell SCENARIO KIND NAME: bytes per idle connection, or "-".
mem_cell() { mem_of "$RESULTS/mem.$1.$2.$3"; }

# best_mem SCENARIO KIND: the lower of nginx's and h2o's bytes per idle connection (of those
# measured), or "-".
best_mem() {
    local a b
    a=$(has "$servers" nginx && mem_cell "$1" "$2" nginx || echo -)
    b=$(has "$servers" h2o && mem_cell "$1" "$2" h2o || echo -)
    awk -v a="$a" -v b="$b" 'BEGIN {
        if (a == "-") print b; else if (b == "-") print a; else print (a < b ? a : b) }'
}

report() {
    local scenario name kind run
    echo "Blitz HTTP/2 benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs"
    echo "server on CPU $SERVER_CPU (one worker/thread), h2load on CPU $CLIENT_CPU, loopback,"
    echo "    $CONNS connections x $STREAMS streams (h2load -t1 -c$CONNS -m$STREAMS)"
    has "$servers" nginx && echo "nginx: $("$nginx" -v 2>&1 | sed 's/.*: //')"
    has "$servers" h2o && echo "h2o: $("$H2O" -v 2>&1 | head -n 1 | sed 's/^h2o version //')"
    if [[ " $servers " == *" blitzd-"* ]]; then
        local lib="OpenSSL"
        grep -q 'android/libssl' <<<"$(ldd "$BLITZD")" && lib="BoringSSL"
        echo "blitzd: $BLITZD ($lib)"
    fi
    if has "$parts" throughput; then
        echo
        echo "negotiated (h2load's warm-up): TLS version, suite, key exchange, protocol"
        for scenario in $scenarios; do
            for name in $servers; do
                printf '  %-4s %-16s %s\n' "$scenario" "$name" \
                    "$(cat "$RESULTS/proto.$scenario.$name" 2>/dev/null || echo -)"
            done
        done
        echo
        echo "other CPU: what every other process on the machine used during the measured runs, in % of"
        echo "    one CPU (median / most): above a few %, req/s and CPU/request of that server are disturbed"
        run="${DURATION} s measured"
        [ -n "$REQUESTS" ] && run="$REQUESTS requests measured"
        for scenario in $scenarios; do
            echo
            echo "$(scenario_title "$scenario"), $run after ${WARMUP} s warm-up, median of $REPS"
            printf '  %-16s %10s %10s %11s %7s %16s\n' server req/s "mean time" "CPU us/req" errors \
                "other CPU med/max"
            for name in $servers; do
                printf '  %-16s %10.0f %10s %11.2f %7d %16s\n' "$name" \
                    "$(median "$RESULTS/$scenario.$name" 1)" \
                    "$(latency "$(median "$RESULTS/$scenario.$name" 2)")" \
                    "$(median "$RESULTS/$scenario.$name" 3)" \
                    "$(awk '{s += $4} END {print s}' "$RESULTS/$scenario.$name")" \
                    "$(median "$RESULTS/$scenario.$name" 6)% / $(awk 'BEGIN {m = 0} $6 > m {m = $6} END {print m}' "$RESULTS/$scenario.$name")%"
            done
        done
    fi
    if has "$parts" instructions; then
        echo
        echo "instructions per request (callgrind, h2load -c$CG_CONNS -m$STREAMS, ($N2 - $N1) requests)"
        printf '  %-16s' server
        for scenario in $scenarios; do printf ' %10s' "$scenario"; done
        echo
        for name in $servers; do
            printf '  %-16s' "$name"
            for scenario in $scenarios; do printf ' %10s' "$(ir_of "$scenario.$name")"; done
            echo
        done
    fi
    if has "$parts" memory; then
        echo
        echo "memory per idle HTTP/2 connection ($IDLE_CONNS connections, VmRSS growth / connections):"
        echo "    settings = preface and SETTINGS exchanged; +GET = and one GET answered"
        printf '  %-16s' server
        for scenario in $scenarios; do
            printf ' %14s %14s' "$scenario settings" "$scenario +GET"
        done
        echo
        for name in $servers; do
            printf '  %-16s' "$name"
            for scenario in $scenarios; do
                for kind in settings request; do
                    printf ' %12s B' "$(mem_cell "$scenario" "$kind" "$name")"
                done
            done
            echo
        done
    fi
    has "$servers" h2o || return 0
    echo
    echo "ratios to h2o (req/s: higher is better; CPU, instructions: lower is better);"
    echo "    memory: to the lower of nginx's and h2o's"
    local header=(server) cells
    for scenario in $scenarios; do
        header+=("$scenario req/s" "$scenario CPU" "$scenario instr")
    done
    for scenario in $scenarios; do
        header+=("$scenario mem" "$scenario +GET")
    done
    printf '  %-16s' "${header[0]}"
    printf ' %10s' "${header[@]:1}"
    echo
    for name in $servers; do
        [ "$name" = h2o ] && continue
        cells=()
        for scenario in $scenarios; do
            if has "$parts" throughput; then
                cells+=("$(ratio_cell "$(median "$RESULTS/$scenario.$name" 1)" "$(median "$RESULTS/$scenario.h2o" 1)")")
                cells+=("$(ratio_cell "$(median "$RESULTS/$scenario.$name" 3)" "$(median "$RESULTS/$scenario.h2o" 3)")")
            else
                cells+=(- -)
            fi
            cells+=("$(ratio_cell "$(ir_of "$scenario.$name")" "$(ir_of "$scenario.h2o")")")
        done
        for scenario in $scenarios; do
            for kind in settings request; do
                if has "$parts" memory; then
                    cells+=("$(ratio_cell "$(mem_cell "$scenario" "$kind" "$name")" "$(best_mem "$scenario" "$kind")")")
                else
                    cells+=(-)
                fi
            done
        done
        printf '  %-16s' "$name"
        printf ' %10s' "${cells[@]}"
        echo
        [[ $name == blitzd-* ]] || continue
        local i=0 line=""
        for scenario in $scenarios; do
            line+="$scenario req/s >= 1.00x $(verdict "${cells[i]}" '>=' 1.00), "
            line+="CPU <= 0.75x $(verdict "${cells[i + 1]}" '<=' 0.75); "
            i=$((i + 3))
        done
        line+="idle memory <= 1.00x:"
        for scenario in $scenarios; do
            line+=" $scenario $(verdict "${cells[i]}" '<=' 1.00), +GET $(verdict "${cells[i + 1]}" '<=' 1.00)"
            i=$((i + 2))
        done
        printf '  %16s targets: %s\n' "" "$line"
    done
}

for part in $parts; do
    "$part"
done
{
    report
    echo
    echo "full run: $(($(date +%s) - t_start)) s"
} | tee "$RESULTS/summary.txt"
