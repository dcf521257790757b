#!/usr/bin/python3
"""Frame-level HTTP/2 tests for blitzd (RFC 9113, RFC 7541, and the known HTTP/2 floods).

Usage:
  h2_frames.py --blitzd PATH          start blitzd with a config written to a temp dir
  h2_frames.py --connect HOST:PORT    test a server that is already running (h2c, prior
                                      knowledge), e.g. nginx or h2o, to check this harness

Each case prints one line (PASS / FAIL / SKIP, the case name and why) and the run ends with
"N passed, N failed, N skipped"; the exit status is 1 when a case failed, 77 (meson's SKIP) when
python3-h2 is missing or BLITZ_TEST_BACKEND=io_uring and the kernel refuses io_uring. With
BLITZ_TEST_BACKEND set (io_uring, epoll), blitzd is started with that event-loop backend.
Every socket wait is bounded (5 s), every flood is bounded in frames, each case has a watchdog
and the whole run a time budget.

To check the harness itself against other servers (each needs an /echo location proxied to
the echo origin that --echo-listen starts):
  nghttpd --no-tls -a 127.0.0.1 -d DIR --echo-upload PORT        (Debian: nghttp2-server)
  nginx:  listen 127.0.0.1:PORT http2;  location = / { return 200 "hello\n"; }
          location /echo { proxy_pass http://127.0.0.1:ECHO; }  (keepalive_requests 5 on a
          second server for --connect-limited)
  h2_frames.py --connect 127.0.0.1:PORT --echo-listen ECHO --expect-body $'hello\n' \
               --server-pid PID [--connect-limited 127.0.0.1:PORT2 --max-requests 5]

Requests are built by hand (frames with struct, header blocks as HPACK literals without
indexing) so that malformed ones can be sent; the normal exchanges go through h2's client state
machine, which also checks that the server's own frames and headers are valid.
"""

import argparse
import http.server
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from casekit import Failure, Skip, check  # noqa: E402  (the path above comes first)
from h2wire import frame, take_frames  # noqa: E402
import casekit  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import hpack
except ImportError as missing:
    print(f"SKIP: python3-h2 is not installed ({missing})")
    sys.exit(77)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
               "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]

