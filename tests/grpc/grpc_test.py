#!/usr/bin/python3
"""gRPC through blitzd (issue 5, point 3), with a real gRPC client and server (Debian's
python3-grpcio) on loopback.

Usage:
  grpc_test.py --blitzd PATH [-k NAME] [--budget SECONDS]

The script starts a gRPC server of its own (generic handlers with identity (de)serializers: the
messages are raw bytes, no protoc) and one blitzd on ephemeral ports, then runs its cases, each
printing one line: PASS / FAIL / SKIP, the case name and what it saw. The run ends with
"N passed, N failed, N skipped"; the exit status is 1 when a case failed, 77 (meson's SKIP) when
grpc cannot be imported or BLITZ_TEST_BACKEND=io_uring and the kernel refuses io_uring.

Two groups of cases:
- `gateway_*`: errors blitzd answers itself (upstream refused, upstream silent), which gRPC
  clients must see as a gRPC status. They need nothing but an HTTP/1.1 upstream.
- `h2up_*`: end to end through an HTTP/2 upstream (`"protocol": "h2"` in the upstream).

Every wait is bounded (gRPC call timeouts, event waits), each case has a watchdog, and the run a
time budget; every process started here is ended by its PID.
"""

import argparse
import concurrent.futures
import json
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "pylib"))
from casekit import Failure, Skip, check  # noqa: E402  (the path above comes first)
from h2wire import frame, take_frames  # noqa: E402
import casekit  # noqa: E402

try:
    import grpc
except ImportError as missing:
    print(f"SKIP: python3-grpcio is not installed ({missing})")
    sys.exit(77)

try:
    import hpack  # python3-h2 brings it; only the raw Trailers-Only check needs it
except ImportError:
    hpack = None

IO_TIMEOUT = 5.0        # every gRPC call and every wait for one event
CASE_WATCHDOG = 20      # seconds; a case that hangs anyway is failed by SIGALRM
STREAM_COUNT = 5        # messages of the server-streaming method
SILENT_TIMEOUT_MS = 300  # per-try timeout of the route to the upstream that never answers

# Frame types and flags (RFC 9113 §6).
DATA, HEADERS, SETTINGS, GOAWAY = 0x0, 0x1, 0x4, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# ---------------------------------------------------------------------------------------------
# The gRPC server: byte messages, one method per behaviour a case needs.

def identity(b):
    return b


class Backend:
    """The gRPC server behind blitzd, with what its handlers saw."""

    def __init__(self):
        self.stream_gate = queue.Queue()   # the streaming method sends its next message on a token
        self.stream_sent = []              # indices the streaming method has sent, in order
        self.seen_metadata = queue.Queue()  # invocation metadata of each Echo call
        self.slow_cancelled = threading.Event()
        self.slow_remaining = queue.Queue()  # time_remaining() of each Slow call
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(self.echo, identity, identity),
            "Stream": grpc.unary_stream_rpc_method_handler(self.stream, identity, identity),
            "Collect": grpc.stream_unary_rpc_method_handler(self.collect, identity, identity),
            "Chat": grpc.stream_stream_rpc_method_handler(self.chat, identity, identity),
            "Fail": grpc.unary_unary_rpc_method_handler(self.fail, identity, identity),
            "Slow": grpc.unary_unary_rpc_method_handler(self.slow, identity, identity),
        }
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8),
                                  options=[("grpc.max_receive_message_length", 4 << 20),
                                           ("grpc.max_send_message_length", 4 << 20)])
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Svc", handlers),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(0).wait(IO_TIMEOUT)

    def echo(self, request, context):
        md = dict(context.invocation_metadata())
        self.seen_metadata.put(md)
        context.send_initial_metadata((("x-echo-initial", md.get("x-client", "")),))
        context.set_trailing_metadata((("x-echo-trailing", "t-" + md.get("x-client", "")),))
        return request

    def stream(self, request, context):
        # Each message waits for a token from the case: the case hands out the next token only
        # after it has received the previous message, so message i+1 cannot exist before the
        # client saw message i unless blitzd delivered it unbuffered.
        for i in range(STREAM_COUNT):
            try:
                self.stream_gate.get(timeout=IO_TIMEOUT)
            except queue.Empty:
                context.abort(grpc.StatusCode.ABORTED, "no token for message %d" % i)
            self.stream_sent.append(i)
            yield b"%s-%d" % (request, i)

    def collect(self, request_iterator, context):
        parts = list(request_iterator)
        return b"%d:" % len(parts) + b"".join(parts)

    def chat(self, request_iterator, context):
        for m in request_iterator:
            yield b"echo:" + m

    def fail(self, request, context):
        context.set_trailing_metadata((("x-fail-detail", "gone"),))
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode())

    def slow(self, request, context):
        self.slow_remaining.put(context.time_remaining())
        context.add_callback(self.slow_cancelled.set)
        self.slow_cancelled.wait(IO_TIMEOUT)
        return request


