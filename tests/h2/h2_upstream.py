#!/usr/bin/env python3
"""blitzd proxying to HTTP/2 upstreams (upstreams[].protocol "h2", prior knowledge).

  h2_upstream.py --blitzd PATH [-k NAME]

The upstream is a real HTTP/2 server written here on Debian's python3-h2 (the same library
the frame-level tests use); it records every request it gets (fields, body, the connection it
came on) and behaves per path: echo with trailers, a fixed length, a stream it releases on the
test's signal, a stream it resets, a refused stream, a GOAWAY. Clients are raw sockets speaking
HTTP/1.1 and python3-h2 speaking HTTP/2 to blitzd, so both translations are exercised. With
BLITZ_TEST_BACKEND set (io_uring, epoll), blitzd runs with that event-loop backend. Exits 77
(SKIP) without python3-h2 or where the kernel refuses io_uring.
"""

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
import casekit  # noqa: E402
from casekit import Failure, check  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.errors
    import h2.events
    import h2.settings
except ImportError:
    h2 = None

IO_TIMEOUT = 5.0
BIG = 16 * 1024 * 1024  # the /big response
CASE_WATCHDOG = 20


# ---------------------------------------------------------------------------------------------
# The HTTP/2 upstream.

class Upstream:
    """An h2c (prior knowledge) server on 127.0.0.1. Each request is recorded as a dict:
    path, fields (list of (name, value)), body, conn (connection number)."""

    def __init__(self, max_streams=None):
        self.max_streams = max_streams    # SETTINGS_MAX_CONCURRENT_STREAMS, when limited
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = []
        self.connections = 0
        self.open_streams = 0
        self.max_open_streams = 0
        self.refused = set()          # paths refused once already
        self.release = threading.Event()  # /stream sends its second part once set
        self.healthy = True               # /health answers 200, else 503
        self.pendings = []                # each connection's bodies waiting for window
        self.closed = set()               # connection numbers the peer (blitzd) closed
        self.stopping = False
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def reset_stats(self):
        with self.lock:
            self.requests = []
            self.max_open_streams = 0
        self.release.clear()

    def requests_to(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"].split("?")[0] == path]

    def accept_loop(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self.serve, args=(s, number), daemon=True).start()

    def serve(self, s, number):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                    validate_inbound_headers=True))
        conn.initiate_connection()
        if self.max_streams is not None:
            conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.max_streams})
        send_lock = threading.Lock()
        streams = {}
        pending = {}  # stream id -> [body left, trailers]: waiting for flow-control window
        with self.lock:
            self.pendings.append(pending)

        def flush():
            data = conn.data_to_send()
            if data:
                s.sendall(data)

        with send_lock:
            flush()
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    with self.lock:
                        self.closed.add(number)
                    return
                with send_lock:
                    events = conn.receive_data(data)
                    for ev in events:
                        self.on_event(conn, ev, streams, pending, number, send_lock, s)
                    flush()
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            s.close()

    def on_event(self, conn, ev, streams, pending, number, send_lock, s):
        if isinstance(ev, h2.events.RequestReceived):
            fields = [(n.decode(), v.decode()) for n, v in ev.headers]
            streams[ev.stream_id] = {"fields": fields, "body": b"", "conn": number,
                                     "path": dict(fields)[":path"]}
            with self.lock:
                self.open_streams += 1
                self.max_open_streams = max(self.max_open_streams, self.open_streams)
        elif isinstance(ev, h2.events.DataReceived):
            streams[ev.stream_id]["body"] += ev.data
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.TrailersReceived):
            streams[ev.stream_id]["trailers"] = [(n.decode(), v.decode()) for n, v in ev.headers]
        elif isinstance(ev, h2.events.StreamEnded):
            req = streams.pop(ev.stream_id)
            with self.lock:
                self.requests.append(req)
            self.respond(conn, ev.stream_id, req, pending, send_lock, s)
        elif isinstance(ev, h2.events.StreamReset):
            pending.pop(ev.stream_id, None)
            with self.lock:
                self.open_streams -= 1
        elif isinstance(ev, h2.events.WindowUpdated):
            for sid in list(pending):
                self.pump(conn, pending, sid)

    def pump(self, conn, pending, sid):
        """Sends what the stream's and the connection's windows allow of a pending body."""
        body, trailers = pending[sid]
        while body:
            n = min(len(body), conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
            if n <= 0:
                pending[sid] = [body, trailers]
                return
            conn.send_data(sid, bytes(body[:n]))
            body = body[n:]
        del pending[sid]
        if trailers is None:
            conn.end_stream(sid)
        else:
            conn.send_headers(sid, trailers, end_stream=True)
        self.done()

    def unsent(self):
        """Bytes of bodies waiting for flow-control window."""
        with self.lock:
            tables = list(self.pendings)
        return sum(len(b) for t in tables for b, _ in list(t.values()))

    def done(self):
        with self.lock:
            self.open_streams -= 1

    def respond(self, conn, sid, req, pending, send_lock, s):
        path = req["path"].split("?")[0]
        if path == "/echo":
            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/octet-stream")])
            pending[sid] = [req["body"], [("x-sum", str(len(req["body"])))]]
            self.pump(conn, pending, sid)
        elif path == "/big":
            conn.send_headers(sid, [(":status", "200"), ("content-length", str(BIG))])
            pending[sid] = [memoryview(b"b" * BIG), None]
            self.pump(conn, pending, sid)
        elif path == "/health":
            conn.send_headers(sid, [(":status", "200" if self.healthy else "503"), ("content-length", "0")],
                              end_stream=True)
            self.done()
        elif path == "/len":
            body = b"fixed length body\n"
            conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
            conn.send_data(sid, body, end_stream=True)
            self.done()
        elif path == "/head":
            conn.send_headers(sid, [(":status", "200"), ("content-length", "1234")], end_stream=True)
            self.done()
        elif path == "/hold":
            # Answers after a while, from another thread: streams overlap on the connection.
            def later():
                time.sleep(0.3)
                self.done()  # before the end goes out: the next stream may come right after it
                with send_lock:
                    conn.send_headers(sid, [(":status", "200"), ("content-length", "5")])
                    conn.send_data(sid, b"held\n", end_stream=True)
                    s.sendall(conn.data_to_send())
            threading.Thread(target=later, daemon=True).start()
        elif path == "/stream":
            conn.send_headers(sid, [(":status", "200"), ("content-type", "text/event-stream")])
            conn.send_data(sid, b"data: one\n\n")

            def rest():
                self.release.wait(IO_TIMEOUT)
                with send_lock:
                    conn.send_data(sid, b"data: two\n\n", end_stream=True)
                    s.sendall(conn.data_to_send())
                self.done()
            threading.Thread(target=rest, daemon=True).start()
        elif path == "/refuse-once":
            with self.lock:
                first = path not in self.refused
                self.refused.add(path)
            if first:
                conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
            else:
                conn.send_headers(sid, [(":status", "201"), ("content-length", "3")])
                conn.send_data(sid, b"ok\n", end_stream=True)
            self.done()
        elif path == "/reset-head":
            conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            self.done()
        elif path == "/reset-mid":
            conn.send_headers(sid, [(":status", "200"), ("content-length", "100000")])
            conn.send_data(sid, b"x" * 1000)
            conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
            self.done()
        elif path == "/goaway":
            conn.send_headers(sid, [(":status", "200"), ("content-length", "4")])
            conn.send_data(sid, b"bye\n", end_stream=True)
            conn.close_connection(last_stream_id=sid)
            self.done()
        elif path == "/never":
            pass  # no answer: the route's timeout must
        else:
            conn.send_headers(sid, [(":status", "404"), ("content-length", "0")], end_stream=True)
            self.done()

    def stop(self):
        self.stopping = True
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# Clients.

def http1(addr, raw, head_request=False):
    """Sends raw request bytes; returns (status, headers dict (lower-case), body, trailers,
    complete) of the first response. `complete` is False when the connection ended inside the
    body."""
    s = socket.create_connection(addr, timeout=IO_TIMEOUT)
    try:
        s.sendall(raw)
        return read_response(s, head_request=head_request)
    finally:
        s.close()


def read_response(s, on_chunk=None, head_request=False):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise Failure(f"connection closed before a response head ({buf[:200]!r})")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body, trailers = b"", {}
    if head_request:
        return status, headers, body, trailers, True

    def more():
        d = s.recv(65536)
        if not d:
            raise EOFError()
        return d
    try:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                while b"\r\n" not in rest:
                    rest += more()
                size_line, rest = rest.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    while not (rest.startswith(b"\r\n") or b"\r\n\r\n" in rest):
                        rest += more()
                    if not rest.startswith(b"\r\n"):
                        for line in rest.split(b"\r\n\r\n", 1)[0].decode().split("\r\n"):
                            n, _, v = line.partition(":")
                            trailers[n.strip().lower()] = v.strip()
                    return status, headers, body, trailers, True
                while len(rest) < size + 2:
                    rest += more()
                body += rest[:size]
                if on_chunk is not None:
                    on_chunk(body)
                rest = rest[size + 2:]
        elif "content-length" in headers:
            n = int(headers["content-length"])
            got = bytearray(rest)
            while len(got) < n:
                got += more()
            return status, headers, bytes(got[:n]), trailers, True
        else:
            while True:
                rest += more()
    except EOFError:
        return status, headers, body + rest, trailers, False


class H2Client:
    """A python3-h2 client connection to blitzd (prior knowledge)."""

    def __init__(self, addr):
        self.s = socket.create_connection(addr, timeout=IO_TIMEOUT)
        self.c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.c.initiate_connection()
        self.s.sendall(self.c.data_to_send())

    def request(self, method, path, body=b"", extra=(), trailers=()):
        sid = self.c.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "http"), (":authority", "blitz.test"),
                  (":path", path)] + list(extra)
        self.c.send_headers(sid, fields, end_stream=not body)
        if body:
            self.c.send_data(sid, body, end_stream=not trailers)
        if trailers:
            self.c.send_headers(sid, list(trailers), end_stream=True)
        self.s.sendall(self.c.data_to_send())
        status, headers, data, trailers, reset = None, {}, b"", {}, None
        while True:
            d = self.s.recv(65536)
            if not d:
                raise Failure("blitzd closed the HTTP/2 connection")
            for ev in self.c.receive_data(d):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    headers = {n.decode(): v.decode() for n, v in ev.headers}
                    status = int(headers[":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    data += ev.data
                    self.c.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    trailers = {n.decode(): v.decode() for n, v in ev.headers}
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    reset = ev.error_code
                if isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)) and ev.stream_id == sid:
                    self.s.sendall(self.c.data_to_send())
                    return status, headers, data, trailers, reset
            self.s.sendall(self.c.data_to_send())

    def close(self):
        self.s.close()


