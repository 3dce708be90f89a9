"""RFC 6455 §5 framing: opcodes, close codes, the incremental parser, the serializer.

Theory of operation
-------------------
:class:`FrameParser` is a push parser.  ``feed(data)`` appends to its buffer and
returns a generator of *pieces* ``(header, payload, frame_bytes_left)``:

* every complete frame in the buffer is parsed in one call (batching);
* a data frame whose payload has not fully arrived yields what is there, so the
  parser never buffers more than one read's worth of a data frame's payload;
  ``frame_bytes_left`` says how much of the frame is still to come;
* the first piece of a frame is yielded as soon as its *header* is complete
  (possibly with an empty payload), so limits are checked from the header before
  any payload is committed to memory;
* the pieces of one frame are consecutive: after a piece with
  ``frame_bytes_left > 0`` comes the next piece of the same frame, so a caller
  knows a frame's first piece as the one following a piece with nothing left;
* a control frame (payload at most 125 bytes, §5.5) is yielded whole.

Payloads come out unmasked.  Frame-level rules (§5.2) are enforced here and break
the generator with :class:`~trio_ws.exceptions.RemoteProtocolError` carrying the
close code; pieces yielded before the bad frame stay valid.  Message-level rules
(continuations, UTF-8, close payloads, message size) belong to ``connection.py``.

The generator may be abandoned at any ``yield`` (the caller stops at a Close or an
error): whatever it has not yielded stays in the buffer for the next ``feed()``.

:data:`scan_frames` (the optional C extension's, else None) is the shortcut for the
common case: ``scan_frames(data, masked, limit)`` turns the run of *simple* frames
at the start of ``data`` (complete, final, RSV clear, text or binary, masked as
expected, a minimally encoded length at most ``limit``, -1 for none, text valid
UTF-8) into their messages (``str`` or ``bytes``) and says where the run ends.  It
never judges: the first frame it does not take, good or bad, is the parser's.
With a fourth argument ``rsv1=True`` (permessage-deflate) frames simple but for
RSV1 come as ``(opcode, payload)``: unmasked, for the extension to inflate.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, Protocol, TypeAlias

from trio_ws.exceptions import RemoteProtocolError
from trio_ws.sansio.masking import apply_mask

try:
    from trio_ws._speedups import scan_frames as _c_scan_frames
except ImportError:  # pragma: no cover - depends on whether the extension was built
    _c_scan_frames = None  # type: ignore[assignment]

__all__ = [
    "CLOSE_CODES_RESERVED",
    "MAX_CONTROL_PAYLOAD",
    "RSV1",
    "RSV2",
    "RSV3",
    "Extension",
    "FrameHeader",
    "FrameParser",
    "Opcode",
    "Piece",
    "build_close_payload",
    "is_valid_close_code",
    "parse_close_payload",
    "scan_frames",
    "serialize_frame",
    "serialize_frame_parts",
]


#: ``scan_frames(data, masked, limit) -> (messages, end)`` (module docstring), or None
#: without the C extension.
scan_frames: Callable[..., tuple[list[str | bytes | tuple[int, bytes]], int]] | None
scan_frames = _c_scan_frames


class Opcode(enum.IntEnum):
    """§5.2 / §11.8 opcodes; 0x3-0x7 and 0xB-0xF are reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


_OPCODES: tuple[Opcode | None, ...] = tuple(
    Opcode(op) if op in Opcode._value2member_map_ else None for op in range(16)
)

FIN = 0x80
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10
MASK_BIT = 0x80
#: §5.5: "All control frames MUST have a payload length of 125 bytes or less".
MAX_CONTROL_PAYLOAD = 125
#: §5.5.1: a close reason fits in a control frame after the 2-byte code.
MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2

PROTOCOL_ERROR = 1002
MESSAGE_TOO_BIG = 1009

#: §7.4.1 codes that "MUST NOT be set as a status code in a Close control frame".
CLOSE_CODES_RESERVED = frozenset({1004, 1005, 1006, 1015})

