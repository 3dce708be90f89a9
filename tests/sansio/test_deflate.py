"""RFC 7692 permessage-deflate: negotiation, the codec, the inflation bound.

Codec cases run through :class:`WebSocketProtocol` (bytes in, events out), fed
whole and byte by byte (``receive``) with the same result required; hypothesis
checks round trips with any parameters, fragmentation and split.  The RFC
§7.2.3 examples are checked byte for byte.
"""

from __future__ import annotations

import hashlib
import tracemalloc
import zlib
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_ws.exceptions import NegotiationError, RemoteProtocolError
from trio_ws.sansio.connection import Role, State, WebSocketProtocol
from trio_ws.sansio.deflate import (
    INFLATE_STEP,
    DeflateParams,
    DeflateSettings,
    PerMessageDeflate,
    client_accept,
    client_offer,
    server_negotiate,
)
from trio_ws.sansio.events import BytesMessage, Event, Fragment, TextMessage
from trio_ws.sansio.frames import RSV1, FrameHeader, Opcode, serialize_frame
from trio_ws.sansio.headers import parse_params_list

MASK = b"\x37\xfa\x21\x3d"
NO_THRESHOLD = DeflateSettings(threshold=0)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace("0x", "").replace(" ", ""))


def proto(
    role: Role,
    params: DeflateParams | None = None,
    settings: DeflateSettings = NO_THRESHOLD,
    *,
    max_message_size: int | None = 1 << 20,
    fragments: bool = False,
) -> tuple[WebSocketProtocol, PerMessageDeflate]:
    ext = PerMessageDeflate(params or DeflateParams(), is_server=role is Role.SERVER, settings=settings)
    p = WebSocketProtocol(
        role,
        mask_source=(lambda: MASK) if role is Role.CLIENT else None,
        extensions=[ext],
        max_message_size=max_message_size,
        fragments=fragments,
    )
    return p, ext


def receive(
    role: Role, data: bytes, params: DeflateParams | None = None, **kwargs: object
) -> tuple[list[Event], WebSocketProtocol]:
    """Feed ``data`` whole and byte by byte; both runs must agree."""
    whole, _ = proto(role, params, **kwargs)  # type: ignore[arg-type]
    events = whole.receive_data(data)
    bytewise, _ = proto(role, params, **kwargs)  # type: ignore[arg-type]
    events2: list[Event] = []
    for i in range(len(data)):
        events2 += bytewise.receive_data(data[i : i + 1])
    if whole.failure is None:
        assert events2 == events
    assert (whole.failure is None) == (bytewise.failure is None)
    if whole.failure is not None:
        assert bytewise.failure is not None
        assert bytewise.failure.close_code == whole.failure.close_code
        assert bytewise.data_to_send() == whole.data_to_send()
    return events, whole


def close_code_sent(p: WebSocketProtocol) -> int | None:
    return p.close_code_sent


# ----------------------------------------------------------- RFC 7692 §7.2.3


HELLO = h("c1 07 f2 48 cd c9 c9 07 00")


def test_rfc_hello_one_block_encode_and_decode() -> None:
    server, _ = proto(Role.SERVER)
    assert server.send_text("Hello") == HELLO  # §7.2.3.1
    events, _ = receive(Role.CLIENT, HELLO)
    assert events == [TextMessage("Hello")]


def test_rfc_hello_fragmented() -> None:
    # §7.2.3.1: the compressed data split into two frames, RSV1 on the first only.
    data = h("41 03 f2 48 cd") + h("80 04 c9 c9 07 00")
    events, _ = receive(Role.CLIENT, data)
    assert events == [TextMessage("Hello")]


def test_rfc_shared_window_second_message() -> None:
    # §7.2.3.2: with context takeover the second "Hello" is a back-reference.
    server, _ = proto(Role.SERVER)
    assert server.send_text("Hello") == HELLO
    assert server.send_text("Hello") == h("c1 05 f2 00 11 00 00")
    events, _ = receive(Role.CLIENT, HELLO + h("c1 05 f2 00 11 00 00"))
    assert events == [TextMessage("Hello"), TextMessage("Hello")]