# ---------------------------------------------------------------------------------------------
# blitzd.

class Target:
    def __init__(self):
        self.blitzd = None
        self.addr = None
        self.upstream = None
        self.narrow = None  # an upstream taking 2 streams at once


def start_blitzd(exe, workdir, up, narrow, env):
    config = {
        "workers": 1,
        "log": {"level": "info"},
        "listeners": [{"name": "main", "address": "127.0.0.1:0"}],
        "upstreams": [
            {"name": "h2up", "endpoints": [f"127.0.0.1:{up.port}"], "protocol": "h2"},
            {"name": "h2down", "endpoints": [f"127.0.0.1:{casekit.closed_port()}"], "protocol": "h2",
             "health_check": {"enabled": False}},
            {"name": "h2narrow", "endpoints": [f"127.0.0.1:{narrow.port}"], "protocol": "h2",
             # A request waits for a slot at most the connect timeout: 8 requests of 0.3 s
             # over 2 streams need 1.2 s.
             "pool": {"max_connections_per_endpoint": 1, "connect_timeout_ms": 5000}},
            {"name": "h2narrow0", "endpoints": [f"127.0.0.1:{narrow.port}"], "protocol": "h2",
             "pool": {"max_connections_per_endpoint": 1},
             "circuit_breaker": {"max_pending_requests": 0}},
            {"name": "h2idle", "endpoints": [f"127.0.0.1:{up.port}"], "protocol": "h2",
             "pool": {"idle_timeout_ms": 200}},
            {"name": "h2checked", "endpoints": [f"127.0.0.1:{up.port}"], "protocol": "h2",
             "panic_threshold_percent": 0,
             "health_check": {"path": "/health", "interval_ms": 100, "timeout_ms": 1000,
                              "jitter_percent": 0, "healthy_threshold": 1, "unhealthy_threshold": 1}},
        ],
        "routes": [
            {"name": "never", "match": {"path": "/never"},
             "proxy": {"upstream": "h2up", "timeout_ms": 300}},
            {"name": "down", "match": {"path": "/down"}, "upstream": "h2down"},
            {"name": "narrow", "match": {"path_prefix": "/narrow/"},
             "proxy": {"upstream": "h2narrow", "prefix_rewrite": "/"}},
            {"name": "narrow0", "match": {"path_prefix": "/narrow0/"},
             "proxy": {"upstream": "h2narrow0", "prefix_rewrite": "/"}},
            {"name": "idle", "match": {"path_prefix": "/idle/"},
             "proxy": {"upstream": "h2idle", "prefix_rewrite": "/"}},
            {"name": "checked", "match": {"path_prefix": "/checked/"},
             "proxy": {"upstream": "h2checked", "prefix_rewrite": "/"}},
            {"name": "all", "match": {"path_prefix": "/"}, "upstream": "h2up"},
        ],
    }
    env.blitzd = casekit.Blitzd(exe, config, workdir)
    env.addr = env.blitzd.addrs["main"]


