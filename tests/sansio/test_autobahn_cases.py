"""The public Autobahn testsuite's categories, as byte-level cases against a server.

Case numbers follow the Autobahn fuzzingclient report (1.x framing, 2.x ping/pong,
3.x reserved bits, 4.x opcodes, 5.x fragmentation, 6.x UTF-8, 7.x closing, 9.x
limits).  Each case is fed whole and byte by byte (``run``) unless its size makes
that pointless, and asserts the exact close code where the connection must fail.
"""

from __future__ import annotations

import pytest

from tests.sansio.test_connection import (
    Outcome,
    assert_fails,
    close_payload,
    decode_frames,
    make,
    peer_frame,
    run,
)
from trio_ws.sansio.connection import Role, State, WebSocketProtocol
from trio_ws.sansio.events import BytesMessage, CloseReceived, Event, Ping, Pong, TextMessage
from trio_ws.sansio.frames import Opcode

SERVER = Role.SERVER


def c(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """A frame from the (masking) Autobahn client."""
    return peer_frame(SERVER, opcode, payload, fin=fin, rsv=rsv)


def ok(data: bytes, **kwargs: object) -> Outcome:
    out = run(SERVER, data, **kwargs)
    assert out.proto.failure is None
    assert out.proto.state is State.OPEN
    return out


def fails(data: bytes, code: int, **kwargs: object) -> Outcome:
    return assert_fails(SERVER, data, code, **kwargs)


def feed_frames(frames: list[bytes]) -> tuple[WebSocketProtocol, list[int]]:
    """Feed frames one by one; return the protocol and per-frame event counts."""
    proto = make(SERVER)
    counts = [len(proto.receive_data(frame)) for frame in frames]
    return proto, counts


def chopped(proto: WebSocketProtocol, data: bytes, size: int) -> list[Event]:
    return [e for i in range(0, len(data), size) for e in proto.receive_data(data[i : i + size])]


# --- 1.x framing ------------------------------------------------------------------------

LENGTHS = [0, 125, 126, 127, 128, 65535, 65536]


class TestCase1Framing:
    @pytest.mark.parametrize("n", LENGTHS)
    def test_1_1_text(self, n: int) -> None:
        assert ok(c(1, b"*" * n)).events == [TextMessage("*" * n)]

    @pytest.mark.parametrize("n", LENGTHS)
    def test_1_2_binary(self, n: int) -> None:
        assert ok(c(2, b"\xfe" * n)).events == [BytesMessage(b"\xfe" * n)]

    @pytest.mark.parametrize("opcode", [1, 2])
    def test_1_x_8_chopped_997(self, opcode: int) -> None:
        proto = make(SERVER)
        events = chopped(proto, c(opcode, b"*" * 65536), 997)
        expected = TextMessage("*" * 65536) if opcode == 1 else BytesMessage(b"*" * 65536)
        assert events == [expected]


# --- 2.x ping / pong -------------------------------------------------------------------


class TestCase2PingPong:
    @pytest.mark.parametrize(
        "payload", [b"", b"Hello, world!", b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", b"\xfe" * 125]
    )
    def test_2_1_to_2_4_ping_answered(self, payload: bytes) -> None:
        out = ok(c(9, payload))
        assert out.events == [Ping(payload)]
        assert out.sent == [(Opcode.PONG, payload, True)]

    def test_2_5_ping_126_bytes(self) -> None:
        fails(c(9, b"\xfe" * 126), 1002)

    def test_2_6_ping_125_chopped(self) -> None:
        proto = make(SERVER)
        assert chopped(proto, c(9, b"\xfe" * 125), 1) == [Ping(b"\xfe" * 125)]
        assert decode_frames(SERVER, proto.data_to_send()) == [(Opcode.PONG, b"\xfe" * 125, True)]

    @pytest.mark.parametrize("payload", [b"", b"unsolicited pong payload"])
    def test_2_7_2_8_unsolicited_pong_ignored(self, payload: bytes) -> None:
        out = ok(c(10, payload))
        assert (out.events, out.sent) == ([Pong(payload)], [])

    def test_2_9_unsolicited_pong_then_ping(self) -> None:
        out = ok(c(10, b"unsolicited") + c(9, b"ping payload"))
        assert out.sent == [(Opcode.PONG, b"ping payload", True)]

    def test_2_10_2_11_ten_pings(self) -> None:
        data = b"".join(c(9, b"payload-%d" % i) for i in range(10))
        out = ok(data)
        assert [p for _, p, _ in out.sent] == [b"payload-%d" % i for i in range(10)]


# --- 3.x reserved bits ---------------------------------------------------------------------


class TestCase3ReservedBits:
    def test_3_1_rsv1_text(self) -> None:
        fails(c(1, b"Hello", rsv=0x40), 1002)

    def test_3_2_rsv2_after_valid_text(self) -> None:
        out = fails(c(1, b"Hello") + c(1, b"Hello", rsv=0x20) + c(9), 1002)
        assert out.events == [TextMessage("Hello")]
        assert [op for op, _, _ in out.sent] == [Opcode.CLOSE]  # the ping is never answered

    def test_3_3_rsv3(self) -> None:
        out = fails(c(1, b"Hello") + c(1, b"Hello", rsv=0x60) + c(9), 1002)
        assert out.events == [TextMessage("Hello")]

    def test_3_4_rsv4_chopped(self) -> None:
        fails(c(1, b"Hello") + c(1, b"Hello", rsv=0x10) + c(9), 1002)

    def test_3_5_binary_rsv5(self) -> None:
        fails(c(2, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=0x50), 1002)

    def test_3_6_ping_rsv6(self) -> None:
        fails(c(9, b"Hello", rsv=0x60), 1002)

    def test_3_7_close_rsv7(self) -> None:
        fails(c(8, b"", rsv=0x70), 1002)


# --- 4.x opcodes ---------------------------------------------------------------------------


class TestCase4Opcodes:
    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7])
    def test_4_1_reserved_non_control(self, opcode: int) -> None:
        out = fails(c(1, b"Hello") + c(opcode, b"reserved") + c(9), 1002)
        assert out.events == [TextMessage("Hello")]

    @pytest.mark.parametrize("opcode", [11, 12, 13, 14, 15])
    def test_4_2_reserved_control(self, opcode: int) -> None:
        out = fails(c(1, b"Hello") + c(opcode, b"reserved") + c(9), 1002)
        assert out.events == [TextMessage("Hello")]