def test_rfc_no_context_takeover_repeats_the_first_encoding() -> None:
    # §7.2.3.2: "If the 'agreed parameters' contain server_no_context_takeover" the
    # second message is compressed exactly like the first.
    server, ext = proto(Role.SERVER, DeflateParams(server_no_context_takeover=True))
    assert server.send_text("Hello") == HELLO
    assert ext.holds_state == (False, False)  # the compressor was released
    assert server.send_text("Hello") == HELLO
    events, _client = receive(Role.CLIENT, HELLO + HELLO, DeflateParams(server_no_context_takeover=True))
    assert events == [TextMessage("Hello")] * 2


def test_rfc_stored_block() -> None:
    # §7.2.3.3: a DEFLATE block with no compression.
    events, _ = receive(Role.CLIENT, h("c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00"))
    assert events == [TextMessage("Hello")]


def test_rfc_bfinal_block_then_more_messages() -> None:
    # §7.2.3.4: BFINAL=1; the stream ends, the next message starts a new one.
    data = h("c1 08 f3 48 cd c9 c9 07 00 00") + HELLO + h("c1 08 f3 48 cd c9 c9 07 00 00")
    events, p = receive(Role.CLIENT, data)
    assert events == [TextMessage("Hello")] * 3
    assert p.failure is None


def test_bfinal_in_a_first_fragment_ignores_the_rest() -> None:
    data = h("41 08 f3 48 cd c9 c9 07 00 00") + h("80 02 ab cd")
    events, _ = receive(Role.CLIENT, data)
    assert events == [TextMessage("Hello")]


def test_rfc_two_blocks_in_one_message() -> None:
    # §7.2.3.5
    events, _ = receive(Role.CLIENT, h("c1 0d f2 48 05 00 00 00 ff ff ca c9 c9 07 00"))
    assert events == [TextMessage("Hello")]


def test_rfc_empty_fragment() -> None:
    # §7.2.3.6: "00" ends a message with nothing more to say; we produce it too.
    server, _ = proto(Role.SERVER)
    assert server.send_text("") == h("c1 01 00")
    first = server.send_text("Hello", fin=False)
    assert first == h("41 0b f2 48 cd c9 c9 07 00 00 00 ff ff")  # sync-flushed, tail kept
    last = server.send_text("", fin=True)
    assert last == h("80 01 00")
    events, _ = receive(Role.CLIENT, first + last + h("c1 01 00") + h("c1 00"))
    assert events == [TextMessage("Hello"), TextMessage(""), TextMessage("")]


# --------------------------------------------------------------- negotiation


def offers(header: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    return parse_params_list([header])


def negotiate(header: str, settings: DeflateSettings | None = None) -> str | None:
    params = server_negotiate(offers(header), settings or DeflateSettings())
    return None if params is None else params.header()


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        # Chromium's and Firefox's exact offer.
        ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
        ("permessage-deflate", "permessage-deflate"),
        (
            "permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover",
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
        ),
        ("permessage-deflate; server_max_window_bits=8", "permessage-deflate; server_max_window_bits=8"),
        (
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            'permessage-deflate; client_max_window_bits="11"',  # RFC 6455 §9.1: quoted form
            "permessage-deflate; client_max_window_bits=11",
        ),
        (
            "permessage-deflate;server_no_context_takeover;client_no_context_takeover;"
            "server_max_window_bits=15;client_max_window_bits=15",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
            " server_max_window_bits=15; client_max_window_bits=15",
        ),
        # Declined offers: invalid values, a value where none is allowed, a missing
        # value, duplicates, unknown parameters (§7 "MUST decline").
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; server_max_window_bits=7", None),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; server_max_window_bits=010", None),
        ("permessage-deflate; client_max_window_bits=08", None),
        ("permessage-deflate; client_max_window_bits=x", None),
        ('permessage-deflate; client_max_window_bits=""', None),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; client_no_context_takeover=true", None),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
        ("permessage-deflate; client_max_window_bits; client_max_window_bits=10", None),
        ("permessage-deflate; unknown", None),
        ("permessage-deflate; mux=1", None),
        # Multiple offers: the first acceptable one wins (§5.1).
        (
            "permessage-deflate; server_max_window_bits=20, permessage-deflate; client_max_window_bits",
            "permessage-deflate",
        ),
        (
            "permessage-deflate; server_max_window_bits=10, permessage-deflate",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            "x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
        ("x-webkit-deflate-frame", None),
        ("Permessage-Deflate", None),  # extension tokens are matched exactly
        ("", None),
    ],
)
def test_server_negotiation(offer: str, answer: str | None) -> None:
    assert negotiate(offer) == answer