# Flags.
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Error codes (RFC 9113 §7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
ENHANCE_YOUR_CALM = 0xB
ERROR_NAMES = {0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR",
               0x3: "FLOW_CONTROL_ERROR", 0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED",
               0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM", 0x8: "CANCEL",
               0x9: "COMPRESSION_ERROR", 0xA: "CONNECT_ERROR", 0xB: "ENHANCE_YOUR_CALM",
               0xC: "INADEQUATE_SECURITY", 0xD: "HTTP_1_1_REQUIRED"}

# Settings (RFC 9113 §6.5.2).
S_HEADER_TABLE_SIZE = 0x1
S_ENABLE_PUSH = 0x2
S_MAX_CONCURRENT_STREAMS = 0x3
S_INITIAL_WINDOW_SIZE = 0x4
S_MAX_FRAME_SIZE = 0x5
S_MAX_HEADER_LIST_SIZE = 0x6

IO_TIMEOUT = 5.0      # every wait for the server
CASE_WATCHDOG = 20    # seconds; a case that hangs anyway is failed by SIGALRM
CLIENT_WINDOW = 1 << 24

# What blitzd is configured with in --blitzd mode (the "h2" listener); the flood cases size
# their bursts from these so that they are fast yet well above (and below) each threshold.
BLITZ_RESET_BURST = 20
BLITZ_RESET_RATE = 1
BLITZ_CONTROL_BURST = 50
BLITZ_CONTROL_RATE = 1
BLITZ_MAX_REQUESTS = 5
BLITZ_BODY = "hello from blitzd over h2\n"
BLITZ_ZERO_WINDOW_MS = 300  # zero_window_timeout_ms of the "h2stall" listener


def err_name(code):
    return ERROR_NAMES.get(code, hex(code))


# ---------------------------------------------------------------------------------------------
# Frames and header blocks, built by hand so that anything (malformed too) can be sent.

def settings_frame(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def ping_frame(data=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, data)


def rst_frame(sid, code):
    return frame(RST_STREAM, 0, sid, struct.pack(">I", code))


def window_update_frame(sid, increment):
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", increment))


def data_frame(sid, data=b"", end_stream=False):
    return frame(DATA, END_STREAM if end_stream else 0, sid, data)


def headers_frame(sid, fragment, end_stream=True, end_headers=True):
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, sid, fragment)


def continuation_frame(sid, fragment, end_headers=False):
    return frame(CONTINUATION, END_HEADERS if end_headers else 0, sid, fragment)


def hpack_int(value, prefix_bits):
    """RFC 7541 §5.1 integer with an N-bit prefix (the bits above it left 0)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out = bytearray([limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(s):
    return hpack_int(len(s), 7) + s  # H = 0: no Huffman coding


def to_bytes(s):
    return s if isinstance(s, bytes) else s.encode("latin-1")


def literal(name, value, index=False):
    """A field as a literal with a new name (RFC 7541 §6.2): "without indexing" by default, so
    that our side keeps no dynamic-table state; "with incremental indexing" when `index`."""
    return (b"\x40" if index else b"\x00") + hpack_string(to_bytes(name)) + \
        hpack_string(to_bytes(value))


def block(fields):
    return b"".join(literal(n, v) for n, v in fields)


def request_fields(method="GET", path="/", authority="localhost", scheme="http", extra=()):
    return [(":method", method), (":scheme", scheme), (":authority", authority),
            (":path", path)] + list(extra)


# ---------------------------------------------------------------------------------------------
# A raw client connection that sends bytes and parses every frame the server sends.

class Stream:
    def __init__(self):
        self.status = None  # the final status; 1xx responses and trailers are skipped
        self.body = bytearray()
        self.ended = False
        self.reset = None


class Conn:
    def __init__(self, addr, rcvbuf=None):
        host, port = addr
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                  socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(IO_TIMEOUT)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 20
        self.streams = {}
        self.goaways = []          # (last_stream_id, code, debug)
        self.server_settings = []  # one dict per non-ACK SETTINGS frame
        self.settings_acks = 0
        self.ping_acks = []
        self.window_updates = []   # (stream_id, increment)
        self.first_frame = None
        self.closed = False
        self.close_how = ""
        self.auto_ack = True
        self.log = []
        self._pending_block = None  # (sid, flags, bytearray) while CONTINUATION frames follow

    # sending ---------------------------------------------------------------------------------
    def send(self, data):
        if self.closed:
            return False
        try:
            self.sock.sendall(data)
            return True
        except OSError as e:  # the server closed while we were still sending: read what came
            self.close_how = f"send failed: {e.strerror or e}"
            return False

    def start(self, settings=((S_ENABLE_PUSH, 0), (S_INITIAL_WINDOW_SIZE, CLIENT_WINDOW)),
              ack=True):
        """Preface, our SETTINGS and a connection window of CLIENT_WINDOW; then wait for the
        server's SETTINGS (which `auto_ack` acknowledges)."""
        self.auto_ack = ack
        self.send(PREFACE + settings_frame(settings) +
                  window_update_frame(0, CLIENT_WINDOW - 65535))
        check(self.wait(lambda: self.server_settings, IO_TIMEOUT),
              f"no SETTINGS from the server ({self.describe()})")
        return self

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # receiving -------------------------------------------------------------------------------
    def stream(self, sid):
        return self.streams.setdefault(sid, Stream())

    def read_some(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.closed:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except OSError as e:
            self.closed = True
            self.close_how = self.close_how or f"recv failed: {e.strerror or e}"
            self.log.append("RESET")
            return False
        if not data:
            self.closed = True
            self.close_how = self.close_how or "EOF"
            self.log.append("EOF")
            return False
        self.buf += data
        self._parse()
        return True

    def wait(self, pred, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not pred():
            if not self.read_some(deadline):
                if self.closed or time.monotonic() >= deadline:
                    return bool(pred())
        return True

    def _parse(self):
        for ftype, flags, sid, payload in take_frames(self.buf):
            if self.first_frame is None:
                self.first_frame = ftype
            self._on_frame(ftype, flags, sid, payload)

    @staticmethod
    def _unpad(flags, payload):
        if flags & PADDED:
            pad = payload[0]
            return payload[1:len(payload) - pad]
        return payload

    def _on_frame(self, ftype, flags, sid, payload):
        name = FRAME_NAMES[ftype] if ftype < len(FRAME_NAMES) else f"type{ftype}"
        note = ""
        if ftype == DATA:
            st = self.stream(sid)
            st.body += self._unpad(flags, payload)
            st.ended = st.ended or bool(flags & END_STREAM)
            note = f"{len(payload)}B"
        elif ftype == HEADERS:
            frag = self._unpad(flags, payload)
            if flags & PRIORITY_FLAG:
                frag = frag[5:]
            self._pending_block = (sid, flags, bytearray(frag))
            if flags & END_HEADERS:
                note = self._header_block_done()
        elif ftype == CONTINUATION:
            if self._pending_block is not None:
                self._pending_block[2].extend(payload)
                if flags & END_HEADERS:
                    note = self._header_block_done()
        elif ftype == RST_STREAM:
            code = struct.unpack(">I", payload[:4])[0] if len(payload) >= 4 else -1
            self.stream(sid).reset = code
            note = err_name(code)
        elif ftype == SETTINGS:
            if flags & ACK:
                self.settings_acks += 1
                name = "SETTINGS+ACK"
            else:
                values = {}
                for i in range(0, len(payload) - len(payload) % 6, 6):
                    k, v = struct.unpack(">HI", payload[i:i + 6])
                    values[k] = v
                self.server_settings.append(values)
                if self.auto_ack:
                    self.send(settings_frame(ack=True))
        elif ftype == PING:
            if flags & ACK:
                self.ping_acks.append(payload)
                name = "PING+ACK"
            elif self.auto_ack:
                self.send(ping_frame(payload, ack=True))
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            debug = payload[8:].decode("utf-8", "replace")
            self.goaways.append((last & 0x7FFFFFFF, code, debug))
            note = f"last={last & 0x7FFFFFFF} {err_name(code)}" + (f" '{debug}'" if debug else "")
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF if len(payload) >= 4 else -1
            self.window_updates.append((sid, inc))
            note = str(inc)
        elif ftype == PUSH_PROMISE:
            raise Failure(f"PUSH_PROMISE although we sent ENABLE_PUSH 0 ({self.describe()})")
        self.log.append(f"{name}({sid}{', ' + note if note else ''})")

    def _header_block_done(self):
        sid, flags, data = self._pending_block
        self._pending_block = None
        try:
            fields = self.decoder.decode(bytes(data), raw=True)
        except hpack.HPACKError as e:
            raise Failure(f"stream {sid}: the server's header block does not decode: "
                          f"{type(e).__name__}: {e}") from None
        st = self.stream(sid)
        status = next((v for k, v in fields if k == b":status"), None)
        if st.status is None and status is not None and not 100 <= int(status) < 200:
            st.status = int(status)
        st.ended = st.ended or bool(flags & END_STREAM)
        return f":status {int(status)}" if status is not None else "trailers"

    # state summaries ---------------------------------------------------------------------------
    def describe(self, last=14):
        frames = self.log[-last:]
        more = f"... {len(self.log) - last} more, " if len(self.log) > last else ""
        return "received: " + (more + " ".join(frames) if frames else "nothing") + \
            (f"; {self.close_how}" if self.close_how and "EOF" not in frames
             and "RESET" not in frames else "")

    def error_goaways(self):
        return [g for g in self.goaways if g[1] != NO_ERROR]

    def complete(self, sid):
        st = self.streams.get(sid)
        return st is not None and (st.ended or st.reset is not None)


# ---------------------------------------------------------------------------------------------
# Assertions shared by the cases.

def expect_response(c, sid, status=200, timeout=IO_TIMEOUT):
    c.wait(lambda: c.complete(sid) or c.goaways, timeout)
    st = c.streams.get(sid)
    # RST_STREAM NO_ERROR after a complete response only asks us to stop sending (§8.1).
    check(st is not None and st.ended and st.reset in (None, NO_ERROR),
          f"stream {sid}: no complete response ({c.describe()})")
    check(st.status == status, f"stream {sid}: status {st.status}, expected {status}")
    return st


def expect_reset(c, sid, codes, timeout=IO_TIMEOUT, allow_error_response=True):
    """The stream ends in RST_STREAM with one of `codes`, possibly after a 4xx response (RFC 9113
    §8.1.1 lets a server answer a malformed request before resetting it), never after a 2xx."""
    c.wait(lambda: (sid in c.streams and c.streams[sid].reset is not None) or c.goaways, timeout)
    st = c.streams.get(sid)
    check(not c.error_goaways(),
          f"stream {sid}: connection error instead of a stream error ({c.describe()})")
    check(st is not None and st.reset is not None,
          f"stream {sid}: no RST_STREAM ({c.describe()})")
    check(st.reset in codes, f"stream {sid}: RST_STREAM {err_name(st.reset)}, expected " +
          " or ".join(err_name(x) for x in codes))
    if st.status is not None:
        check(allow_error_response and 400 <= st.status < 500,
              f"stream {sid}: answered {st.status} before RST_STREAM")
    return st


def expect_goaway(c, codes, timeout=IO_TIMEOUT):
    """A GOAWAY with one of `codes` (the first error GOAWAY counts), then the server closes."""
    c.wait(lambda: c.error_goaways() or c.closed, timeout)
    errs = c.error_goaways()
    check(errs, "no GOAWAY with " + "/".join(err_name(x) for x in codes) + f" ({c.describe()})")
    code = errs[0][1]
    check(code in codes, f"GOAWAY {err_name(code)}, expected " +
          " or ".join(err_name(x) for x in codes) + f" ({c.describe()})")
    check(c.wait(lambda: c.closed, timeout), f"connection still open {timeout:.0f}s after GOAWAY")
    return errs[0]


def expect_alive(c, tag=b"alive!!!"):
    """The connection still works: a PING is acknowledged and no GOAWAY came."""
    check(c.send(ping_frame(tag)), f"connection closed ({c.describe()})")
    check(c.wait(lambda: tag in c.ping_acks or c.goaways or c.closed),
          f"no PING ACK ({c.describe()})")
    check(not c.goaways, f"unexpected GOAWAY ({c.describe()})")
    check(tag in c.ping_acks, f"no PING ACK ({c.describe()})")


def get_ok(c, sid, env):
    """A plain GET / on `sid` of an open connection answers 200."""
    c.send(headers_frame(sid, block(request_fields(authority=env.authority))))
    return expect_response(c, sid)


def limit_hits(env):
    """blitzd's blitz_http2_limit_hits_total by limit, from its admin listener (None when the
    server under test is not a blitzd started here)."""
    if env.admin is None:
        return None
    with socket.create_connection(env.admin, timeout=IO_TIMEOUT) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        data = bytearray()
        while chunk := s.recv(65536):
            data += chunk
    text = data.decode("utf-8", "replace")
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^blitz_http2_limit_hits_total\{limit="([a-z_]+)"\} (\S+)$', text, re.M)}


def expect_counted(env, before, limit):
    """`limit` was counted in blitz_http2_limit_hits_total since `before` (limit_hits())."""
    if before is None:
        return ""
    check(limit in before, f'no blitz_http2_limit_hits_total{{limit="{limit}"}} in /metrics')
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        after = limit_hits(env)
        if after[limit] > before[limit] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    check(after[limit] > before[limit], f"limit {limit} hit but not counted (still {after[limit]:.0f})")
    return f"; counted as {limit}"


# ---------------------------------------------------------------------------------------------
# Normal exchanges through h2's client state machine.

def h2_exchange(sock, requests, timeout=IO_TIMEOUT):
    """Sends `requests` (a list of (headers, body or None)) concurrently on one connection and
    returns one dict per request: status, headers, body, reset, plus the ConnectionTerminated
    event if one came. Honours the server's flow-control windows while sending bodies."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.increment_flow_control_window(CLIENT_WINDOW - 65535)
    sock.sendall(conn.data_to_send())
    results, pending, order = {}, {}, []
    for headers, body in requests:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, headers, end_stream=not body)
        results[sid] = {"status": None, "headers": {}, "body": bytearray(), "reset": None,
                        "ended": False}
        order.append(sid)
        if body:
            pending[sid] = memoryview(body)
    terminated = None
    deadline = time.monotonic() + timeout
    while not all(r["ended"] or r["reset"] is not None for r in results.values()):
        for sid in list(pending):
            rest = pending[sid]
            try:
                window = conn.local_flow_control_window(sid)
            except h2.exceptions.StreamClosedError:
                del pending[sid]
                continue
            while rest and window > 0:
                n = min(len(rest), window, conn.max_outbound_frame_size)
                conn.send_data(sid, rest[:n].tobytes(), end_stream=(n == len(rest)))
                rest, window = rest[n:], window - n
            if rest:
                pending[sid] = rest
            else:
                del pending[sid]
        sock.sendall(conn.data_to_send())
        remaining = deadline - time.monotonic()
        check(remaining > 0, "no complete responses within %.0fs" % timeout)
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise Failure("no complete responses within %.0fs" % timeout) from None
        check(data, "connection closed before the responses were complete")
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            raise Failure(f"h2 rejected the server's frames: {type(e).__name__}: {e}") from None
        for ev in events:
            if isinstance(ev, h2.events.ResponseReceived):
                hdrs = {k.decode(): v.decode() for k, v in ev.headers}
                results[ev.stream_id]["status"] = int(hdrs[":status"])
                results[ev.stream_id]["headers"] = hdrs
            elif isinstance(ev, h2.events.DataReceived):
                results[ev.stream_id]["body"] += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                results[ev.stream_id]["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                results[ev.stream_id]["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                terminated = ev
        if terminated is not None:
            break
        sock.sendall(conn.data_to_send())
    return [results[s] for s in order], terminated


def plain_socket(addr):
    s = socket.create_connection(addr, timeout=IO_TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


# ---------------------------------------------------------------------------------------------
# The target: blitzd started here, or a server given with --connect.

class Target:
    def __init__(self):
        self.main = None       # (host, port): h2c, small flood thresholds in --blitzd mode
        self.default = None    # (host, port): h2c with default limits
        self.limited = None    # (host, port): max_requests_per_connection = BLITZ_MAX_REQUESTS
        self.tls = None        # (host, port, cafile): TLS with ALPN h2
        self.pid = None
        self.is_blitzd = False
        self.body = None
        self.echo_path = "/echo"
        self.authority = "localhost"
        self.max_requests = None
        self.reset_burst = 200
        self.control_burst = 1000
        self.admin = None      # (host, port): blitzd's admin listener, for /metrics
        self.stall = None      # (host, port): h2c, zero_window_timeout_ms = BLITZ_ZERO_WINDOW_MS
        self.proc = None
        self.stderr_lines = []

    def rss_kib(self):
        if self.pid is None:
            return None
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def alive(self):
        return self.proc is None or self.proc.poll() is None


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 origin for the proxy cases: answers with the request body it received."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _read_body(self):
        """The request body, or None when its chunked framing is broken."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                if self.rfile.readline(8) != b"\r\n":
                    return None
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _answer(self):
        body = self._read_body()
        if body is None:
            self.send_error(400, "broken chunked framing in the request body")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Method", self.command)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer


class EchoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many streams may be proxied at once

    def handle_error(self, request, client_address):
        pass  # a request the proxy abandoned (a reset stream) is expected; the cases judge


def start_echo(port=0):
    server = EchoServer(("127.0.0.1", port), EchoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_cert(workdir):
    """A self-signed P-256 certificate for "localhost", or None without the openssl tool."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost"],
                       capture_output=True, timeout=30, check=False)
    return (cert, key) if r.returncode == 0 else None


LISTENING = re.compile(r'listener "([^"]+)" listening on (https?)://(\[[^\]]+\]|[^:/\s]+):(\d+)')


def start_blitzd(exe, workdir, echo_port, target):
    flood = {"reset_burst": BLITZ_RESET_BURST, "reset_rate": BLITZ_RESET_RATE,
             "control_frame_burst": BLITZ_CONTROL_BURST,
             "control_frame_rate": BLITZ_CONTROL_RATE}
    listeners = [
        {"name": "h2", "address": "127.0.0.1:0", "http2": flood},
        {"name": "h2default", "address": "127.0.0.1:0"},
        {"name": "h2limited", "address": "127.0.0.1:0",
         "limits": {"max_requests_per_connection": BLITZ_MAX_REQUESTS}},
        {"name": "h2stall", "address": "127.0.0.1:0",
         "http2": {"zero_window_timeout_ms": BLITZ_ZERO_WINDOW_MS}},
    ]
    cert = make_cert(workdir)
    if cert is not None:
        listeners.append({"name": "h2tls", "address": "127.0.0.1:0",
                          "tls": {"certificates": [{"cert": cert[0], "key": cert[1]}]}})
    config = {
        "workers": 1,
        "log": {"level": "info"},
        "listeners": listeners,
        "admin": {"address": "127.0.0.1:0"},
        "upstreams": [{"name": "echo", "endpoints": [f"127.0.0.1:{echo_port}"]}],
        "routes": [
            {"name": "echo", "match": {"path_prefix": "/echo"}, "upstream": "echo"},
            {"name": "root", "match": {"path": "/"},
             "respond": {"status": 200, "body": BLITZ_BODY}},
        ],
    }
    backend = os.environ.get("BLITZ_TEST_BACKEND", "")
    if backend and backend != "auto":
        config["backend"] = backend
    path = os.path.join(workdir, "blitzd.json")
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    proc = subprocess.Popen([exe, "--config", path], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    target.proc, target.pid, target.is_blitzd = proc, proc.pid, True
    lines = target.stderr_lines
    found = {}
    ready = threading.Event()

    def pump():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            m = LISTENING.search(line)
            if m:
                host = m.group(3).strip("[]")
                found[m.group(1)] = (host, int(m.group(4)))
                if len(found) == len(listeners) + 1:  # and the admin listener
                    ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    ready.wait(15)
    if len(found) != len(listeners) + 1:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        raise RuntimeError("blitzd did not announce its listeners; stderr:\n" + "\n".join(lines))
    target.main, target.default = found["h2"], found["h2default"]
    target.limited = found["h2limited"]
    target.stall = found["h2stall"]
    target.admin = found["admin"]
    if cert is not None:
        target.tls = found["h2tls"] + (cert[0],)
    target.body = BLITZ_BODY.encode()
    target.max_requests = BLITZ_MAX_REQUESTS
    target.reset_burst = BLITZ_RESET_BURST
    target.control_burst = BLITZ_CONTROL_BURST


# ---------------------------------------------------------------------------------------------
# The cases. Each takes the Target and returns a detail string (or None) when it passes.

CASES = []


def case(fn):
    CASES.append((fn.__name__, fn))
    return fn


@case
def preface_settings(env):
    """The server's connection preface is a SETTINGS frame with blitzd's values."""
    c = Conn(env.main).start(ack=False)
    try:
        check(c.first_frame == SETTINGS, f"first frame is not SETTINGS ({c.describe()})")
        s = c.server_settings[0]
        shown = ", ".join(f"{k}={v}" for k, v in sorted(s.items()))
        check(s.get(S_ENABLE_PUSH, 0) == 0,
              f"ENABLE_PUSH {s.get(S_ENABLE_PUSH)} (RFC 9113 §6.5.2)")
        if env.is_blitzd:
            want = {S_MAX_CONCURRENT_STREAMS: 100, S_INITIAL_WINDOW_SIZE: 262144,
                    S_MAX_HEADER_LIST_SIZE: 16384}
            for k, v in want.items():
                check(s.get(k) == v, f"setting {k} = {s.get(k)}, expected {v} ({shown})")
            check(s.get(S_MAX_FRAME_SIZE, 16384) == 16384, f"MAX_FRAME_SIZE ({shown})")
            check(s.get(S_HEADER_TABLE_SIZE, 4096) == 4096, f"HEADER_TABLE_SIZE ({shown})")
        # Without our ACK the server may not rely on its settings yet, but must still answer.
        c.send(settings_frame(ack=True))
        check(c.wait(lambda: c.settings_acks >= 1),
              f"our SETTINGS not acknowledged ({c.describe()})")
        conn_window = sum(inc for sid, inc in c.window_updates if sid == 0) + 65535
        return f"{shown}; connection window {conn_window}"
    finally:
        c.close()


@case
def get_root(env):
    """GET / through h2's state machine: 200 with the configured body."""
    s = plain_socket(env.main)
    try:
        (r,), term = h2_exchange(s, [([(":method", "GET"), (":scheme", "http"),
                                        (":authority", env.authority), (":path", "/")], None)])
        check(term is None, f"GOAWAY {err_name(term.error_code) if term else ''}")
        check(r["status"] == 200, f"status {r['status']}")
        if env.body is not None:
            check(bytes(r["body"]) == env.body, f"body {bytes(r['body'])[:80]!r}")
        return f"{len(r['body'])} bytes"
    finally:
        s.close()


def _post_echo(with_length):
    def run(env):
        if env.echo_path is None:
            raise Skip("no echo route (--echo-path)")
        body = bytes((i * 7 + 3) & 0xFF for i in range(300 * 1024))
        headers = [(":method", "POST"), (":scheme", "http"), (":authority", env.authority),
                   (":path", env.echo_path), ("content-type", "application/octet-stream")]
        if with_length:
            headers.append(("content-length", str(len(body))))
        s = plain_socket(env.main)
        try:
            (r,), term = h2_exchange(s, [(headers, body)])
            check(term is None, f"GOAWAY {err_name(term.error_code) if term else ''}")
            check(r["reset"] is None, f"stream reset {err_name(r['reset'] or 0)}")
            check(r["status"] == 200, f"status {r['status']}" +
                  (": the echo origin got broken chunked framing" if r["status"] == 400 else ""))
            check(bytes(r["body"]) == body, f"echoed {len(r['body'])} bytes, sent {len(body)}")
            return f"{len(body)} bytes echoed"
        finally:
            s.close()
    run.__doc__ = """A 300 KB POST is proxied to the HTTP/1.1 echo origin and comes back whole: flow
    control both ways (more than the stream and the initial connection window)."""
    return run


# Without content-length the body goes upstream chunked; with it, as it is.
CASES.append(("post_echo", _post_echo(with_length=False)))
CASES.append(("post_echo_with_content_length", _post_echo(with_length=True)))


@case
def multiplexed_gets(env):
    """20 concurrent GETs on one connection all answer 200."""
    s = plain_socket(env.main)
    try:
        req = ([(":method", "GET"), (":scheme", "http"), (":authority", env.authority),
                (":path", "/")], None)
        rs, term = h2_exchange(s, [req] * 20)
        check(term is None, f"GOAWAY {err_name(term.error_code) if term else ''}")
        bad = [i for i, r in enumerate(rs) if r["status"] != 200 or r["reset"] is not None]
        check(not bad, f"requests {bad} failed: {[rs[i]['status'] for i in bad]}")
        if env.body is not None:
            check(all(bytes(r["body"]) == env.body for r in rs), "a body differs")
        return "20 streams"
    finally:
        s.close()


@case
def tls_alpn_h2(env):
    """TLS listener: ALPN selects h2 and a GET works over it."""
    if env.tls is None:
        raise Skip("no TLS listener (openssl tool missing, or --connect without --connect-tls)")
    host, port, cafile = env.tls
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    raw = plain_socket((host, port))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    try:
        check(s.selected_alpn_protocol() == "h2", f"ALPN chose {s.selected_alpn_protocol()!r}")
        (r,), term = h2_exchange(s, [([(":method", "GET"), (":scheme", "https"),
                                        (":authority", "localhost"), (":path", "/")], None)])
        check(term is None and r["status"] == 200, f"status {r['status']}")
        if env.body is not None:
            check(bytes(r["body"]) == env.body, f"body {bytes(r['body'])[:80]!r}")
        return s.version()
    finally:
        s.close()


# --- stream-level malformed requests (RFC 9113 §8.1.1, §8.2, §8.3) ---------------------------

def _malformed(fields, data=None):
    """Stream 3 carries the malformed request between two good GETs (streams 1 and 5), all in one
    write: stream 3 must be reset with PROTOCOL_ERROR, 1 and 5 answered, the connection kept."""
    def run(env):
        c = Conn(env.main).start()
        try:
            good = block(request_fields(authority=env.authority))
            bad = headers_frame(3, block(fields), end_stream=data is None)
            if data is not None:
                bad += b"".join(data_frame(3, d, end_stream=(i == len(data) - 1))
                                for i, d in enumerate(data))
            c.send(headers_frame(1, good) + bad + headers_frame(5, good))
            expect_reset(c, 3, (PROTOCOL_ERROR,))
            expect_response(c, 1)
            expect_response(c, 5)
            expect_alive(c)
        finally:
            c.close()
    return run


def _req(method="GET", path="/", extra=()):
    return request_fields(method=method, path=path, extra=extra)


MALFORMED = {
    "uppercase_field_name": _req(extra=[("X-Upper", "1")]),
    "cr_in_value": _req(extra=[("x-a", "a\rb")]),
    "lf_in_value": _req(extra=[("x-a", "a\nb")]),
    "nul_in_value": _req(extra=[("x-a", "a\0b")]),
    "connection_header": _req(extra=[("connection", "close")]),
    "keep_alive_header": _req(extra=[("keep-alive", "timeout=5")]),
    "proxy_connection_header": _req(extra=[("proxy-connection", "keep-alive")]),
    "transfer_encoding_header": _req(extra=[("transfer-encoding", "chunked")]),
    "upgrade_header": _req(extra=[("upgrade", "websocket")]),
    "te_not_trailers": _req(extra=[("te", "gzip")]),
    "missing_method": [f for f in _req() if f[0] != ":method"],
    "missing_scheme": [f for f in _req() if f[0] != ":scheme"],
    "missing_path": [f for f in _req() if f[0] != ":path"],
    "empty_path": _req(path=""),
    "pseudo_after_regular": [(":method", "GET"), (":scheme", "http"), ("x-a", "1"),
                             (":path", "/"), (":authority", "localhost")],
    "duplicate_method": [(":method", "GET"), (":method", "GET"), (":scheme", "http"),
                         (":authority", "localhost"), (":path", "/")],
    "duplicate_path": [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"),
                       (":path", "/"), (":path", "/x")],
    "unknown_pseudo": _req()[:4] + [(":foo", "bar")],
    "status_in_request": _req()[:4] + [(":status", "200")],
}
for _name, _fields in MALFORMED.items():
    _fn = _malformed(_fields)
    _fn.__doc__ = f"malformed request ({_name}) → RST_STREAM PROTOCOL_ERROR, others unaffected"
    CASES.append(("malformed_" + _name, _fn))

CASES.append(("malformed_content_length_above_data",
              _malformed(_req("POST", extra=[("content-length", "10")]), data=[b"abc"])))
CASES.append(("malformed_content_length_below_data",
              _malformed(_req("POST", extra=[("content-length", "2")]), data=[b"abc", b"def"])))


@case
def content_length_mismatch_proxied(env):
    """H2.CL smuggling (§8.1.1): bodies shorter and longer than their content-length on the proxied
    route are reset with PROTOCOL_ERROR, and no upstream connection is left desynchronised: the
    POSTs after them are echoed exactly."""
    if env.echo_path is None:
        raise Skip("no echo route (--echo-path)")
    c = Conn(env.main).start()
    try:
        short = _req("POST", env.echo_path, extra=[("content-length", "10")])
        long_ = _req("POST", env.echo_path, extra=[("content-length", "2")])
        c.send(headers_frame(1, block(short), end_stream=False) + data_frame(1, b"abc", True) +
               headers_frame(3, block(long_), end_stream=False) + data_frame(3, b"abcdef", True))
        expect_reset(c, 1, (PROTOCOL_ERROR,))
        expect_reset(c, 3, (PROTOCOL_ERROR,))
        for sid in (5, 7, 9, 11):
            body = f"request on stream {sid}".encode()
            fields = _req("POST", env.echo_path, extra=[("content-length", str(len(body)))])
            c.send(headers_frame(sid, block(fields), end_stream=False) +
                   data_frame(sid, body, end_stream=True))
            st = expect_response(c, sid)
            check(bytes(st.body) == body, f"stream {sid} echoed {bytes(st.body)[:60]!r}")
        expect_alive(c)
    finally:
        c.close()


@case
def oversized_request_trailers(env):
    """Request trailers count against the head limits like the head itself: a proxied request
    whose trailer block is larger than the MAX_HEADER_LIST_SIZE the server announced is answered
    431 (its upstream answer had not begun) or reset, never forwarded, and the connection lives."""
    if env.echo_path is None:
        raise Skip("no echo route (--echo-path)")
    before = limit_hits(env)
    c = Conn(env.main).start()
    try:
        limit = c.server_settings[0].get(S_MAX_HEADER_LIST_SIZE, 16384)
        fields = [(f"x-t{i}", "v" * 1000) for i in range(limit // 1000 + 2)]
        trailer = block(fields)
        head = block(_req("POST", env.echo_path))
        c.send(headers_frame(1, head, end_stream=False) + data_frame(1, b"abc") +
               headers_frame(1, trailer[:8000], end_stream=True, end_headers=False) +
               continuation_frame(1, trailer[8000:16000]) +
               continuation_frame(1, trailer[16000:], end_headers=True))
        c.wait(lambda: c.complete(1) or (1 in c.streams and c.streams[1].reset is not None) or c.goaways)
        st = c.streams.get(1)
        check(st is not None and (st.status == 431 or st.reset is not None),
              f"stream 1: neither 431 nor RST_STREAM ({c.describe()})")
        check(st.status in (None, 431), f"stream 1 answered {st.status}")
        expect_alive(c)
        counted = expect_counted(env, before, "request_head")
        return f"status {st.status}, reset {err_name(st.reset) if st.reset is not None else 'none'}{counted}"
    finally:
        c.close()


# --- connection errors (RFC 9113 §5.4.1) --------------------------------------------------------

@case
def bad_preface(env):
    """A corrupt connection preface: the connection is closed (GOAWAY PROTOCOL_ERROR optional,
    §3.4), and nothing is served."""
    s = plain_socket(env.main)
    try:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings_frame())
        got = bytearray()
        deadline = time.monotonic() + IO_TIMEOUT
        closed = False
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
        check(closed, f"connection still open {IO_TIMEOUT:.0f}s after a bad preface "
                      f"(received {bytes(got[:60])!r})")
        if got.startswith(b"HTTP/1."):
            status = int(got[9:12])
            check(400 <= status < 600, f"answered HTTP/1.x {status}")
            return f"closed after HTTP/1.x {status}"
        # HTTP/2 frames: the server's own preface (SETTINGS) may come first, since a server
        # sends it without waiting (§3.4); a GOAWAY must say PROTOCOL_ERROR; nothing else.
        kinds, pos = [], 0
        while pos + 9 <= len(got):
            n = int.from_bytes(got[pos:pos + 3], "big")
            ftype = got[pos + 3]
            if ftype == GOAWAY and pos + 17 <= len(got):
                code = struct.unpack(">I", got[pos + 13:pos + 17])[0]
                check(code == PROTOCOL_ERROR, f"GOAWAY {err_name(code)}, expected PROTOCOL_ERROR")
            check(ftype in (SETTINGS, GOAWAY, WINDOW_UPDATE),
                  f"received a {FRAME_NAMES[ftype] if ftype < 10 else ftype} frame")
            kinds.append(FRAME_NAMES[ftype])
            pos += 9 + n
        return "closed" + (f" after {' '.join(kinds)}" if kinds else "")
    finally:
        s.close()


def _conn_error(frames_after_handshake, codes, handshake=True):
    def run(env):
        c = Conn(env.main)
        try:
            if handshake:
                c.start()
            else:
                c.send(PREFACE)
            c.send(frames_after_handshake)
            code = expect_goaway(c, codes)[1]
            return err_name(code)
        finally:
            c.close()
    return run


CASES += [
    ("first_frame_not_settings", _conn_error(ping_frame(), (PROTOCOL_ERROR,), handshake=False)),
    ("data_on_stream_0", _conn_error(data_frame(0, b"x"), (PROTOCOL_ERROR,))),
    ("headers_on_stream_0", _conn_error(headers_frame(0, block(_req())), (PROTOCOL_ERROR,))),
    ("rst_stream_on_stream_0", _conn_error(rst_frame(0, CANCEL), (PROTOCOL_ERROR,))),
    ("rst_stream_on_idle_stream", _conn_error(rst_frame(7, CANCEL), (PROTOCOL_ERROR,))),
    ("settings_initial_window_too_large",
     _conn_error(settings_frame([(S_INITIAL_WINDOW_SIZE, 1 << 31)]), (FLOW_CONTROL_ERROR,))),
    ("settings_max_frame_size_too_small",
     _conn_error(settings_frame([(S_MAX_FRAME_SIZE, 16383)]), (PROTOCOL_ERROR,))),
    ("settings_max_frame_size_too_large",
     _conn_error(settings_frame([(S_MAX_FRAME_SIZE, 1 << 24)]), (PROTOCOL_ERROR,))),
    ("settings_enable_push_invalid",
     _conn_error(settings_frame([(S_ENABLE_PUSH, 2)]), (PROTOCOL_ERROR,))),
    ("settings_bad_length", _conn_error(frame(SETTINGS, 0, 0, b"\0\x04\0\0"), (FRAME_SIZE_ERROR,))),
    ("ping_bad_length", _conn_error(frame(PING, 0, 0, b"1234567"), (FRAME_SIZE_ERROR,))),
    ("even_stream_id", _conn_error(headers_frame(2, block(_req())), (PROTOCOL_ERROR,))),
    ("connection_window_overflow",
     _conn_error(window_update_frame(0, (1 << 31) - 1), (FLOW_CONTROL_ERROR,))),
    # Stream 1 ends with the first HEADERS (half-closed remote); the second HEADERS, in the same
    # write, breaks §5.1. The request is proxied, so its answer cannot have closed the stream yet
    # (a small fixed response is answered whole at once).
    ("headers_on_half_closed_stream",
     lambda env: _conn_error(headers_frame(1, block(_req(path=env.echo_path or "/"))) +
                             headers_frame(1, block(_req(path=env.echo_path or "/"))),
                             (STREAM_CLOSED,))(env)),
]


@case
def frame_larger_than_max_frame_size(env):
    """A DATA frame one byte over the server's SETTINGS_MAX_FRAME_SIZE on an open stream →
    GOAWAY FRAME_SIZE_ERROR (§4.2)."""
    c = Conn(env.main).start()
    try:
        limit = c.server_settings[0].get(S_MAX_FRAME_SIZE, 16384)
        if limit > 1 << 20:
            raise Skip(f"MAX_FRAME_SIZE is {limit}")
        c.send(headers_frame(1, block(_req("POST", env.echo_path or "/")), end_stream=False) +
               data_frame(1, b"x" * (limit + 1)))
        expect_goaway(c, (FRAME_SIZE_ERROR,))
        return f"{limit + 1}-byte DATA"
    finally:
        c.close()


@case
def window_update_zero_on_stream(env):
    """WINDOW_UPDATE with increment 0 on an open stream: a stream error PROTOCOL_ERROR (§6.9),
    which §5.4.1 lets a server escalate to GOAWAY PROTOCOL_ERROR (nghttp2 1.52 does)."""
    c = Conn(env.main).start()
    try:
        c.send(headers_frame(1, block(_req("POST")), end_stream=False) + window_update_frame(1, 0))
        c.wait(lambda: c.complete(1) and c.streams[1].reset is not None or c.goaways or c.closed)
        if c.error_goaways():
            code = c.error_goaways()[0][1]
            check(code == PROTOCOL_ERROR, f"GOAWAY {err_name(code)}")
            return "GOAWAY PROTOCOL_ERROR"
        expect_reset(c, 1, (PROTOCOL_ERROR,))
        get_ok(c, 3, env)
        return "RST_STREAM PROTOCOL_ERROR"
    finally:
        c.close()


@case
def decreasing_stream_id(env):
    """A new stream id lower than one already used (§5.1.1) → GOAWAY PROTOCOL_ERROR, or the
    HEADERS is ignored (nghttp2 cannot always tell it from a closed stream); never served."""
    c = Conn(env.main).start()
    try:
        c.send(headers_frame(5, block(_req())))
        expect_response(c, 5)
        c.send(headers_frame(3, block(_req())))
        c.wait(lambda: c.goaways or 3 in c.streams, 1.0)
        check(3 not in c.streams or c.streams[3].status is None,
              f"stream 3 served after stream 5 ({c.describe()})")
        if c.goaways:
            check(c.goaways[0][1] in (PROTOCOL_ERROR, STREAM_CLOSED), c.describe())
            return f"GOAWAY {err_name(c.goaways[0][1])}"
        return "ignored"
    finally:
        c.close()


# --- concurrency and graceful GOAWAY ------------------------------------------------------------

def _open_to_the_limit(c, limit):
    """`limit` GETs whose responses cannot finish (our stream windows are 0, so no DATA may be
    sent: the streams stay open whatever the server does), then one more GET; returns the open
    stream ids and the extra one."""
    get = block(_req())
    sids = [1 + 2 * i for i in range(limit)]
    extra = 1 + 2 * limit
    c.send(b"".join(headers_frame(s, get) for s in sids) + headers_frame(extra, get))
    return sids, extra


def _finish_open_streams(c, sids, env, next_sid):
    c.send(settings_frame([(S_INITIAL_WINDOW_SIZE, CLIENT_WINDOW)]))  # opens every stream window
    check(c.wait(lambda: all(c.complete(s) for s in sids)),
          f"not every open stream completed ({c.describe()})")
    bad = [s for s in sids if c.streams[s].status != 200 or not c.streams[s].ended]
    check(not bad, f"streams {bad[:5]}... got no complete response")
    get_ok(c, next_sid, env)


@case
def max_concurrent_streams(env):
    """With as many streams open as the acknowledged SETTINGS_MAX_CONCURRENT_STREAMS allows, one
    more is a stream error PROTOCOL_ERROR or REFUSED_STREAM (§5.1.2; REFUSED_STREAM tells the
    client it may retry), after which the open streams complete; or, since §5.4.1 lets an
    endpoint treat a stream error as a connection error, GOAWAY PROTOCOL_ERROR that excludes the
    extra stream (what nghttp2 1.52 does for a client that has acknowledged the setting)."""
    c = Conn(env.main).start(settings=[(S_ENABLE_PUSH, 0), (S_INITIAL_WINDOW_SIZE, 0)])
    try:
        limit = c.server_settings[0].get(S_MAX_CONCURRENT_STREAMS)
        if limit is None or limit > 1000:
            raise Skip(f"MAX_CONCURRENT_STREAMS is {limit}")
        check(c.wait(lambda: c.settings_acks >= 1), "our SETTINGS not acknowledged")
        before = limit_hits(env)
        sids, extra = _open_to_the_limit(c, limit)
        c.wait(lambda: c.complete(extra) or c.goaways or c.closed)
        st = c.streams.get(extra)
        check(st is None or st.status is None, f"stream {extra} beyond the limit was served")
        if c.error_goaways():
            last, code, debug = c.error_goaways()[0]
            check(code == PROTOCOL_ERROR, f"GOAWAY {err_name(code)} ({c.describe()})")
            check(last < extra, f"GOAWAY last stream {last} includes the refused stream {extra}")
            return f"limit {limit}; GOAWAY PROTOCOL_ERROR last={last} (connection error)"
        expect_reset(c, extra, (REFUSED_STREAM, PROTOCOL_ERROR), allow_error_response=False)
        counted = expect_counted(env, before, "concurrent_streams")
        _finish_open_streams(c, sids, env, extra + 2)
        return f"limit {limit}; stream {extra} {err_name(c.streams[extra].reset)}{counted}"
    finally:
        c.close()


@case
def max_concurrent_streams_before_ack(env):
    """Streams opened before the client acknowledged SETTINGS: the one beyond the advertised
    limit is refused with RST_STREAM REFUSED_STREAM (§5.1.2, §8.7: safe to retry); the open ones
    complete and the connection stays."""
    c = Conn(env.main)
    try:
        c.auto_ack = False
        c.send(PREFACE + settings_frame([(S_ENABLE_PUSH, 0), (S_INITIAL_WINDOW_SIZE, 0)]) +
               window_update_frame(0, CLIENT_WINDOW - 65535))
        check(c.wait(lambda: c.server_settings), f"no SETTINGS ({c.describe()})")
        limit = c.server_settings[0].get(S_MAX_CONCURRENT_STREAMS)
        if limit is None or limit > 1000:
            raise Skip(f"MAX_CONCURRENT_STREAMS is {limit}")
        sids, extra = _open_to_the_limit(c, limit)
        expect_reset(c, extra, (REFUSED_STREAM,), allow_error_response=False)
        c.auto_ack = True
        c.send(settings_frame(ack=True))
        _finish_open_streams(c, sids, env, extra + 2)
        return f"limit {limit}"
    finally:
        c.close()


@case
def graceful_goaway_sequential(env):
    """After max_requests_per_connection requests: GOAWAY NO_ERROR naming the last stream, the
    last response still delivered, then the connection closes."""
    if env.limited is None or env.max_requests is None:
        raise Skip("needs a listener with max_requests_per_connection (--connect-limited)")
    c = Conn(env.limited).start()
    try:
        n = env.max_requests
        sids = [1 + 2 * i for i in range(n)]
        for s in sids:
            check(not c.goaways or c.goaways[-1][0] >= s,
                  f"GOAWAY excluding stream {s} before request {s} ({c.describe()})")
            c.send(headers_frame(s, block(_req())))
            expect_response(c, s)
        check(c.wait(lambda: c.goaways), f"no GOAWAY after {n} requests ({c.describe()})")
        check(all(g[1] == NO_ERROR for g in c.goaways), f"GOAWAY not NO_ERROR ({c.describe()})")
        check(c.goaways[-1][0] == sids[-1],
              f"last stream id {c.goaways[-1][0]}, expected {sids[-1]}")
        check(c.wait(lambda: c.closed), f"connection still open after GOAWAY ({c.describe()})")
        return f"GOAWAY last={c.goaways[-1][0]} after {n} requests"
    finally:
        c.close()


@case
def graceful_goaway_batched(env):
    """max_requests_per_connection + 2 requests in one write: GOAWAY NO_ERROR with the last
    admitted stream, every stream up to it answered, the later ones not served, then close."""
    if env.limited is None or env.max_requests is None:
        raise Skip("needs a listener with max_requests_per_connection (--connect-limited)")
    c = Conn(env.limited).start()
    try:
        n = env.max_requests
        sids = [1 + 2 * i for i in range(n + 2)]
        c.send(b"".join(headers_frame(s, block(_req())) for s in sids))
        check(c.wait(lambda: c.closed), f"connection not closed ({c.describe()})")
        check(c.goaways, f"no GOAWAY ({c.describe()})")
        check(all(g[1] == NO_ERROR for g in c.goaways), f"GOAWAY not NO_ERROR ({c.describe()})")
        last = c.goaways[-1][0]
        check(last == sids[n - 1], f"last stream id {last}, expected {sids[n - 1]}")
        for s in sids:
            st = c.streams.get(s)
            if s <= last:
                check(st is not None and st.status == 200 and st.ended,
                      f"stream {s} <= last {last} not answered ({c.describe()})")
            else:
                check(st is None or st.status is None,
                      f"stream {s} > last {last} was served")
        return f"GOAWAY last={last}"
    finally:
        c.close()


# --- floods: resets -----------------------------------------------------------------------------

def _rapid_reset(env, pairs, addr=None):
    # Proxied requests: the server has work to cancel. (A small fixed response is answered whole
    # before the RST_STREAM is read, and a reset of an answered stream wastes nothing.)
    c = Conn(addr or env.main).start()
    get = block(_req(path=env.echo_path or "/"))
    c.send(b"".join(headers_frame(1 + 2 * i, get) + rst_frame(1 + 2 * i, CANCEL)
                    for i in range(pairs)))
    return c, 1 + 2 * pairs


@case
def rapid_reset_flood(env):
    """CVE-2023-44487: HEADERS + RST_STREAM pairs far beyond reset_burst → GOAWAY
    ENHANCE_YOUR_CALM, then close."""
    before = limit_hits(env)
    c, _ = _rapid_reset(env, 3 * env.reset_burst + 10)
    try:
        expect_goaway(c, (ENHANCE_YOUR_CALM,))
        counted = expect_counted(env, before, "resets")
        return f"{3 * env.reset_burst + 10} pairs; GOAWAY last={c.error_goaways()[0][0]}{counted}"
    finally:
        c.close()


@case
def rapid_reset_below_threshold(env):
    """Half of reset_burst cancelled streams is ordinary client behaviour: the connection stays."""
    c, next_sid = _rapid_reset(env, env.reset_burst // 2)
    try:
        get_ok(c, next_sid, env)
        expect_alive(c)
        return f"{env.reset_burst // 2} resets"
    finally:
        c.close()


# blitzd's defaults (Http2Options): reset_burst 200 at 33/s, control_frame_burst 1000 at 100/s.
DEFAULT_RESET_BURST = 200
DEFAULT_CONTROL_BURST = 1000


def _needs_default_listener(env):
    if env.default == env.main:
        raise Skip("only with --blitzd (a listener with the default limits)")


@case
def rapid_reset_flood_default_limits(env):
    """With the default limits, 3 × 200 + 10 HEADERS + RST_STREAM pairs → GOAWAY
    ENHANCE_YOUR_CALM (blitzd's own limit, not nghttp2's, which would say INTERNAL_ERROR)."""
    _needs_default_listener(env)
    c, _ = _rapid_reset(env, 3 * DEFAULT_RESET_BURST + 10, env.default)
    try:
        expect_goaway(c, (ENHANCE_YOUR_CALM,))
        return f"GOAWAY last={c.error_goaways()[0][0]}"
    finally:
        c.close()


@case
def rapid_reset_below_default_limits(env):
    """With the default limits, 150 cancelled streams (a browser leaving a busy page) are fine."""
    _needs_default_listener(env)
    c, next_sid = _rapid_reset(env, 150, env.default)
    try:
        get_ok(c, next_sid, env)
        expect_alive(c)
        return "150 resets"
    finally:
        c.close()


@case
def ping_flood_default_limits(env):
    """With the default limits, 3 × 1000 + 10 PINGs → GOAWAY ENHANCE_YOUR_CALM."""
    _needs_default_listener(env)
    c = Conn(env.default).start()
    try:
        count = 3 * DEFAULT_CONTROL_BURST + 10
        c.send(b"".join(ping_frame(struct.pack(">Q", i)) for i in range(count)))
        expect_goaway(c, (ENHANCE_YOUR_CALM,))
        return f"after {len(c.ping_acks)} PING ACKs"
    finally:
        c.close()


def _made_you_reset(env, count):
    """Streams the server itself must reset (CVE-2025-8671), in turn: a body shorter than its
    content-length, a DATA frame beyond it (§8.1.1), and an uppercase field name (§8.2.1).
    (WINDOW_UPDATE 0 on a stream is no use here: nghttp2 makes it a connection error.)"""
    c = Conn(env.main).start()
    out = []
    path = env.echo_path or "/"  # proxied: the server has upstream work to cancel
    for i in range(count):
        sid = 1 + 2 * i
        if i % 3 == 0:
            fields = _req("POST", path, extra=[("content-length", "5")])
            out.append(headers_frame(sid, block(fields), end_stream=False) +
                       data_frame(sid, b"ab", end_stream=True))
        elif i % 3 == 1:
            fields = _req("POST", path, extra=[("content-length", "1")])
            out.append(headers_frame(sid, block(fields), end_stream=False) +
                       data_frame(sid, b"abc"))
        else:
            out.append(headers_frame(sid, block(_req(extra=[("X-Upper", "1")]))))
    c.send(b"".join(out))
    return c, [1 + 2 * i for i in range(count)]


@case
def made_you_reset_flood(env):
    """Server-side resets provoked far beyond reset_burst → GOAWAY ENHANCE_YOUR_CALM, close."""
    c, _ = _made_you_reset(env, 3 * env.reset_burst + 10)
    try:
        expect_goaway(c, (ENHANCE_YOUR_CALM,))
        return f"{3 * env.reset_burst + 10} provoked resets"
    finally:
        c.close()


@case
def made_you_reset_below_threshold(env):
    """A few provoked resets: each stream is reset with PROTOCOL_ERROR, the connection stays."""
    count = env.reset_burst // 2
    c, sids = _made_you_reset(env, count)
    try:
        for s in sids:
            expect_reset(c, s, (PROTOCOL_ERROR,))
        get_ok(c, sids[-1] + 2, env)
        expect_alive(c)
        return f"{count} resets"
    finally:
        c.close()


# --- floods: CONTINUATION, control and empty frames -------------------------------------------

@case
def continuation_flood(env):
    """CVE-2024-27316 family: one HEADERS then CONTINUATION frames without END_HEADERS, far more
    than max_continuation_frames → GOAWAY ENHANCE_YOUR_CALM or the connection is closed."""
    before = limit_hits(env)
    c = Conn(env.main).start()
    try:
        data = headers_frame(1, block(_req()), end_headers=False)
        data += b"".join(continuation_frame(1, literal("x-c", "v")) for _ in range(200))
        c.send(data)
        c.wait(lambda: c.closed or c.goaways, IO_TIMEOUT)
        check(c.closed or c.goaways, f"connection neither closed nor GOAWAY ({c.describe()})")
        if c.error_goaways():
            check(c.error_goaways()[0][1] == ENHANCE_YOUR_CALM,
                  f"GOAWAY {err_name(c.error_goaways()[0][1])} ({c.describe()})")
            check(c.wait(lambda: c.closed), "connection still open after GOAWAY")
        check(1 not in c.streams or c.streams[1].status is None, "the request was served")
        counted = expect_counted(env, before, "continuation")
        return ("GOAWAY ENHANCE_YOUR_CALM" if c.error_goaways() else "closed") + counted
    finally:
        c.close()


@case
def continuation_below_threshold(env):
    """A header block split over HEADERS + 8 CONTINUATION frames (max_continuation_frames) is
    served normally."""
    c = Conn(env.main).start()
    try:
        fields = block(_req(extra=[("x-c", "v" * 50)] * 8))
        parts = [fields[i:i + 60] for i in range(0, len(fields), 60)]
        check(len(parts) == 9, f"split into {len(parts)} parts")
        data = headers_frame(1, parts[0], end_headers=False)
        data += b"".join(continuation_frame(1, p, end_headers=(i == len(parts) - 2))
                         for i, p in enumerate(parts[1:]))
        c.send(data)
        expect_response(c, 1)
        expect_alive(c)
        return "8 CONTINUATION frames"
    finally:
        c.close()


def _control_flood(env, make, count):
    c = Conn(env.main).start()
    c.send(b"".join(make(i) for i in range(count)))
    return c


def _flood_case(name, make, what, ack_counter=None):
    def flood(env):
        count = 3 * env.control_burst + 10
        before = limit_hits(env)
        c = _control_flood(env, make, count)
        try:
            expect_goaway(c, (ENHANCE_YOUR_CALM,))
            return f"{count} {what}" + expect_counted(env, before, "control_frames")
        finally:
            c.close()

    def below(env):
        count = env.control_burst // 2 - 5
        c = _control_flood(env, make, count)
        try:
            if ack_counter is not None:
                check(c.wait(lambda: ack_counter(c) >= count),
                      f"{ack_counter(c)} of {count} acknowledged ({c.describe()})")
            get_ok(c, 3, env)  # PRIORITY frames name stream 1
            expect_alive(c)
            return f"{count} {what}"
        finally:
            c.close()

    flood.__doc__ = f"{what} far beyond control_frame_burst → GOAWAY ENHANCE_YOUR_CALM, close"
    below.__doc__ = f"a few {what} keep the connection"
    CASES.append((name + "_flood", flood))
    CASES.append((name + "_below_threshold", below))


_flood_case("ping", lambda i: ping_frame(struct.pack(">Q", i + 1)), "PINGs",
            lambda c: len(c.ping_acks))
_flood_case("settings", lambda i: settings_frame(), "empty SETTINGS",
            lambda c: c.settings_acks - 1)  # the first ACK answers the handshake's SETTINGS
_flood_case("priority", lambda i: frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)),
            "PRIORITY frames")
_flood_case("unknown_frame", lambda i: frame(0xFA, 0, 0, b""), "frames of an unknown type")


@case
def empty_data_flood(env):
    """CVE-2019-9518: empty DATA frames on an open stream far beyond control_frame_burst →
    GOAWAY ENHANCE_YOUR_CALM, close."""
    c = Conn(env.main).start()
    try:
        count = 3 * env.control_burst + 10
        c.send(headers_frame(1, block(_req("POST", env.echo_path or "/")), end_stream=False) +
               b"".join(data_frame(1) for _ in range(count)))
        expect_goaway(c, (ENHANCE_YOUR_CALM,))
        return f"{count} empty DATA frames"
    finally:
        c.close()


@case
def empty_data_below_threshold(env):
    """A few empty DATA frames, then the end of the body: answered, connection kept."""
    c = Conn(env.main).start()
    try:
        count = env.control_burst // 2 - 5
        c.send(headers_frame(1, block(_req("POST", env.echo_path or "/")), end_stream=False) +
               b"".join(data_frame(1) for _ in range(count)) + data_frame(1, b"x", True))
        expect_response(c, 1)
        expect_alive(c)
        return f"{count} empty DATA frames"
    finally:
        c.close()


@case
def zero_length_header_flood(env):
    """CVE-2019-9516: streams whose header blocks are empty, or full of zero-length names and
    values added to the HPACK table → each is refused, and the flood ends in GOAWAY
    ENHANCE_YOUR_CALM; never a crash."""
    c = Conn(env.main).start()
    try:
        empties = b"".join(literal("", "", index=True) for _ in range(40))
        count = min(3 * env.reset_burst + 10, 90)  # below MAX_CONCURRENT_STREAMS (100)
        out = []
        for i in range(count):
            sid = 1 + 2 * i
            out.append(headers_frame(sid, b"" if i % 2 else block(_req()) + empties))
        c.send(b"".join(out))
        expect_goaway(c, (ENHANCE_YOUR_CALM,))
        served = [s for s, st in c.streams.items() if st.status is not None and st.status < 400]
        check(not served, f"streams {served[:5]} were served")
        return f"{count} streams"
    finally:
        c.close()


# --- header size limits and HPACK bombs -------------------------------------------------------

def _bomb_block(refs):
    """Pseudo-header fields, then one 4000-byte field added to the dynamic table and referenced
    `refs` times by index (1 byte each): ~4 KB on the wire, ~4 MB decoded at refs = 1000."""
    big = literal("x-bomb", "a" * 4000, index=True)
    return block(_req()) + big + bytes([0x80 | 62]) * refs


@case
def hpack_bomb(env):
    """A header list that decodes far beyond MAX_HEADER_LIST_SIZE: the stream is answered 431 or
    reset (or the connection gets GOAWAY); a fresh connection is still served."""
    before = limit_hits(env)
    c = Conn(env.main).start()
    try:
        c.send(headers_frame(1, _bomb_block(1000)) + headers_frame(3, block(_req())))
        c.wait(lambda: c.complete(1) or c.error_goaways() or c.closed)
        st = c.streams.get(1)
        outcome = None
        if c.error_goaways():
            outcome = f"GOAWAY {err_name(c.error_goaways()[0][1])}"
        elif st is not None and st.reset is not None and st.status is None:
            outcome = f"RST_STREAM {err_name(st.reset)}"
        elif st is not None and st.status == 431:
            outcome = "431"
        check(outcome, f"stream 1 neither 431 nor reset ({c.describe()})")
        outcome += expect_counted(env, before, "request_head")
        if not c.error_goaways():
            expect_response(c, 3)  # the rest of the connection is unaffected
            expect_alive(c)
    finally:
        c.close()
    c2 = Conn(env.main).start()
    try:
        get_ok(c2, 1, env)
    finally:
        c2.close()
    return outcome


@case
def oversized_header_list(env):
    """Plain literal fields adding up to more than MAX_HEADER_LIST_SIZE (over HEADERS +
    CONTINUATION) → 431 or RST_STREAM; the connection stays usable or gets GOAWAY."""
    before = limit_hits(env)
    c = Conn(env.main).start()
    try:
        fields = block(_req(extra=[(f"x-f{i}", "v" * 1000) for i in range(24)]))
        half = len(fields) // 2
        c.send(headers_frame(1, fields[:half], end_headers=False) +
               continuation_frame(1, fields[half:], end_headers=True) +
               headers_frame(3, block(_req())))
        c.wait(lambda: c.complete(1) or c.error_goaways() or c.closed)
        st = c.streams.get(1)
        if c.error_goaways():
            return f"GOAWAY {err_name(c.error_goaways()[0][1])}"
        check(st is not None and (st.status == 431 or (st.reset is not None and st.status is None)),
              f"stream 1: status {st.status if st else None} ({c.describe()})")
        expect_response(c, 3)
        counted = expect_counted(env, before, "request_head")
        return ("431" if st.status == 431 else f"RST_STREAM {err_name(st.reset)}") + counted
    finally:
        c.close()


@case
def zero_window_stall(env):
    """A client that keeps its stream window at 0 while a response waits: the stream is reset
    (CANCEL) once zero_window_timeout_ms passed, and the connection goes on."""
    if env.stall is None:
        raise Skip("no listener with a short zero_window_timeout_ms (blitzd only)")
    before = limit_hits(env)
    c = Conn(env.stall).start(settings=[(S_ENABLE_PUSH, 0), (S_INITIAL_WINDOW_SIZE, 0)])
    try:
        check(c.wait(lambda: c.settings_acks >= 1), "our SETTINGS not acknowledged")
        started = time.monotonic()
        c.send(headers_frame(1, block(_req())))
        c.wait(lambda: (1 in c.streams and c.streams[1].reset is not None) or c.goaways or c.closed)
        waited = time.monotonic() - started
        st = c.streams.get(1)
        check(st is not None and st.reset == CANCEL and not c.goaways,
              f"stream 1: no RST_STREAM CANCEL ({c.describe()})")
        check(st.status == 200 and not st.body, f"stream 1: status {st.status}, {len(st.body)} body bytes")
        check(waited >= BLITZ_ZERO_WINDOW_MS / 1000 * 0.9, f"reset after {waited * 1000:.0f} ms")
        counted = expect_counted(env, before, "zero_window")
        c.send(settings_frame([(S_INITIAL_WINDOW_SIZE, CLIENT_WINDOW)]))
        get_ok(c, 3, env)
        return f"reset after {waited * 1000:.0f} ms{counted}"
    finally:
        c.close()


@case
def hpack_bomb_memory(env):
    """Many HPACK bombs over several connections leave the server's RSS bounded (< 8 MB growth)."""
    before = env.rss_kib()
    if before is None:
        raise Skip("server RSS unknown (--blitzd or --server-pid)")
    for _ in range(8):
        c = Conn(env.main).start()
        try:
            per_conn = min(8, env.reset_burst // 2)
            c.send(b"".join(headers_frame(1 + 2 * i, _bomb_block(1000)) for i in range(per_conn)))
            c.wait(lambda: all(c.complete(1 + 2 * i) for i in range(per_conn)) or c.closed
                   or c.error_goaways())
        finally:
            c.close()
    time.sleep(0.2)
    after = env.rss_kib()
    check(after is not None, "server exited")
    grown = after - before
    check(grown < 8 * 1024, f"RSS grew by {grown} KiB ({before} → {after})")
    return f"RSS {before} → {after} KiB"


# --- a client that never reads -----------------------------------------------------------------

@case
def ping_flood_without_reading(env):
    """CVE-2019-9512/9517: a client sends PINGs as fast as it can (bounded: 2M PINGs or 5 s) and
    does not read the ACKs. The server must not queue ACKs without bound: its RSS grows < 8 MB,
    and it stops reading, closes, or has sent GOAWAY (read once the flood is over)."""
    c = Conn(env.default, rcvbuf=4096).start()
    before = env.rss_kib()
    sent = 0
    outcome = None
    try:
        chunk = b"".join(ping_frame(struct.pack(">Q", i)) for i in range(1000))
        sock = c.sock
        sock.setblocking(False)
        deadline = time.monotonic() + 5.0
        last_progress = time.monotonic()
        view = memoryview(chunk)
        while time.monotonic() < deadline and sent < 2_000_000:
            try:
                n = sock.send(view)
            except BlockingIOError:
                if time.monotonic() - last_progress > 1.0:
                    outcome = "stopped reading"
                    break
                select.select([], [sock], [], 0.1)
                continue
            except OSError as e:
                outcome = f"closed ({e.strerror or e})"
                break
            last_progress = time.monotonic()
            view = view[n:]
            if not view:
                view = memoryview(chunk)
                sent += 1000
        after = env.rss_kib()
        sock.setblocking(True)
        c.wait(lambda: c.goaways or c.closed)
        if c.goaways:
            last, code, _ = c.goaways[0]
            check(code == ENHANCE_YOUR_CALM, f"GOAWAY {err_name(code)} ({c.describe()})")
            outcome = (outcome + ", " if outcome else "") + "GOAWAY ENHANCE_YOUR_CALM"
        check(outcome, f"server took {sent} PINGs without us reading, and sent no GOAWAY "
                       f"({c.describe()})")
        detail = f"{outcome} (~{sent} PINGs sent)"
        if before is not None and after is not None:
            grown = after - before
            check(grown < 8 * 1024, f"RSS grew by {grown} KiB ({before} → {after}); {detail}")
            detail += f"; RSS {before} → {after} KiB"
        return detail
    finally:
        c.close()


@case
def server_still_serves(env):
    """After everything above: a fresh connection is served, and blitzd is still running."""
    check(env.alive(), "blitzd exited: " + "\n".join(env.stderr_lines[-20:]))
    c = Conn(env.main).start()
    try:
        get_ok(c, 1, env)
    finally:
        c.close()
    return None


# ---------------------------------------------------------------------------------------------

def parse_addr(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--blitzd", help="blitzd executable to start and test")
    mode.add_argument("--connect", help="HOST:PORT of a running h2c (prior knowledge) server")
    ap.add_argument("--connect-limited", help="HOST:PORT whose server ends connections after "
                                              "--max-requests requests")
    ap.add_argument("--max-requests", type=int, help="its requests-per-connection limit")
    ap.add_argument("--connect-tls", help="HOST:PORT:CAFILE of a TLS listener offering h2")
    ap.add_argument("--server-pid", type=int, help="pid of the --connect server (RSS checks)")
    ap.add_argument("--expect-body", help="body of GET / on the --connect server")
    ap.add_argument("--echo-path", default="/echo",
                    help="path the --connect server proxies to the echo origin")
    ap.add_argument("--echo-listen", type=int, default=0,
                    help="port for the HTTP/1.1 echo origin (for --connect servers' configs)")
    ap.add_argument("--reset-burst", type=int, default=200, help="--connect: size reset floods")
    ap.add_argument("--control-burst", type=int, default=1000,
                    help="--connect: size control-frame floods")
    ap.add_argument("--budget", type=float, default=55.0, help="seconds for the whole run")
    ap.add_argument("-k", "--filter", help="run only cases whose name contains this")
    args = ap.parse_args()

    env = Target()
    echo = start_echo(args.echo_listen)
    workdir = tempfile.mkdtemp(prefix="h2frames-")
    try:
        if args.blitzd:
            if os.environ.get("BLITZ_TEST_BACKEND") == "io_uring":
                why = casekit.io_uring_refused()
                if why is not None:
                    print(f"SKIP: io_uring_setup failed ({why}): no io_uring backend here")
                    return 77
            try:
                start_blitzd(args.blitzd, workdir, echo.server_address[1], env)
            except (RuntimeError, OSError) as e:
                print(f"FAIL blitzd_start — {e}")
                print("0 passed, 1 failed")
                return 1
        else:
            env.main = env.default = parse_addr(args.connect)
            if args.connect_limited:
                env.limited = parse_addr(args.connect_limited)
                env.max_requests = args.max_requests
            if args.connect_tls:
                host, port, cafile = args.connect_tls.split(":", 2)
                env.tls = (host, int(port), cafile)
            env.pid = args.server_pid
            env.body = args.expect_body.encode() if args.expect_body is not None else None
            env.echo_path = args.echo_path or None
            env.reset_burst, env.control_burst = args.reset_burst, args.control_burst
        return run_cases(env, args)
    finally:
        if env.proc is not None and env.proc.poll() is None:
            env.proc.send_signal(signal.SIGTERM)
            try:
                env.proc.wait(10)
            except subprocess.TimeoutExpired:
                env.proc.kill()
                env.proc.wait(5)
        echo.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


def run_cases(env, args):
    def blitzd_alive(name):
        if env.proc is not None and env.proc.poll() is not None:
            print(f"FAIL {name} — blitzd exited with {env.proc.returncode}; stderr tail:\n  " +
                  "\n  ".join(env.stderr_lines[-30:]), flush=True)
            return False
        return True

    cases = [(name, fn, CASE_WATCHDOG) for name, fn in CASES]
    passed, failed, skipped = casekit.run(cases, env, args.filter, args.budget, blitzd_alive)
    if env.proc is not None and env.proc.poll() is None:
        env.proc.send_signal(signal.SIGTERM)
        try:
            code = env.proc.wait(10)
        except subprocess.TimeoutExpired:
            env.proc.kill()
            code = "still running 10 s after SIGTERM"
        if code == 0:
            print("PASS blitzd_clean_exit", flush=True)
            passed += 1
        else:
            print(f"FAIL blitzd_clean_exit — {code}; stderr tail:\n  " +
                  "\n  ".join(env.stderr_lines[-30:]), flush=True)
            failed += 1
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
