"""The RFC 6455 state machine, section by section, from both roles.

Every receive case is fed whole and byte by byte (``run``) and must give the same
events, the same bytes to send and the same failure; hypothesis checks any split.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_ws.exceptions import LocalProtocolError, RemoteProtocolError
from trio_ws.sansio.connection import (
    MIN_OVERHEAD_BUDGET,
    ProtocolStatistics,
    Role,
    State,
    WebSocketProtocol,
)
from trio_ws.sansio.events import (
    BytesMessage,
    CloseReceived,
    Event,
    Fragment,
    Ping,
    Pong,
    TextMessage,
)
from trio_ws.sansio.frames import RSV1, RSV2, FrameHeader, Opcode

MASK = b"\x37\xfa\x21\x3d"
ROLES = [Role.SERVER, Role.CLIENT]

# --- helpers (also used by test_autobahn_cases.py) ----------------------------


def raw_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bytes | None = None
) -> bytes:
    """An independent §5.2 frame encoder (minimal lengths)."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def peer_frame(role: Role, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """A frame as the peer of ``role`` sends it: masked towards a server (§5.1)."""
    return raw_frame(opcode, payload, fin=fin, rsv=rsv, mask=MASK if role is Role.SERVER else None)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def decode_frames(role: Role, data: bytes) -> list[tuple[int, bytes, bool]]:
    """Parse what a ``role`` endpoint sent: ``(opcode, payload, fin)``, checking masking."""
    out = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert b0 & 0x70 == 0
        masked = bool(b1 & 0x80)
        assert masked == (role is Role.CLIENT)  # §5.1
        n = b1 & 0x7F
        pos += 2
        if n == 126:
            (n,) = struct.unpack_from("!H", data, pos)
            pos += 2
        elif n == 127:
            (n,) = struct.unpack_from("!Q", data, pos)
            pos += 8
        mask = data[pos : pos + 4] if masked else b"\0\0\0\0"
        pos += 4 if masked else 0
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[pos : pos + n]))
        out.append((b0 & 0x0F, payload, bool(b0 & 0x80)))
        pos += n
    return out


def make(role: Role, **kwargs: object) -> WebSocketProtocol:
    if role is Role.CLIENT:
        kwargs.setdefault("mask_source", lambda: MASK)
    return WebSocketProtocol(role, **kwargs)  # type: ignore[arg-type]


def reassemble(events: Sequence[Event]) -> list[object]:
    """Merge Fragment runs into (binary, data) tuples, checking offsets and flags."""
    out: list[object] = []
    parts: list[bytes | str] = []
    offset = 0
    for event in events:
        if not isinstance(event, Fragment):
            out.append(event)
            continue
        assert event.offset == offset
        offset += len(event.data.encode() if isinstance(event.data, str) else event.data)
        assert event.binary == isinstance(event.data, bytes)
        parts.append(event.data)
        if event.final:
            assert event.frame_bytes_left == 0
            out.append((event.binary, b"".join(parts) if event.binary else "".join(parts)))  # type: ignore[arg-type]
            parts = []
            offset = 0
    return out


@dataclass
class Outcome:
    proto: WebSocketProtocol
    events: list[Event]
    sent: list[tuple[int, bytes, bool]] = field(default_factory=list)

    @property
    def close_sent(self) -> int | None:
        closes = [p for op, p, _ in self.sent if op == Opcode.CLOSE]
        assert len(closes) == 1
        return struct.unpack("!H", closes[0][:2])[0] if closes[0] else None


def run(role: Role, data: bytes, **kwargs: object) -> Outcome:
    """Feed ``data`` whole and byte by byte; both must agree; return the whole run."""
    results = []
    for bytewise in (False, True):
        proto = make(role, **kwargs)
        if bytewise:
            events = [e for i in range(len(data)) for e in proto.receive_data(data[i : i + 1])]
        else:
            events = proto.receive_data(data)
        results.append(Outcome(proto, events, decode_frames(role, proto.data_to_send())))
    whole, split = results
    if kwargs.get("fragments"):
        assert reassemble(whole.events) == reassemble(split.events)
    else:
        assert whole.events == split.events
    assert whole.sent == split.sent
    assert whole.proto.state is split.proto.state
    assert repr(whole.proto.failure) == repr(split.proto.failure)
    return whole


def assert_fails(role: Role, data: bytes, code: int, **kwargs: object) -> Outcome:
    """The peer broke the protocol: we queue Close(code), go CLOSED, ignore the rest."""
    out = run(role, data, **kwargs)
    proto = out.proto
    assert isinstance(proto.failure, RemoteProtocolError)
    assert proto.failure.close_code == code
    assert out.close_sent == code
    assert out.sent[-1][0] == Opcode.CLOSE
    assert proto.state is State.CLOSED
    assert proto.close_code_sent == code
    assert not proto.closed_cleanly
    assert proto.receive_data(peer_frame(role, Opcode.TEXT, b"later")) == []
    assert proto.data_to_send() == b""
    return out


# --- construction -------------------------------------------------------------


class TestConstruction:
    def test_client_needs_mask_source(self) -> None:
        with pytest.raises(ValueError, match="mask_source"):
            WebSocketProtocol(Role.CLIENT)

    @pytest.mark.parametrize("name", ["max_message_size", "max_frame_size"])
    def test_negative_limits(self, name: str) -> None:
        with pytest.raises(ValueError, match=name):
            make(Role.SERVER, **{name: -1})

    def test_initial_state(self) -> None:
        proto = make(Role.SERVER)
        assert (proto.role, proto.state, proto.failure) == (Role.SERVER, State.OPEN, None)
        assert (proto.close_code_received, proto.close_reason_received) == (None, "")
        assert (proto.close_code_sent, proto.close_reason_sent) == (None, "")
        assert not (proto.close_sent)
        assert not (proto.close_received)
        assert not (proto.closed_cleanly)
        assert proto.data_to_send() == b""


# --- §5.1 / §5.3 masking -------------------------------------------------------


class TestSection5_1Masking:
    def test_server_rejects_unmasked(self) -> None:
        assert_fails(Role.SERVER, raw_frame(1, b"hi"), 1002)

    def test_client_rejects_masked(self) -> None:
        assert_fails(Role.CLIENT, raw_frame(1, b"hi", mask=MASK), 1002)

    def test_client_masks_with_fresh_keys(self) -> None:
        keys = iter([b"\x01\x02\x03\x04", b"\x05\x06\x07\x08"])
        proto = WebSocketProtocol(Role.CLIENT, mask_source=lambda: next(keys))
        assert proto.send_text("Hello") == raw_frame(1, b"Hello", mask=b"\x01\x02\x03\x04")
        assert proto.send_ping() == raw_frame(9, b"", mask=b"\x05\x06\x07\x08")

    def test_server_never_masks(self) -> None:
        proto = WebSocketProtocol(Role.SERVER, mask_source=lambda: MASK)
        assert proto.send_binary(b"x") == b"\x82\x01x"

    def test_bad_mask_source(self) -> None:
        proto = WebSocketProtocol(Role.CLIENT, mask_source=lambda: b"abc")
        with pytest.raises(ValueError, match="4 bytes"):
            proto.send_text("x")


# --- §5.2 base framing -------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
class TestSection5_2Framing:
    @pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
    @pytest.mark.parametrize("opcode", [1, 2, 9])
    def test_reserved_bits_without_extension(self, role: Role, rsv: int, opcode: int) -> None:
        assert_fails(role, peer_frame(role, opcode, b"x", rsv=rsv), 1002)

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_reserved_opcodes(self, role: Role, opcode: int) -> None:
        assert_fails(role, peer_frame(role, opcode, b""), 1002)

    def test_64_bit_length_msb(self, role: Role) -> None:
        mask = MASK if role is Role.SERVER else b""
        data = bytes([0x82, (0x80 if mask else 0) | 127]) + struct.pack("!Q", 1 << 63) + mask
        assert_fails(role, data, 1002, max_message_size=None)

    def test_non_minimal_length(self, role: Role) -> None:
        mask = MASK if role is Role.SERVER else b""
        data = bytes([0x82, (0x80 if mask else 0) | 126, 0, 3]) + mask + b"abc"
        assert_fails(role, data, 1002)

    def test_batch_of_messages(self, role: Role) -> None:
        """Every complete frame in one receive_data() call is processed."""
        data = b"".join(peer_frame(role, 1, b"m%d" % i) for i in range(100))
        out = run(role, data)
        assert out.events == [TextMessage(f"m{i}") for i in range(100)]

    def test_events_before_a_violation_are_kept(self, role: Role) -> None:
        data = peer_frame(role, 2, b"ok") + peer_frame(role, 3, b"")
        out = assert_fails(role, data, 1002)
        assert out.events == [BytesMessage(b"ok")]


# --- §5.4 fragmentation -------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
class TestSection5_4Fragmentation:
    def test_text_fragments(self, role: Role) -> None:
        data = (
            peer_frame(role, 1, b"Hel", fin=False)
            + peer_frame(role, 0, b"", fin=False)
            + peer_frame(role, 0, b"lo")
        )
        assert run(role, data).events == [TextMessage("Hello")]

    def test_binary_fragments(self, role: Role) -> None:
        data = peer_frame(role, 2, b"\x00\x01", fin=False) + peer_frame(role, 0, b"\x02")
        assert run(role, data).events == [BytesMessage(b"\x00\x01\x02")]

    def test_empty_fragmented_message(self, role: Role) -> None:
        data = peer_frame(role, 2, b"", fin=False) + peer_frame(role, 0, b"")
        assert run(role, data).events == [BytesMessage(b"")]

    def test_control_frames_interleaved(self, role: Role) -> None:
        """§5.4: control frames MAY be injected in the middle of a fragmented message."""
        data = (
            peer_frame(role, 1, b"fra", fin=False)
            + peer_frame(role, 9, b"ping")
            + peer_frame(role, 0, b"gm", fin=False)
            + peer_frame(role, 10, b"pong")
            + peer_frame(role, 0, b"ent")
        )
        out = run(role, data)
        assert out.events == [Ping(b"ping"), Pong(b"pong"), TextMessage("fragment")]
        assert out.sent == [(Opcode.PONG, b"ping", True)]

    def test_continuation_without_message(self, role: Role) -> None:
        assert_fails(role, peer_frame(role, 0, b"x"), 1002)
        assert_fails(role, peer_frame(role, 0, b"x", fin=False), 1002)

    def test_continuation_after_finished_message(self, role: Role) -> None:
        data = peer_frame(role, 1, b"done") + peer_frame(role, 0, b"more")
        assert assert_fails(role, data, 1002).events == [TextMessage("done")]

    @pytest.mark.parametrize("opcode", [1, 2])
    def test_new_message_inside_fragmented_one(self, role: Role, opcode: int) -> None:
        data = peer_frame(role, 1, b"a", fin=False) + peer_frame(role, opcode, b"b")
        assert_fails(role, data, 1002)

    def test_many_empty_fragments_are_legal(self, role: Role) -> None:
        data = (
            peer_frame(role, 1, b"", fin=False)
            + peer_frame(role, 0, b"", fin=False) * 1000
            + peer_frame(role, 0, b"end")
        )
        assert run(role, data).events == [TextMessage("end")]

    def test_endless_empty_fragments_are_bounded(self, role: Role) -> None:
        """The cost of empty frames is bounded: header bytes count toward a budget."""
        empty = peer_frame(role, 0, b"", fin=False)
        count = MIN_OVERHEAD_BUDGET // len(empty) + 1
        proto = make(role, max_message_size=1000)
        assert proto.receive_data(peer_frame(role, 1, b"", fin=False) + empty * count) == []
        assert proto.failure is not None
        assert proto.failure.close_code == 1009

    def test_budget_fits_reasonably_fragmented_max_message(self, role: Role) -> None:
        """A message at the size limit in 14-byte fragments is never refused."""
        size = MIN_OVERHEAD_BUDGET * 2
        chunk = b"x" * 14
        data = peer_frame(role, 2, chunk, fin=False)
        data += peer_frame(role, 0, chunk, fin=False) * (size // 14 - 2)
        data += peer_frame(role, 0, chunk + bytes(size % 14))
        proto = make(role, max_message_size=size)
        assert proto.receive_data(data) == [BytesMessage(b"x" * (size - size % 14) + bytes(size % 14))]

    def test_no_limit_no_budget(self, role: Role) -> None:
        empty = peer_frame(role, 0, b"", fin=False)
        proto = make(role, max_message_size=None)
        data = (
            peer_frame(role, 1, b"", fin=False)
            + empty * (MIN_OVERHEAD_BUDGET // 2)
            + peer_frame(role, 0, b"")
        )
        assert proto.receive_data(data) == [TextMessage("")]


# --- §5.5 control frames ------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
class TestSection5_5Control:
    def test_ping_is_answered(self, role: Role) -> None:
        """§5.5.2: a Pong with identical application data, and a Ping event."""
        out = run(role, peer_frame(role, 9, b"\x00\xffhello"))
        assert out.events == [Ping(b"\x00\xffhello")]
        assert out.sent == [(Opcode.PONG, b"\x00\xffhello", True)]
        assert out.proto.state is State.OPEN

    def test_every_ping_is_answered(self, role: Role) -> None:
        out = run(role, peer_frame(role, 9, b"1") + peer_frame(role, 9, b"2"))
        assert out.sent == [(Opcode.PONG, b"1", True), (Opcode.PONG, b"2", True)]

    def test_ping_125_bytes(self, role: Role) -> None:
        assert run(role, peer_frame(role, 9, bytes(125))).events == [Ping(bytes(125))]

    def test_ping_126_bytes(self, role: Role) -> None:
        assert_fails(role, peer_frame(role, 9, bytes(126)), 1002)

    @pytest.mark.parametrize("opcode", [8, 9, 10])
    def test_fragmented_control_frame(self, role: Role, opcode: int) -> None:
        assert_fails(role, peer_frame(role, opcode, b"", fin=False), 1002)

    def test_unsolicited_pong(self, role: Role) -> None:
        out = run(role, peer_frame(role, 10, b"beat"))
        assert (out.events, out.sent) == ([Pong(b"beat")], [])

    def test_no_pong_after_our_close(self, role: Role) -> None:
        proto = make(role)
        proto.send_close()
        assert proto.receive_data(peer_frame(role, 9, b"late")) == [Ping(b"late")]
        assert proto.data_to_send() == b""


# --- §5.5.1 / §7 closing ------------------------------------------------------------

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("role", ROLES)
class TestSection5_5_1Close:
    @pytest.mark.parametrize("code", VALID_CODES)
    def test_close_is_echoed(self, role: Role, code: int) -> None:
        out = run(role, peer_frame(role, 8, close_payload(code, "bye κ".encode())))
        assert out.events == [CloseReceived(code, "bye κ")]
        assert out.sent == [(Opcode.CLOSE, close_payload(code, "bye κ".encode()), True)]
        proto = out.proto
        assert proto.state is State.CLOSED
        assert (proto.close_code_received, proto.close_reason_received) == (code, "bye κ")
        assert (proto.close_code_sent, proto.close_reason_sent) == (code, "bye κ")
        assert proto.close_received
        assert proto.close_sent
        assert proto.closed_cleanly

    @pytest.mark.parametrize("code", INVALID_CODES)
    def test_invalid_close_code(self, role: Role, code: int) -> None:
        assert_fails(role, peer_frame(role, 8, close_payload(code)), 1002)

    def test_empty_close(self, role: Role) -> None:
        """§7.1.5: no status code is reported as 1005 (here: None); echo without one."""
        out = run(role, peer_frame(role, 8))
        assert out.events == [CloseReceived(None, "")]
        assert out.sent == [(Opcode.CLOSE, b"", True)]
        assert out.close_sent is None

    def test_one_byte_close(self, role: Role) -> None:
        assert_fails(role, peer_frame(role, 8, b"\x03"), 1002)

    def test_invalid_utf8_reason(self, role: Role) -> None:
        assert_fails(role, peer_frame(role, 8, close_payload(1000, b"\xce\xba\xff")), 1007)

    def test_data_after_close_is_ignored(self, role: Role) -> None:
        data = peer_frame(role, 8, close_payload(1000)) + peer_frame(role, 1, b"late")
        data += peer_frame(role, 9, b"") + peer_frame(role, 3, b"garbage")
        out = run(role, data)
        assert out.events == [CloseReceived(1000, "")]
        assert len(out.sent) == 1
        assert out.proto.failure is None
        assert out.proto.receive_data(peer_frame(role, 1, b"later")) == []

    def test_close_mid_message_discards_it(self, role: Role) -> None:
        data = peer_frame(role, 1, b"part", fin=False) + peer_frame(role, 8, close_payload(1001))
        assert run(role, data).events == [CloseReceived(1001, "")]

    def test_we_close_first(self, role: Role) -> None:
        proto = make(role)
        frame = proto.send_close(1001, "going")
        assert decode_frames(role, frame) == [(Opcode.CLOSE, close_payload(1001, b"going"), True)]
        assert proto.state is State.CLOSING
        # Data still arriving before the peer saw our Close is delivered.
        assert proto.receive_data(peer_frame(role, 1, b"in flight")) == [TextMessage("in flight")]
        assert proto.receive_data(peer_frame(role, 8, close_payload(1001))) == [CloseReceived(1001, "")]
        assert proto.data_to_send() == b""  # no second Close
        assert proto.statistics().state is State.CLOSED
        assert proto.closed_cleanly

    def test_eof_without_close(self, role: Role) -> None:
        proto = make(role)
        assert proto.receive_data(peer_frame(role, 1, b"abc", fin=False)) == []
        assert proto.receive_data(b"") == []
        assert proto.state is State.CLOSED
        assert proto.failure is None
        assert not proto.closed_cleanly
        assert proto.close_code_received is None
        with pytest.raises(LocalProtocolError, match="closed"):
            proto.send_text("x")


# --- §5.6 data frames, §8.1 UTF-8 ----------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
class TestSection5_6Data:
    def test_text_and_binary(self, role: Role) -> None:
        data = peer_frame(role, 1, "κόσμε".encode()) + peer_frame(role, 2, b"\xff\x00")
        assert run(role, data).events == [TextMessage("κόσμε"), BytesMessage(b"\xff\x00")]

    def test_invalid_utf8(self, role: Role) -> None:
        assert_fails(role, peer_frame(role, 1, b"ok\xed\xa0\x80"), 1007)

    def test_invalid_utf8_fails_fast(self, role: Role) -> None:
        """§8.1: the first bad fragment fails the connection, not the end of the message."""
        proto = make(role)
        proto.receive_data(peer_frame(role, 1, b"ok", fin=False))
        assert proto.failure is None
        proto.receive_data(peer_frame(role, 0, b"\xf4\x90", fin=False))
        assert proto.failure is not None
        assert proto.failure.close_code == 1007

    def test_invalid_utf8_fails_fast_inside_a_frame(self, role: Role) -> None:
        proto = make(role)
        frame = peer_frame(role, 1, b"abc\xed\xa0" + bytes(1000))
        proto.receive_data(frame[: len(frame) - 1000])  # the frame is not complete
        assert proto.failure is not None
        assert proto.failure.close_code == 1007

    def test_codepoint_split_across_fragments(self, role: Role) -> None:
        data = peer_frame(role, 1, b"\xf0\x9f", fin=False) + peer_frame(role, 0, b"\x98\x80")
        assert run(role, data).events == [TextMessage("😀")]

    def test_truncated_codepoint_at_message_end(self, role: Role) -> None:
        data = peer_frame(role, 1, b"a\xf0\x9f", fin=False) + peer_frame(role, 0, b"\x98")
        assert_fails(role, data, 1007)


# --- Fragment events ------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
class TestFragmentEvents:
    def test_partial_frames_are_delivered(self, role: Role) -> None:
        proto = make(role, fragments=True)
        frame = peer_frame(role, 2, b"0123456789", fin=False)
        assert proto.receive_data(frame[:-6]) == [Fragment(b"0123", True, 0, 6, False)]
        assert proto.receive_data(frame[-6:]) == [Fragment(b"456789", True, 4, 0, False)]
        assert proto.receive_data(peer_frame(role, 0, b"ab")) == [Fragment(b"ab", True, 10, 0, True)]

    def test_text_pieces_are_whole_codepoints(self, role: Role) -> None:
        proto = make(role, fragments=True)
        raw = "a€b".encode()  # 61 e2 82 ac 62
        events = proto.receive_data(peer_frame(role, 1, raw[:2], fin=False))
        events += proto.receive_data(peer_frame(role, 0, raw[2:3], fin=False))
        events += proto.receive_data(peer_frame(role, 0, raw[3:]))
        assert events == [Fragment("a", False, 0, 0, False), Fragment("€b", False, 1, 0, True)]

    def test_empty_message(self, role: Role) -> None:
        out = run(role, peer_frame(role, 1, b""), fragments=True)
        assert out.events == [Fragment("", False, 0, 0, True)]

    def test_reassembles_like_messages(self, role: Role) -> None:
        data = (
            peer_frame(role, 1, "κόσ".encode(), fin=False)
            + peer_frame(role, 9, b"p")
            + peer_frame(role, 0, "με".encode())
            + peer_frame(role, 2, bytes(300))
        )
        out = run(role, data, fragments=True)
        assert reassemble(out.events) == [Ping(b"p"), (False, "κόσμε"), (True, bytes(300))]

    def test_fails_fast(self, role: Role) -> None:
        data = peer_frame(role, 1, b"ok", fin=False) + peer_frame(role, 0, b"\xc0", fin=False)
        out = assert_fails(role, data, 1007, fragments=True)
        assert reassemble(out.events) == []

    def test_limits_apply(self, role: Role) -> None:
        data = peer_frame(role, 2, bytes(10), fin=False) + peer_frame(role, 0, bytes(11))
        assert_fails(role, data, 1009, fragments=True, max_message_size=20)


# --- limits -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
class TestLimits:
    def test_max_frame_size_from_header(self, role: Role) -> None:
        header = peer_frame(role, 2, bytes(101))[:8]
        assert_fails(role, header, 1009, max_frame_size=100)

    def test_max_frame_size_exact(self, role: Role) -> None:
        out = run(role, peer_frame(role, 2, bytes(100)), max_frame_size=100)
        assert out.events == [BytesMessage(bytes(100))]

    def test_max_message_size_from_header(self, role: Role) -> None:
        """A single frame over the limit fails before its payload arrives."""
        proto = make(role, max_message_size=1000)
        assert proto.receive_data(peer_frame(role, 2, bytes(1001))[:8]) == []
        assert proto.failure is not None
        assert proto.failure.close_code == 1009
        assert decode_frames(role, proto.data_to_send())[0][1][:2] == b"\x03\xf1"

    def test_max_message_size_across_fragments(self, role: Role) -> None:
        data = peer_frame(role, 1, b"a" * 600, fin=False) + peer_frame(role, 0, b"a" * 401)[:8]
        assert_fails(role, data, 1009, max_message_size=1000)

    def test_max_message_size_exact(self, role: Role) -> None:
        data = peer_frame(role, 1, b"a" * 600, fin=False) + peer_frame(role, 0, b"a" * 400)
        assert run(role, data, max_message_size=1000).events == [TextMessage("a" * 1000)]

    def test_unlimited(self, role: Role) -> None:
        proto = make(role, max_message_size=None)
        assert proto.receive_data(peer_frame(role, 2, bytes(1 << 21))) == [BytesMessage(bytes(1 << 21))]


# --- sending ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
class TestSending:
    def test_messages(self, role: Role) -> None:
        proto = make(role)
        data = proto.send_text("κ") + proto.send_binary(b"\x00") + proto.send_binary(bytearray(70000))
        assert decode_frames(role, data) == [
            (Opcode.TEXT, "κ".encode(), True),
            (Opcode.BINARY, b"\x00", True),
            (Opcode.BINARY, bytes(70000), True),
        ]

    def test_fragmented_send(self, role: Role) -> None:
        """§5.4: the first frame carries the type, the rest are continuations."""
        proto = make(role)
        data = proto.send_text("a", fin=False) + proto.send_ping(b"p")
        data += proto.send_text("b", fin=False) + proto.send_text("c")
        data += proto.send_binary(b"d", fin=False) + proto.send_binary(b"e")
        assert decode_frames(role, data) == [
            (Opcode.TEXT, b"a", False),
            (Opcode.PING, b"p", True),
            (Opcode.CONTINUATION, b"b", False),
            (Opcode.CONTINUATION, b"c", True),
            (Opcode.BINARY, b"d", False),
            (Opcode.CONTINUATION, b"e", True),
        ]

    def test_type_switch_mid_message(self, role: Role) -> None:
        proto = make(role)
        proto.send_text("a", fin=False)
        with pytest.raises(LocalProtocolError, match="inside a fragmented text"):
            proto.send_binary(b"b")
        assert decode_frames(role, proto.send_text("b"))[0][0] == Opcode.CONTINUATION

    def test_control_payload_limit(self, role: Role) -> None:
        proto = make(role)
        proto.send_ping(bytes(125))
        with pytest.raises(LocalProtocolError, match="125"):
            proto.send_ping(bytes(126))
        with pytest.raises(LocalProtocolError, match="125"):
            proto.send_pong(bytes(126))
        assert decode_frames(role, proto.send_pong(b"hb")) == [(Opcode.PONG, b"hb", True)]

    @pytest.mark.parametrize(
        "send",
        [
            lambda p: p.send_text("x"),
            lambda p: p.send_binary(b"x"),
            lambda p: p.send_ping(),
            lambda p: p.send_pong(),
            lambda p: p.send_close(),
        ],
    )
    def test_nothing_after_close(self, role: Role, send: object) -> None:
        proto = make(role)
        proto.send_close()
        with pytest.raises(LocalProtocolError, match="closing"):
            send(proto)  # type: ignore[operator]

    def test_nothing_after_close_received(self, role: Role) -> None:
        proto = make(role)
        proto.receive_data(peer_frame(role, 8, close_payload(1000)))
        with pytest.raises(LocalProtocolError, match="closed"):
            proto.send_text("x")

    @pytest.mark.parametrize("code", INVALID_CODES)
    def test_send_close_invalid_code(self, role: Role, code: int) -> None:
        with pytest.raises(LocalProtocolError, match="may not be sent"):
            make(role).send_close(code)

    def test_send_close_reason_limit(self, role: Role) -> None:
        make(role).send_close(1000, "é" * 61 + "x")  # 123 bytes
        with pytest.raises(LocalProtocolError, match="123"):
            make(role).send_close(1000, "é" * 62)

    def test_send_close_without_code(self, role: Role) -> None:
        proto = make(role)
        assert decode_frames(role, proto.send_close(None)) == [(Opcode.CLOSE, b"", True)]
        assert proto.close_code_sent is None
        assert proto.close_sent
        with pytest.raises(LocalProtocolError, match="needs a close code"):
            make(role).send_close(None, "why")

    def test_fail(self, role: Role) -> None:
        proto = make(role)
        frame = proto.fail(1011, "x" * 200)
        [(op, payload, _)] = decode_frames(role, frame)
        assert (op, payload) == (Opcode.CLOSE, close_payload(1011, b"x" * 123))
        assert proto.state is State.CLOSED
        assert proto.failure is None
        assert proto.receive_data(peer_frame(role, 8, close_payload(1000))) == []
        assert proto.fail(1011) == b""

    def test_fail_after_close_sent(self, role: Role) -> None:
        proto = make(role)
        proto.send_close()
        assert proto.fail(1001) == b""
        assert proto.state is State.CLOSED
        assert proto.close_code_sent == 1000

    def test_fail_invalid_code(self, role: Role) -> None:
        with pytest.raises(LocalProtocolError):
            make(role).fail(1006)

    def test_fail_truncates_on_codepoints(self, role: Role) -> None:
        [(_, payload, _)] = decode_frames(role, make(role).fail(1001, "é" * 100))
        assert payload[2:].decode() == "é" * 61


# --- the extension seam (§9, RFC 7692's use of RSV1) ------------------------------------


class Inverting:
    """A toy extension: a message with RSV1 on its first frame has its bytes inverted."""

    name = "x-invert"
    rsv_bits = RSV1

    def __init__(self, growth: int = 1, enforce: bool = True) -> None:
        self.growth = growth
        self.enforce = enforce
        self.calls: list[tuple[bool, bool]] = []

    def decode(
        self, message: FrameHeader, frame: FrameHeader, data: bytes, *, end: bool, max_size: int | None
    ) -> bytes:
        if frame.opcode is Opcode.CONTINUATION and frame.rsv1:
            raise RemoteProtocolError("RSV1 on a continuation frame")
        self.calls.append((message.rsv1, end))
        if not message.rsv1:
            return data
        out = bytes(b ^ 0xFF for b in data) * self.growth
        if self.enforce and max_size is not None and len(out) > max_size:
            raise RemoteProtocolError("inflated message too big", close_code=1009)
        return out

    def encode(self, opcode: Opcode, data: bytes, *, first: bool, fin: bool) -> tuple[int, bytes]:
        return (RSV1 if first else 0), bytes(b ^ 0xFF for b in data)


class TestExtensionSeam:
    def test_round_trip_client_to_server(self) -> None:
        client = make(Role.CLIENT, extensions=[Inverting()])
        ext = Inverting()
        server = make(Role.SERVER, extensions=[ext])
        data = client.send_text("hé", fin=False) + client.send_text("llo") + client.send_binary(b"\x01")
        assert data[0] & 0x40  # RSV1 on the first frame only
        assert not data[2 + 4 + 3] & 0x40
        assert server.receive_data(data) == [TextMessage("héllo"), BytesMessage(b"\x01")]
        assert ext.calls == [(True, False), (True, True), (True, True)]

    def test_uncompressed_message_passes_through(self) -> None:
        ext = Inverting()
        out = run(Role.SERVER, peer_frame(Role.SERVER, 2, b"plain"), extensions=[ext])
        assert out.events == [BytesMessage(b"plain")]

    def test_fragment_events_are_decoded(self) -> None:
        data = peer_frame(Role.SERVER, 1, bytes(b ^ 0xFF for b in b"abc"), rsv=RSV1)
        out = run(Role.SERVER, data, extensions=[Inverting()], fragments=True)
        assert reassemble(out.events) == [(False, "abc")]

    def test_unclaimed_bits_still_fail(self) -> None:
        assert_fails(Role.SERVER, peer_frame(Role.SERVER, 2, b"x", rsv=RSV2), 1002, extensions=[Inverting()])
        assert_fails(Role.SERVER, peer_frame(Role.SERVER, 9, b"x", rsv=RSV1), 1002, extensions=[Inverting()])

    def test_extension_rejects(self) -> None:
        data = peer_frame(Role.SERVER, 2, b"a", fin=False, rsv=RSV1) + peer_frame(
            Role.SERVER, 0, b"b", rsv=RSV1
        )
        assert_fails(Role.SERVER, data, 1002, extensions=[Inverting()])

    def test_decoded_size_is_bounded_by_extension(self) -> None:
        data = peer_frame(Role.SERVER, 2, bytes(60), rsv=RSV1)
        assert_fails(Role.SERVER, data, 1009, extensions=[Inverting(growth=2)], max_message_size=100)

    def test_decoded_size_is_bounded_even_if_extension_does_not(self) -> None:
        data = peer_frame(Role.SERVER, 2, bytes(60), rsv=RSV1)
        ext = Inverting(growth=2, enforce=False)
        assert_fails(Role.SERVER, data, 1009, extensions=[ext], max_message_size=100)
        ok = run(Role.SERVER, data, extensions=[Inverting(growth=2, enforce=False)], max_message_size=None)
        assert ok.events == [BytesMessage(b"\xff" * 120)]


# --- statistics ---------------------------------------------------------------------------------


def test_statistics() -> None:
    proto = make(Role.SERVER)
    frame = peer_frame(Role.SERVER, 2, bytes(10), fin=False)
    proto.receive_data(frame + peer_frame(Role.SERVER, 9, b"")[:3])
    assert proto.statistics() == ProtocolStatistics(State.OPEN, 3, 10, 0)
    proto.receive_data(peer_frame(Role.SERVER, 9, b"")[3:])
    assert proto.statistics().bytes_to_send == 2


# --- hypothesis: any split, any messages, both directions -------------------------------------

message_strategy = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=200), st.integers(1, 4)),
    st.tuples(st.just("binary"), st.binary(max_size=300), st.integers(1, 4)),
    st.tuples(st.just("ping"), st.binary(max_size=125), st.just(1)),
)


def _send_all(sender: WebSocketProtocol, messages: list[tuple[str, str | bytes, int]]) -> bytes:
    out = b""
    for kind, data, pieces in messages:
        if kind == "ping":
            out += sender.send_ping(data)  # type: ignore[arg-type]
            continue
        step = max(1, len(data) // pieces)
        chunks = [data[i : i + step] for i in range(0, len(data), step)] or [data]
        for i, chunk in enumerate(chunks):
            fin = i == len(chunks) - 1
            if kind == "text":
                out += sender.send_text(chunk, fin=fin)  # type: ignore[arg-type]
            else:
                out += sender.send_binary(chunk, fin=fin)  # type: ignore[arg-type]
    return out


def _expected(messages: list[tuple[str, str | bytes, int]]) -> list[object]:
    out: list[object] = []
    for kind, data, _ in messages:
        if kind == "ping":
            out.append(Ping(data))  # type: ignore[arg-type]
        else:
            out.append(TextMessage(data) if kind == "text" else BytesMessage(data))  # type: ignore[arg-type]
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(ROLES),
    st.lists(message_strategy, max_size=6),
    st.booleans(),
    st.data(),
)
def test_any_split_any_direction(
    receiver_role: Role,
    messages: list[tuple[str, str | bytes, int]],
    fragments: bool,
    data: st.DataObject,
) -> None:
    sender = make(Role.CLIENT if receiver_role is Role.SERVER else Role.SERVER)
    wire = _send_all(sender, messages) + sender.send_close(1000, "done")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=12)))
    receiver = make(receiver_role, fragments=fragments)
    events: list[Event] = []
    start = 0
    for cut in [*cuts, len(wire)]:
        if cut > start:  # b"" would mean EOF
            events += receiver.receive_data(wire[start:cut])
        start = cut
    expected = [*_expected(messages), CloseReceived(1000, "done")]
    if fragments:
        expected = [
            (isinstance(e.data, bytes), e.data) if isinstance(e, TextMessage | BytesMessage) else e
            for e in expected
        ]
        assert reassemble(events) == expected
    else:
        assert events == expected
    pongs = [p for op, p, _ in decode_frames(receiver_role, receiver.data_to_send()) if op == Opcode.PONG]
    assert pongs == [d for k, d, _ in messages if k == "ping"]
    assert receiver.state is State.CLOSED
    assert receiver.closed_cleanly


# --- an independent oracle: wsproto's frame layer as the peer ----------------------------------


class TestOracleWsproto:
    def test_wsproto_client_to_our_server(self) -> None:
        from wsproto.frame_protocol import FrameProtocol

        peer = FrameProtocol(client=True, extensions=[])
        data = peer.send_data("héllo", fin=True) + peer.send_data(b"\x00\x01", fin=False)
        data += peer.ping(b"p") + peer.send_data(b"\x02" * 70000, fin=True) + peer.close(1001, "bye")
        out = run(Role.SERVER, bytes(data))
        assert out.events == [
            TextMessage("héllo"),
            Ping(b"p"),
            BytesMessage(b"\x00\x01" + b"\x02" * 70000),
            CloseReceived(1001, "bye"),
        ]

    @pytest.mark.parametrize("role", ROLES)
    def test_our_frames_parse_in_wsproto(self, role: Role) -> None:
        from wsproto.frame_protocol import FrameProtocol
        from wsproto.frame_protocol import Opcode as WOpcode

        ours = make(role)
        peer = FrameProtocol(client=role is Role.SERVER, extensions=[])
        data = ours.send_text("κ" * 100, fin=False) + ours.send_ping(b"hb") + ours.send_text("end")
        data += ours.send_binary(bytes(70000)) + ours.send_close(1000, "done")
        peer.receive_bytes(data)
        got: list[object] = []
        for f in peer.received_frames():
            payload: object = f.payload
            if isinstance(payload, tuple):  # a Close: (code, reason)
                payload = (int(payload[0]), payload[1])
            elif isinstance(payload, bytearray):
                payload = bytes(payload)
            got.append((f.opcode, payload, f.message_finished))
        # wsproto labels a continuation frame with its message's opcode.
        assert got == [
            (WOpcode.TEXT, "κ" * 100, False),
            (WOpcode.PING, b"hb", True),
            (WOpcode.TEXT, "end", True),
            (WOpcode.BINARY, bytes(70000), True),
            (WOpcode.CLOSE, (1000, "done"), True),
        ]
