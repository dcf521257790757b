#!/usr/bin/env bash
# HTTP/2 end to end through a proxy (issue 5, HTTP/2 upstreams): h2load speaks h2c to the proxy,
# the proxy speaks HTTP/2 to one nginx upstream, side by side with HAProxy and nginx doing the
# same, in the same run, on this machine; medians and ratios as benchmarks/load.sh reports them.
#
#   benchmarks/h2_upstream.sh [--servers "blitzd-io_uring blitzd-epoll haproxy nginx"]
#
# The upstream: Debian's nginx, one single-process worker pinned to CPU $CLIENT_CPU, h2c with
# prior knowledge ("listen ... http2"), answering GET /api/hello with the 13-byte "Hello, World!".
# The proxies, one worker (thread) each, pinned to CPU $SERVER_CPU, no logs:
#   blitzd-io_uring, blitzd-epoll  an upstream with "protocol": "h2" (BLITZD, release build)
#   haproxy  "server ... proto h2" with http-reuse always (HTTP/2 connections shared by streams)
#   nginx    grpc_pass (nginx's only HTTP/2 upstream module; it adds te: trailers)
# Per repetition and proxy (the order rotated each time): start it, check GET /api/hello over
# h2c answers 200 with the body, h2load for $WARMUP s, then for $DURATION s measured
# (h2load -t1 -c$CONNS -m$STREAMS -D), each bounded. Reported: median requests/s and the
# proxy's CPU per request (utime+stime from /proc over the measured run / requests completed).
# CPU 1 carries h2load and the upstream, so requests/s is bounded by them; CPU per request is
# what separates the proxies.
#
# Environment [defaults]: DURATION [10] WARMUP [2] REPS [3] CONNS [64] STREAMS [16]
# SERVER_CPU [0] CLIENT_CPU [1] PORT [18280] RESULTS [benchmarks/results/h2-upstream-DATE]
# BLITZD [build-release/tools/blitzd/blitzd, brought up to date].
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=benchmarks/lib.sh
source "$here/lib.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPS=${REPS:-3}
CONNS=${CONNS:-64}
STREAMS=${STREAMS:-16}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
RESULTS=${RESULTS:-$root/benchmarks/results/h2-upstream-$(date +%Y%m%d-%H%M%S)}
servers="blitzd-io_uring blitzd-epoll haproxy nginx"
while [ $# -gt 0 ]; do
    case "$1" in
    --servers) servers=$2; shift ;;
    *) die "unknown argument '$1' (see the comment at the top)" ;;
    esac
    shift
done
for t in h2load nginx taskset curl; do
    command -v "$t" >/dev/null || die "$t is not installed (scripts/setup.sh installs it)"
done
has "$servers" haproxy && { command -v haproxy >/dev/null || die "haproxy is not installed"; }
mkdir -p "$RESULTS"
raise_nofile
if has "$servers" blitzd-io_uring || has "$servers" blitzd-epoll; then
    BLITZD=${BLITZD:-$(blitzd_binary "$root/build-release")}
fi

PORT=$(free_port "${PORT:-18280}")
UPSTREAM_PORT=$(free_port $((PORT + 1)) "$PORT")
nginx_bin=$(command -v nginx)

# --- configurations ----------------------------------------------------------------------------
# nginx_config NAME SERVER: $RESULTS/NAME.conf, one single-process worker without logs whose
# http block holds SERVER (its upstream and server blocks).
nginx_config() {
    cat >"$RESULTS/$1.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
events { worker_connections 65536; }
pid $RESULTS/$1.pid;
error_log $RESULTS/$1-error.log warn;
http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path $RESULTS/tmp-body; proxy_temp_path $RESULTS/tmp-proxy;
    fastcgi_temp_path $RESULTS/tmp-fcgi; uwsgi_temp_path $RESULTS/tmp-uwsgi;
    scgi_temp_path $RESULTS/tmp-scgi;
$2
}
EOF
}
nginx_config upstream "    server {
        listen 127.0.0.1:$UPSTREAM_PORT http2;
        location /api/hello { default_type text/plain; return 200 \"Hello, World!\"; }
    }"
nginx_config nginx "    upstream up { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$PORT http2;
        location /api/ { grpc_pass grpc://up; }
    }"
cat >"$RESULTS/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend bench
    bind 127.0.0.1:$PORT proto h2
    default_backend upstream
backend upstream
    server nginx 127.0.0.1:$UPSTREAM_PORT proto h2