# ---------------------------------------------------------------------------------------------
# The cases.

CASES = []


def case(fn):
    CASES.append((fn.__name__, fn))
    return fn


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def get(env, path, extra=b""):
    return http1(env.addr, b"GET " + path.encode() + b" HTTP/1.1\r\nHost: blitz.test\r\n" + extra + b"\r\n")


@case
def http1_request_translated(env):
    """An HTTP/1.1 request reaches the h2 upstream with :authority from Host, the query kept,
    connection-specific fields gone and te: trailers kept; the chunked answer carries the
    upstream's trailers in its trailer section."""
    env.upstream.reset_stats()
    status, headers, body, trailers, complete = get(
        env, "/echo?x=1&y=2",
        b"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
        b"X-Custom: kept\r\nCookie: a=1\r\nCookie: b=2\r\n")
    check(status == 200 and complete, f"status {status}, complete {complete}")
    reqs = env.upstream.requests_to("/echo")
    check(len(reqs) == 1, f"upstream saw {len(reqs)} requests")
    f = reqs[0]["fields"]
    names = [n for n, _ in f]
    d = dict(f)
    check(d.get(":authority") == "blitz.test", f":authority {d.get(':authority')!r}")
    check(d.get(":path") == "/echo?x=1&y=2", f":path {d.get(':path')!r}")
    check(d.get(":scheme") == "http" and d.get(":method") == "GET", f"pseudo-headers {f}")
    for gone in ("host", "connection", "keep-alive", "x-hop", "transfer-encoding"):
        check(gone not in names, f"{gone} was forwarded: {f}")
    check(d.get("te") == "trailers", f"te {d.get('te')!r}")
    check(d.get("x-custom") == "kept", "x-custom lost")
    check("x-forwarded-for" in d and d.get("via", "").startswith("1.1"), f"forwarding fields: {f}")
    check(headers.get("transfer-encoding") == "chunked", f"response head {headers}")
    check(trailers.get("x-sum") == "0", f"trailers {trailers}")
    return "fields mapped, trailers relayed in the chunked trailer section"


