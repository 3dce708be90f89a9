"""Server side of the upgrade: turn an HTTP route into a WebSocket endpoint.

Theory of operation
-------------------
:func:`websocket_route` wraps a WebSocket handler into an ordinary HTTP handler
(``Request → Response``) so that WebSocket endpoints live in the same
:class:`~trio_ws.App` and on the same port as everything else::

    Request ──validate_request()──▶ invalid? answer 400/405/426 (+ headers), done
        │ valid
        ▼
    WebSocketRequest ──handler──▶ accept(): 101 (checked as h11 would), stream + bytes after the head
        │                          → WebSocket, ws._spawn(request.nursery): its watcher runs there
        │                          reject(): a real HTTP response
        ▼                          neither: 403
    handler returns → Close 1000; raises → logged, Close 1011; the server goes on

Two handler shapes, chosen with ``accept``:

* ``accept=True`` (default): ``async def handler(ws: WebSocket)``; the
  connection is accepted first, with the first of ``subprotocols`` the client
  offered (none if no match);
* ``accept=False``: ``async def handler(req: WebSocketRequest)``, which looks at
  the request and calls ``await req.accept(...)`` or ``await req.reject(...)``.

The WebSocket's background work runs in the connection's nursery
(``request.nursery``), so it ends with the connection; server shutdown closes
it with 1001 through ``request.call_on_shutdown`` (a synchronous hook: no task
per connection waits for the shutdown).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from ._http import PeerGone
from .exceptions import ConnectionClosed, ConnectionClosedError, InvalidHandshake, LocalProtocolError
from .request import Request, Response
from .sansio.connection import Role
from .sansio.deflate import PerMessageDeflate, server_negotiate
from .sansio.frames import Extension
from .sansio.handshake import ClientOffer, accept_response_headers, validate_request
from .websocket import WebSocket, WebSocketConfig

__all__ = [
    "WebSocketHandler",
    "WebSocketRequest",
    "WebSocketRequestHandler",
    "echo_handler",
    "websocket_route",
]

log = logging.getLogger("trio_ws.websocket")

WebSocketHandler = Callable[[WebSocket], Awaitable[None]]
WebSocketRequestHandler = Callable[["WebSocketRequest"], Awaitable[None]]


class WebSocketRequest:
    """A valid upgrade request, waiting for the handler to accept or reject it.

    ``path``, ``query``, ``headers`` and ``client`` come from the underlying
    :class:`~trio_ws.Request` (``request``); ``subprotocols`` are the ones the
    client offered, in its order of preference.
    """

    __slots__ = ("_config", "_peer_gone", "_response", "offer", "request", "websocket")

    def __init__(self, request: Request, offer: ClientOffer, config: WebSocketConfig) -> None:
        self.request = request
        self.offer = offer
        self._config = config
        self._response: Response | None = None
        self._peer_gone: PeerGone | None = None
        #: The accepted connection (None until :meth:`accept`).
        self.websocket: WebSocket | None = None

    @property
    def path(self) -> str:
        return self.request.path

    @property
    def query(self) -> str:
        return self.request.query

    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]:
        return self.request.headers

    @property
    def client(self) -> tuple[str, int] | None:
        return self.request.client

    @property
    def subprotocols(self) -> list[str]:
        return self.offer.subprotocols

    def _check_unanswered(self) -> None:
        if self.websocket is not None or self._response is not None:
            raise LocalProtocolError("this WebSocket request was already accepted or rejected")

    async def accept(
        self, *, subprotocol: str | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> WebSocket:
        """Answer 101 and return the open :class:`WebSocket`.

        ``subprotocol`` must be one the client offered (:class:`NegotiationError`
        otherwise); ``headers`` are extra response headers.
        """
        self._check_unanswered()
        request = self.request
        if request.nursery is None:
            raise RuntimeError("this request is not attached to a server connection")
        extensions, extensions_header = _negotiate_extensions(self.offer, self._config)
        response_headers = accept_response_headers(
            self.offer, subprotocol=subprotocol, extensions=extensions_header, extra_headers=headers
        )
        try:
            stream, trailing = await request.switch_protocols(response_headers)
        except PeerGone as exc:
            self._peer_gone = exc
            raise ConnectionClosedError(None) from exc
        ws = WebSocket(
            stream,
            self._config.make_protocol(Role.SERVER, extensions=extensions),
            config=self._config,
            subprotocol=subprotocol,
            request=request,
            initial_data=trailing,
        )
        ws._spawn(request.nursery)
        # §7.4.1 1001 (going away); a synchronous hook, not a watcher task per connection.
        request.call_on_shutdown(lambda: ws._initiate_close(1001, "server shutting down"))
        self.websocket = ws
        return ws

    async def reject(
        self,
        status: int = 403,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | str = b"",
    ) -> None:
        """Refuse the upgrade with a real HTTP response, sent when the handler returns."""
        self._check_unanswered()
        if not 200 <= status <= 599 or status == 101:
            raise ValueError(f"cannot reject a WebSocket with status {status}")
        self._response = Response(status, body, headers=headers)

    def __repr__(self) -> str:
        return f"<WebSocketRequest {self.request.target}>"


def _negotiate_extensions(offer: ClientOffer, config: WebSocketConfig) -> tuple[list[Extension], str | None]:
    """permessage-deflate (RFC 7692) if enabled and the client offered it acceptably."""
    settings = config.deflate_settings(Role.SERVER)
    params = None if settings is None else server_negotiate(offer.extensions, settings)
    if params is None:
        return [], None
    return [PerMessageDeflate(params, is_server=True, settings=settings)], params.header()


def _choose(supported: Sequence[str], offered: Sequence[str]) -> str | None:
    """The first server-supported subprotocol the client offered, in server order."""
    return next((p for p in supported if p in offered), None)


def websocket_route(
    handler: WebSocketHandler | WebSocketRequestHandler,
    *,
    accept: bool = True,
    subprotocols: Sequence[str] = (),
    config: WebSocketConfig | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """An HTTP handler that performs the upgrade and runs ``handler`` (module docstring)."""
    cfg = config or WebSocketConfig()

    async def route(request: Request) -> Response:
        try:
            offer = validate_request(request.method, request.http_version, request.headers)
        except InvalidHandshake as exc:
            response = Response.error(exc.status_hint, str(exc))
            response.headers.extend(exc.headers)
            return response
        ws_request = WebSocketRequest(request, offer, cfg)
        await _run_handler(ws_request, handler, accept, subprotocols)
        if ws_request._peer_gone is not None:
            raise ws_request._peer_gone
        if ws_request.websocket is not None:
            return Response(101)  # already sent: the server only sees the switch
        return ws_request._response or Response.error(403, "WebSocket connection refused")

    return route


async def _run_handler(
    ws_request: WebSocketRequest,
    handler: WebSocketHandler | WebSocketRequestHandler,
    accept: bool,
    subprotocols: Sequence[str],
) -> None:
    code, reason = 1000, ""
    try:
        if accept:
            ws = await ws_request.accept(subprotocol=_choose(subprotocols, ws_request.subprotocols))
            await handler(ws)  # type: ignore[arg-type]
        else:
            await handler(ws_request)  # type: ignore[arg-type]
    except ConnectionClosed:
        pass  # the peer closed, or the connection broke: the normal end of a handler
    except Exception:
        log.exception("WebSocket handler for %s raised", ws_request.request.target)
        code, reason = 1011, "internal error"
        if ws_request.websocket is None and ws_request._response is None:
            ws_request._response = Response.error(500)
    if ws_request.websocket is not None:
        await ws_request.websocket.aclose(code, reason)


async def echo_handler(ws: WebSocket) -> None:
    """Echo every message back: text stays text, binary stays binary."""
    async for message in ws:
        await ws.send(message)
