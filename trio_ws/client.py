"""The WebSocket client: ``async with trio_ws.connect(url) as ws``.

Theory of operation
-------------------
1. Open the transport: ``trio.open_tcp_stream`` (happy eyeballs), wrapped in
   ``trio.SSLStream`` for ``wss://`` (``ssl_context``, or
   :func:`trio_ws.tls.client_context`: the system trust store, host name
   checked, ALPN ``http/1.1``).  A failed TLS handshake (verification, a
   peer that is not TLS, a reset) raises :class:`HandshakeError` whose
   ``__cause__`` is the ``ssl`` or ``OSError`` exception.
2. Send ``GET`` with the upgrade headers (``build_request_headers``) through an
   ``h11.Connection(CLIENT)``; read until h11 yields the ``101`` (skipping other
   1xx) or a final response.
3. A final response means the server refused: its body is read up to
   :data:`MAX_REJECT_BODY` and :class:`HandshakeRejected` carries status,
   headers and body.  A ``101`` is checked with ``check_response``
   (:class:`InvalidHandshake`, :class:`NegotiationError`); the bytes h11 read
   past the head (``trailing_data``) seed the protocol.
4. The :class:`~trio_ws.WebSocket` runs in the context manager's own nursery;
   leaving the block closes it (1000) within ``close_timeout``.

Deadlines for the connect and handshake are the caller's cancel scopes
(``with trio.fail_after(5): async with connect(...)``).  Client frames are
masked with keys from a buffered ``os.urandom`` pool (§5.3 wants unpredictable
keys; one syscall per 1024 frames instead of one per frame).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Unpack
from urllib.parse import urlsplit

import h11
import trio

from .exceptions import HandshakeError, HandshakeRejected, InvalidHandshake
from .sansio.connection import Role
from .sansio.deflate import DeflateSettings, PerMessageDeflate, client_accept, client_offer
from .sansio.frames import Extension
from .sansio.handshake import ServerAccept, build_request_headers, check_response, make_key
from .tls import client_context
from .websocket import WebSocket, WebSocketConfig, WebSocketOptions

__all__ = ["MAX_REJECT_BODY", "connect"]

#: Bytes of a rejection's body kept for :class:`HandshakeRejected`.
MAX_REJECT_BODY = 64 * 1024
#: Bytes of random mask keys fetched from the OS at a time.
_MASK_POOL_SIZE = 4096
_HANDSHAKE_READ_SIZE = 16 * 1024


class _MaskPool:
    """4-byte mask keys (§5.3) from a buffered ``os.urandom`` pool."""

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0

    def __call__(self) -> bytes:
        pos = self._pos
        if pos + 4 > len(self._buf):
            self._buf = os.urandom(_MASK_POOL_SIZE)
            pos = 0
        self._pos = pos + 4
        return self._buf[pos : pos + 4]


def _parse_url(url: str) -> tuple[bool, str, int, str, str]:
    """``(secure, host, port, Host header, request-target)`` of a ws:// or wss:// URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL (ws:// or wss://): {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in WebSocket URLs are not supported; send a header instead")
    secure = scheme == "wss"
    default_port = 443 if secure else 80
    port = parts.port or default_port
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return secure, host, port, host_header, target


async def _open_transport(
    secure: bool, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> trio.abc.Stream:
    tcp = await trio.open_tcp_stream(host, port)
    if not secure:
        return tcp
    tls = trio.SSLStream(tcp, ssl_context or client_context(), server_hostname=host)
    try:
        await tls.do_handshake()
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        await trio.aclose_forcefully(tls)
        cause = exc.__cause__ or exc
        if isinstance(cause, ssl.SSLCertVerificationError):
            # Say why (unknown issuer, expired, wrong host...), not just "verify failed".
            why = f"certificate verify failed: {cause.verify_message}"
        else:
            why = str(cause) or type(cause).__name__
        raise HandshakeError(f"TLS handshake with {host}:{port} failed: {why}") from cause
    except BaseException:
        await trio.aclose_forcefully(tls)
        raise
    return tls


async def _next_event(h: h11.Connection, stream: trio.abc.Stream) -> h11.Event | type[h11.PAUSED]:
    while True:
        try:
            event = h.next_event()
        except h11.RemoteProtocolError as exc:
            raise InvalidHandshake(f"invalid HTTP response to the upgrade: {exc}") from exc
        if event is not h11.NEED_DATA:
            return event  # type: ignore[return-value]
        try:
            data = await stream.receive_some(_HANDSHAKE_READ_SIZE)
        except trio.BrokenResourceError as exc:
            raise InvalidHandshake("connection lost during the WebSocket handshake") from exc
        h.receive_data(bytes(data))


async def _read_rejection(h: h11.Connection, stream: trio.abc.Stream, response: h11.Response) -> None:
    body = bytearray()
    while len(body) < MAX_REJECT_BODY:
        try:
            event = await _next_event(h, stream)
        except InvalidHandshake:
            break  # keep what arrived
        if isinstance(event, h11.Data):
            body += event.data
        else:
            break
    raise HandshakeRejected(
        response.status_code,
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers],
        bytes(body[:MAX_REJECT_BODY]),
    )