@pytest.mark.parametrize(
    ("offer", "limit", "answer"),
    [
        # A server limit is asked of the client when it offered the parameter...
        ("permessage-deflate; client_max_window_bits", 12, "permessage-deflate; client_max_window_bits=12"),
        (
            "permessage-deflate; client_max_window_bits=10",
            12,
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            "permessage-deflate; client_max_window_bits=14",
            12,
            "permessage-deflate; client_max_window_bits=12",
        ),
        # ... never otherwise (§7.1.2.2 MUST NOT); our own window is simply smaller.
        ("permessage-deflate", 9, "permessage-deflate"),
        # server_max_window_bits: "the same or smaller value as the offer" (§7.1.2.1).
        (
            "permessage-deflate; server_max_window_bits=14",
            12,
            "permessage-deflate; server_max_window_bits=12",
        ),
        ("permessage-deflate; server_max_window_bits=9", 12, "permessage-deflate; server_max_window_bits=9"),
    ],
)
def test_server_negotiation_with_a_window_limit(offer: str, limit: int, answer: str) -> None:
    assert negotiate(offer, DeflateSettings(max_window_bits=limit)) == answer


def test_server_no_context_takeover_setting_asks_both_ways() -> None:
    got = negotiate("permessage-deflate", DeflateSettings(no_context_takeover=True))
    assert got == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def test_client_offer_strings() -> None:
    assert client_offer(DeflateSettings()) == "permessage-deflate; client_max_window_bits"
    assert client_offer(DeflateSettings(max_window_bits=10)) == (
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"
    )
    assert client_offer(DeflateSettings(no_context_takeover=True)) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
    )
    for settings_ in (DeflateSettings(), DeflateSettings(max_window_bits=8, no_context_takeover=True)):
        # Whatever we offer, our own server accepts it as is.
        assert server_negotiate(offers(client_offer(settings_)), settings_) is not None


def accept(answer: str, settings: DeflateSettings | None = None) -> DeflateParams | None:
    return client_accept(offers(answer) if answer else [], settings or DeflateSettings())


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("", None),
        ("permessage-deflate", DeflateParams()),
        ("permessage-deflate; server_no_context_takeover", DeflateParams(server_no_context_takeover=True)),
        # The server may add client_no_context_takeover unasked (§7.1.1.2) ...
        ("permessage-deflate; client_no_context_takeover", DeflateParams(client_no_context_takeover=True)),
        # ... and server_max_window_bits unasked (§7.1.2.1).
        ("permessage-deflate; server_max_window_bits=10", DeflateParams(server_max_window_bits=10)),
        # client_max_window_bits: we offered it, so any valid value is fine.
        ("permessage-deflate; client_max_window_bits=8", DeflateParams(client_max_window_bits=8)),
        ("permessage-deflate; client_max_window_bits=15", DeflateParams(client_max_window_bits=15)),
    ],
)
def test_client_accepts_valid_answers(answer: str, expected: DeflateParams | None) -> None:
    assert accept(answer) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "permessage-deflate, permessage-deflate",  # one answer at most (§5.2)
        "permessage-deflate; unknown",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits",  # needs a value in a response (§7.1.2.2)
        "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; client_max_window_bits=09",
    ],
)
def test_client_fails_on_illegal_answers(answer: str) -> None:
    with pytest.raises(NegotiationError):
        accept(answer)