_U16 = struct.Struct("!H")
_HDR2 = struct.Struct("!BB")
_HDR4 = struct.Struct("!BBH")
_HDR10 = struct.Struct("!BBQ")
_unpack_u16 = _U16.unpack_from
#: Payloads at least this long are copied out of the buffer through a memoryview.
_VIEW_THRESHOLD = 2048
_unpack_u64 = struct.Struct("!Q").unpack_from


def is_valid_close_code(code: int) -> bool:
    """True for a close code that may appear on the wire (§7.4.1, §7.4.2, IANA).

    1000-1003 and 1007-1014 are the codes defined by RFC 6455 and registered with
    IANA since (1012 Service Restart, 1013 Try Again Later, 1014 Bad Gateway);
    3000-4999 are for libraries and applications.  Below 1000, 1004-1006, 1015
    and the unassigned 1016-2999 are invalid.
    """
    if 1000 <= code <= 1014:
        return code not in CLOSE_CODES_RESERVED
    return 3000 <= code <= 4999


class FrameHeader(NamedTuple):
    """A parsed §5.2 frame header.  ``rsv`` keeps the RSV bits in place (0x70).

    A named tuple rather than a frozen dataclass: one is built per frame, and
    tuple construction is several times cheaper.
    """

    fin: bool
    rsv: int
    opcode: Opcode
    length: int
    mask: bytes | None = None

    @property
    def rsv1(self) -> bool:
        return bool(self.rsv & RSV1)

    @property
    def rsv2(self) -> bool:
        return bool(self.rsv & RSV2)

    @property
    def rsv3(self) -> bool:
        return bool(self.rsv & RSV3)


#: ``(header, unmasked payload piece, payload bytes of this frame still to come)``.
Piece: TypeAlias = tuple[FrameHeader, bytes, int]


class Extension(Protocol):
    """The seam for RFC 6455 §9 extensions such as permessage-deflate (RFC 7692).

    An extension claims RSV bits (``rsv_bits``, e.g. :data:`RSV1`); without a
    negotiated extension claiming a bit, a frame with that bit set fails the
    connection with 1002 (§5.2).  Extensions see data messages only, never
    control frames.  Several extensions chain in negotiation order on send and in
    reverse order on receive (§9.1).
    """

    @property
    def name(self) -> str:
        """The extension token, e.g. ``"permessage-deflate"``."""
        ...

    @property
    def rsv_bits(self) -> int:
        """The RSV bits (a mask of RSV1 | RSV2 | RSV3) this extension may use."""
        ...

    def decode(
        self,
        message: FrameHeader,
        frame: FrameHeader,
        data: bytes,
        *,
        end: bool,
        max_size: int | None,
    ) -> bytes:
        """Decode the next piece of an incoming data message.

        ``message`` is the header of the message's first frame (its RSV bits say
        e.g. whether the message is compressed), ``frame`` the header of the frame
        this piece belongs to, ``end`` True for the message's last piece.  The
        result must not exceed ``max_size`` bytes (``None``: no limit): raise
        ``RemoteProtocolError(..., close_code=1009)`` as soon as it would, before
        producing the excess.  Raise ``RemoteProtocolError`` (1002 / 1007) for
        data the extension rejects.

        An extension claiming exactly RSV1 may also offer ``decode_message(data,
        max_size) -> bytes``: ``decode`` for a whole message that came in one
        frame with RSV1 set.  When it is the only extension, the connection then
        lets :data:`scan_frames` take such frames (permessage-deflate does).
        """
        ...

    def encode(self, opcode: Opcode, data: bytes, *, first: bool, fin: bool) -> tuple[int, bytes]:
        """Encode an outgoing data frame's payload; return ``(rsv bits, payload)``.

        ``opcode`` is TEXT or BINARY (the message type, also for continuation
        frames), ``first`` True for the message's first frame, ``fin`` True for
        its last.
        """
        ...


def serialize_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
) -> bytes:
    """Encode one frame (§5.2), masking the payload when ``mask`` is given (§5.3).

    The payload length uses the minimal encoding (§5.2: "the minimal number of
    bytes MUST be used to encode the length").
    """
    header, body = serialize_frame_parts(opcode, payload, fin=fin, rsv=rsv, mask=mask)
    return header + body


