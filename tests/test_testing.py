"""trio_ws.testing: the in-memory helpers users test their apps with."""

from __future__ import annotations

from collections.abc import AsyncIterator

import h11
import pytest
import trio
import trio.testing

from trio_ws import App, Request, Response, ServerConfig
from trio_ws.testing import MemoryListener, SimpleResponse, open_memory_client, open_memory_server, request

from .conftest import make_app, parse_responses, read_until_eof, status_of


async def test_request_get() -> None:
    result = await request(make_app(), "GET", "/")
    assert isinstance(result, SimpleResponse)
    status, headers, body = result  # a plain tuple too
    assert (status, body) == (200, b"hello")
    assert (b"content-type", b"text/plain; charset=utf-8") in headers
    assert result.header("Content-Type") == "text/plain; charset=utf-8"
    assert result.header("missing") is None


async def test_request_post_body_and_headers() -> None:
    app = App()

    @app.route("/", methods=["POST"])
    async def handler(req: Request) -> Response:
        body = await req.body()
        return Response.text(f"{req.header('host')} {req.header('x-a')} {body.decode()}")

    result = await request(app, "POST", "/", headers=[("X-A", "1")], body=b"data")
    assert result.body == b"testserver 1 data"
    result = await request(app, "POST", "/", headers=[("Host", "example"), ("X-A", "2")], body=b"d")
    assert result.body == b"example 2 d"


async def test_request_chunked_body_when_asked() -> None:
    result = await request(
        make_app(), "POST", "/echo", headers=[("Transfer-Encoding", "chunked")], body=b"chunky"
    )
    assert result.body == b"chunky"


async def test_request_skips_100_continue() -> None:
    result = await request(make_app(), "POST", "/echo", headers=[("Expect", "100-continue")], body=b"x")
    assert (result.status, result.body) == (200, b"x")


async def test_request_streamed_and_errors() -> None:
    assert (await request(make_app(), "GET", "/stream")).body == b"one,two,three"
    assert (await request(make_app(), "GET", "/boom")).status == 500
    assert (await request(make_app(), "GET", "/teapot")).status == 418


async def test_request_with_config() -> None:
    result = await request(make_app(), "POST", "/echo", body=b"x" * 20, config=ServerConfig(max_body_size=10))
    assert result.status == 413


async def test_request_raises_when_no_response() -> None:
    app = App()

    async def dies_midway() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("the body breaks off")  # the server can only close the connection

    @app.route("/")
    async def handler(req: Request) -> Response:
        return Response(200, dies_midway())

    with trio.fail_after(5), pytest.raises(h11.RemoteProtocolError):
        await request(app, "GET", "/")


async def test_memory_client_raw_keepalive_and_pipelining() -> None:
    with trio.fail_after(5):
        async with open_memory_client(make_app()) as stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            await stream.send_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            raw = await read_until_eof(stream)
    responses = parse_responses(raw, ["GET"] * 3)
    assert [r.body for r in responses] == [b"hello", b"hello", b"one,two,three"]


async def test_memory_server_many_connections_and_statistics() -> None:
    with trio.fail_after(5):
        async with open_memory_server(make_app()) as memory:
            streams = [await memory.connect() for _ in range(3)]
            for stream in streams:
                await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert status_of(await stream.receive_some(4096)) == 200
            assert memory.server.statistics() == {"connections": 3, "accepted": 3}
            for stream in streams:
                await stream.aclose()


async def test_memory_server_timeouts_in_virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    config = ServerConfig(keepalive_timeout=30)
    async with open_memory_client(make_app(), config=config) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await stream.receive_some(4096)
        started = trio.current_time()
        assert await read_until_eof(stream, timeout=100) == b""
        assert trio.current_time() - started == pytest.approx(30)


async def test_memory_server_max_connections_waits_in_backlog(autojump_clock: trio.testing.MockClock) -> None:
    config = ServerConfig(max_connections=1, backlog=1, keepalive_timeout=1000)
    async with open_memory_server(make_app(), config=config) as memory:
        first = await memory.connect()
        await first.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await first.receive_some(4096)
        second = await memory.connect()  # queued in the backlog
        await second.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with trio.move_on_after(60) as waited:
            await second.receive_some(4096)
        assert waited.cancelled_caught
        await first.aclose()
        assert status_of(await second.receive_some(4096)) == 200
        await second.aclose()


async def test_errors_in_block_are_not_wrapped() -> None:
    with pytest.raises(KeyError):
        async with open_memory_server(make_app()):
            raise KeyError("mine")


async def test_memory_listener_closed() -> None:
    listener = MemoryListener(backlog=1)
    queued = await listener.connect()
    await listener.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await listener.accept()
    with pytest.raises(trio.ClosedResourceError):
        await listener.connect()
    await queued.aclose()


async def test_memory_listener_accept_after_sender_closed() -> None:
    listener = MemoryListener()
    client = await listener.connect()
    server_end = await listener.accept()
    await client.send_all(b"ping")
    assert await server_end.receive_some(4) == b"ping"
    listener._send.close()
    with pytest.raises(trio.ClosedResourceError):
        await listener.accept()
    await listener.aclose()
    await client.aclose()
    await server_end.aclose()