# ---------------------------------------------------------------------------------------------
# Processes and sockets.

def silent_listener():
    """A listening socket that is never accept()ed: connections complete in the kernel and are
    never answered."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


class Env:
    def __init__(self, args, workdir):
        self.exe = args.blitzd
        self.workdir = workdir
        self.blitzd = None
        self.addr = None
        self.backend = None
        self.silent = None
        self.channel = None

    def start(self):
        self.backend = Backend()
        self.silent = silent_listener()
        config = {
            "workers": 1,
            "log": {"level": "info"},
            "listeners": [{"name": "main", "address": "127.0.0.1:0"}],
            "upstreams": [
                {"name": "closed", "endpoints": [f"127.0.0.1:{casekit.closed_port()}"]},
                {"name": "silent", "endpoints": [f"127.0.0.1:{self.silent.getsockname()[1]}"]},
                {"name": "grpc", "protocol": "h2", "endpoints": [f"127.0.0.1:{self.backend.port}"]},
            ],
            "routes": [
                {"name": "closed", "match": {"path_prefix": "/closed.Svc/"},
                 "proxy": {"upstream": "closed", "retry": {"max_retries": 0}}},
                {"name": "silent", "match": {"path_prefix": "/silent.Svc/"},
                 "proxy": {"upstream": "silent", "per_try_timeout_ms": SILENT_TIMEOUT_MS,
                           "retry": {"max_retries": 0}}},
                {"name": "grpc", "match": {"path_prefix": "/test.Svc/"}, "upstream": "grpc"},
            ],
        }
        self.blitzd = casekit.Blitzd(self.exe, config, self.workdir)
        self.addr = self.blitzd.addrs["main"]
        # Plain target: blitzd's plain listener detects HTTP/2 by the connection preface.
        self.channel = grpc.insecure_channel(f"{self.addr[0]}:{self.addr[1]}", options=[
            ("grpc.max_receive_message_length", 4 << 20),
            ("grpc.max_send_message_length", 4 << 20),
            ("grpc.enable_retries", 0)])

    def stop(self):
        """Ends everything started (once); returns whether blitzd exited cleanly."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        clean = False
        if self.blitzd is not None:
            clean = self.blitzd.stop()
            self.blitzd = None
        if self.backend is not None:
            self.backend.stop()
            self.backend = None
        if self.silent is not None:
            self.silent.close()
            self.silent = None
        return clean

    def unary(self, method):
        return self.channel.unary_unary(method, request_serializer=identity,
                                        response_deserializer=identity)


def expect_rpc_error(call, code, what):
    """Runs `call`; returns the grpc.RpcError it raised, which must carry `code`."""
    try:
        got = call()
    except grpc.RpcError as e:
        check(e.code() == code, f"{what}: expected {code.name}, got {e.code().name} "
                                f"({e.details()!r})")
        return e
    raise Failure(f"{what}: expected {code.name}, got a response {got!r:.60}")


# ---------------------------------------------------------------------------------------------
# Gateway errors (any upstream protocol).

