#!/usr/bin/env bash
# Load benchmark: blitzd (io_uring and epoll backends; BoringSSL and OpenSSL builds) against
# Debian's nginx and HAProxy, measured the way README.md (Benchmarks) describes: same machine,
# same run, interleaved, medians, ratios.
#
#   benchmarks/load.sh [--quick] [--no-blitzd] [--servers "nginx haproxy blitzd-epoll ..."]
#                      [--scenarios "s1 s2 s3 s5"] [--parts "throughput instructions memory"]
#
# Every server runs one worker (one thread) pinned to CPU $SERVER_CPU and is loaded from CPU
# $CLIENT_CPU, all on loopback, with $CONNS keep-alive connections. --scenarios picks any of s1
# (which brings s1p and the memory part), s2 (which brings s2p), s3 (which brings the TLS memory
# part) and s5
# (default: s1 s2); --servers lists any of the five servers below, each taking part in the
# scenarios it has a configuration for.
#   s1  the server itself answers GET / with a 13-byte "Hello, World!" (text/plain, 200); s1p is
#       s1 pipelined $DEPTH deep. Servers: nginx, blitzd-io_uring, blitzd-epoll.
#   s2  the server is a reverse proxy: GET /api/hello goes to an upstream nginx (one worker,
#       pinned to CPU $CLIENT_CPU beside the load generator, benchmarks/nginx.conf.in: the same
#       13 bytes) over pooled keep-alive upstream connections. Servers: blitzd-io_uring,
#       blitzd-epoll (route prefix /api/, no X-Forwarded-*/Via, which the others do not add
#       either), haproxy (benchmarks/haproxy.cfg.in) and nginx (benchmarks/nginx_proxy.conf.in).
#       CPU $CLIENT_CPU carries the load generator and the upstream and saturates first, so s2's
#       requests/s are the set-up's, alike for every proxy. s2p is s2 pipelined $DEPTH deep: the
#       client's cost per request drops (one write per $DEPTH requests), the proxy still makes one
#       upstream exchange per request, and the proxy's core is what saturates: s2p's requests/s
#       are the proxy's own peak.
#   s3  s1 over TLS 1.3 with keep-alive (wrk https://): server CPU per request. Servers: nginx
#       (benchmarks/nginx_tls.conf.in), blitzd-io_uring, blitzd-epoll (BLITZD, BoringSSL) and
#       blitzd-openssl (io_uring, built with -Dtls=openssl). All serve the same ECDSA P-256
#       certificate (made here with openssl), TLS 1.3 only, X25519, the cipher suite the client
#       prefers (wrk and s_client: TLS_AES_256_GCM_SHA384; h2load: TLS_AES_128_GCM_SHA256),
#       resumption off on every server.
#   s5  a new TLS 1.3 connection (full handshake) per request: wrk -H "Connection: close" over
#       $CONNS connections, so requests/s are handshakes/s and CPU per request is CPU per
#       handshake (TCP accept and close and one tiny request included, as a client sees a
#       handshake). Same servers and configurations as s3. wrk rather than openssl s_time: wrk
#       keeps $CONNS handshakes in flight, so the server is never idle waiting for a single
#       sequential client, and it is the same client as s3. wrk would resume sessions it was
#       given (SSL_clear keeps them): the servers issue no tickets and keep no session cache,
#       which check_response verifies with openssl s_client -sess_out/-sess_in.
# Parts:
#   throughput    wrk, $WARMUP s warm-up, $DURATION s measured, $REPS repetitions with the server
#                 order rotated each time; medians of requests/s, p50, p99, and server CPU per
#                 request (utime+stime of the server process, all threads, from /proc/PID/stat
#                 over the measured run, divided by the requests wrk completed; for s2 the
#                 proxy's alone). s2 also samples the upstream's connections every 0.5 s: the
#                 most open at once, and how many were opened after the first sample (0 when
#                 the pool keeps them); then, for every proxy, the latency at half of blitzd's
#                 s2 peak, and the same for the upstream alone (h2load straight to it, row
#                 "upstream"): see below.
#   instructions  the server under callgrind answers exactly $N1, then (new process) $N2
#                 requests (h2load --h1); instructions/request = (Ir2 - Ir1) / (N2 - N1).
#                 User space only: read it together with CPU per request.
#                 s3 counts requests as s1 does (h2load --h1 over https; the $CONNS handshakes are
#                 in both runs and cancel out); s5 counts handshakes: $HS_N1, then $HS_N2
#                 requests each on a new connection (h2load -H "Connection: close").
#   memory        (s1 servers) $IDLE_CONNS keep-alive connections, one request each, left idle:
#                 the server's VmRSS growth divided by their number (kernel socket memory is not
#                 in RSS). (s3 servers) the same with $TLS_IDLE_CONNS TLS connections, each after
#                 a full handshake and one request (idle_conns --tls).
#
# s2 latency at half peak: wrk only runs closed-loop, so the offered rate is fixed with h2load
# instead: --rps spreads RATE = half the median s2 requests/s of blitzd-io_uring (else of the
# first blitzd, else of the fastest proxy; or $RATE) over $LAT_CONNS connections, which are
# opened 1 ms apart (-r1 --rate-period=1ms) so their request timers are not in step. Each client
# sends its due requests one after another on its connection, so a request that waits behind a
# slow one is timed from when it was sent, not from when it was due (coordinated omission):
# the p99 is a lower bound once a proxy falls behind, which the achieved rate then shows.
# p50/p99/max come from h2load's per-request log. Same warm-up, duration and repetitions.
# h2load fires each client's requests from its own timer, and the timers of many clients fall
# due together: requests arrive in bursts, and the last of a burst waits for the ones before it
# (at 17k req/s over 64 connections the upstream alone shows a p99 near 1 ms, over 8 connections
# under 0.3 ms). LAT_CONNS=8 measures the same rate in smaller bursts.
#
# Environment (defaults in brackets): DURATION [10] WARMUP [2] REPS [3] CONNS [64] DEPTH [16]
# LAT_CONNS [CONNS]
# N1 [10000] N2 [50000] HS_N1 [200] HS_N2 [1000] IDLE_CONNS [5000] TLS_IDLE_CONNS [3000]
# SERVER_CPU [0] CLIENT_CPU [1] PORT [18080] UPSTREAM_PORT [PORT+1] RATE [see above]
# RESULTS [benchmarks/results/DATE]
# BLITZD [build-release/tools/blitzd/blitzd, brought up to date]
# BLITZD_OPENSSL [build-release-openssl/tools/blitzd/blitzd (-Dtls=openssl), brought up to date].
# BLITZ_OBSERVE [0]: 1 gives blitzd's s1/s2 listener a JSON access log (a file in $RESULTS) and
# request ids, to measure their cost against a run without.
# --quick: DURATION=3 WARMUP=1 REPS=1 N1=2000 N2=6000 HS_N1=100 HS_N2=300 IDLE_CONNS=1000
# TLS_IDLE_CONNS=1000, for trying the script.
#
# Needs: nginx, wrk, valgrind, h2load (nghttp2-client), a C++ compiler, curl, openssl and the
# OpenSSL headers (libssl-dev: idle_conns --tls) and haproxy when it is among the servers; as
# root scripts/setup.sh installs them (this script runs it when root). Kills only what it
# started.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
# shellcheck source=benchmarks/lib.sh
. "$here/lib.sh"

