"""RFC 6455 §5 framing: serializer, incremental parser, close payloads.

Every parser case is fed whole and byte by byte; hypothesis checks any split.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_ws.exceptions import RemoteProtocolError
from trio_ws.sansio.frames import (
    RSV1,
    RSV2,
    RSV3,
    FrameHeader,
    FrameParser,
    Opcode,
    Piece,
    build_close_payload,
    is_valid_close_code,
    parse_close_payload,
    serialize_frame,
)

MASK = b"\x37\xfa\x21\x3d"


def raw_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length_form: int | None = None,
) -> bytes:
    """An independent frame encoder; ``length_form`` forces 7/16/64-bit lengths."""
    n = len(payload)
    form = length_form or (7 if n < 126 else 16 if n < 65536 else 64)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    bit = 0x80 if mask else 0
    if form == 7:
        head += bytes([bit | n])
    elif form == 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def parse(data: bytes, *, bytewise: bool, **kwargs: object) -> list[Piece]:
    parser = FrameParser(**kwargs)  # type: ignore[arg-type]
    if not bytewise:
        return list(parser.feed(data))
    return [p for i in range(len(data)) for p in parser.feed(data[i : i + 1])]


def frames(data: bytes, *, bytewise: bool, **kwargs: object) -> list[tuple[FrameHeader, bytes]]:
    """Parse and join each frame's pieces back together, checking the piece bookkeeping."""
    out: list[tuple[FrameHeader, bytes]] = []
    current: list[bytes] = []
    seen = 0
    for header, payload, left in parse(data, bytewise=bytewise, **kwargs):
        seen += len(payload)
        assert seen + left == header.length
        current.append(payload)
        if left == 0:
            out.append((header, b"".join(current)))
            current = []
            seen = 0
    assert not current
    return out


def both(data: bytes, **kwargs: object) -> list[tuple[FrameHeader, bytes]]:
    whole = frames(data, bytewise=False, **kwargs)
    assert frames(data, bytewise=True, **kwargs) == whole
    return whole


def fails(data: bytes, code: int = 1002, **kwargs: object) -> str:
    messages = set()
    for bytewise in (False, True):
        with pytest.raises(RemoteProtocolError) as info:
            parse(data, bytewise=bytewise, **kwargs)
        assert info.value.close_code == code
        messages.add(str(info.value))
    assert len(messages) == 1
    return messages.pop()


SERVER = {"expect_masked": True}
CLIENT = {"expect_masked": False}
LENGTHS = [0, 1, 125, 126, 127, 128, 65535, 65536, 70000]


