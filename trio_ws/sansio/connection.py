"""The RFC 6455 WebSocket state machine: bytes in, events out; commands in, bytes out.

Theory of operation
-------------------
:class:`WebSocketProtocol` owns one side of an established WebSocket (after the
§4 handshake).  It does no I/O:

* ``receive_data(data)`` feeds bytes from the socket (``b""`` = EOF) through the
  incremental :class:`~trio_ws.sansio.frames.FrameParser` and returns events:
  whole messages (or, with ``fragments=True``, :class:`Fragment` pieces as the
  payload arrives), :class:`Ping`, :class:`Pong`, :class:`CloseReceived`;
  ``receive_items(data)`` is the same with whole messages as plain ``str`` /
  ``bytes`` (the trio layer's way); runs of simple frames are read by the C
  scanner when it is built (``frames.scan_frames``), everything else by the parser;
* ``send_*`` return the bytes of the frame(s) to write; the caller writes them;
* replies the protocol makes on its own (Pong, the Close echo, the Close we fail
  with) are queued and collected with ``data_to_send()``.

When the peer breaks the protocol, ``receive_data`` does not raise: it stops at
the offending frame (events before it are still returned), queues a Close with the
right code (§7.1.7 "*Fail the WebSocket Connection*"), records the error in
``failure``, moves to CLOSED and ignores any further input.  The caller flushes
``data_to_send()`` and closes the TCP connection.

States (``state``)::

    event                                OPEN       CLOSING    CLOSED
    send_close()                         CLOSING    error      error
    Close received (we echo, §5.5.1)     CLOSED     CLOSED     (ignored)
    peer breaks the protocol / fail()    CLOSED     CLOSED     (ignored)
    EOF (receive_data(b""))              CLOSED     CLOSED     (ignored)

CLOSING means we sent a Close and wait for the peer's.  Data frames may still
arrive while CLOSING (the peer may not have seen our Close yet) and are delivered;
Pings are reported but not answered, since nothing may follow our Close.

Limits (checked from the frame header, before the payload is buffered):
``max_frame_size`` bounds each data frame, ``max_message_size`` the payload of a
message, both on the wire and after extensions decode it; exceeding either fails
with 1009.  The number of frames in a message is not capped (zero-length
continuation frames are legal, §5.4), but their *cost* is: the frame headers of
one message may total at most ``max(max_message_size, MIN_OVERHEAD_BUDGET)``
bytes (1009 beyond).  Any message whose frames carry on average at least as many
payload bytes as header bytes (at most 14) fits; a peer streaming empty frames
forever does not.  ``max_message_size=None`` lifts all three bounds.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trio_ws.exceptions import LocalProtocolError, RemoteProtocolError
from trio_ws.sansio.events import (
    BytesMessage,
    CloseReceived,
    Event,
    Fragment,
    Ping,
    Pong,
    TextMessage,
)
from trio_ws.sansio.frames import (
    MAX_CLOSE_REASON,
    MAX_CONTROL_PAYLOAD,
    MESSAGE_TOO_BIG,
    RSV1,
    Extension,
    FrameHeader,
    FrameParser,
    Opcode,
    allowed_rsv_bits,
    build_close_payload,
    is_valid_close_code,
    parse_close_payload,
    scan_frames,
    serialize_frame_parts,
)
from trio_ws.sansio.utf8 import Utf8Decoder, decode_utf8

__all__ = [
    "MIN_OVERHEAD_BUDGET",
    "Extension",
    "ProtocolStatistics",
    "Role",
    "State",
    "WebSocketProtocol",
]

#: What :meth:`WebSocketProtocol.receive_items` returns: events, whole messages as values.
_Items = list[Event | str | bytes]

#: Floor of the per-message budget for frame-header bytes (see the module docstring).
MIN_OVERHEAD_BUDGET = 64 * 1024

_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_CONTINUATION = Opcode.CONTINUATION
_PING = Opcode.PING
_PONG = Opcode.PONG
_CLOSE = Opcode.CLOSE


class Role(enum.Enum):
    """Which end of the connection this is; it decides masking (§5.1, §5.3)."""

    CLIENT = "client"
    SERVER = "server"


class State(enum.Enum):
    """See the transition table in the module docstring."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ProtocolStatistics:
    """What :meth:`WebSocketProtocol.statistics` reports."""

    state: State
    #: Bytes held by the frame parser (a partial header or control frame).
    bytes_buffered: int
    #: Payload bytes of the incomplete incoming message assembled so far.
    message_bytes_buffered: int
    #: Bytes waiting in ``data_to_send()``.
    bytes_to_send: int