def case_gateway_unavailable(env):
    e = expect_rpc_error(lambda: env.unary("/closed.Svc/Echo")(b"x", timeout=IO_TIMEOUT),
                         grpc.StatusCode.UNAVAILABLE, "upstream refusing connections")
    check(e.details() == "upstream connect failed",
          f"details: expected 'upstream connect failed', got {e.details()!r}")
    md = dict(e.trailing_metadata() or ())
    check(md.get("x-blitz-error") == "connect_failed",
          f"x-blitz-error: expected connect_failed, got {md.get('x-blitz-error')!r}")
    return f"UNAVAILABLE {e.details()!r}, x-blitz-error {md['x-blitz-error']}"


def case_gateway_deadline(env):
    t0 = time.monotonic()
    e = expect_rpc_error(lambda: env.unary("/silent.Svc/Echo")(b"x", timeout=IO_TIMEOUT),
                         grpc.StatusCode.DEADLINE_EXCEEDED, "upstream that never answers")
    took = time.monotonic() - t0
    # The client's own deadline (IO_TIMEOUT) would also give DEADLINE_EXCEEDED: the status must
    # come from blitzd, which says so in its message and x-blitz-error.
    md = dict(e.trailing_metadata() or ())
    check(md.get("x-blitz-error") == "upstream_timeout",
          f"x-blitz-error: expected upstream_timeout, got {md.get('x-blitz-error')!r} "
          f"(details {e.details()!r}, after {took:.2f}s)")
    check(e.details() == "upstream timeout", f"details: got {e.details()!r}")
    return f"DEADLINE_EXCEEDED {e.details()!r} after {took:.2f}s"


def case_gateway_plain_http_unchanged(env):
    """A request that is not gRPC still gets the JSON error (same route, same failure)."""
    import http.client
    c = http.client.HTTPConnection(env.addr[0], env.addr[1], timeout=IO_TIMEOUT)
    try:
        c.request("POST", "/closed.Svc/Echo", body=b"x", headers={"content-type": "application/json"})
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    check(r.status == 502, f"status: expected 502, got {r.status}")
    check(r.getheader("grpc-status") is None, "grpc-status sent to a non-gRPC client")
    doc = json.loads(body)
    check(doc == {"error": "upstream connect failed", "cause": "connect_failed"}, f"body {doc}")
    check(r.getheader("x-blitz-error") == "connect_failed", "x-blitz-error missing")
    return "502 JSON, no grpc-status"


def case_gateway_trailers_only_frames(env):
    """On the wire: one HEADERS frame with END_STREAM (Trailers-Only), :status 200, no DATA."""
    if hpack is None:
        raise Skip("python3-h2 (hpack) is not installed")
    enc, dec = hpack.Encoder(), hpack.Decoder()
    block = enc.encode([(":method", "POST"), (":scheme", "http"), (":path", "/closed.Svc/Echo"),
                        (":authority", "blitz"), ("content-type", "application/grpc+proto"),
                        ("te", "trailers")])
    # An empty gRPC message (5-byte prefix) ends the request.
    msg = b"\0\0\0\0\0"
    s = socket.create_connection(env.addr, timeout=IO_TIMEOUT)
    try:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0, b"") + frame(HEADERS, END_HEADERS, 1, block) +
                  frame(DATA, END_STREAM, 1, msg))
        buf = bytearray()
        on_stream = []
        deadline = time.monotonic() + IO_TIMEOUT
        while not any(f[1] & END_STREAM for f in on_stream):
            check(time.monotonic() < deadline, f"no END_STREAM on stream 1; frames {on_stream}")
            chunk = s.recv(65536)
            check(chunk, f"connection closed; frames on stream 1: {on_stream}")
            buf += chunk
            for ftype, flags, sid, payload in take_frames(buf):
                if sid == 1:
                    on_stream.append((ftype, flags, payload))
                check(ftype != GOAWAY, f"GOAWAY {payload.hex()}")
    finally:
        s.close()
    kinds = [t for t, _, _ in on_stream]
    check(kinds == [HEADERS], f"frames on stream 1: expected one HEADERS, got {kinds}")
    _, flags, payload = on_stream[0]
    check(flags & END_STREAM and flags & END_HEADERS, f"HEADERS flags {flags:#x}")
    fields = dict(dec.decode(payload))
    check(fields.get(":status") == "200", f":status {fields.get(':status')}")
    check(fields.get("content-type") == "application/grpc", f"content-type {fields}")
    check(fields.get("grpc-status") == "14", f"grpc-status {fields.get('grpc-status')}")
    check(fields.get("grpc-message") == "upstream connect failed", f"grpc-message {fields}")
    check(fields.get("x-blitz-error") == "connect_failed", f"x-blitz-error {fields}")
    return "one HEADERS+END_STREAM: 200, grpc-status 14"


