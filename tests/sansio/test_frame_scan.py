"""The C scanner of simple frames (``frames.scan_frames``) against the Python parser.

``scan_frames`` takes the run of simple frames (complete, final, RSV clear, text or
binary, masked as expected, minimal length within the limit, valid UTF-8) at the
start of the data and never judges anything else: the protocol with the scanner
must behave exactly as the protocol without it, byte for byte, on any input.
"""

from __future__ import annotations

import dataclasses
import itertools
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_ws.sansio import frames
from trio_ws.sansio.connection import Role, WebSocketProtocol
from trio_ws.sansio.deflate import DeflateParams, PerMessageDeflate
from trio_ws.sansio.masking import apply_mask_python

pytestmark = pytest.mark.skipif(
    frames.scan_frames is None, reason="the C extension trio_ws._speedups is not built"
)

MASK = b"\x37\xfa\x21\x3d"


def frame(
    b0: int, payload: bytes, *, masked: bool = True, length_bytes: int | None = None, mask: bytes = MASK
) -> bytes:
    """A raw frame: first byte ``b0``, the length in ``length_bytes`` (1, 2 or 8; minimal by default)."""
    n = len(payload)
    if length_bytes is None:
        length_bytes = 1 if n < 126 else 2 if n < 0x10000 else 8
    bit = 0x80 if masked else 0
    if length_bytes == 1:
        head = bytes([b0, bit | n])
    elif length_bytes == 2:
        head = bytes([b0, bit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    return head + mask + apply_mask_python(payload, mask)


def scan(
    data: bytes, masked: bool = True, limit: int = -1
) -> tuple[list[str | bytes | tuple[int, bytes]], int]:
    assert frames.scan_frames is not None
    return frames.scan_frames(data, masked, limit)


def test_simple_frames_become_messages_and_the_rest_is_left() -> None:
    data = (
        frame(0x81, "héllo".encode())
        + frame(0x82, b"\x00\x01")
        + frame(0x89, b"ping")
        + frame(0x81, b"after")
    )
    assert scan(data) == (
        ["héllo", b"\x00\x01"],
        len(data) - len(frame(0x89, b"ping")) - len(frame(0x81, b"after")),
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (frame(0x01, b"no fin"), "not final"),
        (frame(0x80, b"continuation"), "continuation"),
        (frame(0xC1, b"rsv1"), "RSV bit"),
        (frame(0x83, b"reserved"), "reserved opcode"),
        (frame(0x88, b"\x03\xe8"), "control frame"),
        (frame(0x81, b"unmasked", masked=False), "not masked"),
        (frame(0x81, b"short", length_bytes=2), "16-bit length under 126"),
        (frame(0x81, b"x" * 200, length_bytes=8), "64-bit length under 65536"),
        (bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + MASK, "64-bit length with the high bit"),
        (frame(0x81, b"\xff\xfe"), "invalid UTF-8"),
        (frame(0x81, "é".encode())[:-1], "incomplete payload"),
        (frame(0x82, b"x" * 300)[:3], "incomplete 16-bit length"),
        (frame(0x82, b"x" * 70000)[:9], "incomplete 64-bit length"),
        (frame(0x82, b"x")[:1], "one byte"),
        (b"", "nothing"),
    ],
)
def test_anything_else_is_left_to_the_parser(data: bytes, why: str) -> None:
    assert scan(data) == ([], 0), why


def test_the_limit_and_the_client_side() -> None:
    assert scan(frame(0x82, b"x" * 10), limit=9) == ([], 0)
    assert scan(frame(0x82, b"x" * 10), limit=10) == ([b"x" * 10], 16)
    unmasked = frame(0x81, b"to the client", masked=False) + frame(0x82, b"x" * 70000, masked=False)
    assert scan(unmasked, masked=False) == (["to the client", b"x" * 70000], len(unmasked))
    assert scan(frame(0x81, b"masked"), masked=False) == ([], 0)


def test_scan_takes_views_and_bytearrays() -> None:
    data = frame(0x82, b"abc") * 2
    assert scan(bytearray(data)) == ([b"abc", b"abc"], len(data))  # type: ignore[arg-type]
    assert scan(memoryview(data)[len(data) // 2 :]) == ([b"abc"], len(data) // 2)  # type: ignore[arg-type]


def test_bad_arguments_raise() -> None:
    assert frames.scan_frames is not None
    with pytest.raises(TypeError):
        frames.scan_frames(b"")
    with pytest.raises(TypeError):
        frames.scan_frames("text", True, -1)
    with pytest.raises(TypeError):
        frames.scan_frames(b"", True, "no")


# -- the protocol with and without the scanner -----------------------------------------

FIRST_BYTES = [0x81, 0x82, 0x01, 0x02, 0x80, 0x00, 0x89, 0x8A, 0x88, 0xC1, 0x83, 0x91]
PAYLOADS = st.one_of(
    st.text(max_size=40).map(str.encode),
    st.binary(max_size=40),
    st.sampled_from([b"\xff", "é".encode()[:1], b"\x03\xe8", b"\x03\xe8bye", b"x" * 130, b"y" * 300]),
)
FRAMES = st.builds(
    frame,
    st.sampled_from(FIRST_BYTES),
    PAYLOADS,
    masked=st.booleans(),  # right for one role, wrong for the other
    length_bytes=st.sampled_from([None, None, None, 2, 8]),
)


def run(
    data: bytes,
    cuts: list[int],
    role: Role,
    *,
    scanner: bool,
    deflate: bool = False,
    max_message_size: int | None = None,
    max_frame_size: int | None = None,
) -> tuple[object, ...]:
    extensions = [PerMessageDeflate(DeflateParams(), is_server=role is Role.SERVER)] if deflate else []
    proto = WebSocketProtocol(
        role,
        mask_source=lambda: MASK,
        extensions=extensions,
        max_message_size=max_message_size,
        max_frame_size=max_frame_size,
    )
    if not scanner:
        proto._scan = None
    events = []
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for start, end in itertools.pairwise(points):
        events += proto.receive_data(data[start:end])
    failure = proto.failure and (type(proto.failure), proto.failure.close_code)
    stats = proto.statistics()
    if failure:  # what the parser still holds is never read (the scanner may have taken it)
        stats = dataclasses.replace(stats, bytes_buffered=0, message_bytes_buffered=0)
    return events, failure, proto.data_to_send(), proto.state, stats


@settings(max_examples=300, deadline=None)
@given(
    st.lists(FRAMES, max_size=8),
    st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=4),
    st.sampled_from([None, 100, 200]),
    st.sampled_from(Role),
)
def test_the_protocol_behaves_the_same_with_and_without_the_scanner(
    parts: list[bytes], cuts: list[int], limit: int | None, role: Role
) -> None:
    data = b"".join(parts)
    for message_limit, frame_limit in ((limit, None), (None, limit)):
        with_scan = run(
            data, cuts, role, scanner=True, max_message_size=message_limit, max_frame_size=frame_limit
        )
        assert with_scan == run(
            data, cuts, role, scanner=False, max_message_size=message_limit, max_frame_size=frame_limit
        )


def deflated(texts: list[bytes]) -> list[bytes]:
    """The payloads of compressed messages, one deflate stream with context takeover (RFC 7692 §7.2.1)."""
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    return [(deflater.compress(text) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4] for text in texts]


COMPRESSED_FIRST_BYTES = [0xC1, 0xC2, 0x41, 0xC0, 0xE1, *FIRST_BYTES]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(COMPRESSED_FIRST_BYTES), st.booleans(), st.sampled_from([0, 1, 2])),
        max_size=8,
    ),
    st.lists(st.binary(max_size=60) | st.sampled_from([b"\xff\xfe", b"z" * 300]), min_size=8, max_size=8),
    st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=4),
    st.sampled_from([None, 100, 200]),
    st.sampled_from(Role),
)
def test_compressed_messages_read_the_same_with_and_without_the_scanner(
    shapes: list[tuple[int, bool, int]], texts: list[bytes], cuts: list[int], limit: int | None, role: Role
) -> None:
    payloads = deflated(texts)
    parts = []
    for i, (b0, right_mask, kind) in enumerate(shapes):
        # kind 0: compressed payload; 1: its text as is; 2: garbage that does not inflate
        payload = payloads[i] if kind == 0 else texts[i] if kind == 1 else b"\xff" + texts[i]
        parts.append(frame(b0, payload, masked=right_mask == (role is Role.SERVER)))
    data = b"".join(parts)
    with_scan = run(data, cuts, role, scanner=True, deflate=True, max_message_size=limit)
    assert with_scan == run(data, cuts, role, scanner=False, deflate=True, max_message_size=limit)