def test_client_checks_the_server_window_it_asked_for() -> None:
    limited = DeflateSettings(max_window_bits=10)
    assert accept("permessage-deflate; server_max_window_bits=10", limited) == DeflateParams(
        server_max_window_bits=10
    )
    assert accept("permessage-deflate; server_max_window_bits=9", limited) == DeflateParams(
        server_max_window_bits=9
    )
    with pytest.raises(NegotiationError, match="above the 10 we offered"):
        accept("permessage-deflate; server_max_window_bits=11", limited)
    # An answer without the limit is a configuration we can still decode (15 bits).
    assert accept("permessage-deflate", limited) == DeflateParams()


def test_params_header_round_trip() -> None:
    params = DeflateParams(True, True, 9, 10)
    assert accept(params.header()) == params


@pytest.mark.parametrize(
    "kwargs",
    [{"max_window_bits": 7}, {"max_window_bits": 16}, {"level": 10}, {"mem_level": 0}, {"threshold": -1}],
)
def test_settings_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        DeflateSettings(**kwargs)


# --------------------------------------------------------------------- codec


def rsv_of(frame: bytes) -> int:
    return frame[0] & 0x70


def test_fragmented_message_rsv1_on_first_frame_only() -> None:
    client, _ = proto(Role.CLIENT)
    frames = [client.send_binary(b"abc" * 50, fin=False), client.send_binary(b"def" * 50, fin=False)]
    frames.append(client.send_binary(b"ghi" * 50))
    assert [rsv_of(f) for f in frames] == [RSV1, 0, 0]
    assert [f[0] & 0x0F for f in frames] == [Opcode.BINARY, Opcode.CONTINUATION, Opcode.CONTINUATION]
    events, _ = receive(Role.SERVER, b"".join(frames))
    assert events == [BytesMessage(b"abc" * 50 + b"def" * 50 + b"ghi" * 50)]


def test_fragment_events_carry_inflated_pieces() -> None:
    client, _ = proto(Role.CLIENT)
    wire = (
        client.send_text("Hello ", fin=False) + client.send_text("World", fin=False) + client.send_text("!")
    )
    events = proto(Role.SERVER, fragments=True)[0].receive_data(wire)
    assert "".join(e.data for e in events if isinstance(e, Fragment)) == "Hello World!"  # type: ignore[misc]
    assert isinstance(events[-1], Fragment)
    assert events[-1].final


def test_rsv1_on_a_continuation_fails_with_1002() -> None:
    first = serialize_frame(Opcode.TEXT, h("f2 48 cd"), fin=False, rsv=RSV1, mask=MASK)
    bad = serialize_frame(Opcode.CONTINUATION, h("c9 c9 07 00"), rsv=RSV1, mask=MASK)
    events, p = receive(Role.SERVER, first + bad)
    assert events == []
    assert p.failure is not None
    assert p.failure.close_code == 1002
    assert "continuation" in str(p.failure)
    # RSV1 on a continuation of an uncompressed message too.
    plain = serialize_frame(Opcode.TEXT, b"He", fin=False, mask=MASK)
    _, p = receive(Role.SERVER, plain + bad)
    assert p.failure is not None
    assert p.failure.close_code == 1002


def test_control_frames_are_never_compressed() -> None:
    server, _ = proto(Role.SERVER)
    assert rsv_of(server.send_ping(b"x" * 125)) == 0
    assert rsv_of(server.send_pong(b"x" * 125)) == 0
    assert rsv_of(server.send_close(1000, "bye")) == 0
    # A control frame with RSV1 is refused by the frame layer (RFC 6455 §5.2).
    _, p = receive(Role.CLIENT, bytes([0x80 | RSV1 | 0x9, 0]))
    assert p.failure is not None
    assert p.failure.close_code == 1002


def test_control_frames_between_compressed_fragments() -> None:
    client, _ = proto(Role.CLIENT)
    wire = client.send_text("Hello " * 30, fin=False) + client.send_ping(b"p") + client.send_text("end")
    events, _ = receive(Role.SERVER, wire)
    assert events[-1] == TextMessage("Hello " * 30 + "end")


