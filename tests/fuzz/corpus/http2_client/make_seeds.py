#!/usr/bin/python3
"""Writes the seeds of http2_client_fuzz: a mode byte (see http2_client_fuzz.cpp), then what a
server sends after the harness's empty SETTINGS frame, answering the harness's streams 1 and 3
(GET), 5 (POST, body at once) and 7 (POST, body later). Made with Debian's python3-h2, hpack and
hyperframe: run /usr/bin/python3 make_seeds.py inside this directory."""

import h2.config
import h2.connection
import h2.errors
import h2.settings
import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, GoAwayFrame, HeadersFrame, PingFrame,
                              RstStreamFrame, SettingsFrame, WindowUpdateFrame)


def server():
    """An h2 server connection that has read the harness's four requests."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    for sid, method in ((1, "GET"), (3, "GET"), (5, "POST"), (7, "POST")):
        client.send_headers(sid, [(":method", method), (":scheme", "https"),
                                  (":authority", "up.example"), (":path", "/f"),
                                  ("accept", "*/*"), ("te", "trailers")],
                            end_stream=method == "GET")
    srv = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, validate_outbound_headers=False, normalize_outbound_headers=False))
    srv.initiate_connection()
    srv.receive_data(client.data_to_send())
    return srv


def write(name, mode, data):
    with open(name, "wb") as f:
        f.write(bytes([mode]) + data)


def h2_seed(name, mode, script):
    srv = server()
    script(srv)
    write(name, mode, srv.data_to_send())


def ok(status="200", extra=()):
    return [(":status", status)] + list(extra)


# Responses through h2's own state machine.
h2_seed("ok_body.bin", 0x00, lambda s: (
    s.send_headers(1, ok(extra=[("content-type", "text/plain")])),
    s.send_data(1, b"hello, world", end_stream=True)))
# Pieces of 16 bytes, every mode bit: ended streams are reused from h2c_end() (streams 9, 11,
# 13) and cancelled, some before their request goes out; the answers to those come anyway (raw
# HEADERS with the static-table :status 200, h2 knows nothing of these streams).
reuse = server()
reuse.send_headers(1, ok(), end_stream=True)
reuse.send_headers(3, ok())
reuse.send_data(3, b"x" * 40, end_stream=True)
reuse.ping(b"87654321")
reuse.send_headers(5, ok(), end_stream=True)
answers = b"".join(HeadersFrame(sid, b"\x88", flags=["END_HEADERS", "END_STREAM"]).serialize()
                   for sid in (9, 11, 13))
write("reuse_cancel.bin", 0xfd, reuse.data_to_send() + answers)
h2_seed("no_content_pieces.bin", 0x31, lambda s: (
    s.send_headers(1, ok("204"), end_stream=True),
    s.send_headers(3, ok("304", [("etag", '"x"')]), end_stream=True)))
h2_seed("continue_then_ok.bin", 0x00, lambda s: (
    s.send_headers(5, ok("100")),
    s.send_headers(5, ok(extra=[("content-length", "2")])),
    s.send_data(5, b"ok", end_stream=True)))
h2_seed("early_hints_trailers.bin", 0x08, lambda s: (
    s.send_headers(3, ok("103", [("link", "</a.css>; rel=preload")])),
    s.send_headers(3, ok(extra=[("trailer", "grpc-status")])),
    s.send_data(3, b"body"),
    s.send_headers(3, [("grpc-status", "0"), ("grpc-message", "fine")], end_stream=True)))
h2_seed("refused.bin", 0x00, lambda s: (
    s.reset_stream(7, h2.errors.ErrorCodes.REFUSED_STREAM),
    s.send_headers(1, ok(), end_stream=True)))
# h2 sends nothing after its GOAWAY: stream 1's end is appended by hand.
goaway = server()
goaway.send_headers(1, ok())
goaway.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=3)
write("goaway.bin", 0x11, goaway.data_to_send() + DataFrame(1, b"last", flags=["END_STREAM"]).serialize())
h2_seed("window_ping_settings.bin", 0x02, lambda s: (
    s.ping(b"12345678"),
    s.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2,
                       h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100}),
    s.increment_flow_control_window(1000),
    s.increment_flow_control_window(1000, stream_id=5),
    s.send_headers(5, ok()),
    s.send_data(5, b"x" * 50, end_stream=True)))
h2_seed("bodies_cancel.bin", 0x25, lambda s: (
    s.send_headers(1, ok()),
    s.send_headers(3, ok()),
    s.send_data(1, b"a" * 3000),
    s.send_data(3, b"b" * 3000),
    s.send_data(1, b"a" * 1000, end_stream=True),
    s.send_data(3, b"b" * 1000, end_stream=True)))

# Frames h2 would not send: built with hyperframe and hpack directly.
enc = hpack.Encoder()


def headers(sid, fields, end_stream=False):
    f = HeadersFrame(sid, enc.encode(fields))
    f.flags.add("END_HEADERS")
    if end_stream:
        f.flags.add("END_STREAM")
    return f.serialize()


def data(sid, body, end_stream=False):
    f = DataFrame(sid, body)
    if end_stream:
        f.flags.add("END_STREAM")
    return f.serialize()


SETTINGS_ACK = SettingsFrame(0, flags=["ACK"]).serialize()

write("content_length_mismatch.bin", 0x00, SETTINGS_ACK +
      headers(1, ok(extra=[("content-length", "10")])) + data(1, b"short", True))
write("too_many_fields.bin", 0x00, SETTINGS_ACK +
      headers(1, ok(extra=[(f"x-{i}", "v") for i in range(20)])) + data(1, b"x", True) +
      headers(3, ok(extra=[("x-big", "v" * 1100)]), True))
block = enc.encode(ok(extra=[("x-split", "a" * 40), ("x-more", "b" * 40)]))
head = HeadersFrame(5, block[:20])
cont = ContinuationFrame(5, block[20:])
cont.flags.add("END_HEADERS")
write("continuation.bin", 0x41, SETTINGS_ACK + head.serialize() + cont.serialize() +
      data(5, b"after", True))
write("beyond_window.bin", 0x00, SETTINGS_ACK + headers(1, ok()) +
      data(1, b"w" * 5000) + data(1, b"", True))
write("controls.bin", 0x07, SETTINGS_ACK + PingFrame(0, b"abcdefgh").serialize() +
      WindowUpdateFrame(0, 65535).serialize() + WindowUpdateFrame(7, 10).serialize() +
      RstStreamFrame(3, 8).serialize() + headers(1, ok("200"), True) +
      GoAwayFrame(0, last_stream_id=1, error_code=0).serialize())
write("data_before_head.bin", 0x00, SETTINGS_ACK + data(1, b"early", True))
