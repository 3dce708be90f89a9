"""Routing: the :class:`App` maps paths and methods to handlers.

Three kinds of route, tried in this order:

1. **exact** routes (``/hello``), a dict lookup;
2. **prefix** routes and mounts (``/static/``), longest prefix first; the
   request's ``mount_prefix`` and ``subpath`` tell the handler what matched;
3. otherwise ``404``.

A route knows its methods: a path that exists with another method answers
``405`` with ``Allow`` (``HEAD`` is allowed wherever ``GET`` is). An
:class:`App` is itself a handler, so apps can be mounted in apps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, Unpack, overload

from .request import Handler, Request, Response
from .websocket import WebSocketConfig, WebSocketOptions
from .ws_endpoint import WebSocketHandler, WebSocketRequestHandler, websocket_route

_WSH = TypeVar("_WSH", bound=WebSocketHandler)
_WSRH = TypeVar("_WSRH", bound=WebSocketRequestHandler)

__all__ = ["App"]


@dataclass(slots=True)
class _Route:
    handlers: dict[str, Handler]  # method → handler; "*" matches any method

    def find(self, method: str) -> Handler | None:
        handler = self.handlers.get(method)
        if handler is None and method == "HEAD":
            handler = self.handlers.get("GET")
        return handler if handler is not None else self.handlers.get("*")

    def allow(self) -> str:
        methods = set(self.handlers)
        if "GET" in methods:
            methods.add("HEAD")
        return ", ".join(sorted(methods))


class App:
    """A set of routes; ``await app(request)`` dispatches one request.

    >>> app = App()
    >>> @app.route("/hello")
    ... async def hello(request: Request) -> Response:
    ...     return Response.text("hello")
    """

    def __init__(self) -> None:
        self._exact: dict[str, _Route] = {}
        self._prefixes: list[tuple[str, _Route]] = []

    def add_route(
        self,
        path: str,
        handler: Handler,
        *,
        methods: Iterable[str] | None = ("GET",),
        prefix: bool = False,
    ) -> None:
        """Route ``path`` (or, with ``prefix=True``, everything under it) to ``handler``.

        ``methods=None`` accepts every method (the handler answers 405 itself).
        Adding another method to an existing path extends that route.
        """
        if not path.startswith("/"):
            raise ValueError(f"route paths start with '/': {path!r}")
        names = ["*"] if methods is None else [m.upper() for m in methods]
        route = self._lookup_route(path, prefix)
        for name in names:
            if name in route.handlers:
                raise ValueError(f"{name} {path} is already routed")
            route.handlers[name] = handler

    def route(
        self, path: str, *, methods: Iterable[str] | None = ("GET",), prefix: bool = False
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`add_route`."""

        def register(handler: Handler) -> Handler:
            self.add_route(path, handler, methods=methods, prefix=prefix)
            return handler

        return register

    @overload
    def websocket(
        self,
        path: str,
        *,
        accept: Literal[True] = ...,
        subprotocols: Sequence[str] = ...,
        **options: Unpack[WebSocketOptions],
    ) -> Callable[[_WSH], _WSH]: ...
    @overload
    def websocket(
        self,
        path: str,
        *,
        accept: Literal[False],
        subprotocols: Sequence[str] = ...,
        **options: Unpack[WebSocketOptions],
    ) -> Callable[[_WSRH], _WSRH]: ...
    def websocket(
        self,
        path: str,
        *,
        accept: bool = True,
        subprotocols: Sequence[str] = (),
        **options: Unpack[WebSocketOptions],
    ) -> Callable[[_WSH], _WSH] | Callable[[_WSRH], _WSRH]:
        """Decorator: a WebSocket endpoint at ``path`` (a GET route doing the upgrade).

        ``async def handler(ws: WebSocket)`` is called with the accepted
        connection (subprotocol: the first of ``subprotocols`` the client
        offered). With ``accept=False`` the handler gets a
        :class:`~trio_ws.WebSocketRequest` and calls ``await req.accept(...)`` or
        ``await req.reject(status, ...)`` itself. Returning closes with 1000,
        raising with 1011. ``options`` are :class:`~trio_ws.WebSocketConfig`
        fields (``max_message_size``, ``ping_interval``, ``fragments``...).
        """
        config = WebSocketConfig(**options)

        def register(handler: _WSH | _WSRH) -> _WSH | _WSRH:
            route = websocket_route(handler, accept=accept, subprotocols=subprotocols, config=config)
            self.add_route(path, route)
            return handler

        return register  # type: ignore[return-value]

    def mount(self, prefix: str, handler: Handler) -> None:
        """Send every request under ``prefix`` (any method) to ``handler``.

        ``/static`` mounts ``/static`` itself and everything under ``/static/``.
        Use this for the static-file handler, WebSocket endpoints and sub-apps.
        """
        prefix = prefix.rstrip("/")
        if prefix:
            self.add_route(prefix, handler, methods=None)
        self.add_route(prefix + "/", handler, methods=None, prefix=True)

    def _lookup_route(self, path: str, prefix: bool) -> _Route:
        if not prefix:
            return self._exact.setdefault(path, _Route({}))
        for existing, route in self._prefixes:
            if existing == path:
                return route
        route = _Route({})
        self._prefixes.append((path, route))
        self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)
        return route

    def resolve(self, request: Request) -> Handler | Response:
        """The handler for ``request`` (setting its ``mount_prefix``/``subpath``), or a 404/405."""
        path = request.raw_path
        route = self._exact.get(path)
        if route is not None:
            request.mount_prefix, request.subpath = path, ""
        else:
            for prefix, candidate in self._prefixes:
                if path.startswith(prefix):
                    route = candidate
                    request.mount_prefix, request.subpath = prefix, path[len(prefix) :]
                    break
            else:
                return Response.error(404)
        handler = route.find(request.method)
        if handler is None:
            response = Response.error(405)
            response.headers.append(("allow", route.allow()))
            return response
        return handler

    async def __call__(self, request: Request) -> Response:
        found = self.resolve(request)
        if isinstance(found, Response):
            return found
        return await found(request)
