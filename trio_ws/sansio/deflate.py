"""RFC 7692 permessage-deflate: negotiation and a codec with a hard bound on inflation.

Theory of operation
-------------------
**Negotiation** (RFC 7692 §5, §7.1) is three pure functions over parsed
``Sec-WebSocket-Extensions`` elements (:func:`~trio_ws.sansio.headers.parse_params_list`)::

    client:  client_offer(settings) ──▶ "permessage-deflate; client_max_window_bits"
    server:  server_negotiate(offer.extensions, settings) ──▶ DeflateParams | None
             params.header() ──▶ the response element
    client:  client_accept(accept.extensions, settings) ──▶ DeflateParams | None
             (NegotiationError when the answer breaks §7.1)

:class:`DeflateParams` is the *agreement as written in the response*; both sides
build the codec from it with :class:`PerMessageDeflate` (``is_server`` says
which direction is ours).  Server policy: the first acceptable
``permessage-deflate`` offer wins (§5.1, offers come in preference order); an
offer with an unknown or repeated parameter or an invalid value is declined
(§7 MUST) and the next one is tried; none acceptable means no compression (the
handshake still succeeds).  The server only *announces* what it must or what
helps: ``server_max_window_bits`` only when the client asked for it (some
clients reject it unasked), ``client_max_window_bits`` only when the client
offered the parameter and our limit is tighter or the offer carried a value.
Client policy: the answer must contain exactly one element with legal
parameters; ``client_max_window_bits`` only if we offered it, and then with a
value (§7.1.2.2); ``server_max_window_bits`` no larger than what we asked
(§7.1.2.1); an answer that omits a limit or a no-context-takeover we asked for
represents a configuration we can still decode, so it is accepted.

**Window bits 8.**  zlib refuses ``wbits=8`` for raw deflate, so a compressor
limited to 8 bits uses 9.  This is safe, not a stretch of the rules: zlib's
deflate never emits a distance over ``w_size - MIN_LOOKAHEAD`` = 512 - 262 = 250
bytes with a 512-byte window, so its output decodes with a 256-byte window
(``tests/sansio/test_deflate.py`` checks it).  Inflaters use at least 9 too,
which only makes us more tolerant of peers doing the same.

**The codec** (§7.2) implements the :class:`~trio_ws.sansio.frames.Extension`
seam with RSV1 ("Per-Message Compressed", §6): on send, the message's first
frame decides (threshold, per-message opt-out) and carries RSV1; each frame's
data goes through ``compress`` + ``Z_SYNC_FLUSH``, so every frame is decodable
on arrival, and the final frame drops the ``00 00 ff ff`` tail (§7.2.1), which
leaves the single byte ``00`` when nothing else is left (§7.2.3.6).  On receive, the first
frame's RSV1 says whether the message is compressed; RSV1 on a continuation
frame fails with 1002 (§6.1); the tail is appended to the last piece (§7.2.2).
Control frames never reach extensions.  Context takeover: with
``*_no_context_takeover`` in force for a direction, that direction's zlib
object is dropped (set to ``None``) after every message, so an idle connection
holds no zlib memory for it; a sender may always drop its own context
(``no_context_takeover=True`` locally), a receiver only when negotiated.

**The inflation bound.**  Input is inflated with
``decompressobj.decompress(data, max_length)`` in steps of at most
:data:`INFLATE_STEP` bytes *and* never more than one byte past the message's
remaining budget; as soon as the output passes ``max_size`` the decode raises
``RemoteProtocolError(close_code=1009)``.  So whatever the compression ratio
(a 1 MB frame of zeros inflates to ~1 GB), a message costs at most
``max_message_size + 1`` bytes of output (transiently twice that while the
pieces are joined) plus the zlib state below.  The input is handed to zlib
:data:`INFLATE_INPUT_STEP` bytes at a time through a memoryview, so the
``unconsumed_tail`` copies zlib makes stay that small, and the 4-byte tail is
inflated on its own rather than appended (no copy of the frame either).

Memory budget (zlib's own figures, per connection)
--------------------------------------------------
============  ===============================================  =======================
object        bytes                                            defaults (server)
============  ===============================================  =======================
compressor    ``(1 << (wbits + 2)) + (1 << (mem_level + 9))``  wbits 12, mem_level 6:
                                                               16 + 32 = 48 KiB
inflater      ``(1 << wbits)`` + ~7 KiB                        wbits 12 when the client
                                                               offered the parameter
                                                               (browsers do): ~11 KiB;
                                                               else 15: ~39 KiB
============  ===============================================  =======================

A client defaults to 15 bits (256 KiB + 39 KiB with ``mem_level`` 8, 160 KiB +
39 KiB with the default 6).  ``no_context_takeover`` drops both objects between
messages.  Tune with ``DeflateSettings`` (``WebSocketConfig.compression_*`` and
``max_window_bits`` in the trio layer).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from trio_ws.exceptions import NegotiationError, RemoteProtocolError
from trio_ws.sansio.frames import MESSAGE_TOO_BIG, RSV1, FrameHeader, Opcode
from trio_ws.sansio.headers import Params

__all__ = [
    "DEFAULT_COMPRESSION_LEVEL",
    "DEFAULT_MEM_LEVEL",
    "DEFAULT_THRESHOLD",
    "EXTENSION_NAME",
    "INFLATE_INPUT_STEP",
    "INFLATE_STEP",
    "DeflateParams",
    "DeflateSettings",
    "PerMessageDeflate",
    "client_accept",
    "client_offer",
    "server_negotiate",
]

EXTENSION_NAME = "permessage-deflate"
#: §7.1.2: window bits are 8..15.
MIN_WINDOW_BITS = 8
MAX_WINDOW_BITS = 15
#: zlib cannot deflate with 8 bits (see the module docstring).
_ZLIB_MIN_WINDOW_BITS = 9
#: Messages sent in one frame below this many bytes go uncompressed.  Below ~128
#: bytes the saving is a few dozen bytes at best (the frame header is 2-14, the
#: deflate block header and flush add ~2-6) while each compress + sync flush costs
#: a fixed amount of CPU; short messages are also where compression helps least
#: without context.
DEFAULT_THRESHOLD = 128
#: zlib's own default: a good ratio at moderate CPU.
DEFAULT_COMPRESSION_LEVEL = 6
#: Hash/buffer size of the compressor: 6 costs 32 KiB instead of 128 KiB (8, zlib's
#: default).  5 (websockets' choice, 16 KiB) measured 20-25 % more CPU per large
#: message and a slightly worse ratio on mixed binary data (bench/README.md), for
#: 16 KiB less per connection that is compressing.
DEFAULT_MEM_LEVEL = 6
#: The largest output of one ``decompress`` call (the step of the inflation bound).
INFLATE_STEP = 64 * 1024
#: Compressed bytes handed to zlib at a time (bounds its ``unconsumed_tail`` copies).
INFLATE_INPUT_STEP = 16 * 1024

_TAIL = b"\x00\x00\xff\xff"  # §7.2.1: the empty stored block a sync flush ends with
_PARAM_NAMES = frozenset(
    {
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    }
)
_WINDOW_VALUES = {str(n): n for n in range(MIN_WINDOW_BITS, MAX_WINDOW_BITS + 1)}  # no leading zeros


@dataclass(frozen=True, slots=True)
class DeflateSettings:
    """What one endpoint is willing to do (local configuration, not negotiated).

    ``max_window_bits`` caps our compressor's window always, and is asked of the
    peer where the protocol allows (server: ``client_max_window_bits`` in the
    answer; client: ``server_max_window_bits`` in the offer).
    ``no_context_takeover`` asks for no context takeover both ways and never
    keeps our own compressor between messages.  ``threshold``: single-frame
    messages shorter than this are sent uncompressed.
    """

    max_window_bits: int = MAX_WINDOW_BITS
    level: int = DEFAULT_COMPRESSION_LEVEL
    mem_level: int = DEFAULT_MEM_LEVEL
    threshold: int = DEFAULT_THRESHOLD
    no_context_takeover: bool = False

    def __post_init__(self) -> None:
        if not MIN_WINDOW_BITS <= self.max_window_bits <= MAX_WINDOW_BITS:
            raise ValueError("max_window_bits must be 8..15")
        if not -1 <= self.level <= 9:
            raise ValueError("compression level must be -1..9")
        if not 1 <= self.mem_level <= 9:
            raise ValueError("mem_level must be 1..9")
        if self.threshold < 0:
            raise ValueError("threshold must be >= 0")


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The negotiated parameters, as the server's answer states them (§7.1).

    ``None`` window bits: the parameter is absent (15 bits may be used).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None

    def header(self) -> str:
        """The ``Sec-WebSocket-Extensions`` element stating these parameters."""
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


# ------------------------------------------------------------------ negotiation


def _parse(params: list[tuple[str, str | None]], *, offer: bool) -> dict[str, int | None]:
    """Validate one element's parameters (§7.1); ValueError names the problem.

    Returns ``{name: window bits or None}``.  The value rules: the two
    ``*_no_context_takeover`` take no value; ``server_max_window_bits`` needs
    one; ``client_max_window_bits`` may omit it in an offer only (§7.1.2.2).
    """
    seen: dict[str, int | None] = {}
    for name, value in params:
        if name not in _PARAM_NAMES:
            raise ValueError(f"unknown parameter {name!r}")  # §7 decline / fail
        if name in seen:
            raise ValueError(f"duplicate parameter {name!r}")  # §7 decline / fail
        if name.endswith("_no_context_takeover"):
            if value is not None:
                raise ValueError(f"{name} takes no value")  # §7.1.1.1, §7.1.1.2
            seen[name] = None
        elif value is None:
            if name == "server_max_window_bits" or not offer:
                raise ValueError(f"{name} needs a value")
            seen[name] = None
        else:
            bits = _WINDOW_VALUES.get(value)  # §7.1.2: 8..15, no leading zeros
            if bits is None:
                raise ValueError(f"invalid value {value!r} for {name}")
            seen[name] = bits
    return seen


def client_offer(settings: DeflateSettings) -> str:
    """Our ``Sec-WebSocket-Extensions`` offer (§5.1, §7.1).

    By default ``permessage-deflate; client_max_window_bits``: we support any
    window the server wants us to use.  A tighter ``max_window_bits`` asks for
    it both ways; ``no_context_takeover`` asks for it both ways.
    """
    parts = [EXTENSION_NAME]
    if settings.no_context_takeover:
        parts += ["server_no_context_takeover", "client_no_context_takeover"]
    bits = settings.max_window_bits
    if bits < MAX_WINDOW_BITS:
        parts += [f"server_max_window_bits={bits}", f"client_max_window_bits={bits}"]
    else:
        parts.append("client_max_window_bits")
    return "; ".join(parts)


def server_negotiate(offers: Sequence[Params], settings: DeflateSettings) -> DeflateParams | None:
    """The answer to the client's first acceptable permessage-deflate offer, or None (§5.1, §7).

    Invalid offers (unknown or repeated parameters, bad values) are declined,
    as §7 requires, and the next offer is tried.  Every valid offer is one we
    can meet, so the first valid one wins.
    """
    for name, params in offers:
        if name != EXTENSION_NAME:
            continue
        try:
            offered = _parse(params, offer=True)
        except ValueError:
            continue  # §7: "A server MUST decline an extension negotiation offer" ...
        return _answer(offered, settings)
    return None


def _answer(offered: dict[str, int | None], settings: DeflateSettings) -> DeflateParams:
    limit = settings.max_window_bits
    server_bits: int | None = None
    if "server_max_window_bits" in offered:
        # §7.1.2.1: accepted "with the same or smaller value as the offer".
        asked = offered["server_max_window_bits"]
        assert asked is not None
        server_bits = min(asked, limit)
    client_bits: int | None = None
    if "client_max_window_bits" in offered:
        # §7.1.2.2: only when offered; a value the client gave stays a ceiling.
        hint = offered["client_max_window_bits"]
        if hint is not None or limit < MAX_WINDOW_BITS:
            client_bits = min(hint or MAX_WINDOW_BITS, limit)
    no_takeover = settings.no_context_takeover
    return DeflateParams(
        # §7.1.1.1: accepted by echoing it; we may also add it ourselves.
        server_no_context_takeover=no_takeover or "server_no_context_takeover" in offered,
        # §7.1.1.2: the server may add it even if the client only hinted or did not ask.
        client_no_context_takeover=no_takeover or "client_no_context_takeover" in offered,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )


def client_accept(response: Sequence[Params], settings: DeflateSettings) -> DeflateParams | None:
    """Validate the server's answer to :func:`client_offer` (§5.2, §7); None if declined.

    ``response`` is ``ServerAccept.extensions`` (elements naming extensions we
    did not offer were already refused).  Raises :class:`NegotiationError`,
    which fails the handshake, for anything §7 says a client MUST fail on.
    """
    answers = [params for name, params in response if name == EXTENSION_NAME]
    if not answers:
        return None
    if len(answers) > 1:
        raise NegotiationError("the server accepted permessage-deflate more than once")
    try:
        got = _parse(answers[0], offer=False)
    except ValueError as exc:
        raise NegotiationError(f"invalid permessage-deflate answer: {exc}") from exc
    limit = settings.max_window_bits
    server_bits = got.get("server_max_window_bits")
    if server_bits is not None and limit < MAX_WINDOW_BITS and server_bits > limit:
        # §7.1.2.1: the server answers "with the same or smaller value as the offer".
        raise NegotiationError(
            f"the server answered server_max_window_bits={server_bits}, above the {limit} we offered"
        )
    client_bits = got.get("client_max_window_bits")
    # client_offer() always offers client_max_window_bits, so any answer value is allowed
    # (§7.1.2.2 forbids it only when the offer lacks the parameter).
    return DeflateParams(
        server_no_context_takeover="server_no_context_takeover" in got,
        client_no_context_takeover="client_no_context_takeover" in got,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )


# ------------------------------------------------------------------------ codec


class PerMessageDeflate:
    """The permessage-deflate codec for one connection (an ``Extension``, RSV1).

    ``params`` is the agreement (see :class:`DeflateParams`), ``is_server`` which
    end we are.  ``compress_outgoing`` may be cleared to send the next messages
    uncompressed (it is read at each message's first frame).
    """

    name = EXTENSION_NAME
    rsv_bits = RSV1

    __slots__ = (
        "_compressing",
        "_deflater",
        "_inflate_bits",
        "_inflate_takeover",
        "_inflater",
        "_send_bits",
        "_send_takeover",
        "compress_outgoing",
        "params",
        "settings",
    )

    def __init__(
        self, params: DeflateParams, *, is_server: bool, settings: DeflateSettings | None = None
    ) -> None:
        settings = settings or DeflateSettings()
        self.params = params
        self.settings = settings
        if is_server:
            send_limit, send_no_takeover = params.server_max_window_bits, params.server_no_context_takeover
            recv_limit, recv_no_takeover = params.client_max_window_bits, params.client_no_context_takeover
        else:
            send_limit, send_no_takeover = params.client_max_window_bits, params.client_no_context_takeover
            recv_limit, recv_no_takeover = params.server_max_window_bits, params.server_no_context_takeover
        # We may always use a smaller window, and drop our own context, than agreed.
        send_bits = min(send_limit or MAX_WINDOW_BITS, settings.max_window_bits)
        self._send_bits = max(send_bits, _ZLIB_MIN_WINDOW_BITS)
        self._send_takeover = not (send_no_takeover or settings.no_context_takeover)
        self._inflate_bits = max(recv_limit or MAX_WINDOW_BITS, _ZLIB_MIN_WINDOW_BITS)
        self._inflate_takeover = not recv_no_takeover
        self._deflater: zlib._Compress | None = None
        self._inflater: zlib._Decompress | None = None
        self._compressing = False
        self.compress_outgoing = True

    def __repr__(self) -> str:
        return f"<PerMessageDeflate {self.params.header()!r}>"

    @property
    def holds_state(self) -> tuple[bool, bool]:
        """Whether a compressor / an inflater is currently allocated."""
        return self._deflater is not None, self._inflater is not None

    # ------------------------------------------------------------------ receive

    def decode(
        self,
        message: FrameHeader,
        frame: FrameHeader,
        data: bytes,
        *,
        end: bool,
        max_size: int | None,
    ) -> bytes:
        """Inflate the next piece of a compressed message, never past ``max_size``."""
        if frame.rsv1 and frame.opcode is Opcode.CONTINUATION:
            # §6.1: RSV1 marks the first frame only; a continuation with it is invalid.
            raise RemoteProtocolError("RSV1 set on a continuation frame")
        if not message.rsv1:
            return data  # an uncompressed message
        return self._inflate(data, end, max_size)

    def decode_message(self, data: bytes, max_size: int | None) -> bytes:
        """Inflate a whole compressed message that came in one frame (the fast path:
        :meth:`decode` for its one piece, without the headers)."""
        return self._inflate(data, True, max_size)

    def _inflate(self, data: bytes, end: bool, max_size: int | None) -> bytes:
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(-self._inflate_bits)
        try:
            out = _inflate(inflater, data, end, max_size)
        except zlib.error as exc:
            raise RemoteProtocolError(f"invalid compressed data: {exc}") from exc
        if end and (not self._inflate_takeover or inflater.eof):
            # No takeover agreed, or the peer ended the stream (BFINAL, §7.2.3.4).
            self._inflater = None
        return out

    # --------------------------------------------------------------------- send

    def encode(self, opcode: Opcode, data: bytes, *, first: bool, fin: bool) -> tuple[int, bytes]:
        """Deflate an outgoing frame's payload; RSV1 on the first frame of a compressed message."""
        if first:
            self._compressing = self.compress_outgoing and (not fin or len(data) >= self.settings.threshold)
        if not self._compressing:
            return 0, data
        deflater = self._deflater
        if deflater is None:
            settings = self.settings
            deflater = self._deflater = zlib.compressobj(
                settings.level, zlib.DEFLATED, -self._send_bits, settings.mem_level
            )
        out = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        if fin:
            # §7.2.1: a sync flush always ends with an empty stored block; drop its
            # 00 00 ff ff.  Its header bits sit in the byte before, so an empty
            # message still leaves the single 00 of §7.2.3.6.
            out = out[:-4]
            if not self._send_takeover:
                self._deflater = None
        return (RSV1 if first else 0), out


def _inflate(inflater: zlib._Decompress, data: bytes, end: bool, max_size: int | None) -> bytes:
    """Inflate one piece (plus the §7.2.2 tail at the end), never past ``max_size``.

    The input goes to zlib :data:`INFLATE_INPUT_STEP` bytes at a time, so the
    ``unconsumed_tail`` copies zlib makes stay small; the output comes in steps
    of at most :data:`INFLATE_STEP` and never more than one byte past the budget.
    """
    parts: list[bytes] = []
    if end and len(data) < INFLATE_INPUT_STEP:
        # Most messages: one small piece, inflated with its tail in one zlib call.
        _inflate_step(inflater, data + _TAIL, max_size, parts)
    else:
        budget = max_size
        view = memoryview(data)
        for pos in range(0, len(data), INFLATE_INPUT_STEP):
            budget = _inflate_step(inflater, view[pos : pos + INFLATE_INPUT_STEP], budget, parts)
        if end:
            _inflate_step(inflater, _TAIL, budget, parts)  # §7.2.2: append 00 00 ff ff
    return parts[0] if len(parts) == 1 else b"".join(parts)  # transiently 2x the output


def _inflate_step(
    inflater: zlib._Decompress, data: bytes | memoryview, budget: int | None, parts: list[bytes]
) -> int | None:
    """Inflate ``data`` into ``parts``; return the budget left, raise 1009 past it."""
    while not inflater.eof:  # after a BFINAL block (§7.2.3.4) the rest is ignored
        step = INFLATE_STEP if budget is None else min(INFLATE_STEP, budget + 1)
        chunk = inflater.decompress(data, step)
        if budget is not None:
            budget -= len(chunk)
            if budget < 0:
                raise RemoteProtocolError(
                    "decompressed message exceeds max_message_size", close_code=MESSAGE_TOO_BIG
                )
        if chunk:
            parts.append(chunk)
        data = inflater.unconsumed_tail
        if not data and len(chunk) < step:
            break  # input consumed and zlib had room to spare: nothing pending
    return budget