# --- 5.x fragmentation ---------------------------------------------------------------------


class TestCase5Fragmentation:
    @pytest.mark.parametrize("opcode", [9, 10])
    def test_5_1_5_2_fragmented_control(self, opcode: int) -> None:
        fails(c(opcode, b"frag1", fin=False) + c(0, b"frag2"), 1002)

    def test_5_3_to_5_5_two_fragments(self) -> None:
        assert ok(c(1, b"frag1", fin=False) + c(0, b"frag2")).events == [TextMessage("frag1frag2")]

    def test_5_6_to_5_8_ping_between_fragments(self) -> None:
        out = ok(c(1, b"frag1", fin=False) + c(9, b"ping") + c(0, b"frag2"))
        assert out.events == [Ping(b"ping"), TextMessage("frag1frag2")]
        assert out.sent == [(Opcode.PONG, b"ping", True)]

    @pytest.mark.parametrize("fin", [True, False])
    def test_5_9_to_5_14_continuation_without_start(self, fin: bool) -> None:
        out = fails(c(0, b"fragment1", fin=fin) + c(1, b"fragment2") + c(0, b"fragment3"), 1002)
        assert out.events == []

    @pytest.mark.parametrize("fin", [True, False])
    def test_5_15_to_5_17_continuation_after_message(self, fin: bool) -> None:
        data = c(1, b"fragment1", fin=False) + c(0, b"fragment2")
        data += c(0, b"fragment3", fin=fin) + c(1, b"fragment4")
        assert fails(data, 1002).events == [TextMessage("fragment1fragment2")]

    def test_5_18_second_fragment_with_text_opcode(self) -> None:
        fails(c(1, b"fragment1", fin=False) + c(1, b"fragment2"), 1002)

    def test_5_19_5_20_five_fragments_with_pings(self) -> None:
        data = c(1, b"fragment1", fin=False) + c(0, b"fragment2", fin=False) + c(9, b"pongme 1!")
        data += c(0, b"fragment3", fin=False) + c(0, b"fragment4", fin=False)
        data += c(9, b"pongme 2!") + c(0, b"fragment5")
        out = ok(data)
        assert out.events == [
            Ping(b"pongme 1!"),
            Ping(b"pongme 2!"),
            TextMessage("fragment1fragment2fragment3fragment4fragment5"),
        ]
        assert [p for _, p, _ in out.sent] == [b"pongme 1!", b"pongme 2!"]