# ---------------------------------------------------------------------------------------------
# End to end through an HTTP/2 upstream (`"protocol": "h2"`).

def case_h2up_unary_metadata(env):
    msg, call = env.unary("/test.Svc/Echo").with_call(
        b"hello", metadata=(("x-client", "c1"),), timeout=IO_TIMEOUT)
    check(msg == b"hello", f"response {msg!r}")
    seen = env.backend.seen_metadata.get(timeout=IO_TIMEOUT)
    check(seen.get("x-client") == "c1", f"server saw metadata {seen}")
    initial = dict(call.initial_metadata())
    trailing = dict(call.trailing_metadata())
    check(initial.get("x-echo-initial") == "c1", f"initial metadata {initial}")
    check(trailing.get("x-echo-trailing") == "t-c1", f"trailing metadata {trailing}")
    check(call.code() == grpc.StatusCode.OK, f"status {call.code()}")
    return "echo, metadata both ways, trailers"


def case_h2up_unary_1mb(env):
    big = bytes(range(256)) * 4096
    msg = env.unary("/test.Svc/Echo")(big, timeout=IO_TIMEOUT)
    check(msg == big, f"1 MiB echo: got {len(msg)} bytes, equal={msg == big}")
    return f"{len(big)} bytes echoed"


def case_h2up_server_streaming_unbuffered(env):
    b = env.backend
    while not b.stream_gate.empty():
        b.stream_gate.get_nowait()
    b.stream_sent.clear()
    call = env.channel.unary_stream("/test.Svc/Stream", request_serializer=identity,
                                    response_deserializer=identity)(b"s", timeout=IO_TIMEOUT)
    got = []
    b.stream_gate.put(1)
    for m in call:
        # The server has sent exactly the messages the client has seen so far: the one in hand
        # arrived before the server was allowed to produce the next.
        check(len(b.stream_sent) == len(got) + 1,
              f"message {len(got)} arrived after the server sent {b.stream_sent}")
        got.append(m)
        b.stream_gate.put(1)
    check(got == [b"s-%d" % i for i in range(STREAM_COUNT)], f"messages {got}")
    check(call.code() == grpc.StatusCode.OK, f"status {call.code()}")
    return f"{len(got)} messages, each before the next was produced"


def case_h2up_client_streaming(env):
    parts = [b"a", b"bb", b"ccc", b"dddd"]
    msg = env.channel.stream_unary("/test.Svc/Collect", request_serializer=identity,
                                   response_deserializer=identity)(iter(parts), timeout=IO_TIMEOUT)
    check(msg == b"4:abbcccdddd", f"response {msg!r}")
    return msg.decode()


def case_h2up_bidi(env):
    outbox = queue.Queue()

    def requests():
        while True:
            m = outbox.get(timeout=IO_TIMEOUT)
            if m is None:
                return
            yield m

    call = env.channel.stream_stream("/test.Svc/Chat", request_serializer=identity,
                                     response_deserializer=identity)(requests(), timeout=IO_TIMEOUT)
    got = []
    # Ping-pong: each message is sent only after the previous answer came back, so the exchange
    # cannot pass unless both directions stream.
    for i in range(3):
        outbox.put(b"m%d" % i)
        got.append(next(call))
    outbox.put(None)
    rest = list(call)
    check(got == [b"echo:m0", b"echo:m1", b"echo:m2"] and not rest, f"got {got} then {rest}")
    check(call.code() == grpc.StatusCode.OK, f"status {call.code()}")
    return "3 round trips"