def serialize_frame_parts(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
) -> tuple[bytes, bytes]:
    """:func:`serialize_frame` as ``(header with the mask key, payload)``, not joined.

    For large payloads: the caller writes both parts at once (``writev``)
    instead of copying the payload behind the header.
    """
    b0 = (FIN if fin else 0) | rsv | opcode
    n = len(payload)
    mask_bit = MASK_BIT if mask is not None else 0
    if n < 126:
        header = _HDR2.pack(b0, mask_bit | n)
    elif n < 0x10000:
        header = _HDR4.pack(b0, mask_bit | 126, n)
    else:
        header = _HDR10.pack(b0, mask_bit | 127, n)
    if mask is None:
        return header, payload
    return header + mask, apply_mask(payload, mask)


def build_close_payload(code: int | None, reason: str = "") -> bytes:
    """The payload of a Close frame (§5.5.1): empty, or a 2-byte code + UTF-8 reason."""
    if code is None:
        return b""
    return _U16.pack(code) + reason.encode("utf-8")


def parse_close_payload(payload: bytes) -> tuple[int | None, bytes]:
    """Split a received Close payload into ``(code or None, raw reason)``.

    Raises ``RemoteProtocolError`` (1002) for a 1-byte payload or a code that is
    not valid on the wire (§5.5.1, §7.4).  The reason is left undecoded.
    """
    if not payload:
        return None, b""
    if len(payload) == 1:
        # §5.5.1: if there is a body, "the first two bytes ... MUST be" the code.
        raise RemoteProtocolError("close frame with a 1-byte payload")
    (code,) = _unpack_u16(payload)
    if not is_valid_close_code(code):
        raise RemoteProtocolError(f"invalid close code {code}")
    return code, payload[2:]