def _header_size(header: FrameHeader) -> int:
    n = header.length
    size = 2 if n < 126 else (4 if n < 0x10000 else 10)
    return size + 4 if header.mask is not None else size


def _as_event(item: Event | str | bytes) -> Event:
    if type(item) is str:
        return TextMessage(item)
    if type(item) is bytes:
        return BytesMessage(item)
    return item  # type: ignore[return-value]


def _truncate_reason(reason: str) -> str:
    return reason.encode("utf-8")[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


class WebSocketProtocol:
    """One side of a WebSocket connection (see the module docstring)."""

    __slots__ = (
        "_close_code_received",
        "_close_code_sent",
        "_close_reason_received",
        "_close_reason_sent",
        "_close_received",
        "_close_sent",
        "_decoder",
        "_extensions",
        "_fragments",
        "_in_frame",
        "_input_closed",
        "_mask_source",
        "_max_message_size",
        "_msg_binary",
        "_msg_header",
        "_msg_overhead",
        "_msg_parts",
        "_msg_received",
        "_msg_size",
        "_out",
        "_overhead_budget",
        "_parser",
        "_scan",
        "_scan_inflate",
        "_scan_limit",
        "_send_opcode",
        "_simple",
        "failure",
        "role",
        "state",
    )

    def __init__(
        self,
        role: Role,
        *,
        max_message_size: int | None = 1 << 20,
        max_frame_size: int | None = None,
        mask_source: Callable[[], bytes] | None = None,
        fragments: bool = False,
        extensions: Sequence[Extension] = (),
    ) -> None:
        if role is Role.CLIENT and mask_source is None:
            # §5.3: the client picks a fresh, unpredictable key for every frame.
            raise ValueError("a client needs a mask_source returning 4 random bytes")
        for name, limit in (("max_message_size", max_message_size), ("max_frame_size", max_frame_size)):
            if limit is not None and limit < 0:
                raise ValueError(f"{name} must be >= 0 or None")
        self.role = role
        self.state = State.OPEN
        self.failure: RemoteProtocolError | None = None
        self._mask_source = mask_source if role is Role.CLIENT else None
        self._max_message_size = max_message_size
        self._overhead_budget = (
            None if max_message_size is None else max(max_message_size, MIN_OVERHEAD_BUDGET)
        )
        self._fragments = fragments
        self._extensions = tuple(extensions)
        self._simple = not fragments and not self._extensions
        # Simple frames are read by the C scanner when there is one (frames.py), and
        # compressed ones too when the only extension inflates whole messages.
        only = self._extensions[0] if len(self._extensions) == 1 else None
        self._scan_inflate: Callable[[bytes, int | None], bytes] | None = None
        if only is not None and only.rsv_bits == RSV1:
            self._scan_inflate = getattr(only, "decode_message", None)
        self._scan = scan_frames if not fragments and (self._simple or self._scan_inflate) else None
        limits = [limit for limit in (max_message_size, max_frame_size) if limit is not None]
        self._scan_limit = min(limits) if limits else -1
        self._parser = FrameParser(
            expect_masked=role is Role.SERVER,  # §5.1
            allowed_rsv=allowed_rsv_bits(self._extensions),
            max_frame_size=max_frame_size,
        )
        self._out = bytearray()
        self._decoder = Utf8Decoder()
        self._msg_header: FrameHeader | None = None  # first frame of the incoming message
        self._in_frame = False  # the last data piece left part of its frame to come
        self._msg_binary = False
        self._msg_parts: list[bytes] | list[str] = []
        self._msg_size = 0  # wire payload bytes of the incoming message
        self._msg_received = 0  # payload bytes of the incoming message after extensions
        self._msg_overhead = 0  # frame-header bytes of the incoming message
        self._send_opcode: Opcode | None = None  # type of an outgoing fragmented message
        self._input_closed = False
        self._close_sent = False
        self._close_code_sent: int | None = None
        self._close_reason_sent = ""
        self._close_received = False
        self._close_code_received: int | None = None
        self._close_reason_received = ""

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes received from the peer (``b""`` for EOF); return the events."""
        return [_as_event(item) for item in self.receive_items(data)]

    def receive_items(self, data: bytes) -> _Items:
        """:meth:`receive_data` with every whole message as its plain value: ``str`` for
        a :class:`TextMessage`, ``bytes`` for a :class:`BytesMessage` (the trio layer's
        way: no event object per message).  Other events are as ``receive_data``'s."""
        if self._input_closed:
            return []  # §5.5.1: nothing after a Close (or a failure) is processed
        if not data:
            self._input_closed = True
            self.state = State.CLOSED  # without a Close received: abnormal (1006, §7.1.5)
            return []
        events: _Items = []
        scan = self._scan
        if scan is not None and self._msg_header is None and self._parser.idle:
            inflate = self._scan_inflate
            scanned, end = scan(data, self._parser.expect_masked, self._scan_limit, inflate is not None)
            if inflate is not None and not self._inflate_scanned(scanned, inflate):
                return scanned  # type: ignore[return-value]  # failed at a message: nothing after it counts
            events = scanned  # type: ignore[assignment]  # (no tuples left)
            if end == len(data):
                return events
            data = data[end:]
        max_size = self._max_message_size
        try:
            for header, payload, left in self._parser.feed(data):
                op = header.opcode
                if (
                    op >= 8
                    or left
                    or not header.fin
                    or not self._simple
                    or self._msg_header is not None
                    or (max_size is not None and header.length > max_size)
                ):
                    if op >= 8:
                        if self._on_control(header, payload, events):
                            break
                    else:
                        self._on_data(header, payload, left, events)
                # Fast path: a whole single-frame message, no extensions (§5.6).
                elif op == _TEXT:
                    events.append(decode_utf8(payload))
                elif op == _BINARY:
                    events.append(payload)
                else:  # §5.4: a continuation frame needs a message to continue
                    raise RemoteProtocolError("continuation frame outside a message")
        except RemoteProtocolError as exc:
            self._fail_on(exc)
        return events

    def _inflate_scanned(
        self, items: list[str | bytes | tuple[int, bytes]], inflate: Callable[[bytes, int | None], bytes]
    ) -> bool:
        """Replace the compressed messages among the scanner's ``items`` by their
        content; on a bad one, drop it and what follows, fail and return False."""
        limit = self._max_message_size
        for i, item in enumerate(items):
            if isinstance(item, tuple):
                opcode, payload = item
                try:
                    data = self._check_decoded(inflate(payload, limit), limit)
                    items[i] = decode_utf8(data) if opcode == _TEXT else data
                except RemoteProtocolError as exc:
                    del items[i:]
                    self._fail_on(exc)
                    return False
        return True

    def _on_data(self, header: FrameHeader, payload: bytes, left: int, events: _Items) -> None:
        """Handle a piece of a data frame: sequencing, limits, assembly (§5.4, §5.6)."""
        if not self._in_frame:  # the frame's first piece
            self._start_frame(header)
        self._in_frame = left > 0
        msg = self._msg_header
        assert msg is not None
        end = header.fin and not left
        if self._extensions:
            payload = self._decode_extensions(msg, header, payload, end)
        offset = self._msg_received
        self._msg_received = offset + len(payload)
        if self._fragments:
            self._emit_fragment(payload, offset, left, end, events)
        elif self._msg_binary:
            parts_b: list[bytes] = self._msg_parts  # type: ignore[assignment]
            if payload:
                parts_b.append(payload)
            if end:
                events.append(parts_b[0] if len(parts_b) == 1 else b"".join(parts_b))
        else:
            parts_s: list[str] = self._msg_parts  # type: ignore[assignment]
            text = self._decoder.decode(payload, end)  # §8.1: fail fast on invalid UTF-8
            if text:
                parts_s.append(text)
            if end:
                events.append("".join(parts_s))
        if end:
            self._msg_header = None
            self._msg_parts = []

    def _start_frame(self, header: FrameHeader) -> None:
        """Check a new data frame's place in the message and the size limits."""
        if header.opcode is _CONTINUATION:
            if self._msg_header is None:
                # §5.4: a continuation frame must follow a non-final data frame.
                raise RemoteProtocolError("continuation frame outside a message")
        else:
            if self._msg_header is not None:
                # §5.4: fragments of one message are not interleaved with another.
                raise RemoteProtocolError("new data frame inside a fragmented message")
            self._msg_header = header
            self._msg_binary = header.opcode is _BINARY
            self._msg_parts = []
            self._msg_size = self._msg_received = self._msg_overhead = 0
            self._decoder.reset()
        self._msg_size += header.length
        limit = self._max_message_size
        if limit is not None and self._msg_size > limit:
            raise RemoteProtocolError(
                f"message exceeds max_message_size ({limit})", close_code=MESSAGE_TOO_BIG
            )
        self._msg_overhead += _header_size(header)
        if self._overhead_budget is not None and self._msg_overhead > self._overhead_budget:
            raise RemoteProtocolError("too many frames in one message", close_code=MESSAGE_TOO_BIG)

    def _decode_extensions(self, msg: FrameHeader, header: FrameHeader, payload: bytes, end: bool) -> bytes:
        limit = self._max_message_size
        max_size = None if limit is None else limit - self._msg_received
        for ext in reversed(self._extensions):  # §9.1: undo in reverse order
            payload = ext.decode(msg, header, payload, end=end, max_size=max_size)
        return self._check_decoded(payload, max_size)

    def _check_decoded(self, payload: bytes, max_size: int | None) -> bytes:
        """``payload`` unless extensions decoded it past ``max_size`` (1009)."""
        if max_size is not None and len(payload) > max_size:
            raise RemoteProtocolError(
                f"decoded message exceeds max_message_size ({self._max_message_size})",
                close_code=MESSAGE_TOO_BIG,
            )
        return payload

    def _emit_fragment(self, payload: bytes, offset: int, left: int, end: bool, events: _Items) -> None:
        data: bytes | str
        if self._msg_binary:
            data = payload
        else:
            offset -= self._decoder.pending  # held-back bytes were not delivered yet
            data = self._decoder.decode(payload, end)  # §8.1: fail fast on invalid UTF-8
        if data or end:
            events.append(Fragment(data, self._msg_binary, offset, left, end))

    def _on_control(self, header: FrameHeader, payload: bytes, events: _Items) -> bool:
        """Handle a whole control frame (§5.5); True means stop reading input."""
        op = header.opcode
        if op is _PING:
            events.append(Ping(payload))
            if not self._close_sent:
                # §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
                # frame in response" with "identical Application data".
                self._out += self._frame(_PONG, payload)
            return False
        if op is _PONG:
            events.append(Pong(payload))  # §5.5.3: unsolicited Pongs are allowed
            return False
        code, raw_reason = parse_close_payload(payload)  # 1002 for a bad code / 1 byte
        reason = decode_utf8(raw_reason, "close reason")  # §5.5.1: reason is UTF-8 (1007)
        self._close_received = True
        self._close_code_received = code
        self._close_reason_received = reason
        events.append(CloseReceived(code, reason))
        if not self._close_sent:
            # §5.5.1: "the endpoint MUST send a Close frame in response ... typically
            # echoing the status code it received".
            self._queue_close(code, reason)
        self._input_closed = True  # §5.5.1: no data frames after a Close
        self.state = State.CLOSED
        return True

    def _fail_on(self, exc: RemoteProtocolError) -> None:
        """§7.1.7: _Fail the WebSocket Connection_ because the peer broke the rules."""
        self.failure = exc
        if not self._close_sent:
            self._queue_close(exc.close_code, _truncate_reason(str(exc)))
        self._input_closed = True
        self.state = State.CLOSED

    def _queue_close(self, code: int | None, reason: str) -> None:
        self._out += self._close_frame(code, reason)

    # -------------------------------------------------------------------- sending

    def _frame(self, opcode: Opcode, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
        header, body = self._frame_parts(opcode, payload, fin, rsv)
        return header + body

    def _frame_parts(self, opcode: Opcode, payload: bytes, fin: bool, rsv: int) -> tuple[bytes, bytes]:
        source = self._mask_source
        if source is None:
            return serialize_frame_parts(opcode, payload, fin=fin, rsv=rsv)
        mask = source()
        if len(mask) != 4:
            raise ValueError("mask_source must return exactly 4 bytes")
        return serialize_frame_parts(opcode, payload, fin=fin, rsv=rsv, mask=mask)  # §5.3

    def _close_frame(self, code: int | None, reason: str) -> bytes:
        frame = self._frame(_CLOSE, build_close_payload(code, reason))
        self._close_sent = True
        self._close_code_sent = code
        self._close_reason_sent = reason
        return frame

    def _check_open(self) -> None:
        if self.state is not State.OPEN:
            # §5.5.1: "the endpoint MUST NOT send any more data frames" after a Close.
            raise LocalProtocolError(f"cannot send: the connection is {self.state.value}")

    def send_text(self, data: str, *, fin: bool = True) -> bytes:
        """Bytes of a text frame; ``fin=False`` starts or continues a fragmented message."""
        header, payload = self._send_data(_TEXT, data.encode("utf-8"), fin)
        return header + payload

    def send_binary(self, data: bytes | bytearray | memoryview, *, fin: bool = True) -> bytes:
        """Bytes of a binary frame; ``fin=False`` starts or continues a fragmented message."""
        header, payload = self._send_data(_BINARY, bytes(data), fin)
        return header + payload

    def send_message_parts(self, data: str | bytes | bytearray | memoryview) -> tuple[bytes, bytes]:
        """A whole message in one frame (text for ``str``), as ``(header, payload)``.

        The same frame as :meth:`send_text` / :meth:`send_binary`, not joined:
        a large payload can then be written behind its header without a copy.
        """
        if isinstance(data, str):
            return self._send_data(_TEXT, data.encode("utf-8"), True)
        return self._send_data(_BINARY, bytes(data), True)

    def _send_data(self, opcode: Opcode, payload: bytes, fin: bool) -> tuple[bytes, bytes]:
        self._check_open()
        current = self._send_opcode
        if current is None:
            wire_op = opcode
        elif current is opcode:
            wire_op = _CONTINUATION  # §5.4: later fragments are continuation frames
        else:
            # §5.4: a message's fragments may not be interleaved with another message.
            raise LocalProtocolError(
                f"cannot send {opcode.name.lower()} inside a fragmented {current.name.lower()} message"
            )
        rsv = 0
        for ext in self._extensions:  # §9.1: applied in negotiation order
            bits, payload = ext.encode(opcode, payload, first=current is None, fin=fin)
            rsv |= bits
        self._send_opcode = None if fin else opcode
        return self._frame_parts(wire_op, payload, fin, rsv)

    def _control_payload(self, payload: bytes | bytearray | memoryview) -> bytes:
        self._check_open()
        payload = bytes(payload)
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError(f"control frame payload over {MAX_CONTROL_PAYLOAD} bytes")  # §5.5
        return payload

    def send_ping(self, payload: bytes | bytearray | memoryview = b"") -> bytes:
        """Bytes of a Ping frame (§5.5.2); at most 125 bytes of payload."""
        return self._frame(_PING, self._control_payload(payload))

    def send_pong(self, payload: bytes | bytearray | memoryview = b"") -> bytes:
        """Bytes of an unsolicited Pong frame (§5.5.3, a heartbeat)."""
        return self._frame(_PONG, self._control_payload(payload))

    def send_close(self, code: int | None = 1000, reason: str = "") -> bytes:
        """Bytes of our Close frame (§5.5.1); the state becomes CLOSING.

        ``code=None`` sends a Close without a status code (the peer sees 1005);
        a reason then is not allowed.  The code must be valid on the wire (§7.4)
        and the reason at most 123 bytes of UTF-8.
        """
        self._check_open()
        if code is None:
            if reason:
                raise LocalProtocolError("a close reason needs a close code")
        elif not is_valid_close_code(code):
            raise LocalProtocolError(f"close code {code} may not be sent")
        if len(reason.encode("utf-8")) > MAX_CLOSE_REASON:
            raise LocalProtocolError(f"close reason over {MAX_CLOSE_REASON} bytes of UTF-8")
        frame = self._close_frame(code, reason)
        self.state = State.CLOSING
        return frame

    def fail(self, code: int, reason: str = "") -> bytes:
        """Fail the connection ourselves (§7.1.7), e.g. with 1011 or 1001.

        Returns the bytes of our Close (``b""`` if one was already sent), moves to
        CLOSED and stops processing input: the caller writes the bytes and closes
        the TCP connection.  The reason is truncated to fit (§5.5).
        """
        if not is_valid_close_code(code):
            raise LocalProtocolError(f"close code {code} may not be sent")
        frame = b""
        if not self._close_sent and self.state is not State.CLOSED:
            frame = self._close_frame(code, _truncate_reason(reason))
        self._input_closed = True
        self.state = State.CLOSED
        return frame

    def data_to_send(self) -> bytes:
        """Bytes the protocol queued itself (Pongs, the Close echo, a failure Close)."""
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    # ---------------------------------------------------------------- inspection

    @property
    def extensions(self) -> tuple[Extension, ...]:
        """The negotiated extensions, in negotiation order."""
        return self._extensions

    @property
    def close_code_received(self) -> int | None:
        """The peer's close code; ``None`` if none arrived or it had no code (1005)."""
        return self._close_code_received

    @property
    def close_reason_received(self) -> str:
        return self._close_reason_received

    @property
    def close_code_sent(self) -> int | None:
        """Our close code; ``None`` if we sent none, or sent one without a code."""
        return self._close_code_sent

    @property
    def close_reason_sent(self) -> str:
        return self._close_reason_sent

    @property
    def close_sent(self) -> bool:
        return self._close_sent

    @property
    def close_received(self) -> bool:
        return self._close_received

    @property
    def closed_cleanly(self) -> bool:
        """True once Close frames went both ways and nobody broke the protocol."""
        return self._close_received and self._close_sent and self.failure is None

    def statistics(self) -> ProtocolStatistics:
        """Buffer sizes, for monitoring and tests (trio's ``statistics()`` convention)."""
        return ProtocolStatistics(
            state=self.state,
            bytes_buffered=self._parser.buffered,
            message_bytes_buffered=self._msg_received if self._msg_header is not None else 0,
            bytes_to_send=len(self._out),
        )