class TestSection5_2Serializer:
    @pytest.mark.parametrize("n", LENGTHS)
    def test_minimal_length_encoding(self, n: int) -> None:
        payload = bytes(n)
        assert serialize_frame(Opcode.BINARY, payload) == raw_frame(2, payload)

    @pytest.mark.parametrize("n", LENGTHS)
    def test_masked(self, n: int) -> None:
        payload = bytes(range(256)) * (n // 256) + bytes(n % 256)
        assert serialize_frame(Opcode.TEXT, payload, mask=MASK) == raw_frame(1, payload, mask=MASK)

    def test_rfc_5_7_examples(self) -> None:
        assert serialize_frame(Opcode.TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")
        assert serialize_frame(Opcode.TEXT, b"Hello", mask=MASK) == bytes.fromhex("818537fa213d7f9f4d5158")
        assert serialize_frame(Opcode.TEXT, b"Hel", fin=False) == bytes.fromhex("010348656c")
        assert serialize_frame(Opcode.CONTINUATION, b"lo") == bytes.fromhex("80026c6f")
        assert serialize_frame(Opcode.PING, b"Hello") == bytes.fromhex("890548656c6c6f")

    def test_rsv_and_fin(self) -> None:
        assert serialize_frame(Opcode.BINARY, b"", fin=False, rsv=RSV1 | RSV3)[0] == 0x52


class TestSection5_2Parser:
    @pytest.mark.parametrize("n", LENGTHS)
    @pytest.mark.parametrize(("mask", "kwargs"), [(MASK, SERVER), (None, CLIENT)], ids=["server", "client"])
    def test_all_length_forms(self, n: int, mask: bytes | None, kwargs: dict[str, bool]) -> None:
        payload = bytes(i % 251 for i in range(n))
        [(header, got)] = both(raw_frame(2, payload, mask=mask), **kwargs)
        assert got == payload
        assert header == FrameHeader(True, 0, Opcode.BINARY, n, mask)

    def test_batching(self) -> None:
        """§5.2: every complete frame of one read comes out of one feed()."""
        data = b"".join(raw_frame(1, b"msg%d" % i, mask=MASK) for i in range(50))
        pieces = list(FrameParser(expect_masked=True).feed(data))
        assert [p[1] for p in pieces] == [b"msg%d" % i for i in range(50)]
        assert all(left == 0 for _, _, left in pieces)

    def test_partial_data_frame_is_streamed(self) -> None:
        parser = FrameParser(expect_masked=True)
        data = raw_frame(2, b"0123456789", mask=MASK)
        assert list(parser.feed(data[:5])) == []  # header incomplete
        [(header, payload, left)] = list(parser.feed(data[5:9]))  # header + 3 bytes
        assert (payload, left, header.length) == (b"012", 7, 10)
        assert list(parser.feed(b"")) == []
        [(_, payload, left)] = list(parser.feed(data[9:13]))
        assert (payload, left) == (b"3456", 3)
        pieces = list(parser.feed(data[13:] + raw_frame(1, b"x", mask=MASK)[:5]))
        assert [(p[1], p[2]) for p in pieces] == [(b"789", 0)]
        assert parser.buffered == 5  # the next frame's header, not yet complete
        assert [p[1] for p in parser.feed(raw_frame(1, b"x", mask=MASK)[5:])] == [b"x"]
        assert parser.buffered == 0

    def test_header_first_piece_is_empty(self) -> None:
        """The first piece arrives with the header alone, so limits can be checked early."""
        parser = FrameParser(expect_masked=False)
        [(header, payload, left)] = list(parser.feed(raw_frame(2, bytes(1000))[:4]))
        assert (header.length, payload, left) == (1000, b"", 1000)

    def test_control_frame_waits_until_whole(self) -> None:
        parser = FrameParser(expect_masked=False)
        data = raw_frame(9, b"ping!")
        assert list(parser.feed(data[:4])) == []
        assert parser.buffered == 4
        [(header, payload, left)] = list(parser.feed(data[4:]))
        assert (header.opcode, payload, left) == (Opcode.PING, b"ping!", 0)

    def test_control_frame_between_pieces(self) -> None:
        data = (
            raw_frame(1, b"Hel", fin=False, mask=MASK)
            + raw_frame(9, b"p", mask=MASK)
            + raw_frame(0, b"lo", mask=MASK)
        )
        got = both(data, **SERVER)
        assert [(h.opcode, p) for h, p in got] == [(1, b"Hel"), (9, b"p"), (0, b"lo")]
        assert [h.fin for h, _ in got] == [False, True, True]

    @pytest.mark.parametrize(("mask", "kwargs"), [(None, SERVER), (MASK, CLIENT)], ids=["server", "client"])
    def test_section_5_1_masking_direction(self, mask: bytes | None, kwargs: dict[str, bool]) -> None:
        """§5.1: servers fail on unmasked frames, clients on masked ones."""
        assert "masked frame" in fails(raw_frame(1, b"x", mask=mask), **kwargs)

    @pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3])
    def test_reserved_bits(self, rsv: int) -> None:
        assert "reserved bits" in fails(raw_frame(1, b"x", rsv=rsv), **CLIENT)

    def test_reserved_bits_claimed_by_extension(self) -> None:
        [(header, _)] = both(raw_frame(1, b"x", rsv=RSV1), allowed_rsv=RSV1, **CLIENT)
        assert (header.rsv1, header.rsv2, header.rsv3) == (True, False, False)
        fails(raw_frame(1, b"x", rsv=RSV2), allowed_rsv=RSV1, **CLIENT)
        # §5.5 / RFC 7692: extensions' bits are for data frames, never control frames.
        fails(raw_frame(9, b"x", rsv=RSV1), allowed_rsv=RSV1, **CLIENT)

    @pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
    def test_reserved_opcodes(self, opcode: int) -> None:
        assert "reserved opcode" in fails(raw_frame(opcode, b"x", mask=MASK), **SERVER)

    def test_64_bit_length_msb(self) -> None:
        data = bytes([0x82, 127]) + struct.pack("!Q", 1 << 63)
        assert "high bit" in fails(data, **CLIENT)

    @pytest.mark.parametrize(("n", "form"), [(0, 16), (125, 16), (125, 64), (65535, 64)])
    def test_non_minimal_length(self, n: int, form: int) -> None:
        """§5.2: "the minimal number of bytes MUST be used to encode the length"."""
        assert "minimal" in fails(raw_frame(2, bytes(n), length_form=form), **CLIENT)

    def test_control_frame_too_long(self) -> None:
        fails(raw_frame(9, bytes(126), mask=MASK), **SERVER)
        both(raw_frame(9, bytes(125), mask=MASK), **SERVER)

    @pytest.mark.parametrize("opcode", [8, 9, 10])
    def test_fragmented_control_frame(self, opcode: int) -> None:
        assert "fragmented" in fails(raw_frame(opcode, b"", fin=False), **CLIENT)

    def test_max_frame_size_from_header(self) -> None:
        header_only = raw_frame(2, bytes(1001))[:4]
        fails(header_only, 1009, max_frame_size=1000, **CLIENT)
        both(raw_frame(2, bytes(1000)), max_frame_size=1000, **CLIENT)
        # Control frames are bounded by §5.5 instead.
        both(raw_frame(9, bytes(100)), max_frame_size=10, **CLIENT)

    def test_pieces_before_error_survive(self) -> None:
        parser = FrameParser(expect_masked=False)
        gen = parser.feed(raw_frame(1, b"ok") + raw_frame(3, b""))
        assert next(gen)[1] == b"ok"
        with pytest.raises(RemoteProtocolError):
            next(gen)


