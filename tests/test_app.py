"""Routing: exact routes, prefix routes, mounts, 404/405 (RFC 9110 §15.5.6: 405 carries Allow)."""

from __future__ import annotations

import pytest

from trio_ws import App, Request, Response
from trio_ws.request import Handler
from trio_ws.testing import request


def echo_match(label: str) -> Handler:
    async def handler(req: Request) -> Response:
        return Response.text(f"{label}|{req.mount_prefix}|{req.subpath}|{req.method}")

    return handler


def routed_app() -> App:
    app = App()
    app.add_route("/", echo_match("root"))
    app.add_route("/exact", echo_match("exact"), methods=["GET", "POST"])
    app.add_route("/files/", echo_match("files"), prefix=True)
    app.add_route("/files/deep/", echo_match("deep"), prefix=True)
    app.mount("/static", echo_match("static"))
    app.add_route("/any", echo_match("any"), methods=None)
    return app


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", "/", "root|/|"),
        ("GET", "/exact", "exact|/exact|"),
        ("POST", "/exact", "exact|/exact|"),
        ("GET", "/exact?q=1", "exact|/exact|"),
        ("GET", "/files/a/b.txt", "files|/files/|a/b.txt"),
        ("GET", "/files/", "files|/files/|"),
        ("GET", "/files/deep/x", "deep|/files/deep/|x"),  # longest prefix wins
        ("GET", "/static", "static|/static|"),
        ("DELETE", "/static/app.js", "static|/static/|app.js"),
        ("PATCH", "/any", "any|/any|"),
    ],
)
async def test_routes(method: str, target: str, expected: str) -> None:
    result = await request(routed_app(), method, target)
    assert result.status == 200
    assert result.body.decode() == expected + "|" + method


@pytest.mark.parametrize("target", ["/nope", "/exact/", "/files", "/staticx", "/Static"])
async def test_not_found(target: str) -> None:
    assert (await request(routed_app(), "GET", target)).status == 404


async def test_method_not_allowed_lists_allow() -> None:
    app = routed_app()
    result = await request(app, "DELETE", "/exact")
    assert result.status == 405
    assert result.header("allow") == "GET, HEAD, POST"
    result = await request(app, "POST", "/files/x")
    assert result.header("allow") == "GET, HEAD"


async def test_head_served_by_get_handler() -> None:
    result = await request(routed_app(), "HEAD", "/exact")
    assert result.status == 200
    assert result.body == b""
    assert result.header("content-length") == str(len(b"exact|/exact||HEAD"))


async def test_explicit_head_handler_preferred() -> None:
    app = App()
    app.add_route("/", echo_match("get"))
    app.add_route("/", echo_match("head"), methods=["HEAD"])
    assert (await request(app, "HEAD", "/")).header("content-length") == str(len("head|/||HEAD"))


async def test_route_without_get_has_no_head() -> None:
    app = App()
    app.add_route("/p", echo_match("post"), methods=["post"])  # methods are upper-cased
    result = await request(app, "HEAD", "/p")
    assert result.status == 405
    assert result.header("allow") == "POST"


async def test_decorator_returns_handler_and_apps_nest() -> None:
    inner = App()

    @inner.route("/")
    async def inner_root(req: Request) -> Response:
        return Response.text(f"inner root {req.subpath!r}")

    outer = App()
    outer.mount("/api/", _rebased(inner))
    assert callable(inner_root)
    assert (await request(outer, "GET", "/api/")).body == b"inner root ''"


def _rebased(inner: App) -> Handler:
    """A sub-app sees paths relative to its mount point."""

    async def handler(req: Request) -> Response:
        sub = Request(req.method, ("/" + req.subpath).encode(), req.headers)
        return await inner(sub)

    return handler


async def test_mount_root_catches_everything() -> None:
    app = App()
    app.mount("/", echo_match("all"))
    assert (await request(app, "GET", "/anything/here")).body == b"all|/|anything/here|GET"


def test_add_route_rejects_bad_paths_and_duplicates() -> None:
    app = App()
    with pytest.raises(ValueError, match="start with '/'"):
        app.add_route("nope", echo_match("x"))
    app.add_route("/a", echo_match("x"))
    with pytest.raises(ValueError, match="already routed"):
        app.add_route("/a", echo_match("y"))
    app.add_route("/a", echo_match("y"), methods=["POST"])  # extends the route
    app.add_route("/p/", echo_match("x"), prefix=True)
    app.add_route("/p/", echo_match("x"), prefix=True, methods=["PUT"])
    with pytest.raises(ValueError, match="already routed"):
        app.add_route("/p/", echo_match("x"), prefix=True, methods=["PUT"])


async def test_resolve_sets_match_on_request() -> None:
    app = routed_app()
    req = Request("GET", b"/files/x/y?z", [])
    found = app.resolve(req)
    assert not isinstance(found, Response)
    assert (req.mount_prefix, req.subpath, req.query) == ("/files/", "x/y", "z")


async def test_routing_uses_raw_path_not_decoded() -> None:
    """``%2F`` is not a path separator for routing: ``/files%2Fa`` is not under ``/files/``."""
    app = routed_app()
    assert (await request(app, "GET", "/files%2Fa")).status == 404
    assert (await request(app, "GET", "/files/a%20b")).body == b"files|/files/|a%20b|GET"


async def test_absolute_form_target_routes_by_path() -> None:
    result = await request(routed_app(), "GET", "http://testserver/exact")
    assert result.status == 200