# --- 6.x UTF-8 -----------------------------------------------------------------------------

VALID_UTF8 = {
    "6.1 empty": b"",
    "6.2 Hello-mu": "Hello-µ@ßöäüàá-UTF-8!!".encode(),
    "6.5 kosme": "κόσμε".encode(),
    "6.7 first 1-byte": b"\x00",
    "6.7 first 2-byte": b"\xc2\x80",
    "6.7 first 3-byte": b"\xe0\xa0\x80",
    "6.7 first 4-byte": b"\xf0\x90\x80\x80",
    "6.9 last 1-byte": b"\x7f",
    "6.9 last 2-byte": b"\xdf\xbf",
    "6.9 last 3-byte": b"\xef\xbf\xbf",
    "6.9 last 4-byte": b"\xf4\x8f\xbf\xbf",
    "6.11 U+D7FF": b"\xed\x9f\xbf",
    "6.11 U+E000": b"\xee\x80\x80",
    "6.11 U+FFFD": b"\xef\xbf\xbd",
    "6.11 U+10FFFF": b"\xf4\x8f\xbf\xbf",
    "6.22 noncharacter U+FFFE": b"\xef\xbf\xbe",
    "6.22 noncharacter U+1FFFF": b"\xf0\x9f\xbf\xbf",
    "6.23 BOM": b"\xef\xbb\xbf",
}

INVALID_UTF8 = {
    "6.3 kosme-edited surrogate": b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    "6.8 first 5-byte": b"\xf8\x88\x80\x80\x80",
    "6.8 first 6-byte": b"\xfc\x84\x80\x80\x80\x80",
    "6.10 last 5-byte": b"\xfb\xbf\xbf\xbf\xbf",
    "6.11 above U+10FFFF": b"\xf4\x90\x80\x80",
    "6.12 lone continuation 80": b"\x80",
    "6.12 lone continuation bf": b"\xbf",
    "6.12 continuation run": b"\x80\xbf\x80\xbf",
    "6.13 lonely start c0": b"\xc0 ",
    "6.13 lonely start e0": b"\xe0 ",
    "6.13 lonely start f0": b"\xf0 ",
    "6.14 2-byte missing last": b"\xc2",
    "6.14 3-byte missing last": b"\xe0\xa0",
    "6.14 4-byte missing last": b"\xf0\x90\x80",
    "6.15 incomplete concatenation": b"\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf",
    "6.16 fe": b"\xfe",
    "6.16 ff": b"\xff",
    "6.16 fe fe ff ff": b"\xfe\xfe\xff\xff",
    "6.17 overlong / 2-byte": b"\xc0\xaf",
    "6.17 overlong / 3-byte": b"\xe0\x80\xaf",
    "6.17 overlong / 4-byte": b"\xf0\x80\x80\xaf",
    "6.18 max overlong 2-byte": b"\xc1\xbf",
    "6.18 max overlong 3-byte": b"\xe0\x9f\xbf",
    "6.18 max overlong 4-byte": b"\xf0\x8f\xbf\xbf",
    "6.19 overlong NUL": b"\xc0\x80",
    "6.20 surrogate U+D800": b"\xed\xa0\x80",
    "6.20 surrogate U+DB7F": b"\xed\xad\xbf",
    "6.20 surrogate U+DFFF": b"\xed\xbf\xbf",
    "6.21 paired surrogates": b"\xed\xa0\x80\xed\xb0\x80",
}