EOF
blitzd_config() {
    cat >"$RESULTS/blitzd-$1.json" <<EOF
{
  "workers": 1,
  "backend": "$1",
  "log": { "level": "warn" },
  "listeners": [ { "name": "bench", "address": "127.0.0.1:$PORT",
                   "limits": { "max_requests_per_connection": 0, "max_connection_age_ms": 86400000 } } ],
  "upstreams": [ { "name": "up", "protocol": "h2", "endpoints": ["127.0.0.1:$UPSTREAM_PORT"] } ],
  "routes": [ { "name": "api", "match": { "path_prefix": "/api/" },
                "proxy": { "upstream": "up", "forwarded_headers": false, "via": false } } ]
}
EOF
}
blitzd_config io_uring
blitzd_config epoll

command_of() {
    case "$1" in
    blitzd-io_uring) echo "$BLITZD --config $RESULTS/blitzd-io_uring.json" ;;
    blitzd-epoll) echo "$BLITZD --config $RESULTS/blitzd-epoll.json" ;;
    haproxy) echo "$(command -v haproxy) -f $RESULTS/haproxy.cfg -db" ;;
    nginx) echo "$nginx_bin -c $RESULTS/nginx.conf" ;;
    esac
}

# --- the run -------------------------------------------------------------------------------------
log "upstream: nginx h2c on 127.0.0.1:$UPSTREAM_PORT (CPU $CLIENT_CPU)"
taskset -c "$CLIENT_CPU" "$nginx_bin" -c "$RESULTS/upstream.conf" >"$RESULTS/upstream.log" 2>&1 &
upstream_pid=$!
started+=("$upstream_pid")
wait_answer "$upstream_pid" "$RESULTS/upstream.log" "http://127.0.0.1:$UPSTREAM_PORT/api/hello" \
    --http2-prior-knowledge || die "the upstream nginx does not answer"

: >"$RESULTS/runs"
for rep in $(seq "$REPS"); do
    for s in $(rotated "$servers" "$rep"); do
        # shellcheck disable=SC2046
        taskset -c "$SERVER_CPU" $(command_of "$s") >"$RESULTS/$s.log" 2>&1 &
        pid=$!
        started+=("$pid")
        url="http://127.0.0.1:$PORT/api/hello"
        wait_answer "$pid" "$RESULTS/$s.log" "$url" --http2-prior-knowledge || die "$s does not start"
        body=$(curl -s --http2-prior-knowledge -w ' %{http_code}' "$url")
        [ "$body" = "Hello, World! 200" ] || die "$s answers '$body'"
        timeout $((WARMUP + 30)) taskset -c "$CLIENT_CPU" h2load -t1 -c"$CONNS" -m"$STREAMS" \
            -D "$WARMUP" "$url" >/dev/null 2>&1 || true
        before=$(cpu_ticks "$pid")
        out=$(timeout $((DURATION + 60)) taskset -c "$CLIENT_CPU" h2load -t1 -c"$CONNS" \
            -m"$STREAMS" -D "$DURATION" "$url" 2>&1) || true
        after=$(cpu_ticks "$pid")
        echo "$out" >"$RESULTS/$s.$rep.h2load"
        done_ok=$(echo "$out" | awk '/^requests:/ {print $8}')
        failed=$(echo "$out" | awk '/^requests:/ {print $10}')
        rps=$(echo "$out" | awk '/^finished in/ {gsub(",", "", $4); print $4}')
        cpu_us=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="${done_ok:-0}" \
            'BEGIN { if (n > 0) printf "%.2f\n", t * 1e6 / hz / n; else print "-" }')
        echo "$s $rep ${rps:--} $cpu_us ${failed:--}" | tee -a "$RESULTS/runs" >&2
        stop_pid "$pid"
    done
done
stop_pid "$upstream_pid"

# --- the report ----------------------------------------------------------------------------------
{
    echo "HTTP/2 through a proxy to an HTTP/2 nginx upstream: h2load -t1 -c$CONNS -m$STREAMS, h2c,"
    echo "${DURATION}s x $REPS, medians; proxy on CPU $SERVER_CPU, h2load and the upstream on CPU $CLIENT_CPU"
    echo
    echo "| proxy | req/s | CPU us/req | CPU vs haproxy | failed |"
    echo "| --- | --- | --- | --- | --- |"
    base=-
    if has "$servers" haproxy; then
        grep '^haproxy ' "$RESULTS/runs" >"$RESULTS/runs.haproxy"
        base=$(median "$RESULTS/runs.haproxy" 4)
    fi
    for s in $servers; do
        grep "^$s " "$RESULTS/runs" >"$RESULTS/runs.$s" || true
        cpu=$(median "$RESULTS/runs.$s" 4)
        echo "| $s | $(median "$RESULTS/runs.$s" 3) | $cpu | $(ratio_cell "$cpu" "$base") | $(awk '{n += $5} END {print n + 0}' "$RESULTS/runs.$s") |"
    done
    echo
    echo "nginx: $("$nginx_bin" -v 2>&1)"
    has "$servers" haproxy && echo "haproxy: $(haproxy -v | head -n 1)"
} | tee "$RESULTS/report.md"
