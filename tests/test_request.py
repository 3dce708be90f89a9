"""Request and Response as the handler sees them (no connection involved)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest
import trio
import trio.testing

from trio_ws import Request, Response, ServerConfig
from trio_ws._http import HTTPConnection


def test_request_target_split_and_decoding() -> None:
    req = Request("GET", b"/a%20b/%E2%9C%93?x=1&y=%20", [(b"host", b"h")])
    assert req.raw_path == "/a%20b/%E2%9C%93"
    assert req.path == "/a b/\u2713"
    assert req.query == "x=1&y=%20"
    assert req.target == "/a%20b/%E2%9C%93?x=1&y=%20"
    assert (req.mount_prefix, req.subpath) == ("", req.raw_path)
    assert req.http_version == "1.1"
    assert req.client is None
    assert req.scheme == "http"
    assert req.nursery is None
    assert repr(req) == "<Request GET /a%20b/%E2%9C%93?x=1&y=%20>"


def test_request_path_keeps_invalid_utf8_as_surrogates() -> None:
    assert Request("GET", b"/%FF", []).path == "/\udcff"


def test_request_non_ascii_target_replaced() -> None:
    assert Request("GET", b"/caf\xc3\xa9", []).target == "/caf\ufffd\ufffd"


def test_headers_lookup() -> None:
    req = Request("GET", b"/", [(b"accept", b"a"), (b"x-v", b"\xe9"), (b"accept", b"b")])
    assert req.header("Accept") == "a, b"
    assert req.header_list("ACCEPT") == ["a", "b"]
    assert req.header("x-v") == "\xe9"  # latin-1, never a decode error
    assert req.header("missing") is None
    assert req.header("missing", "d") == "d"
    assert req.header_list("missing") == []


async def test_detached_request_body_is_empty() -> None:
    req = Request("POST", b"/", [])
    assert await req.body() == b""
    assert [chunk async for chunk in req.stream()] == []
    with pytest.raises(RuntimeError, match="not attached"):
        await req.switch_protocols([])


def test_response_bodies_and_headers() -> None:
    assert Response().status == 200
    assert Response().body == b""
    text = Response.text("h\u00e9", 201, headers=[("x", "y")])
    assert text.body == "h\u00e9".encode()
    assert text.headers == [("x", "y"), ("content-type", "text/plain; charset=utf-8")]
    assert text.reason == "Created"
    html = Response.html("<p>")
    assert ("content-type", "text/html; charset=utf-8") in html.headers
    assert repr(Response(404)) == "<Response 404 Not Found>"
    assert Response(299).reason == ""
    assert Response(200, reason="Fine").reason == "Fine"


def test_response_error_page() -> None:
    assert Response.error(404).body == b"404 Not Found\n"
    assert Response.error(400, "why").body == b"400 Bad Request\nwhy\n"


async def test_response_async_iterable_body_kept() -> None:
    async def gen() -> AsyncGenerator[bytes]:
        yield b"x"

    body = gen()
    assert Response(200, body).body is body
    await body.aclose()


async def test_call_on_shutdown_runs_callbacks_once_and_late_registrations_at_once() -> None:
    left, _right = trio.testing.memory_stream_pair()
    conn = HTTPConnection(left, ServerConfig())
    request = Request("GET", b"/", [], conn=conn)
    calls: list[str] = []
    request.call_on_shutdown(lambda: calls.append("early"))
    assert calls == []
    conn.request_shutdown()
    assert calls == ["early"]
    request.call_on_shutdown(lambda: calls.append("late"))
    assert calls == ["early", "late"]
    Request("GET", b"/", []).call_on_shutdown(lambda: calls.append("detached"))
    assert calls == ["early", "late"]