@case
def http1_uploads_reach_upstream_whole(env):
    """Uploads with content-length and chunked reach the upstream byte for byte, as DATA with
    no transfer-encoding field."""
    env.upstream.reset_stats()
    payload = bytes(range(256)) * 1200  # 300 KB: more than a stream window's worth at once
    raw = (b"POST /echo HTTP/1.1\r\nHost: blitz.test\r\nContent-Length: " +
           str(len(payload)).encode() + b"\r\n\r\n" + payload)
    status, _, body, trailers, complete = http1(env.addr, raw)
    check(status == 200 and complete and body == payload,
          f"content-length upload: status {status}, {len(body)} bytes back {body[:100]!r}")
    check(trailers.get("x-sum") == str(len(payload)), f"trailers {trailers}")
    chunks = b"".join(b"%x\r\n" % len(payload[i:i + 7000]) + payload[i:i + 7000] + b"\r\n"
                      for i in range(0, len(payload), 7000))
    raw = (b"POST /echo HTTP/1.1\r\nHost: blitz.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
           chunks + b"0\r\n\r\n")
    status, _, body, _, complete = http1(env.addr, raw)
    check(status == 200 and complete and body == payload,
          f"chunked upload: status {status}, {len(body)} bytes back")
    reqs = env.upstream.requests_to("/echo")
    check(len(reqs) == 2 and all(r["body"] == payload for r in reqs),
          f"upstream bodies: {[len(r['body']) for r in reqs]}")
    for r in reqs:
        names = [n for n, _ in r["fields"]]
        check("transfer-encoding" not in names, f"transfer-encoding forwarded: {r['fields']}")
    return f"{len(payload)} bytes each way, twice"