servers="blitzd-io_uring blitzd-epoll blitzd-openssl nginx haproxy"
scenarios="s1 s2"
parts="throughput instructions memory"
while [ "$#" -gt 0 ]; do
    case $1 in
    --quick)
        : "${DURATION:=3}" "${WARMUP:=1}" "${REPS:=1}" "${N1:=2000}" "${N2:=6000}"
        : "${HS_N1:=100}" "${HS_N2:=300}" "${IDLE_CONNS:=1000}" "${TLS_IDLE_CONNS:=1000}"
        ;;
    --no-blitzd) servers="nginx haproxy" ;;
    --servers) servers=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
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
LAT_CONNS=${LAT_CONNS:-$CONNS}
DEPTH=${DEPTH:-16}
N1=${N1:-10000}
N2=${N2:-50000}
HS_N1=${HS_N1:-200}
HS_N2=${HS_N2:-1000}
IDLE_CONNS=${IDLE_CONNS:-5000}
TLS_IDLE_CONNS=${TLS_IDLE_CONNS:-3000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-18080}
RESULTS=${RESULTS:-$root/benchmarks/results/$(date +%Y%m%d-%H%M%S)}

for s in $servers; do
    case $s in
    nginx | haproxy | blitzd-io_uring | blitzd-epoll | blitzd-openssl) ;;
    *) die "unknown server '$s' (nginx, haproxy, blitzd-io_uring, blitzd-epoll, blitzd-openssl)" ;;
    esac
done
for s in $scenarios; do
    case $s in
    s1 | s2 | s3 | s5) ;;
    *) die "unknown scenario '$s' (s1, which includes s1p, s2, s3 and s5)" ;;
    esac
done

# The servers of each scenario, in --servers order: HAProxy has no s1 or TLS configuration here;
# blitzd-openssl (the -Dtls=openssl build) only takes part in the TLS scenarios, s3 and s5.
s1_servers=""
s2_servers=""
tls_servers=""
tls_scenarios=""
for s in s3 s5; do
    has "$scenarios" "$s" && tls_scenarios+="${tls_scenarios:+ }$s"
done
for s in $servers; do
    if has "$scenarios" s1 && [ "$s" != haproxy ] && [ "$s" != blitzd-openssl ]; then
        s1_servers+="${s1_servers:+ }$s"
    fi
    if has "$scenarios" s2 && [ "$s" != blitzd-openssl ]; then
        s2_servers+="${s2_servers:+ }$s"
    fi
    if [ -n "$tls_scenarios" ] && [ "$s" != haproxy ]; then
        tls_servers+="${tls_servers:+ }$s"
    fi
done
[ -n "$s1_servers$s2_servers$tls_servers" ] || die "no server runs any of the scenarios '$scenarios'"

# --- tools ------------------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
    "$root/scripts/setup.sh"
fi
tools="nginx wrk valgrind h2load curl taskset ss c++ openssl"
has "$s2_servers" haproxy && tools+=" haproxy"
for tool in $tools; do
    command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh as root)"
done
nginx=$(command -v nginx)
haproxy=$(command -v haproxy || true)

need_blitzd=""
for s in $s1_servers $s2_servers $tls_servers; do
    case $s in blitzd-io_uring | blitzd-epoll) need_blitzd=1 ;; esac
done
if [ -n "$need_blitzd" ]; then
    [ -n "${BLITZD:-}" ] || BLITZD=$(blitzd_binary "$root/build-release")
    [ -x "$BLITZD" ] || die "blitzd binary $BLITZD not found"
fi
if has "$tls_servers" blitzd-openssl; then
    [ -n "${BLITZD_OPENSSL:-}" ] ||
        BLITZD_OPENSSL=$(blitzd_binary "$root/build-release-openssl" -Dtls=openssl)
    [ -x "$BLITZD_OPENSSL" ] || die "blitzd binary $BLITZD_OPENSSL not found"
fi

mkdir -p "$RESULTS"
log "results in $RESULTS"

raise_nofile

PORT=$(free_port "$PORT")
UPSTREAM_PORT=$(free_port "${UPSTREAM_PORT:-$((PORT + 1))}" "$PORT")
# url SCENARIO: what the load generators request.
url() {
    case $1 in
    s1) echo "http://127.0.0.1:$PORT/" ;;
    s2) echo "http://127.0.0.1:$PORT/api/hello" ;;
    s3 | s5) echo "https://127.0.0.1:$PORT/" ;;
    esac
}

build_idle_conns "$RESULTS/idle_conns"

sed -e "s|@WORKDIR@|$RESULTS|g" -e "s|@PORT@|$PORT|g" "$here/nginx.conf.in" >"$RESULTS/nginx.conf"
# s2: the upstream is the s1 nginx in a directory of its own (it runs beside the proxy nginx);
# the proxies' configurations.
mkdir -p "$RESULTS/upstream"
sed -e "s|@WORKDIR@|$RESULTS/upstream|g" -e "s|@PORT@|$UPSTREAM_PORT|g" "$here/nginx.conf.in" \
    >"$RESULTS/upstream/nginx.conf"
