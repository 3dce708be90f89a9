"""The whole trio_ws exception hierarchy, rooted in :class:`TrioWSError`.

::

    TrioWSError
    ├── ProtocolError
    │   ├── LocalProtocolError      the caller asked for something illegal
    │   └── RemoteProtocolError     the peer broke the spec (close_code / status_hint)
    ├── HandshakeError              an upgrade that failed
    │   ├── InvalidHandshake        the request or response is not a valid upgrade
    │   ├── HandshakeRejected       the server answered with a real HTTP response
    │   └── NegotiationError        subprotocol or extension mismatch
    ├── ConnectionClosed            the WebSocket is closed (code, reason)
    │   ├── ConnectionClosedOK      ... cleanly (1000/1001, or no status)
    │   └── ConnectionClosedError   ... with an error code or abnormally
    └── HTTPError                   an HTTP-level refusal carrying a status code
        └── RequestBodyTooLarge     the request body exceeded its cap (413)

Foreign exceptions (``h11.*``, ``zlib.error``, ``UnicodeDecodeError``, ``OSError``)
are wrapped with ``raise ... from`` so users catch one family.
"""

from __future__ import annotations

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "HTTPError",
    "HandshakeError",
    "HandshakeRejected",
    "InvalidHandshake",
    "LocalProtocolError",
    "NegotiationError",
    "ProtocolError",
    "RemoteProtocolError",
    "RequestBodyTooLarge",
    "TrioWSError",
]


class TrioWSError(Exception):
    """Base class of every exception trio_ws raises on purpose."""


class ProtocolError(TrioWSError):
    """A protocol rule was broken, by us or by the peer."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol forbids (e.g. sending after close)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol.

    ``close_code`` is the WebSocket close code to fail the connection with
    (RFC 6455 §7.4.1); ``status_hint`` is the HTTP status to answer with, like
    h11's ``error_status_hint``.
    """

    def __init__(self, message: str, *, close_code: int = 1002, status_hint: int = 400) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.status_hint = status_hint


class HandshakeError(TrioWSError):
    """The WebSocket opening handshake failed."""


class InvalidHandshake(HandshakeError):
    """The upgrade request or response is not a valid RFC 6455 handshake.

    ``status_hint`` is the HTTP status a server answers with (400, or 426 for a
    wrong version); ``headers`` are extra response headers (e.g.
    ``Sec-WebSocket-Version: 13`` with a 426).
    """

    def __init__(
        self,
        message: str,
        *,
        status_hint: int = 400,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_hint = status_hint
        self.headers = headers or []


class HandshakeRejected(HandshakeError):
    """The server refused the upgrade with a real HTTP response."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__(f"server rejected WebSocket connection: HTTP {status}")
        self.status = status
        self.headers = headers
        self.body = body


class NegotiationError(HandshakeError):
    """Subprotocol or extension negotiation failed."""


class ConnectionClosed(TrioWSError):
    """The WebSocket connection is closed.

    ``code``/``reason`` are what the peer sent (``None`` and ``""`` when no close
    frame arrived, RFC 6455 §7.1.5 reports that as 1005 / 1006); ``sent_code`` and
    ``sent_reason`` are ours, when we sent one. ``__cause__`` is set when a local
    failure closed the connection.
    """

    def __init__(
        self,
        code: int | None,
        reason: str = "",
        *,
        sent_code: int | None = None,
        sent_reason: str = "",
    ) -> None:
        self.code = code
        self.reason = reason
        self.sent_code = sent_code
        self.sent_reason = sent_reason
        shown = 1006 if code is None else code
        super().__init__(f"WebSocket closed: {shown}" + (f" {reason!r}" if reason else ""))


class ConnectionClosedOK(ConnectionClosed):
    """Closed cleanly: 1000 or 1001 both ways, or 1005 (no status) received."""


class ConnectionClosedError(ConnectionClosed):
    """Closed with an error code, or the TCP connection dropped without a close frame."""


class HTTPError(TrioWSError):
    """An HTTP-level refusal: the server answers ``status`` and, usually, closes."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status


class RequestBodyTooLarge(HTTPError):
    """The request body exceeded the configured cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit
