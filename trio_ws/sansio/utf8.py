"""Incremental, fail-fast UTF-8 validation for WebSocket text (RFC 6455 §5.6, §8.1).

A text message may be split across frames, and frames across reads, at any byte,
even inside a code point.  :class:`Utf8Decoder` decodes piece by piece and keeps
the (at most 3) bytes of a trailing incomplete code point for the next piece.

Fail fast: invalid text must be detected at the first piece that makes it
invalid, not at the end of the message (Autobahn 6.4.x).  CPython's decoder run
with ``final=False`` already raises at an invalid byte in the middle, but it holds
back a few trailing prefixes that can never complete (e.g. ``ED A0``, the start
of a UTF-16 surrogate), so the held-back tail is checked against the exact
well-formed byte ranges of RFC 3629 §4 as well.

Fast path: with nothing held back, a piece is decoded by the C codec directly.
Errors become :class:`~trio_ws.exceptions.RemoteProtocolError` with close code
1007 (§7.4.1: "data within a message that was not consistent with the type").
"""

from __future__ import annotations

import codecs

from trio_ws.exceptions import RemoteProtocolError

__all__ = ["INVALID_DATA", "Utf8Decoder", "decode_utf8"]

#: §7.4.1: 1007, "invalid frame payload data".
INVALID_DATA = 1007

_utf8_decode = codecs.utf_8_decode

# RFC 3629 §4: the allowed range of the byte after each lead byte of a 3- or
# 4-byte sequence; every other continuation byte is 80..BF.
_FULL = (0x80, 0xBF)
_SECOND_BYTE_RANGE: dict[int, tuple[int, int]] = {
    **dict.fromkeys(range(0xE1, 0xF0), _FULL),
    **dict.fromkeys(range(0xF1, 0xF4), _FULL),
    0xE0: (0xA0, 0xBF),  # no overlong 3-byte forms
    0xED: (0x80, 0x9F),  # no UTF-16 surrogates U+D800..U+DFFF
    0xF0: (0x90, 0xBF),  # no overlong 4-byte forms
    0xF4: (0x80, 0x8F),  # nothing above U+10FFFF
}


def _invalid(what: str = "text") -> RemoteProtocolError:
    return RemoteProtocolError(f"invalid UTF-8 in {what}", close_code=INVALID_DATA)


def decode_utf8(data: bytes | bytearray | memoryview, what: str = "text") -> str:
    """Decode a complete piece of UTF-8 or raise ``RemoteProtocolError`` (1007)."""
    try:
        return _utf8_decode(data, "strict", True)[0]
    except UnicodeDecodeError as exc:
        raise _invalid(what) from exc


def _check_tail(tail: bytes) -> None:
    """Raise unless ``tail`` (1-3 bytes) can still grow into a valid code point."""
    if len(tail) >= 2:
        lo, hi = _SECOND_BYTE_RANGE.get(tail[0], (1, 0))
        if not lo <= tail[1] <= hi:
            raise _invalid()
        # A third byte (of a 4-byte sequence) is 80..BF; CPython has already
        # rejected anything else, so there is nothing more to check.


class Utf8Decoder:
    """Decode one text message piece by piece, failing at the first bad piece.

    ``decode(data)`` returns the text of all complete code points so far;
    ``decode(data, final=True)`` ends the message and fails if a code point is
    left incomplete.  ``pending`` is the number of bytes held back.
    """

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    @property
    def pending(self) -> int:
        """Bytes of an incomplete code point held back for the next piece."""
        return len(self._tail)

    def reset(self) -> None:
        """Forget any held-back bytes (start a new message)."""
        self._tail = b""

    def decode(self, data: bytes | bytearray | memoryview, final: bool = False) -> str:
        """Decode the next piece of the message (see the class docstring)."""
        if self._tail:
            data = self._tail + data
        try:
            text, consumed = _utf8_decode(data, "strict", final)
        except UnicodeDecodeError as exc:
            self._tail = b""
            raise _invalid() from exc
        if consumed == len(data):
            self._tail = b""
        else:
            # Only reachable with final=False: an incomplete code point at the end.
            tail = bytes(data[consumed:])
            _check_tail(tail)
            self._tail = tail
        return text