sed -e "s|@WORKDIR@|$RESULTS|g" -e "s|@PORT@|$PORT|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" \
    "$here/nginx_proxy.conf.in" >"$RESULTS/nginx_proxy.conf"
sed -e "s|@PORT@|$PORT|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" "$here/haproxy.cfg.in" \
    >"$RESULTS/haproxy.cfg"
# s3/s5: one ECDSA P-256 certificate for every server.
if [ -n "$tls_servers" ]; then
    make_cert "$RESULTS"
    sed -e "s|@WORKDIR@|$RESULTS|g" -e "s|@PORT@|$PORT|g" -e "s|@CERT@|$RESULTS/tls.pem|g" \
        -e "s|@KEY@|$RESULTS/tls.key|g" "$here/nginx_tls.conf.in" >"$RESULTS/nginx_tls.conf"
fi
for backend in io_uring epoll; do
    # BLITZ_OBSERVE=1: blitzd also writes a JSON access log line and makes a request id per
    # request (the cost of observability; metrics are always on). The 4 MiB buffer keeps the
    # reactor from dropping lines while callgrind slows it (a dropped line costs less than a
    # written one); callgrind_ir checks that every request was logged.
    observe=""
    if [ "${BLITZ_OBSERVE:-0}" = 1 ]; then
        observe=", \"access_log\": { \"path\": \"$RESULTS/access-$backend.log\", \"buffer_bytes\": 4194304 }, \"request_id\": {}"
    fi
    cat >"$RESULTS/blitzd-$backend.json" <<JSON
{
  "workers": 1,
  "backend": "$backend",
  "log": { "level": "info" },
  "limits": { "max_requests_per_connection": 0, "max_connection_age_ms": 86400000 },
  "listeners": [{ "name": "bench", "address": "127.0.0.1:$PORT"$observe }],
  "routes": [
    {
      "name": "hello",
      "match": { "path": "/" },
      "respond": { "status": 200, "body": "Hello, World!", "content_type": "text/plain" }
    }
  ]
}
JSON
    # The pool keeps as many idle upstream connections as nginx's "keepalive 64"; the forwarding
    # headers are off because HAProxy and nginx, as configured, add none.
    # s3/s5 (blitzd-openssl uses the io_uring one): resumption off, as for nginx.
    cat >"$RESULTS/blitzd-$backend-tls.json" <<JSON
{
  "workers": 1,
  "backend": "$backend",
  "log": { "level": "info" },
  "limits": { "max_requests_per_connection": 0, "max_connection_age_ms": 86400000 },
  "listeners": [
    {
      "name": "bench",
      "address": "127.0.0.1:$PORT",
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
    cat >"$RESULTS/blitzd-$backend-proxy.json" <<JSON
{
  "workers": 1,
  "backend": "$backend",
  "log": { "level": "info" },
  "limits": { "max_requests_per_connection": 0, "max_connection_age_ms": 86400000 },
  "listeners": [{ "name": "bench", "address": "127.0.0.1:$PORT"$observe }],
  "upstreams": [
    {
      "name": "nginx",
      "endpoints": ["127.0.0.1:$UPSTREAM_PORT"],
      "pool": { "max_idle_per_endpoint": 64 }
    }
  ],
  "routes": [
    {
      "name": "api",
      "match": { "path_prefix": "/api/" },
      "proxy": { "upstream": "nginx", "forwarded_headers": false, "via": false }
    }
  ]
}
JSON
done

# server_cmd SCENARIO NAME: the command line that runs server NAME for SCENARIO (s1 or s2) in
# the foreground.
server_cmd() {
    case $1.$2 in
    s1.nginx) echo "$nginx -p $RESULTS -e $RESULTS/nginx-error.log -c $RESULTS/nginx.conf" ;;
    s1.blitzd-*) echo "$BLITZD --config $RESULTS/$2.json" ;;
    s2.nginx) echo "$nginx -p $RESULTS -e $RESULTS/nginx-proxy-error.log -c $RESULTS/nginx_proxy.conf" ;;
    s2.haproxy) echo "$haproxy -f $RESULTS/haproxy.cfg -db" ;;
    s2.blitzd-*) echo "$BLITZD --config $RESULTS/$2-proxy.json" ;;
    s[35].nginx) echo "$nginx -p $RESULTS -e $RESULTS/nginx-tls-error.log -c $RESULTS/nginx_tls.conf" ;;
    s[35].blitzd-openssl) echo "$BLITZD_OPENSSL --config $RESULTS/blitzd-io_uring-tls.json" ;;
    s[35].blitzd-*) echo "$BLITZD --config $RESULTS/$2-tls.json" ;;
    esac
}

# label SCENARIO NAME: the name of the server's log and response files.
label() {
    case $1 in
    s1) echo "$2" ;;
    s2) echo "$2-proxy" ;;
    s3 | s5) echo "$2-tls" ;;
    esac
}

# start_server SCENARIO NAME [WRAPPER...]: starts NAME set up for SCENARIO, pinned to
# SERVER_CPU, sets $server_pid, waits until it answers. The PID is the server's own (taskset
# and valgrind exec it).
server_pid=""
start_server() {
    local scenario=$1 name=$2 logfile
    shift 2
    # Under a wrapper (valgrind) the log is named after it, so the plain run's log stays.
    logfile=$RESULTS/$(label "$scenario" "$name")${1:+.$(basename "$1")}.log
    # shellcheck disable=SC2046
    taskset -c "$SERVER_CPU" "$@" $(server_cmd "$scenario" "$name") >"$logfile" 2>&1 &
    server_pid=$!
    started+=("$server_pid")
    wait_answer "$server_pid" "$logfile" "$(url "$scenario")" || die "$name did not start"
}

stop_server() {
    stop_pid "$server_pid"
    server_pid=""
}

# The s2 upstream: nginx, one worker, on CLIENT_CPU (the proxy has SERVER_CPU to itself).
upstream_pid=""
start_upstream() {
    taskset -c "$CLIENT_CPU" "$nginx" -p "$RESULTS/upstream" -e "$RESULTS/upstream/error.log" \
        -c "$RESULTS/upstream/nginx.conf" >"$RESULTS/upstream/nginx.log" 2>&1 &
    upstream_pid=$!
    started+=("$upstream_pid")
    wait_answer "$upstream_pid" "$RESULTS/upstream/nginx.log" \
        "http://127.0.0.1:$UPSTREAM_PORT/" || die "the upstream nginx did not start"
}
stop_upstream() {
    stop_pid "$upstream_pid"
    upstream_pid=""
}