class TestSection5_5_1ClosePayload:
    @pytest.mark.parametrize(
        "code",
        [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999],
    )
    def test_valid_codes(self, code: int) -> None:
        assert is_valid_close_code(code)
        assert parse_close_payload(build_close_payload(code, "why")) == (code, b"why")

    @pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
    def test_invalid_codes(self, code: int) -> None:
        assert not is_valid_close_code(code)
        with pytest.raises(RemoteProtocolError) as info:
            parse_close_payload(struct.pack("!H", code))
        assert info.value.close_code == 1002

    def test_empty_and_one_byte(self) -> None:
        assert build_close_payload(None) == b""
        assert parse_close_payload(b"") == (None, b"")
        with pytest.raises(RemoteProtocolError, match="1-byte"):
            parse_close_payload(b"\x03")

    def test_reason_is_utf8(self) -> None:
        assert build_close_payload(1000, "κ") == b"\x03\xe8\xce\xba"


frame_strategy = st.one_of(
    st.tuples(st.sampled_from([1, 2, 0]), st.binary(max_size=300), st.booleans()),
    st.tuples(st.sampled_from([8, 9, 10]), st.binary(max_size=125), st.just(True)),
)


@given(st.lists(frame_strategy, max_size=8), st.booleans(), st.data())
def test_any_split_gives_the_same_frames(
    specs: list[tuple[int, bytes, bool]], masked: bool, data: st.DataObject
) -> None:
    mask = MASK if masked else None
    wire = b"".join(raw_frame(op, p, fin=fin, mask=mask) for op, p, fin in specs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    parser = FrameParser(expect_masked=masked)
    out: list[tuple[int, bytes, bool]] = []
    current = b""
    start = 0
    for cut in [*cuts, len(wire)]:
        for header, payload, left in parser.feed(wire[start:cut]):
            current += payload
            if not left:
                out.append((header.opcode, current, header.fin))
                current = b""
        start = cut
    assert out == specs
    assert parser.buffered == 0
