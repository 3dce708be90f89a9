"""Interop with independent implementations, over loopback TCP.

* the ``websockets`` asyncio client (in a worker thread) ↔ our server;
* our client ↔ the ``websockets`` sync server (in a worker thread);
* the ``trio-websocket`` client ↔ our server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

import trio_ws
from trio_ws import (
    App,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeRejected,
    WebSocket,
    WebSocketRequest,
)
from trio_ws.ws_endpoint import echo_handler

from .ws_support import serving, wait_for

MESSAGES: list[str | bytes] = ["hello", "", b"", b"\x00\xff" * 10, "ünïcödé", bytes(700_000), "t" * 70_000]


def our_app(events: list[object]) -> App:
    app = App()
    app.websocket("/echo", subprotocols=["v2", "v1"])(echo_handler)

    @app.websocket("/close4002")
    async def close4002(ws: WebSocket) -> None:
        await ws.send("bye soon")
        await ws.aclose(4002, "custom")

    @app.websocket("/record")
    async def record(ws: WebSocket) -> None:
        events.append(("ping-rtt", await ws.ping(b"are you there")))
        try:
            await ws.receive()
        except ConnectionClosedOK as exc:
            events.append(("closed", exc.code, exc.reason))

    @app.websocket("/deny", accept=False)
    async def deny(req: WebSocketRequest) -> None:
        await req.reject(401, headers=[("X-Reason", "token")], body=b"who are you")

    return app


async def in_thread(coro: Any) -> Any:
    """Run an asyncio coroutine in a worker thread."""
    return await trio.to_thread.run_sync(asyncio.run, coro, abandon_on_cancel=True)


# -- websockets client → our server ------------------------------------------------------


async def test_websockets_client_echo_and_subprotocol() -> None:
    from websockets.asyncio.client import connect

    async def client(url: str) -> tuple[list[str | bytes], str | None]:
        got = []
        async with connect(url, subprotocols=["v1", "v2"], max_size=2**20) as ws:  # type: ignore[list-item]
            for message in MESSAGES:
                await ws.send(message)
                got.append(await ws.recv())
            await ws.ping()
            return got, ws.subprotocol

    async with serving(our_app([]), "tcp") as h:
        got, subprotocol = await in_thread(client(h.url("/echo")))
    assert got == MESSAGES
    assert subprotocol == "v2"  # the server's preference among the offered ones


async def test_websockets_client_sees_our_close_code_and_pings() -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError as WSClosedError

    async def closed_by_server(url: str) -> tuple[object, int | None, str | None]:
        async with connect(url) as ws:
            first = await ws.recv()
            try:
                await ws.recv()
            except WSClosedError as exc:
                rcvd = exc.rcvd
                return first, rcvd.code if rcvd else None, rcvd.reason if rcvd else None
        raise AssertionError("not closed")  # pragma: no cover

    async def closes_itself(url: str) -> None:
        async with connect(url) as ws:
            await asyncio.sleep(0.2)  # the server's ping is answered meanwhile
            await ws.close(1000, "client done")

    events: list[object] = []
    async with serving(our_app(events), "tcp") as h:
        assert await in_thread(closed_by_server(h.url("/close4002"))) == ("bye soon", 4002, "custom")
        await in_thread(closes_itself(h.url("/record")))
        await wait_for(lambda: len(events) == 2)
    assert events[1] == ("closed", 1000, "client done")


async def test_websockets_client_sees_our_rejection() -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    async def client(url: str) -> tuple[int, bytes, str | None]:
        try:
            async with connect(url):
                pass  # pragma: no cover
        except InvalidStatus as exc:
            return (
                exc.response.status_code,
                bytes(exc.response.body or b""),
                exc.response.headers.get("x-reason"),
            )
        raise AssertionError("not rejected")  # pragma: no cover

    async with serving(our_app([]), "tcp") as h:
        assert await in_thread(client(h.url("/deny"))) == (401, b"who are you", "token")


# -- our client → websockets server ------------------------------------------------------


@asynccontextmanager
async def websockets_server(handler: Any, **kwargs: Any) -> AsyncIterator[int]:
    from websockets.sync.server import serve

    server = serve(handler, "127.0.0.1", 0, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.socket.getsockname()[1]
    finally:
        await trio.to_thread.run_sync(server.shutdown)
        await trio.to_thread.run_sync(thread.join)


async def test_our_client_with_websockets_server() -> None:
    closes: list[tuple[int | None, str | None]] = []

    def echo(conn: Any) -> None:
        for message in conn:
            conn.send(message)
        closes.append((conn.close_code, conn.close_reason))

    async with websockets_server(echo, subprotocols=["v1"], max_size=2**20) as port:
        url = f"ws://127.0.0.1:{port}/"
        async with trio_ws.connect(url, subprotocols=["v0", "v1"]) as ws:
            assert ws.subprotocol == "v1"
            for message in MESSAGES:
                await ws.send(message)
                assert await ws.receive() == message
            assert await ws.ping(b"hi") >= 0
            await ws.aclose(1001, "going away")
        assert (ws.close_code, ws.sent_close_code) == (1001, 1001)
        await wait_for(lambda: bool(closes))
    assert closes == [(1001, "going away")]


async def test_our_client_sees_websockets_server_close_and_rejection() -> None:
    def closer(conn: Any) -> None:
        conn.send("closing")
        conn.close(4100, "server says bye")

    def reject(conn: Any, request: Any) -> Any:
        return conn.respond(418, "short and stout\n")

    async with websockets_server(closer) as port:
        async with trio_ws.connect(f"ws://127.0.0.1:{port}/") as ws:
            assert await ws.receive() == "closing"
            with pytest.raises(ConnectionClosedError) as info:
                await ws.receive()
        assert (info.value.code, info.value.reason) == (4100, "server says bye")
    async with websockets_server(closer, process_request=reject) as port:
        with pytest.raises(HandshakeRejected) as rejected:
            async with trio_ws.connect(f"ws://127.0.0.1:{port}/"):
                pass  # pragma: no cover
        assert (rejected.value.status, rejected.value.body) == (418, b"short and stout\n")


# -- trio-websocket client → our server --------------------------------------------------


async def test_trio_websocket_client_with_our_server() -> None:
    from trio_websocket import ConnectionClosed as TWClosed
    from trio_websocket import open_websocket_url

    events: list[object] = []
    async with serving(our_app(events), "tcp") as h:
        async with open_websocket_url(h.url("/echo"), subprotocols=["v1"]) as ws:
            assert ws.subprotocol == "v1"
            for message in MESSAGES[:5]:
                await ws.send_message(message)
                assert await ws.get_message() == message
            await ws.ping(b"tw")
        async with open_websocket_url(h.url("/close4002")) as ws:
            assert await ws.get_message() == "bye soon"
            with pytest.raises(TWClosed) as info:
                await ws.get_message()
            reason = info.value.reason
            assert reason is not None
            assert reason.code == 4002
            # trio-websocket 0.12 leaves its socket open when the server closes first
            # (ResourceWarning at GC); close it for it.
            await ws._stream.aclose()