def test_uncompressed_messages_pass_through() -> None:
    data = serialize_frame(Opcode.TEXT, b"plain", mask=MASK) + serialize_frame(
        Opcode.BINARY, b"\x00", mask=MASK
    )
    events, _ = receive(Role.SERVER, data)
    assert events == [TextMessage("plain"), BytesMessage(b"\x00")]


def test_context_takeover_shrinks_a_repeated_message() -> None:
    message = "The quick brown fox jumps over the lazy dog. " * 4
    takeover, ext = proto(Role.CLIENT)
    first, second = takeover.send_text(message), takeover.send_text(message)
    assert len(second) < len(first)
    assert ext.holds_state == (True, False)
    fresh, ext2 = proto(Role.CLIENT, DeflateParams(client_no_context_takeover=True))
    assert len(fresh.send_text(message)) == len(fresh.send_text(message)) == len(first)
    assert ext2.holds_state == (False, False)
    # Dropping our own context is always allowed, whatever was agreed.
    local, ext3 = proto(Role.CLIENT, settings=DeflateSettings(threshold=0, no_context_takeover=True))
    assert len(local.send_text(message)) == len(local.send_text(message))
    assert ext3.holds_state == (False, False)
    events, _ = receive(Role.SERVER, first + second)
    assert events == [TextMessage(message)] * 2


def test_receiver_drops_its_inflater_only_when_agreed() -> None:
    client, _ = proto(Role.CLIENT, DeflateParams(client_no_context_takeover=True))
    server, ext = proto(Role.SERVER, DeflateParams(client_no_context_takeover=True))
    assert server.receive_data(client.send_text("x" * 200)) == [TextMessage("x" * 200)]
    assert ext.holds_state == (False, False)
    server2, ext2 = proto(Role.SERVER)
    server2.receive_data(client.send_text("x" * 200))
    assert ext2.holds_state == (False, True)


def test_threshold_and_per_message_opt_out() -> None:
    client, ext = proto(Role.CLIENT, settings=DeflateSettings(threshold=100))
    assert rsv_of(client.send_text("x" * 99)) == 0
    assert rsv_of(client.send_text("x" * 100)) == RSV1
    assert rsv_of(client.send_text("x", fin=False)) == RSV1  # a fragmented message: size unknown
    assert rsv_of(client.send_text("x")) == 0
    ext.compress_outgoing = False
    assert rsv_of(client.send_text("x" * 1000)) == 0
    frames = [client.send_text("y" * 500, fin=False), client.send_text("z" * 500)]
    assert [rsv_of(f) for f in frames] == [0, 0]
    assert frames[1][1] & 0x7F == 126  # sent as is
    ext.compress_outgoing = True
    assert rsv_of(client.send_text("x" * 1000)) == RSV1


def test_invalid_compressed_data_fails_with_1002() -> None:
    _, p = receive(Role.CLIENT, h("c1 03 ff ff ff"))
    assert p.failure is not None
    assert p.failure.close_code == 1002
    assert "invalid compressed data" in str(p.failure)


def test_inflater_window_is_the_negotiated_one() -> None:
    # The server told the client to use 9 bits; a client compressing with 15 and
    # referencing 10 KiB back is caught (zlib: "invalid distance too far back").
    block = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(128))  # 4 KiB, no repeats
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = deflater.compress(block * 12) + deflater.flush(zlib.Z_SYNC_FLUSH)
    frame = serialize_frame(Opcode.BINARY, payload[:-4], rsv=RSV1, mask=MASK)
    _, p = receive(Role.SERVER, frame, DeflateParams(client_max_window_bits=9))
    assert p.failure is not None
    assert p.failure.close_code == 1002
    events, _ = receive(Role.SERVER, frame, DeflateParams(client_max_window_bits=15))
    assert events == [BytesMessage(block * 12)]


