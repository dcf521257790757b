"""HTTP/2 frames on the wire (RFC 9113 §4.1) for the Python tests: building one, and taking
the complete ones off the front of a receive buffer."""

import struct


def frame(ftype, flags, sid, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, sid & 0x7FFFFFFF) + payload


def take_frames(buf):
    """Yields (type, flags, stream id, payload) for every complete frame at the front of the
    bytearray `buf`, removing each as it goes; an incomplete tail stays in `buf`."""
    while len(buf) >= 9:
        n = int.from_bytes(buf[0:3], "big")
        if len(buf) < 9 + n:
            return
        ftype, flags = buf[3], buf[4]
        sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        payload = bytes(buf[9:9 + n])
        del buf[:9 + n]
        yield ftype, flags, sid, payload