@case
def http2_client_gets_trailers(env):
    """An HTTP/2 client's POST goes through as DATA and gets the upstream's trailers as a
    trailing HEADERS frame."""
    c = H2Client(env.addr)
    try:
        status, headers, data, trailers, reset = c.request(
            "POST", "/echo", b"grpc-like payload", [("te", "trailers"), ("content-type", "application/x")])
    finally:
        c.close()
    check(reset is None and status == 200, f"status {status}, reset {reset}")
    check(data == b"grpc-like payload", f"data {data!r}")
    check(trailers.get("x-sum") == "17", f"trailers {trailers}")
    return "DATA and trailers relayed"


@case
def request_trailers_reach_upstream(env):
    """Request trailers go upstream as a trailing HEADERS frame: an HTTP/1.1 client's chunked
    trailer section and an HTTP/2 client's trailers alike, the fields RFC 9110 §6.5.1 keeps out of
    trailers (content-length, authorization) left out."""
    env.upstream.reset_stats()
    raw = (b"POST /echo HTTP/1.1\r\nHost: blitz.test\r\nTransfer-Encoding: chunked\r\n"
           b"TE: trailers\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: abc\r\nContent-Length: 5\r\n"
           b"X-Other: 1\r\n\r\n")
    status, _, body, _, complete = http1(env.addr, raw)
    check(status == 200 and complete and body == b"hello", f"HTTP/1.1: status {status}, body {body!r}")
    c = H2Client(env.addr)
    try:
        status, _, data, _, reset = c.request("POST", "/echo", b"world", [("te", "trailers")],
                                              trailers=[("x-checksum", "def"), ("authorization", "x")])
    finally:
        c.close()
    check(reset is None and status == 200 and data == b"world", f"HTTP/2: status {status}, reset {reset}")
    reqs = env.upstream.requests_to("/echo")
    check(len(reqs) == 2, f"{len(reqs)} requests upstream")
    got = [r.get("trailers") for r in reqs]
    check(got[0] == [("x-checksum", "abc"), ("x-other", "1")], f"HTTP/1.1 client's trailers upstream: {got[0]}")
    check(got[1] == [("x-checksum", "def")], f"HTTP/2 client's trailers upstream: {got[1]}")
    check(all(r["body"] in (b"hello", b"world") for r in reqs), f"bodies {[r['body'] for r in reqs]}")
    return "both clients' trailers upstream, forbidden fields left out"