def test_window_bits_8_compresses_with_9_and_stays_within_256_bytes() -> None:
    client, _ = proto(Role.CLIENT, DeflateParams(client_max_window_bits=8))
    message = b"".join(bytes([i % 7, i % 11, i % 13, 65 + i % 3]) * 3 for i in range(5000))
    frame = client.send_binary(message)
    assert rsv_of(frame) == RSV1
    server, _ = proto(Role.SERVER, DeflateParams(client_max_window_bits=8))
    assert server.receive_data(frame) == [BytesMessage(message)]
    # An independent oracle: zlib's own 256-byte-window inflater accepts it.
    payload = WebSocketProtocol(Role.SERVER).receive_data(frame)  # no extension: RSV1 refused
    assert payload == []
    raw = _unmask_payload(frame)
    assert zlib.decompressobj(-8).decompress(raw + b"\x00\x00\xff\xff") == message


def _unmask_payload(frame: bytes) -> bytes:
    n = frame[1] & 0x7F
    start = 2 + {126: 2, 127: 8}.get(n, 0)
    mask, body = frame[start : start + 4], frame[start + 4 :]
    return bytes(b ^ mask[i % 4] for i, b in enumerate(body))


def test_message_larger_than_one_inflate_step() -> None:
    message = bytes(5 * INFLATE_STEP + 123)
    client, _ = proto(Role.CLIENT)
    events, _ = receive(Role.SERVER, client.send_binary(message), max_message_size=None)
    assert events == [BytesMessage(message)]


@pytest.mark.parametrize("size", [1000, INFLATE_STEP - 1, INFLATE_STEP, 3 * INFLATE_STEP])
def test_limit_is_exact_after_inflating(size: int) -> None:
    client, _ = proto(Role.CLIENT)
    wire = client.send_binary(bytes(size)) + client.send_binary(bytes(size + 1))
    server, _ = proto(Role.SERVER, max_message_size=size)
    events = server.receive_data(wire)
    assert events == [BytesMessage(bytes(size))]
    assert server.failure is not None
    assert server.failure.close_code == 1009
    assert server.state is State.CLOSED


def test_limit_counts_the_whole_fragmented_message() -> None:
    client, _ = proto(Role.CLIENT)
    wire = b"".join(client.send_binary(bytes(600), fin=False) for _ in range(3)) + client.send_binary(b"")
    server, _ = proto(Role.SERVER, max_message_size=1799)
    server.receive_data(wire)
    assert server.failure is not None
    assert server.failure.close_code == 1009
    server, _ = proto(Role.SERVER, max_message_size=1800)
    assert server.receive_data(wire) == [BytesMessage(bytes(1800))]


def test_decode_direct_no_limit_and_uncompressed() -> None:
    ext = PerMessageDeflate(DeflateParams(), is_server=True)
    first = FrameHeader(True, RSV1, Opcode.TEXT, 7)
    assert ext.decode(first, first, h("f2 48 cd c9 c9 07 00"), end=True, max_size=None) == b"Hello"
    plain = FrameHeader(True, 0, Opcode.TEXT, 5)
    assert ext.decode(plain, plain, b"Hello", end=True, max_size=0) == b"Hello"  # the caller checks
    assert "permessage-deflate" in repr(ext)
    assert ext.name == "permessage-deflate"
    assert ext.rsv_bits == RSV1


# --------------------------------------------------------------- the bomb