class FrameParser:
    """The incremental frame parser (see the module docstring).

    ``expect_masked``: True on a server (§5.1: "a server MUST close the
    connection upon receiving a frame that is not masked"), False on a client
    ("a client MUST close a connection if it detects a masked frame").
    ``allowed_rsv``: the RSV bits claimed by negotiated extensions (data frames
    only).  ``max_frame_size``: data frames whose header declares a longer payload
    fail with 1009 before any of it is buffered.
    """

    __slots__ = (
        "_buf",
        "_header",
        "_left",
        "_mask",
        "allowed_rsv",
        "expect_masked",
        "max_frame_size",
    )

    def __init__(
        self,
        *,
        expect_masked: bool,
        allowed_rsv: int = 0,
        max_frame_size: int | None = None,
    ) -> None:
        self.expect_masked = expect_masked
        self.allowed_rsv = allowed_rsv
        self.max_frame_size = max_frame_size
        self._buf = bytearray()
        self._header: FrameHeader | None = None  # a data frame whose payload is still arriving
        self._left = 0  # its payload bytes still to come
        self._mask = b""  # its mask, rotated to the next payload byte

    @property
    def buffered(self) -> int:
        """Bytes held in the parser's buffer (at most one partial header or control frame)."""
        return len(self._buf)

    @property
    def idle(self) -> bool:
        """Between frames with nothing buffered: the next bytes start a frame."""
        return self._header is None and not self._buf

    def feed(self, data: bytes) -> Iterator[Piece]:
        """Add ``data`` and yield every piece it completes (see the module docstring)."""
        buf = self._buf
        if self._header is not None:
            # Mid-payload (the buffer is then empty: a partial payload is always
            # taken whole): unmask straight from ``data`` instead of copying it
            # into the buffer first; only what follows the payload is buffered.
            piece, taken = self._continue_payload(data)
            if taken < len(data):
                buf += memoryview(data)[taken:]
            if piece is None:
                return
            yield piece
        else:
            buf += data
        pos = 0
        size = len(buf)
        try:
            while size - pos >= 2:
                b1 = buf[pos + 1]
                n = b1 & 0x7F
                hlen = 2 if n < 126 else (4 if n == 126 else 10)
                if b1 & MASK_BIT:
                    hlen += 4
                if size - pos < hlen:
                    break
                header = self._parse_header(buf, pos)
                pos += hlen
                length = header.length
                if size - pos >= length:
                    piece = (header, self._unmask(buf, pos, length, header.mask), 0)
                    pos += length
                    yield piece
                elif header.opcode >= 8:
                    pos -= hlen  # a control frame (<= 125 bytes) is yielded whole
                    break
                else:
                    take = size - pos
                    self._header = header
                    self._left = length - take
                    mask = header.mask
                    if mask is not None:
                        k = take & 3
                        self._mask = mask[k:] + mask[:k]
                    piece = (header, self._unmask(buf, pos, take, mask), length - take)
                    pos = size
                    yield piece
        finally:
            del buf[:pos]

    def _continue_payload(self, src: bytes) -> tuple[Piece | None, int]:
        """The next piece of the data frame whose payload is still arriving, from the
        start of ``src``, and how many bytes of ``src`` it took."""
        header = self._header
        assert header is not None
        take = min(len(src), self._left)
        if not take:
            return None, 0
        mask = self._mask if header.mask is not None else None
        payload = self._unmask(src, 0, take, mask)
        self._left -= take
        if mask is not None:
            k = take & 3
            self._mask = mask[k:] + mask[:k]
        if not self._left:
            self._header = None
        return (header, payload, self._left), take

    @staticmethod
    def _unmask(buf: bytes | bytearray, start: int, length: int, mask: bytes | None) -> bytes:
        if length < _VIEW_THRESHOLD:  # slicing a small copy beats setting up views
            part = buf[start : start + length]
            return bytes(part) if mask is None else apply_mask(part, mask)
        with memoryview(buf) as view, view[start : start + length] as part_view:
            return bytes(part_view) if mask is None else apply_mask(part_view, mask)

    def _parse_header(self, buf: bytearray, pos: int) -> FrameHeader:
        """Parse and validate the (complete) frame header at ``buf[pos:]`` (§5.2)."""
        b0 = buf[pos]
        b1 = buf[pos + 1]
        opcode = _OPCODES[b0 & 0x0F]
        if opcode is None:
            # §5.2: "If an unknown opcode is received, the receiving endpoint MUST
            # _Fail the WebSocket Connection_."
            raise RemoteProtocolError(f"reserved opcode {b0 & 0x0F:#x}")
        rsv = b0 & 0x70
        if rsv and (opcode >= 8 or rsv & ~self.allowed_rsv):
            # §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that
            # defines meanings for non-zero values".
            raise RemoteProtocolError(f"reserved bits set ({rsv:#x})")
        fin = bool(b0 & FIN)
        masked = bool(b1 & MASK_BIT)
        if masked != self.expect_masked:
            # §5.1: servers MUST fail on unmasked frames, clients on masked ones.
            raise RemoteProtocolError("masked frame" if masked else "unmasked frame")
        length = b1 & 0x7F
        pos += 2
        if length == 126:
            (length,) = _unpack_u16(buf, pos)
            pos += 2
            minimal = length >= 126
        elif length == 127:
            (length,) = _unpack_u64(buf, pos)
            pos += 8
            if length >> 63:
                # §5.2: "the most significant bit MUST be 0".
                raise RemoteProtocolError("64-bit payload length with the high bit set")
            minimal = length > 0xFFFF
        else:
            minimal = True
        if not minimal:
            # §5.2: "the minimal number of bytes MUST be used to encode the length".
            raise RemoteProtocolError("payload length not minimally encoded")
        if opcode >= 8:
            _check_control(fin, length)
        elif self.max_frame_size is not None and length > self.max_frame_size:
            raise RemoteProtocolError(
                f"frame of {length} bytes exceeds max_frame_size", close_code=MESSAGE_TOO_BIG
            )
        mask = bytes(buf[pos : pos + 4]) if masked else None
        return FrameHeader(fin, rsv, opcode, length, mask)


def _check_control(fin: bool, length: int) -> None:
    # §5.5: "All control frames MUST have a payload length of 125 bytes or less
    # and MUST NOT be fragmented."
    if length > MAX_CONTROL_PAYLOAD:
        raise RemoteProtocolError(f"control frame payload of {length} bytes")
    if not fin:
        raise RemoteProtocolError("fragmented control frame")


def allowed_rsv_bits(extensions: Sequence[Extension]) -> int:
    """The union of the RSV bits claimed by ``extensions``."""
    bits = 0
    for ext in extensions:
        bits |= ext.rsv_bits
    return bits