@case
def head_and_content_length(env):
    """HEAD and a response with content-length keep their framing."""
    status, headers, body, _, _ = http1(env.addr, b"HEAD /head HTTP/1.1\r\nHost: blitz.test\r\n\r\n",
                                        head_request=True)
    check(status == 200 and headers.get("content-length") == "1234" and body == b"",
          f"HEAD: {status} {headers}")
    status, headers, body, _, complete = get(env, "/len")
    check(status == 200 and complete and body == b"fixed length body\n" and
          headers.get("content-length") == "18", f"/len: {status} {headers} {body!r}")
    return None


@case
def streams_are_not_buffered(env):
    """A response streams through: the client reads the first event while the upstream still
    holds back the second (it sends it only once the test saw the first)."""
    env.upstream.reset_stats()
    s = socket.create_connection(env.addr, timeout=IO_TIMEOUT)
    seen_first = []

    def on_chunk(body):
        if b"data: one" in body and not seen_first:
            seen_first.append(time.monotonic())
            env.upstream.release.set()
    try:
        s.sendall(b"GET /stream HTTP/1.1\r\nHost: blitz.test\r\n\r\n")
        status, _, body, _, complete = read_response(s, on_chunk)
    finally:
        s.close()
    check(seen_first, "the first event never arrived before the upstream's release")
    check(status == 200 and complete and body == b"data: one\n\ndata: two\n\n", f"{status} {body!r}")
    return "first event relayed before the upstream sent the second"