def bomb(inflated: int) -> bytes:
    """A compressed payload of ``inflated`` zero bytes (ratio ~1000:1), tail stripped."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts = [deflater.compress(chunk) for _ in range(inflated >> 20)]
    parts.append(deflater.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)[:-4]


def test_bomb_is_stopped_at_max_message_size_with_bounded_memory() -> None:
    payload = bomb(1 << 30)  # 1 GiB of zeros in ~1 MB
    assert len(payload) < 1_100_000
    frame = serialize_frame(Opcode.BINARY, payload, rsv=RSV1, mask=MASK)
    server, _ext = proto(Role.SERVER, max_message_size=1 << 20)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        events = server.receive_data(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events == []
    assert server.failure is not None
    assert server.failure.close_code == 1009
    assert close_code_sent(server) == 1009
    # The frame in the parser's buffer and its unmasked copy (the connection's), at
    # most max_message_size + 1 of output, small input copies and zlib's state.
    growth = peak - base
    assert growth < 2 * len(frame) + (1 << 20) + INFLATE_STEP + (256 << 10), growth
    assert growth < 4 << 20


def test_bomb_in_small_reads_is_stopped_too() -> None:
    payload = bomb(64 << 20)
    frame = serialize_frame(Opcode.BINARY, payload, rsv=RSV1, mask=MASK)
    server, _ = proto(Role.SERVER, max_message_size=100_000)
    for i in range(0, len(frame), 4096):
        server.receive_data(frame[i : i + 4096])
        if server.failure is not None:
            break
    assert server.failure is not None
    assert server.failure.close_code == 1009
    assert i < 4096 * 4  # stopped within the first few reads


# ---------------------------------------------------------------- hypothesis


window = st.one_of(st.none(), st.integers(8, 15))
params_st = st.builds(DeflateParams, st.booleans(), st.booleans(), window, window)
settings_st = st.builds(
    DeflateSettings,
    max_window_bits=st.integers(8, 15),
    level=st.integers(-1, 9),
    mem_level=st.integers(1, 9),
    threshold=st.integers(0, 200),
    no_context_takeover=st.booleans(),
)
message_st = st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=500),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=20), st.integers(1, 300)),
)


def send_all(p: WebSocketProtocol, messages: Sequence[bytes | str], cuts: Sequence[int]) -> bytes:
    out = []
    for message, cut in zip(messages, cuts, strict=True):
        if isinstance(message, str):
            if 0 < cut < len(message):
                out += [p.send_text(message[:cut], fin=False), p.send_text(message[cut:])]
            else:
                out.append(p.send_text(message))
        elif 0 < cut < len(message):
            out += [p.send_binary(message[:cut], fin=False), p.send_binary(message[cut:])]
        else:
            out.append(p.send_binary(message))
    return b"".join(out)


@settings(max_examples=150, deadline=None)
@given(
    params=params_st,
    sender_settings=settings_st,
    receiver_settings=settings_st,
    messages=st.lists(message_st, max_size=6),
    data=st.data(),
    server_sends=st.booleans(),
)
def test_round_trip_any_params_any_split(
    params: DeflateParams,
    sender_settings: DeflateSettings,
    receiver_settings: DeflateSettings,
    messages: list[bytes | str],
    data: st.DataObject,
    server_sends: bool,
) -> None:
    sender_role, receiver_role = (Role.SERVER, Role.CLIENT) if server_sends else (Role.CLIENT, Role.SERVER)
    sender, _ = proto(sender_role, params, sender_settings)
    cuts = [data.draw(st.integers(0, max(len(m), 1))) for m in messages]
    wire = send_all(sender, messages, cuts)
    receiver, _ = proto(receiver_role, params, receiver_settings, max_message_size=None)
    splits = sorted(set(data.draw(st.lists(st.integers(0, len(wire)), max_size=8))))
    events: list[Event] = []
    for start, end in zip([0, *splits], [*splits, len(wire)], strict=True):
        if end > start:  # b"" would mean EOF
            events += receiver.receive_data(wire[start:end])
    assert receiver.failure is None
    expected = [TextMessage(m) if isinstance(m, str) else BytesMessage(m) for m in messages]
    assert events == expected


@settings(max_examples=50, deadline=None)
@given(payload=st.binary(max_size=200), params=params_st)
def test_garbage_never_raises_out_of_receive_data(payload: bytes, params: DeflateParams) -> None:
    frame = serialize_frame(Opcode.BINARY, payload, rsv=RSV1)
    client, _ = proto(Role.CLIENT, params, max_message_size=1000)
    client.receive_data(frame)  # either a message or a failure with a close code
    assert client.failure is None or client.failure.close_code in (1002, 1009)


def test_remote_protocol_error_is_wrapped() -> None:
    ext = PerMessageDeflate(DeflateParams(), is_server=False)
    first = FrameHeader(True, RSV1, Opcode.BINARY, 3)
    with pytest.raises(RemoteProtocolError) as info:
        ext.decode(first, first, b"\xff\xff\xff", end=True, max_size=None)
    assert isinstance(info.value.__cause__, zlib.error)