# sample_upstream: every 0.5 s, "SAMPLE PEER" for each established upstream connection (PEER:
# the proxy's end), until killed.
sample_upstream() {
    local i=0
    while :; do
        ss -Htn state established "sport = :$UPSTREAM_PORT" | awk -v i="$i" '{print i, $NF}'
        i=$((i + 1))
        sleep 0.5
    done
}

# upstream_use FILE: "most_open new" from sample_upstream's FILE. The first sample, 0.5 s into
# the run, is the baseline (the proxies close upstream connections whose client went away
# mid-request, as wrk's do when a run ends, so the pool refills as a run starts); new: the
# connections seen later that it did not have, 0 when keep-alive works.
upstream_use() {
    awk '
        { count[$1]++ }
        $1 == 1 { base[$2] = 1 }
        $1 > 1 && !($2 in base) && !($2 in seen) { seen[$2] = 1; new++ }
        END {
            for (i in count) if (i >= 1 && count[i] > most) most = count[i]
            printf "%d %d", most, new
        }' "$1"
}

# check_response SCENARIO NAME: checks the server's answer once and records it, so the
# comparison is visibly like for like.
check_response() {
    local scenario=$1 name=$2 body file
    file=$RESULTS/$(label "$scenario" "$name")
    local tls_args=()
    case $scenario in s3 | s5) tls_args=(--cacert "$RESULTS/tls.pem") ;; esac
    curl -s "${tls_args[@]}" -D "$file.response" -o "$file.body" "$(url "$scenario")"
    body=$(cat "$file.body")
    [ "$body" = "Hello, World!" ] || die "$name ($scenario) answered '$body'"
    grep -qi '^content-type: text/plain' "$file.response" ||
        die "$name ($scenario): no text/plain Content-Type"
    if [[ $name == blitzd-* ]]; then
        local backend=${name#blitzd-}
        [ "$name" = blitzd-openssl ] && backend=io_uring
        grep -q "backend $backend" "$file.log" ||
            die "$name does not run the $backend backend: $(grep -m1 backend "$file.log")"
    fi
    case $scenario in s3 | s5) check_tls "$name" "$file" ;; esac
}

# check_tls NAME FILE: records what the TLS handshake negotiated in FILE.tls and checks that it
# is the same for every server (TLS 1.3, X25519, ECDSA, and the suite OpenSSL's client prefers,
# TLS_AES_256_GCM_SHA384, as wrk's gets) and that the server does not resume sessions (s5
# measures full handshakes).
check_tls() {
    local name=$1 file=$2 request line
    request=$'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
    rm -f "$file.session"
    printf '%s' "$request" | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
        -servername localhost -sess_out "$file.session" -ign_eof >"$file.s_client" 2>&1 || true
    grep -E '^(New|Reused), |^Server Temp Key|^Peer signature type|^Server public key' \
        "$file.s_client" >"$file.tls" || true
    for line in "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" "Server Temp Key: X25519" \
        "Peer signature type: ECDSA" "Server public key is 256 bit"; do
        grep -qF "$line" "$file.tls" || die "$name: the handshake lacks '$line' (see $file.s_client)"
    done
    # A session the server would resume: offered again, it must be refused.
    if [ -s "$file.session" ]; then
        printf '%s' "$request" | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
            -servername localhost -sess_in "$file.session" -ign_eof >"$file.s_client2" 2>&1 || true
        if grep -q '^Reused, ' "$file.s_client2"; then
            die "$name resumed a TLS session: resumption must be off (see $file.s_client2)"
        fi
    fi
    # (grep -q on a pipe would end ldd with SIGPIPE, which pipefail reports.)
    case $name in
    blitzd-openssl) grep -q 'libssl\.so\.3' <<<"$(ldd "$BLITZD_OPENSSL")" ||
        die "$BLITZD_OPENSSL is not linked with OpenSSL 3" ;;
    blitzd-*) grep -q 'android/libssl' <<<"$(ldd "$BLITZD")" ||
        die "$BLITZD is not linked with BoringSSL (android libssl)" ;;
    esac
}

# --- throughput -------------------------------------------------------------------------------
# wrk_run NAME SCENARIO REP: warm-up, then the measured run; appends
# "rps p50_us p99_us cpu_us_per_req errors" to $RESULTS/SCENARIO.NAME, and for s2
# " most_upstream_connections new_upstream_connections" (see upstream_use) to that line.
wrk_run() {
    local name=$1 scenario=$2 rep=$3 out args t0 t1 requests url sampler=""
    url=$(url "${scenario%p}")
    args=(-t1 -c"$CONNS" --latency)
    if [ "$scenario" = s1p ] || [ "$scenario" = s2p ]; then
        args+=(-s "$here/pipeline.lua")
    fi
    if [ "$scenario" = s5 ]; then
        args+=(-H "Connection: close")
    fi
    local tail_args=()
    [[ $scenario == s[12]p ]] && tail_args=(-- "$DEPTH")
    taskset -c "$CLIENT_CPU" wrk "${args[@]}" -d"${WARMUP}s" "$url" "${tail_args[@]}" >/dev/null
    out=$RESULTS/wrk.$scenario.$name.$rep.txt
    if [ "$scenario" = s2 ]; then
        sample_upstream >"$RESULTS/upstream.$name.$rep.txt" &
        sampler=$!
        started+=("$sampler")
    fi
    t0=$(cpu_ticks "$server_pid")
    taskset -c "$CLIENT_CPU" wrk "${args[@]}" -d"${DURATION}s" "$url" "${tail_args[@]}" >"$out"
    t1=$(cpu_ticks "$server_pid")
    if [ -n "$sampler" ]; then
        kill -TERM "$sampler"
        wait "$sampler" 2>/dev/null || true
        forget "$sampler"
    fi
    requests=$(awk '/requests in/ {print $1}' "$out")
    if [ -z "$requests" ] || [ "$requests" -le 0 ]; then
        die "wrk reported no requests ($out)"
    fi
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
            printf "%.0f %s %s %.2f %d", rps, p50, p99, ticks / hz * 1e6 / n, errors
        }
    ' "$out" >>"$RESULTS/$scenario.$name"
    if [ "$scenario" = s2 ]; then
        printf ' %s' "$(upstream_use "$RESULTS/upstream.$name.$rep.txt")" >>"$RESULTS/$scenario.$name"
    fi
    echo >>"$RESULTS/$scenario.$name"
}

