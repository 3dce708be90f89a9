"""Incremental, fail-fast UTF-8 validation (RFC 6455 §5.6, §8.1; RFC 3629 §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_ws.exceptions import RemoteProtocolError
from trio_ws.sansio.utf8 import Utf8Decoder, decode_utf8

# --- an independent oracle: the RFC 3629 §4 grammar, byte by byte -------------


def _sequence_ranges(lead: int) -> list[tuple[int, int]] | None:
    """Allowed ranges of the bytes after ``lead`` (RFC 3629 §4), None if invalid lead."""
    tail = (0x80, 0xBF)
    if lead <= 0x7F:
        return []
    if 0xC2 <= lead <= 0xDF:
        return [tail]
    three = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F)}
    if 0xE0 <= lead <= 0xEF:
        return [three.get(lead, tail), tail]
    four = {0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}
    if 0xF0 <= lead <= 0xF4:
        return [four.get(lead, tail), tail, tail]
    return None


def valid_prefix_length(data: bytes) -> tuple[int, bool]:
    """(length of the longest prefix that can still become valid UTF-8, complete?)."""
    i = 0
    while i < len(data):
        ranges = _sequence_ranges(data[i])
        if ranges is None:
            return i, False
        for j, (lo, hi) in enumerate(ranges, start=1):
            if i + j == len(data):
                return len(data), False  # incomplete but still possible
            if not lo <= data[i + j] <= hi:
                return i + j, False
        i += 1 + len(ranges)
    return len(data), True


def oracle_ok(data: bytes, final: bool) -> bool:
    n, complete = valid_prefix_length(data)
    return n == len(data) and (complete or not final)


# --- tests --------------------------------------------------------------------

INVALID = {
    "lone continuation": b"\x80",
    "invalid lead c0": b"\xc0\x80",
    "invalid lead c1": b"\xc1\xbf",
    "overlong 3-byte": b"\xe0\x80\xaf",
    "overlong 3-byte, max": b"\xe0\x9f\xbf",
    "overlong 4-byte": b"\xf0\x80\x80\xaf",
    "overlong 4-byte, max": b"\xf0\x8f\xbf\xbf",
    "surrogate U+D800": b"\xed\xa0\x80",
    "surrogate U+DFFF": b"\xed\xbf\xbf",
    "above U+10FFFF": b"\xf4\x90\x80\x80",
    "lead f5": b"\xf5\x80\x80\x80",
    "lead ff": b"\xff",
    "bad 2nd continuation": b"\xe2\x82\x41",
    "bad 3rd continuation": b"\xf0\x9f\x98\x41",
}
VALID = ["", "ascii", "κόσμε", "\u0080\u07ff\u0800\uffff", "\U00010000\U0010ffff", "a€😀b"]


class TestSection8_1:
    @pytest.mark.parametrize("text", VALID)
    def test_valid_whole(self, text: str) -> None:
        assert decode_utf8(text.encode()) == text
        assert Utf8Decoder().decode(text.encode(), final=True) == text

    @pytest.mark.parametrize("text", VALID)
    def test_valid_any_split(self, text: str) -> None:
        raw = text.encode()
        for cut in range(len(raw) + 1):
            dec = Utf8Decoder()
            assert dec.decode(raw[:cut]) + dec.decode(raw[cut:], final=True) == text
            assert dec.pending == 0

    def test_byte_by_byte(self) -> None:
        raw = "a€😀b".encode()
        dec = Utf8Decoder()
        out = [dec.decode(raw[i : i + 1]) for i in range(len(raw))]
        assert out == ["a", "", "", "€", "", "", "", "😀", "b"]
        assert dec.decode(b"", final=True) == ""

    @pytest.mark.parametrize("raw", INVALID.values(), ids=INVALID.keys())
    def test_invalid_whole(self, raw: bytes) -> None:
        with pytest.raises(RemoteProtocolError) as info:
            decode_utf8(b"ok" + raw)
        assert info.value.close_code == 1007
        assert isinstance(info.value.__cause__, UnicodeDecodeError)

    @pytest.mark.parametrize("raw", INVALID.values(), ids=INVALID.keys())
    def test_invalid_fails_fast(self, raw: bytes) -> None:
        """Fed byte by byte, the error comes at the first byte that rules out validity."""
        bad_at, _ = valid_prefix_length(raw)
        dec = Utf8Decoder()
        for i in range(bad_at):
            dec.decode(raw[i : i + 1])
        with pytest.raises(RemoteProtocolError):
            dec.decode(raw[bad_at : bad_at + 1])

    @pytest.mark.parametrize("raw", [b"\xce", b"\xe2\x82", b"\xf0\x9f\x98"])
    def test_truncated_at_end(self, raw: bytes) -> None:
        dec = Utf8Decoder()
        assert dec.decode(b"x" + raw) == "x"
        assert dec.pending == len(raw)
        with pytest.raises(RemoteProtocolError, match="UTF-8"):
            dec.decode(b"", final=True)
        assert dec.pending == 0  # the error left the decoder clean

    def test_reset(self) -> None:
        dec = Utf8Decoder()
        dec.decode(b"\xe2\x82")
        dec.reset()
        assert dec.pending == 0
        assert dec.decode(b"ok", final=True) == "ok"

    def test_accepts_memoryview(self) -> None:
        dec = Utf8Decoder()
        assert dec.decode(memoryview(b"\xe2")) == ""
        assert dec.decode(memoryview(b"\x82\xac"), final=True) == "€"
        assert decode_utf8(memoryview(b"ok")) == "ok"

    def test_close_reason_label(self) -> None:
        with pytest.raises(RemoteProtocolError, match="close reason"):
            decode_utf8(b"\xff", "close reason")


@given(st.lists(st.binary(max_size=6), max_size=8), st.booleans())
def test_matches_oracle_piecewise(pieces: list[bytes], valid_bias: bool) -> None:
    """Any pieces: the decoder fails exactly at the piece where the oracle does."""
    if valid_bias:
        pieces = [p.decode("utf-8", "ignore").encode() for p in pieces]
    dec = Utf8Decoder()
    seen = b""
    text = []
    for k, piece in enumerate(pieces):
        seen += piece
        final = k == len(pieces) - 1
        if oracle_ok(seen, final):
            text.append(dec.decode(piece, final))
        else:
            with pytest.raises(RemoteProtocolError):
                dec.decode(piece, final)
            return
    if pieces:
        assert "".join(text) == seen.decode()


@given(st.text(), st.data())
def test_valid_text_arbitrary_splits(text: str, data: st.DataObject) -> None:
    raw = text.encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=5)))
    dec = Utf8Decoder()
    out = []
    start = 0
    for cut in [*cuts, len(raw)]:
        out.append(dec.decode(raw[start:cut]))
        start = cut
    out.append(dec.decode(b"", final=True))
    assert "".join(out) == text