async def _handshake(
    stream: trio.abc.Stream,
    host_header: str,
    target: str,
    subprotocols: Sequence[str],
    headers: Sequence[tuple[str, str]],
    deflate: DeflateSettings | None = None,
) -> tuple[ServerAccept, bytes, list[Extension]]:
    """RFC 6455 §4.1 over h11; returns the validated accept, the bytes after the head
    and the negotiated extensions (permessage-deflate when ``deflate`` is given)."""
    h = h11.Connection(h11.CLIENT)
    key = make_key(os.urandom(16))
    offer = None if deflate is None else client_offer(deflate)
    request_headers = build_request_headers(
        host_header, key=key, subprotocols=list(subprotocols), extensions=offer, extra_headers=headers
    )
    data = h.send(h11.Request(method="GET", target=target, headers=request_headers))
    data += h.send(h11.EndOfMessage())
    try:
        await stream.send_all(data)
    except trio.BrokenResourceError as exc:
        raise InvalidHandshake("connection lost during the WebSocket handshake") from exc
    while True:
        event = await _next_event(h, stream)
        if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
            break
        if isinstance(event, h11.Response):
            await _read_rejection(h, stream, event)
        if not isinstance(event, h11.InformationalResponse):  # EOF before a response
            raise InvalidHandshake("the server closed the connection during the handshake")
    accept = check_response(
        101,
        event.headers,
        key=key,
        subprotocols=list(subprotocols),
        extensions_offered=[offer] if offer else [],
    )
    extensions: list[Extension] = []
    if deflate is not None:
        params = client_accept(accept.extensions, deflate)  # RFC 7692 §5.2: NegotiationError
        if params is not None:
            extensions.append(PerMessageDeflate(params, is_server=False, settings=deflate))
    return accept, h.trailing_data[0], extensions


@asynccontextmanager
async def connect(
    url: str,
    *,
    subprotocols: Sequence[str] = (),
    headers: Sequence[tuple[str, str]] = (),
    ssl_context: ssl.SSLContext | None = None,
    stream: trio.abc.Stream | None = None,
    **options: Unpack[WebSocketOptions],
) -> AsyncIterator[WebSocket]:
    """Open a WebSocket to ``url`` (``ws://`` or ``wss://``); close it on exit.

    ``subprotocols`` are offered in order of preference (``ws.subprotocol`` is
    the server's pick); ``headers`` are extra request headers (Origin,
    Authorization...); ``stream`` uses an already open transport instead of
    dialling (tests, proxies).  ``options`` are :class:`WebSocketConfig` fields
    (``max_message_size``, ``fragments``, ``ping_interval``...);
    ``compression=False`` does not offer permessage-deflate.

    Raises :class:`HandshakeRejected` (the server answered with an HTTP
    response), :class:`InvalidHandshake`, :class:`NegotiationError`,
    :class:`HandshakeError` when the TLS handshake fails (e.g. an untrusted
    certificate; the ``ssl`` error is ``__cause__``), or ``OSError`` when the
    TCP connection cannot be made.
    """
    config = WebSocketConfig(**options)
    secure, host, port, host_header, target = _parse_url(url)
    if stream is None:
        stream = await _open_transport(secure, host, port, ssl_context)
    try:
        accept, trailing, extensions = await _handshake(
            stream, host_header, target, subprotocols, headers, config.deflate_settings(Role.CLIENT)
        )
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    ws = WebSocket(
        stream,
        config.make_protocol(Role.CLIENT, mask_source=_MaskPool(), extensions=extensions),
        config=config,
        subprotocol=accept.subprotocol,
        response_headers=accept.headers,
        initial_data=trailing,
    )
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        ws._spawn(nursery)
        try:
            yield ws
        except BaseException as exc:
            # Re-raised below, outside the nursery, so users never see an ExceptionGroup.
            error = exc
        try:
            await ws.aclose()
        except BaseException as exc:
            error = error or exc
        nursery.cancel_scope.cancel()
    if error is not None:
        raise error