class TestCase6Utf8:
    @pytest.mark.parametrize("raw", VALID_UTF8.values(), ids=VALID_UTF8.keys())
    def test_valid_whole(self, raw: bytes) -> None:
        assert ok(c(1, raw)).events == [TextMessage(raw.decode())]

    @pytest.mark.parametrize("raw", VALID_UTF8.values(), ids=VALID_UTF8.keys())
    def test_valid_one_byte_fragments(self, raw: bytes) -> None:
        """6.2.3/6.6.x: a valid message fragmented at every byte."""
        if not raw:
            data = c(1, b"", fin=False) + c(0, b"", fin=False) + c(0, b"")  # 6.1.2/6.1.3
        else:
            frames = [c(0 if i else 1, raw[i : i + 1], fin=i == len(raw) - 1) for i in range(len(raw))]
            data = b"".join(frames)
        assert ok(data).events == [TextMessage(raw.decode())]

    @pytest.mark.parametrize("raw", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
    def test_invalid_whole(self, raw: bytes) -> None:
        fails(c(1, raw), 1007)

    @pytest.mark.parametrize("raw", INVALID_UTF8.values(), ids=INVALID_UTF8.keys())
    def test_invalid_fragmented_per_byte(self, raw: bytes) -> None:
        frames = [c(0 if i else 1, raw[i : i + 1], fin=i == len(raw) - 1) for i in range(len(raw))]
        fails(b"".join(frames), 1007)

    def test_6_4_1_fail_fast_on_fragment(self) -> None:
        """Fragment 2 is invalid: fail on it, without waiting for fragment 3."""
        frames = [
            c(1, "κόσμε".encode(), fin=False),
            c(0, b"\xf4\x90\x80\x80", fin=False),
            c(0, b"edited"),
        ]
        proto, counts = feed_frames(frames[:2])
        assert counts == [0, 0]
        assert proto.failure is not None
        assert proto.failure.close_code == 1007

    def test_6_4_2_fail_fast_invalid_continuation(self) -> None:
        frames = [c(1, "κόσμε".encode() + b"\xf4", fin=False), c(0, b"\x90", fin=False)]
        proto, _ = feed_frames(frames[:1])
        assert proto.failure is None
        proto.receive_data(frames[1])
        assert proto.failure is not None
        assert proto.failure.close_code == 1007

    @pytest.mark.parametrize("bad", [b"\xf4\x90\x80\x80", b"\xed\xa0\x80"])
    def test_6_4_3_6_4_4_fail_fast_inside_a_frame(self, bad: bytes) -> None:
        """One frame, chopped: fail on the chop carrying the bad byte, mid-frame."""
        raw = "κόσμε".encode() + bad + b"edited"
        frame = c(1, raw)
        proto = make(SERVER)
        prefix = len(frame) - len(raw)
        bad_byte = prefix + len("κόσμε".encode()) + 1  # the 2nd byte rules it out
        proto.receive_data(frame[:bad_byte])
        assert proto.failure is None
        proto.receive_data(frame[bad_byte : bad_byte + 1])
        assert proto.failure is not None
        assert proto.failure.close_code == 1007


# --- 7.x closing ---------------------------------------------------------------------------

VALID_CLOSE = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
INVALID_CLOSE = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


class TestCase7Closing:
    def test_7_1_1_message_then_close(self) -> None:
        out = run(SERVER, c(1, b"Hello World!") + c(8, close_payload(1000)))
        assert out.events == [TextMessage("Hello World!"), CloseReceived(1000, "")]
        assert out.sent == [(Opcode.CLOSE, close_payload(1000), True)]
        assert out.proto.closed_cleanly

    def test_7_1_2_close_twice(self) -> None:
        out = run(SERVER, c(8, close_payload(1000)) + c(8, close_payload(1000)))
        assert out.events == [CloseReceived(1000, "")]
        assert len(out.sent) == 1

    @pytest.mark.parametrize("after", [c(9, b"ping"), c(1, b"text"), c(3, b""), b"\xff\xff\xff"])
    def test_7_1_3_to_7_1_4_frames_after_close_ignored(self, after: bytes) -> None:
        out = run(SERVER, c(8, close_payload(1000)) + after)
        assert out.events == [CloseReceived(1000, "")]
        assert out.sent == [(Opcode.CLOSE, close_payload(1000), True)]
        assert out.proto.failure is None

    def test_7_1_5_fragment_close_continuation(self) -> None:
        out = run(SERVER, c(1, b"fragment1", fin=False) + c(8, close_payload(1000)) + c(0, b"fragment2"))
        assert out.events == [CloseReceived(1000, "")]
        assert out.proto.failure is None

    def test_7_1_6_large_message_then_close(self) -> None:
        proto = make(SERVER)
        data = c(1, b"BAsd7&jh23" * 26214) + c(1, b"Hello World!") + c(8, close_payload(1000))
        events = chopped(proto, data, 65536)
        assert [type(e) for e in events] == [TextMessage, TextMessage, CloseReceived]

    def test_7_3_1_empty_close(self) -> None:
        out = run(SERVER, c(8))
        assert out.events == [CloseReceived(None, "")]
        assert out.sent == [(Opcode.CLOSE, b"", True)]

    def test_7_3_2_one_byte_close(self) -> None:
        fails(c(8, b"a"), 1002)

    def test_7_3_3_close_with_code(self) -> None:
        assert run(SERVER, c(8, close_payload(1000))).events == [CloseReceived(1000, "")]

    def test_7_3_4_close_with_reason(self) -> None:
        out = run(SERVER, c(8, close_payload(1000, b"Hello World!")))
        assert out.events == [CloseReceived(1000, "Hello World!")]

    def test_7_3_5_max_reason(self) -> None:
        out = run(SERVER, c(8, close_payload(1000, b"*" * 123)))
        assert out.events == [CloseReceived(1000, "*" * 123)]

    def test_7_3_6_reason_too_long(self) -> None:
        fails(c(8, close_payload(1000, b"*" * 124)), 1002)

    def test_7_5_1_invalid_utf8_reason(self) -> None:
        fails(c(8, close_payload(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")), 1007)

    @pytest.mark.parametrize("code", VALID_CLOSE)
    def test_7_7_valid_codes_echoed(self, code: int) -> None:
        out = run(SERVER, c(8, close_payload(code)))
        assert out.events == [CloseReceived(code, "")]
        assert out.close_sent == code

    @pytest.mark.parametrize("code", INVALID_CLOSE)
    def test_7_9_7_13_invalid_codes(self, code: int) -> None:
        fails(c(8, close_payload(code)), 1002)


# --- 9.x limits --------------------------------------------------------------------------------

LIMIT = 1 << 20


class TestCase9Limits:
    @pytest.mark.parametrize("size", [65536, 262144, LIMIT])
    @pytest.mark.parametrize("opcode", [1, 2])
    def test_9_1_9_2_large_messages(self, opcode: int, size: int) -> None:
        proto = make(SERVER, max_message_size=LIMIT)
        events = chopped(proto, c(opcode, b"*" * size), 65536)
        assert len(events) == 1
        assert len(events[0].data) == size  # type: ignore[union-attr]
        assert proto.failure is None

    @pytest.mark.parametrize("opcode", [1, 2])
    def test_9_x_one_byte_over(self, opcode: int) -> None:
        proto = make(SERVER, max_message_size=LIMIT)
        proto.receive_data(c(opcode, b"*" * (LIMIT + 1))[:14])  # the header alone
        assert proto.failure is not None
        assert proto.failure.close_code == 1009
        assert decode_frames(SERVER, proto.data_to_send())[0][1][:2] == b"\x03\xf1"

    @pytest.mark.parametrize("fragment", [64, 256, 1024, 4096, 16384, 65536, LIMIT])
    @pytest.mark.parametrize("opcode", [1, 2])
    def test_9_3_9_4_fragmented_at_limit(self, opcode: int, fragment: int) -> None:
        payload = b"*" * LIMIT
        frames = [
            c(0 if i else opcode, payload[i : i + fragment], fin=i + fragment >= LIMIT)
            for i in range(0, LIMIT, fragment)
        ]
        proto = make(SERVER, max_message_size=LIMIT)
        events = chopped(proto, b"".join(frames), 65536)
        assert len(events) == 1
        assert len(events[0].data) == LIMIT  # type: ignore[union-attr]

    def test_9_x_fragmented_one_byte_over(self) -> None:
        data = c(2, b"*" * (LIMIT // 2), fin=False) + c(0, b"*" * (LIMIT // 2 + 1))
        proto = make(SERVER, max_message_size=LIMIT)
        chopped(proto, data, 65536)
        assert proto.failure is not None
        assert proto.failure.close_code == 1009

    @pytest.mark.parametrize("chop", [64, 4096, 65536])
    def test_9_5_9_6_chopped(self, chop: int) -> None:
        proto = make(SERVER)
        events = chopped(proto, c(1, b"*" * LIMIT), chop)
        assert events == [TextMessage("*" * LIMIT)]

    @pytest.mark.parametrize("opcode", [1, 2])
    def test_9_7_9_8_many_small_messages(self, opcode: int) -> None:
        frame = c(opcode, b"*" * 32)
        proto = make(SERVER)
        events = chopped(proto, frame * 1000, 65536)
        assert len(events) == 1000
        assert proto.failure is None


# --- extra: a violation while we are already closing ------------------------------------


def test_violation_while_closing_sends_no_second_close() -> None:
    proto = make(SERVER)
    proto.send_close(1000)
    assert proto.receive_data(c(3, b"")) == []
    assert proto.failure is not None
    assert proto.failure.close_code == 1002
    assert proto.data_to_send() == b""
    assert proto.state is State.CLOSED
    assert proto.close_code_sent == 1000