@case
def slow_client_holds_the_upstream_back(env):
    """A client that does not read makes blitzd stop reopening the stream's window: the
    upstream keeps most of a 16 MB body unsent, blitzd's memory does not grow by the body (the
    bytes in flight sit in socket buffers and its output mark), and the whole body arrives once
    the client reads."""
    rss_before = rss_kb(env.blitzd.proc.pid)
    s = socket.create_connection(env.addr, timeout=IO_TIMEOUT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: blitz.test\r\n\r\n")
        time.sleep(1.0)
        unsent = env.upstream.unsent()
        grown = rss_kb(env.blitzd.proc.pid) - rss_before
        check(unsent > BIG // 2, f"{BIG - unsent} bytes left the upstream while the client read nothing")
        check(grown < 4096, f"blitzd grew by {grown} KB while holding the response")
        status, headers, body, _, complete = read_response(s)
    finally:
        s.close()
    check(status == 200 and complete and len(body) == BIG, f"{status}, {len(body)} bytes")
    return (f"{(BIG - unsent) >> 10} KB sent upstream, blitzd +{grown} KB, while the client did not "
            f"read; then all {BIG >> 20} MB")


@case
def requests_share_one_connection(env):
    """Concurrent requests from many clients are multiplexed as streams over one upstream
    connection."""
    env.upstream.reset_stats()
    results = []

    def one():
        try:
            results.append(get(env, "/hold")[0])
        except Exception as e:  # noqa: BLE001 - reported through results
            results.append(repr(e))
    threads = [threading.Thread(target=one) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(IO_TIMEOUT * 2)
    check(results == [200] * 24, f"results {results}")
    conns = {r["conn"] for r in env.upstream.requests_to("/hold")}
    check(len(conns) == 1, f"24 concurrent requests came on {len(conns)} upstream connections")
    check(env.upstream.max_open_streams >= 8,
          f"at most {env.upstream.max_open_streams} streams open at once upstream")
    return f"24 requests on one connection, up to {env.upstream.max_open_streams} streams at once"


@case
def refused_stream_retried(env):
    """A stream the upstream refused (RFC 9113 §8.7: not processed) is sent again, even for a
    POST."""
    env.upstream.reset_stats()
    status, _, body, _, _ = http1(
        env.addr, b"POST /refuse-once HTTP/1.1\r\nHost: blitz.test\r\nContent-Length: 4\r\n\r\nabcd")
    check(status == 201 and body == b"ok\n", f"{status} {body!r}")
    reqs = env.upstream.requests_to("/refuse-once")
    check(len(reqs) == 2 and all(r["body"] == b"abcd" for r in reqs),
          f"upstream saw {[r['body'] for r in reqs]}")
    return "refused once, answered on the second try"


@case
def reset_before_head_is_502(env):
    """A POST whose stream the upstream resets before answering gets 502 upstream_reset and is
    not sent again (it may have been processed)."""
    env.upstream.reset_stats()
    status, headers, _, _, _ = http1(
        env.addr, b"POST /reset-head HTTP/1.1\r\nHost: blitz.test\r\nContent-Length: 2\r\n\r\nhi")
    check(status == 502 and headers.get("x-blitz-error") == "upstream_reset", f"{status} {headers}")
    n = len(env.upstream.requests_to("/reset-head"))
    check(n == 1, f"the POST reached the upstream {n} times")
    return None


@case
def reset_mid_body_cuts_the_response(env):
    """A stream reset after its head went out leaves the client a cut message: HTTP/1.1 closes
    before content-length is reached, HTTP/2 gets RST_STREAM instead of END_STREAM."""
    status, headers, body, _, complete = get(env, "/reset-mid")
    check(status == 200 and not complete and len(body) < 100000,
          f"HTTP/1.1: {status}, complete {complete}, {len(body)} bytes")
    c = H2Client(env.addr)
    try:
        status, _, data, _, reset = c.request("GET", "/reset-mid")
    finally:
        c.close()
    check(status == 200 and reset is not None and len(data) < 100000,
          f"HTTP/2: {status}, reset {reset}, {len(data)} bytes")
    return f"HTTP/1.1 cut at {len(body)} bytes, HTTP/2 reset"


@case
def goaway_moves_to_a_new_connection(env):
    """After the upstream's GOAWAY the running stream completes and later requests go on other
    connections, never on the one that went away."""
    env.upstream.reset_stats()
    status, _, body, _, _ = get(env, "/goaway")
    check(status == 200 and body == b"bye\n", f"{status} {body!r}")
    gone = env.upstream.requests_to("/goaway")[0]["conn"]
    for _ in range(5):
        status, _, body, _, _ = get(env, "/len")
        check(status == 200, f"after GOAWAY: status {status}")
    conns = sorted({r["conn"] for r in env.upstream.requests_to("/len")})
    check(gone not in conns, f"requests still sent on connection {gone} after its GOAWAY: {conns}")
    return f"connection {gone} left, later requests on {conns}"


@case
def gateway_errors(env):
    """An upstream that never answers meets the route's timeout (504); one that is down is
    502 connect_failed."""
    t0 = time.monotonic()
    status, headers, _, _, _ = get(env, "/never")
    took = time.monotonic() - t0
    check(status == 504 and headers.get("x-blitz-error") == "request_timeout",
          f"/never: {status} {headers}")
    check(took < 3.0, f"/never took {took:.2f}s with a 300 ms timeout")
    status, headers, _, _, _ = get(env, "/down")
    check(status == 502 and headers.get("x-blitz-error") == "connect_failed", f"/down: {status} {headers}")
    return f"504 after {took * 1000:.0f} ms, 502 connect_failed"


def wait_for(cond, what, timeout=IO_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise Failure(f"timed out waiting for {what}")


@case
def requests_wait_for_a_stream_slot(env):
    """With one connection allowed and a server taking two streams at once, concurrent requests
    wait for a stream slot (the circuit breaker's pending requests) instead of failing; with no
    pending requests allowed the excess is 503 overflow at once. The connections are made first:
    until a server's SETTINGS arrive its stream limit is not known (RFC 9113 §6.5.2)."""
    for prefix in ("/narrow/", "/narrow0/"):
        check(get(env, prefix + "len")[0] == 200, f"{prefix}len failed")
    env.narrow.reset_stats()

    def burst(prefix, n):
        results = []

        def one():
            try:
                status, headers, _, _, _ = get(env, prefix + "hold")
                results.append((status, headers.get("x-blitz-error")))
            except Exception as e:  # noqa: BLE001 - reported through results
                results.append((repr(e), None))
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(IO_TIMEOUT * 2)
        return results
    results = burst("/narrow/", 8)
    check(results == [(200, None)] * 8, f"queued: {results}")
    conns = {r["conn"] for r in env.narrow.requests_to("/hold")}
    check(len(conns) == 1 and env.narrow.max_open_streams <= 2,
          f"{len(conns)} connections, up to {env.narrow.max_open_streams} streams at once")
    results = burst("/narrow0/", 6)
    ok = results.count((200, None))
    overflow = results.count((503, "overflow"))
    check(ok >= 2 and overflow >= 1 and ok + overflow == 6, f"no pending allowed: {results}")
    return f"8 of 8 served over 2 streams; without pending requests {ok} served, {overflow} overflow"


@case
def idle_connection_closes(env):
    """A connection left without streams closes after the pool's idle_timeout_ms (200 ms here),
    and the next request opens a new one."""
    env.upstream.reset_stats()
    check(get(env, "/idle/len")[0] == 200, "first request failed")
    first = env.upstream.requests_to("/len")[-1]["conn"]
    wait_for(lambda: first in env.upstream.closed, f"connection {first} closed while idle")
    check(get(env, "/idle/len")[0] == 200, "request after the idle close failed")
    second = env.upstream.requests_to("/len")[-1]["conn"]
    check(second != first, f"the request after the idle close went on connection {second} again")
    return f"connection {first} closed when idle, the next request on {second}"


@case
def health_checks_speak_h2(env):
    """Active health checks of an h2 upstream are HTTP/2 requests (GET /health over prior
    knowledge); a 503 marks the endpoint down (503 no_healthy_upstream with panic mode off) and
    a 200 brings it back."""
    def probes():
        return [r for r in env.upstream.requests_to("/health")
                if dict(r["fields"]).get("user-agent") == "blitz-health-check"]
    seen = wait_for(lambda: len(probes()) >= 2 and probes(), "two HTTP/2 health checks")
    d = dict(seen[0]["fields"])
    check(d.get(":method") == "GET" and d.get(":scheme") == "http", f"probe fields {seen[0]['fields']}")
    check(get(env, "/checked/len")[0] == 200, "the checked upstream does not answer while healthy")
    env.upstream.healthy = False
    try:
        wait_for(lambda: get(env, "/checked/len")[0] == 503, "503 after the checks failed")
        status, headers, _, _, _ = get(env, "/checked/len")
        check(headers.get("x-blitz-error") == "no_healthy_upstream", f"{status} {headers}")
    finally:
        env.upstream.healthy = True
    wait_for(lambda: get(env, "/checked/len")[0] == 200, "200 after the checks passed again")
    return f"{len(probes())} HTTP/2 probes, down and up again"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blitzd", required=True, help="blitzd executable to start and test")
    ap.add_argument("--budget", type=float, default=90.0, help="seconds for the whole run")
    ap.add_argument("-k", "--filter", help="run only cases whose name contains this")
    args = ap.parse_args()
    if h2 is None:
        print("SKIP: python3-h2 is not installed")
        return 77
    if os.environ.get("BLITZ_TEST_BACKEND") == "io_uring":
        why = casekit.io_uring_refused()
        if why is not None:
            print(f"SKIP: io_uring_setup failed ({why}): no io_uring backend here")
            return 77
    env = Target()
    env.upstream = Upstream()
    env.narrow = Upstream(max_streams=2)
    workdir = tempfile.mkdtemp(prefix="h2upstream-")
    try:
        try:
            start_blitzd(args.blitzd, workdir, env.upstream, env.narrow, env)
        except (RuntimeError, OSError) as e:
            print(f"FAIL blitzd_start — {e}")
            return 1
        cases = [(name, fn, CASE_WATCHDOG) for name, fn in CASES]
        passed, failed, skipped = casekit.run(cases, env, args.filter, args.budget, env.blitzd.alive)
        if env.blitzd.stop():
            passed += 1
        else:
            failed += 1
        print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
        return 1 if failed else 0
    finally:
        if env.blitzd is not None:
            casekit.end_process(env.blitzd.proc)
        env.upstream.stop()
        env.narrow.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