def case_h2up_error_status(env):
    e = expect_rpc_error(lambda: env.unary("/test.Svc/Fail")(b"widget", timeout=IO_TIMEOUT),
                         grpc.StatusCode.NOT_FOUND, "failing method")
    check(e.details() == "no such thing: widget", f"details {e.details()!r}")
    md = dict(e.trailing_metadata() or ())
    check(md.get("x-fail-detail") == "gone", f"trailing metadata {md}")
    check("x-blitz-error" not in md, f"blitzd replaced the upstream's status: {md}")
    return "NOT_FOUND, message and trailing metadata unchanged"


def case_h2up_client_deadline(env):
    b = env.backend
    b.slow_cancelled.clear()
    while not b.slow_remaining.empty():
        b.slow_remaining.get_nowait()
    expect_rpc_error(lambda: env.unary("/test.Svc/Slow")(b"z", timeout=0.5),
                     grpc.StatusCode.DEADLINE_EXCEEDED, "client deadline 0.5s")
    remaining = b.slow_remaining.get(timeout=IO_TIMEOUT)
    # None means no deadline reached the server; gRPC rounds grpc-timeout, hence the slack.
    check(remaining is not None and remaining <= 1.0,
          f"server saw time_remaining {remaining}: grpc-timeout not forwarded")
    # The client resets the stream at its deadline; blitzd must cancel the upstream stream.
    check(b.slow_cancelled.wait(IO_TIMEOUT), "the server's call was not cancelled")
    return f"server saw {remaining:.2f}s remaining and the cancellation"


CASES = [
    ("gateway_unavailable", case_gateway_unavailable, CASE_WATCHDOG),
    ("gateway_deadline", case_gateway_deadline, CASE_WATCHDOG),
    ("gateway_plain_http_unchanged", case_gateway_plain_http_unchanged, CASE_WATCHDOG),
    ("gateway_trailers_only_frames", case_gateway_trailers_only_frames, CASE_WATCHDOG),
    ("h2up_unary_metadata", case_h2up_unary_metadata, CASE_WATCHDOG),
    ("h2up_unary_1mb", case_h2up_unary_1mb, CASE_WATCHDOG),
    ("h2up_server_streaming_unbuffered", case_h2up_server_streaming_unbuffered, CASE_WATCHDOG),
    ("h2up_client_streaming", case_h2up_client_streaming, CASE_WATCHDOG),
    ("h2up_bidi", case_h2up_bidi, CASE_WATCHDOG),
    ("h2up_error_status", case_h2up_error_status, CASE_WATCHDOG),
    ("h2up_client_deadline", case_h2up_client_deadline, CASE_WATCHDOG),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--blitzd", required=True, help="blitzd executable to test")
    ap.add_argument("--budget", type=float, default=50.0, help="seconds for the whole run")
    ap.add_argument("-k", "--filter", help="run only cases whose name contains this")
    args = ap.parse_args()
    args.blitzd = os.path.realpath(args.blitzd)
    if os.environ.get("BLITZ_TEST_BACKEND") == "io_uring":
        why = casekit.io_uring_refused()
        if why is not None:
            print(f"SKIP: io_uring_setup failed ({why}): no io_uring backend here")
            return 77
    workdir = tempfile.mkdtemp(prefix="blitz-grpc-")
    env = Env(args, workdir)
    try:
        try:
            env.start()
        except (RuntimeError, OSError) as e:
            print(f"FAIL start — {e}")
            print("0 passed, 1 failed")
            return 1
        passed, failed, skipped = casekit.run(CASES, env, args.filter, args.budget, env.blitzd.alive)
        if env.stop():
            passed += 1
        else:
            failed += 1
        print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
        return 1 if failed else 0
    finally:
        signal.alarm(0)
        env.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