# h2load_rate_run NAME REP RATE [URL]: warm-up with wrk, then h2load offering RATE requests/s
# over $LAT_CONNS connections for $DURATION s to URL (default: the proxy's); appends
# "offered achieved p50_us p99_us max_us errors" to $RESULTS/lat.s2.NAME.
h2load_rate_run() {
    local name=$1 rep=$2 rate=$3 url=${4:-$(url s2)} out reqlog per_client
    out=$RESULTS/h2load.lat.s2.$name.$rep.txt
    reqlog=$RESULTS/h2load.lat.s2.$name.$rep.log
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$LAT_CONNS" -d"${WARMUP}s" "$url" >/dev/null
    per_client=$(awk -v r="$rate" -v c="$LAT_CONNS" 'BEGIN {printf "%.3f", r / c}')
    taskset -c "$CLIENT_CPU" h2load --h1 -t1 -c"$LAT_CONNS" -r1 --rate-period=1ms \
        --rps="$per_client" -n$((rate * DURATION)) --log-file="$reqlog" "$url" >"$out"
    # The log's columns: start (us since the epoch), status, duration (us).
    sort -t$'\t' -k3,3n "$reqlog" | awk -F'\t' -v offered="$rate" -v out="$out" '
        { d[NR] = $3; if ($2 < 200 || $2 > 399) errors++ }
        END {
            while ((getline line < out) > 0)
                if (line ~ /^finished in/) { split(line, f, " "); achieved = f[4] + 0 }
            if (NR == 0) { print offered, achieved, "- - -", 0; exit }
            printf "%d %.0f %d %d %d %d\n", offered, achieved, d[int((NR - 1) * 0.50) + 1],
                d[int((NR - 1) * 0.99) + 1], d[NR], errors
        }' >>"$RESULTS/lat.s2.$name"
    grep -q '^requests: .* 0 failed, 0 errored, 0 timeout' "$out" ||
        log "$name at $rate req/s: $(grep '^requests:' "$out")"
}

# half_peak_rate: half the median s2 requests/s of the proxy the latency target is about.
half_peak_rate() {
    local name best="" best_rps=0 rps
    for name in blitzd-io_uring $s2_servers; do
        has "$s2_servers" "$name" || continue
        if [[ $name == blitzd-* ]]; then
            best=$name
            break
        fi
    done
    if [ -z "$best" ]; then
        for name in $s2_servers; do
            rps=$(median "$RESULTS/s2.$name" 1)
            if awk -v a="$rps" -v b="$best_rps" 'BEGIN {exit !(a > b)}'; then
                best=$name
                best_rps=$rps
            fi
        done
    fi
    echo "$best" >"$RESULTS/lat.s2.reference"
    median "$RESULTS/s2.$best" 1 | awk '{printf "%d\n", $1 / 2}'
}

throughput() {
    local rep name rate
    if [ -n "$s1_servers" ]; then
        for rep in $(seq "$REPS"); do
            for name in $(rotated "$s1_servers" "$rep"); do
                log "throughput s1/s1p: rep $rep/$REPS, $name"
                start_server s1 "$name"
                check_response s1 "$name"
                wrk_run "$name" s1 "$rep"
                wrk_run "$name" s1p "$rep"
                stop_server
            done
        done
    fi
    if [ -n "$s2_servers" ]; then
        start_upstream
        for rep in $(seq "$REPS"); do
            for name in $(rotated "$s2_servers" "$rep"); do
                log "throughput s2: rep $rep/$REPS, $name"
                start_server s2 "$name"
                check_response s2 "$name"
                wrk_run "$name" s2 "$rep"
                wrk_run "$name" s2p "$rep"
                stop_server
            done
        done
        rate=${RATE:-$(half_peak_rate)}
        [ "$rate" -gt 0 ] || die "no s2 rate to offer (got '$rate')"
        echo "$rate" >"$RESULTS/lat.s2.rate"
        for rep in $(seq "$REPS"); do
            for name in $(rotated "$s2_servers" "$rep"); do
                log "latency s2 at $rate req/s: rep $rep/$REPS, $name"
                start_server s2 "$name"
                h2load_rate_run "$name" "$rep" "$rate"
                stop_server
            done
            log "latency of the upstream alone at $rate req/s: rep $rep/$REPS"
            h2load_rate_run upstream "$rep" "$rate" "http://127.0.0.1:$UPSTREAM_PORT/api/hello"
        done
        stop_upstream
    fi
    if [ -n "$tls_servers" ]; then
        local scenario
        for rep in $(seq "$REPS"); do
            for name in $(rotated "$tls_servers" "$rep"); do
                log "throughput $tls_scenarios: rep $rep/$REPS, $name"
                start_server s3 "$name"
                check_response "${tls_scenarios%% *}" "$name"
                for scenario in $tls_scenarios; do
                    wrk_run "$name" "$scenario" "$rep"
                done
                stop_server
            done
        done
    fi
}

# --- instructions per request -----------------------------------------------------------------
# lines_of FILE: its line count (0 when it does not exist yet).
lines_of() {
    if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

# callgrind_ir SCENARIO NAME N: runs NAME under callgrind for exactly N requests (for s5 each on
# a new connection); writes the total instruction count to $RESULTS/ir.ID.N (ID: NAME for s1,
# SCENARIO.NAME for the others).
callgrind_ir() {
    local scenario=$1 name=$2 n=$3 id out summary extra=()
    id=$name
    [ "$scenario" != s1 ] && id=$scenario.$name
    [ "$scenario" = s5 ] && extra=(-H "Connection: close")
    out=$RESULTS/callgrind.$id.$n.out
    # HAProxy and nginx exit on SIGTERM at once (a hard stop), blitzd after closing its
    # connections; callgrind writes its output at the exit either way.
    local access_log="" logged=0
    if [ "${BLITZ_OBSERVE:-0}" = 1 ] && [[ $name == blitzd-* ]] && [[ $scenario == s[12] ]]; then
        access_log=$RESULTS/access-${name#blitzd-}.log
        logged=$(lines_of "$access_log")
    fi
    start_server "$scenario" "$name" valgrind --tool=callgrind --callgrind-out-file="$out"
    summary=$(taskset -c "$CLIENT_CPU" h2load --h1 -t1 -c"$CONNS" -n"$n" "${extra[@]}" \
        "$(url "$scenario")" | grep '^requests:' || true)
    echo "$summary" >"$RESULTS/h2load.$id.$n.txt"
    stop_server
    [[ $summary == *" $n succeeded, 0 failed"* ]] || die "$name under callgrind: ${summary:-h2load failed}"
    if [ -n "$access_log" ]; then
        logged=$(($(lines_of "$access_log") - logged))
        # (the start-up probe is logged too)
        [ "$logged" -ge "$n" ] || die "$name under callgrind logged $logged lines for $n requests (lines dropped)"
    fi
    callgrind_total "$out" "$RESULTS/ir.$id.$n"
}

instructions() {
    local name
    for name in $s1_servers; do
        log "instructions s1: $name under callgrind, $N1 then $N2 requests"
        callgrind_ir s1 "$name" "$N1"
        callgrind_ir s1 "$name" "$N2"
        ir_per_request "$name"
    done
    if [ -n "$s2_servers" ]; then
        start_upstream
        for name in $s2_servers; do
            log "instructions s2: $name under callgrind, $N1 then $N2 proxied requests"
            callgrind_ir s2 "$name" "$N1"
            callgrind_ir s2 "$name" "$N2"
            ir_per_request "s2.$name"
        done
        stop_upstream
    fi
    for name in $tls_servers; do
        if has "$tls_scenarios" s3; then
            log "instructions s3: $name under callgrind, $N1 then $N2 requests over TLS"
            callgrind_ir s3 "$name" "$N1"
            callgrind_ir s3 "$name" "$N2"
            ir_per_request "s3.$name"
        fi
        if has "$tls_scenarios" s5; then
            log "instructions s5: $name under callgrind, $HS_N1 then $HS_N2 handshakes"
            callgrind_ir s5 "$name" "$HS_N1"
            callgrind_ir s5 "$name" "$HS_N2"
            ir_per_request "s5.$name" "$HS_N1" "$HS_N2"
        fi
    done
}

# --- memory per idle connection ---------------------------------------------------------------
# idle_memory SCENARIO NAME N OUT: starts NAME set up for SCENARIO (s1, or s3 over TLS), opens N
# keep-alive connections with one request each and leaves them idle; writes
# "bytes_per_connection rss0_kB rss1_kB" to OUT.
idle_memory() {
    local scenario=$1 name=$2 n=$3 out=$4 txt tls=()
    [ "$scenario" = s3 ] && tls=(--tls)
    txt=$RESULTS/idle.$(label "$scenario" "$name").txt
    start_server "$scenario" "$name"
    # A short load first, so lazily built per-worker state is not counted per connection.
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d1s "$(url "$scenario")" >/dev/null
    sleep 0.5
    idle_rss "$server_pid" "$n" "$out" "$txt" "$RESULTS/idle_conns" "${tls[@]}" 127.0.0.1 "$PORT" "$n"
    stop_server
}

memory() {
    local name
    for name in $s1_servers; do
        log "memory: $name, $IDLE_CONNS idle connections"
        idle_memory s1 "$name" "$IDLE_CONNS" "$RESULTS/mem.$name"
    done
    if has "$tls_scenarios" s3; then
        for name in $tls_servers; do
            log "memory: $name, $TLS_IDLE_CONNS idle TLS connections"
            idle_memory s3 "$name" "$TLS_IDLE_CONNS" "$RESULTS/mem.tls.$name"
        done
    fi
}

# --- report -----------------------------------------------------------------------------------
# throughput_rows SCENARIO SERVER...: one line per server with the medians of its runs.
throughput_rows() {
    local scenario=$1 name rps p50 p99 cpu err
    shift
    for name in "$@"; do
        rps=$(median "$RESULTS/$scenario.$name" 1)
        p50=$(latency "$(median "$RESULTS/$scenario.$name" 2)")
        p99=$(latency "$(median "$RESULTS/$scenario.$name" 3)")
        cpu=$(median "$RESULTS/$scenario.$name" 4)
        err=$(awk '{s += $5} END {print s}' "$RESULTS/$scenario.$name")
        printf '  %-16s %10.0f %9s %9s %13.2f %7d\n' "$name" "$rps" "$p50" "$p99" "$cpu" "$err"
    done
}

report_s1() {
    local scenario name rps p50 p99 cpu err mem rss0 rss1
    if has "$parts" throughput; then
        for scenario in s1 s1p; do
            echo
            if [ "$scenario" = s1 ]; then
                echo "s1: keep-alive, ${DURATION} s measured after ${WARMUP} s warm-up, median of $REPS"
            else
                echo "s1p: pipelined, depth $DEPTH, ${DURATION} s measured after ${WARMUP} s warm-up, median of $REPS"
            fi
            printf '  %-16s %10s %9s %9s %13s %7s\n' server req/s p50 p99 "CPU us/req" errors
            throughput_rows "$scenario" $s1_servers
        done
    fi
    if has "$parts" instructions; then
        echo
        echo "s1: instructions per request (callgrind, ($N2 - $N1) requests)"
        for name in $s1_servers; do
            printf '  %-16s %10s\n' "$name" "$(ir_of "$name")"
        done
    fi
    if has "$parts" memory; then
        echo
        echo "memory per idle keep-alive connection ($IDLE_CONNS connections, VmRSS growth)"
        for name in $s1_servers; do
            read -r mem rss0 rss1 <"$RESULTS/mem.$name"
            printf '  %-16s %8s B   (RSS %s -> %s kB)\n' "$name" "$mem" "$rss0" "$rss1"
        done
    fi
    if has "$s1_servers" nginx && [[ " $s1_servers " == *" blitzd-"* ]]; then
        echo
        echo "s1: blitzd / nginx (req/s: higher is better; CPU, instructions, memory: lower is better)"
        printf '  %-16s %9s %11s %9s %11s %11s %9s\n' server "s1 req/s" "s1 CPU/req" \
            "s1p req/s" "s1p CPU/req" "instr/req" "idle mem"
        for name in $s1_servers; do
            [ "$name" = nginx ] && continue
            local cells=()
            if has "$parts" throughput; then
                for scenario in s1 s1p; do
                    cells+=("$(ratio_cell "$(median "$RESULTS/$scenario.$name" 1)" "$(median "$RESULTS/$scenario.nginx" 1)")")
                    cells+=("$(ratio_cell "$(median "$RESULTS/$scenario.$name" 4)" "$(median "$RESULTS/$scenario.nginx" 4)")")
                done
            else
                cells+=(- - - -)
            fi
            cells+=("$(ratio_cell "$(ir_of "$name")" "$(ir_of nginx)")")
            if has "$parts" memory; then
                cells+=("$(ratio_cell "$(cut -d' ' -f1 "$RESULTS/mem.$name")" "$(cut -d' ' -f1 "$RESULTS/mem.nginx")")")
            else
                cells+=(-)
            fi
            printf '  %-16s %9s %11s %9s %11s %11s %9s\n' "$name" "${cells[@]}"
        done
    fi
}

report_s2() {
    local name rps p50 p99 cpu err conns new rate reference cells other
    local -A rps_of cpu_of p99half_of
    echo
    echo "s2: GET /api/hello reverse-proxied to nginx (1 worker, CPU $CLIENT_CPU, upstream keep-alive)"
    if has "$parts" throughput; then
        echo "    wrk, ${DURATION} s measured after ${WARMUP} s warm-up, median of $REPS; CPU: the proxy's;"
        echo "    upstream conns: most open at once (median) / opened after the first 0.5 s of a run"
        echo "    (most; 0 when the pool keeps them), sampled every 0.5 s"
        printf '  %-16s %10s %9s %9s %13s %7s %15s\n' proxy req/s p50 p99 "CPU us/req" errors \
            "upstream conns"
        for name in $s2_servers; do
            rps=$(median "$RESULTS/s2.$name" 1)
            p50=$(latency "$(median "$RESULTS/s2.$name" 2)")
            p99=$(latency "$(median "$RESULTS/s2.$name" 3)")
            cpu=$(median "$RESULTS/s2.$name" 4)
            err=$(awk '{s += $5} END {print s}' "$RESULTS/s2.$name")
            conns=$(median "$RESULTS/s2.$name" 6 | awk '{printf "%.0f", $1}')
            new=$(awk 'BEGIN {m = 0} $7 > m {m = $7} END {print m}' "$RESULTS/s2.$name")
            rps_of[$name]=$rps
            cpu_of[$name]=$cpu
            printf '  %-16s %10.0f %9s %9s %13.2f %7d %15s\n' "$name" "$rps" "$p50" "$p99" "$cpu" \
                "$err" "$conns / $new"
        done
        echo
        echo "s2p: s2 pipelined, depth $DEPTH (the proxy's core saturates: its own peak), ${DURATION} s"
        echo "    measured after ${WARMUP} s warm-up, median of $REPS"
        printf '  %-16s %10s %9s %9s %13s %7s\n' proxy req/s p50 p99 "CPU us/req" errors
        throughput_rows s2p $s2_servers
        rate=$(cat "$RESULTS/lat.s2.rate")
        reference=$(cat "$RESULTS/lat.s2.reference" 2>/dev/null || echo "RATE")
        [ -n "${RATE:-}" ] && reference="RATE"
        echo
        echo "s2 latency at $rate req/s offered (half of $reference's s2 peak), h2load --h1 --rps,"
        echo "    $LAT_CONNS connections, ${DURATION} s after ${WARMUP} s warm-up, median of $REPS"
        printf '  %-16s %10s %9s %9s %9s %7s\n' proxy "req/s done" p50 p99 max errors
        for name in $s2_servers upstream; do
            p99=$(median "$RESULTS/lat.s2.$name" 4)
            p99half_of[$name]=$p99
            printf '  %-16s %10.0f %9s %9s %9s %7d\n' "$name" "$(median "$RESULTS/lat.s2.$name" 2)" \
                "$(latency "$(median "$RESULTS/lat.s2.$name" 3)")" "$(latency "$p99")" \
                "$(latency "$(median "$RESULTS/lat.s2.$name" 5)")" \
                "$(awk '{s += $6} END {print s}' "$RESULTS/lat.s2.$name")"
        done
    fi
    if has "$parts" instructions; then
        echo
        echo "s2: instructions per proxied request (callgrind, ($N2 - $N1) requests; the proxy only)"
        for name in $s2_servers; do
            printf '  %-16s %10s\n' "$name" "$(ir_of "s2.$name")"
        done
    fi
    [[ " $s2_servers " == *" blitzd-"* ]] || return 0
    for other in haproxy nginx; do
        has "$s2_servers" "$other" || continue
        echo
        echo "s2: blitzd / $other (req/s: higher is better; CPU, instructions: lower is better)"
        printf '  %-16s %9s %9s %9s %9s %10s\n' proxy "s2 req/s" "s2 CPU" "s2p req/s" "s2p CPU" "instr/req"
        for name in $s2_servers; do
            [[ $name == blitzd-* ]] || continue
            cells=(- - - -)
            if has "$parts" throughput; then
                cells=("$(ratio_cell "${rps_of[$name]}" "${rps_of[$other]}")"
                    "$(ratio_cell "${cpu_of[$name]}" "${cpu_of[$other]}")"
                    "$(ratio_cell "$(median "$RESULTS/s2p.$name" 1)" "$(median "$RESULTS/s2p.$other" 1)")"
                    "$(ratio_cell "$(median "$RESULTS/s2p.$name" 4)" "$(median "$RESULTS/s2p.$other" 4)")")
            fi
            cells+=("$(ratio_cell "$(ir_of "s2.$name")" "$(ir_of "s2.$other")")")
            printf '  %-16s %9s %9s %9s %9s %10s\n' "$name" "${cells[@]}"
            if [ "$other" = haproxy ]; then
                local p99ms="-"
                [ -n "${p99half_of[$name]:-}" ] && p99ms=$(awk -v v="${p99half_of[$name]}" 'BEGIN {
                    if (v == "-") print "-"; else printf "%.3f\n", v / 1000 }')
                printf '  %16s targets: s2p req/s >= 1.30x %s, CPU <= 0.70x s2 %s s2p %s, instr <= 0.60x %s, p99 at half s2 peak < 1 ms %s\n' \
                    "" "$(verdict "${cells[2]}" '>=' 1.30)" "$(verdict "${cells[1]}" '<=' 0.70)" \
                    "$(verdict "${cells[3]}" '<=' 0.70)" "$(verdict "${cells[4]}" '<=' 0.60)" "$(verdict "$p99ms" '<' 1)"
            fi
        done
    done
}

report_tls() {
    local scenario name rps p50 p99 cpu err mem rss0 rss1
    echo
    echo "TLS: 1.3 only, ECDSA P-256 certificate, resumption off; what each server negotiated with"
    echo "    openssl s_client (wrk's choices are the same):"
    for name in $tls_servers; do
        [ -s "$RESULTS/$name-tls.tls" ] || continue
        printf '  %-16s %s\n' "$name" "$(grep -E '^(New|Reused), ' "$RESULTS/$name-tls.tls" |
            sed 's/, Cipher is / /') $(grep '^Server Temp Key' "$RESULTS/$name-tls.tls" |
            sed 's/Server Temp Key: //')"
    done
    if has "$parts" throughput; then
        for scenario in $tls_scenarios; do
            echo
            if [ "$scenario" = s3 ]; then
                echo "s3: HTTPS keep-alive, ${DURATION} s measured after ${WARMUP} s warm-up, median of $REPS"
                printf '  %-16s %10s %9s %9s %13s %7s\n' server req/s p50 p99 "CPU us/req" errors
            else
                echo "s5: a full TLS 1.3 handshake per request (wrk -H 'Connection: close', $CONNS connections),"
                echo "    ${DURATION} s measured after ${WARMUP} s warm-up, median of $REPS"
                printf '  %-16s %10s %9s %9s %13s %7s\n' server handshakes/s p50 p99 "CPU us/hs" errors
            fi
            throughput_rows "$scenario" $tls_servers
        done
    fi
    if has "$parts" instructions; then
        echo
        echo "TLS instructions (callgrind): s3 per request (($N2 - $N1) requests),"
        echo "    s5 per handshake (($HS_N2 - $HS_N1) requests, each on a new connection)"
        printf '  %-16s %12s %12s\n' server "s3 instr/req" "s5 instr/hs"
        for name in $tls_servers; do
            printf '  %-16s %12s %12s\n' "$name" "$(ir_of "s3.$name")" "$(ir_of "s5.$name")"
        done
    fi
    if has "$parts" memory && has "$tls_scenarios" s3; then
        echo
        echo "memory per idle TLS keep-alive connection ($TLS_IDLE_CONNS connections after a full handshake"
        echo "    and one request each, VmRSS growth)"
        for name in $tls_servers; do
            read -r mem rss0 rss1 <"$RESULTS/mem.tls.$name"
            printf '  %-16s %8s B   (RSS %s -> %s kB)\n' "$name" "$mem" "$rss0" "$rss1"
        done
    fi
    has "$tls_servers" nginx && [[ " $tls_servers " == *" blitzd-"* ]] || return 0
    echo
    echo "TLS: blitzd / nginx (req/s: higher is better; CPU, instructions, memory: lower is better)"
    printf '  %-16s %9s %11s %8s %10s %10s %10s %9s\n' server "s3 req/s" "s3 CPU/req" "s5 hs/s" \
        "s5 CPU/hs" "s3 instr" "s5 instr" "idle mem"
    for name in $tls_servers; do
        [[ $name == blitzd-* ]] || continue
        local cells=()
        for scenario in s3 s5; do
            if has "$parts" throughput && has "$tls_scenarios" "$scenario"; then
                cells+=("$(ratio_cell "$(median "$RESULTS/$scenario.$name" 1)" "$(median "$RESULTS/$scenario.nginx" 1)")")
                cells+=("$(ratio_cell "$(median "$RESULTS/$scenario.$name" 4)" "$(median "$RESULTS/$scenario.nginx" 4)")")
            else
                cells+=(- -)
            fi
        done
        cells+=("$(ratio_cell "$(ir_of "s3.$name")" "$(ir_of s3.nginx)")")
        cells+=("$(ratio_cell "$(ir_of "s5.$name")" "$(ir_of s5.nginx)")")
        cells+=("$(ratio_cell "$(mem_of "$RESULTS/mem.tls.$name")" "$(mem_of "$RESULTS/mem.tls.nginx")")")
        printf '  %-16s %9s %11s %8s %10s %10s %10s %9s\n' "$name" "${cells[@]}"
        printf '  %16s targets: s3 CPU/req <= 0.75x %s, s5 CPU/handshake <= 1.00x %s, idle TLS memory <= 0.50x %s\n' \
            "" "$(verdict "${cells[1]}" '<=' 0.75)" "$(verdict "${cells[3]}" '<=' 1.00)" \
            "$(verdict "${cells[6]}" '<=' 0.50)"
    done
}

report() {
    echo "Blitz load benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs"
    echo "server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU, $CONNS connections, loopback"
    echo "nginx: $("$nginx" -v 2>&1 | sed 's/.*: //'); blitzd: ${BLITZD:-not run}"
    if [ -n "$tls_servers" ]; then
        echo "nginx TLS library: $("$nginx" -V 2>&1 | sed -n 's/^built with //p')"
        has "$tls_servers" blitzd-openssl && echo "blitzd-openssl: $BLITZD_OPENSSL"
    fi
    if has "$s2_servers" haproxy; then
        echo "haproxy: $("$haproxy" -v | head -n 1)"
    fi
    [ -z "$s1_servers" ] || report_s1
    [ -z "$s2_servers" ] || report_s2
    [ -z "$tls_servers" ] || report_tls
}

for part in $parts; do
    case $part in
    throughput | instructions | memory) "$part" ;;
    *) die "unknown part '$part' (throughput, instructions, memory)" ;;
    esac
done
report | tee "$RESULTS/summary.txt"
