"""wss://: echo both ways with ours and ``websockets``, verification errors, TCP drops without close_notify.

Error policy checked here: every TLS failure while connecting surfaces as
:class:`trio_ws.HandshakeError` (``__cause__`` the ``ssl`` error); a TLS
session that ends without close_notify after the upgrade is a
:class:`ConnectionClosedError` with code 1006, on either side.
"""

from __future__ import annotations

import ssl
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import h11
import pytest
import trio

import trio_ws
from trio_ws import App, ConnectionClosedError, HandshakeError, WebSocket
from trio_ws.sansio.handshake import accept_key

from .conftest import DEADLINE, close_listeners
from .tls_support import (
    HOST,
    assert_no_tracebacks,
    ca,
    make_client_context,
    make_server_context,
    pem_dir,
    tls_connect,
    tls_server,
)
from .ws_support import client_frame, frame, raw_upgrade, upgrade_request

BIG = 4 * 1024 * 1024
LIMIT = BIG + 1024
MESSAGES: list[str | bytes] = [
    "hello",
    "",
    "ünïcödé",
    b"\x00\xff" * 100,
    b"",
    bytes(range(256)) * (BIG // 256),
]


def echo_app(closed: list[BaseException] | None = None) -> App:
    app = App()

    @app.websocket("/echo", max_message_size=LIMIT)
    async def echo(ws: WebSocket) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosedError as exc:
            if closed is not None:
                closed.append(exc)

    return app


# -- ours <-> ours ---------------------------------------------------------------------------


async def test_our_client_and_server_echo(caplog: pytest.LogCaptureFixture) -> None:
    async with tls_server(echo_app()) as server:
        url = f"wss://{HOST}:{server.port}/echo"
        with trio.fail_after(DEADLINE):
            async with trio_ws.connect(url, ssl_context=make_client_context(), max_message_size=LIMIT) as ws:
                for message in MESSAGES:
                    await ws.send(message)
                    assert await ws.receive() == message
            assert ws.close_code == 1000
    assert_no_tracebacks(caplog)


# -- websockets client -> our server ---------------------------------------------------------


async def test_websockets_client_with_our_server() -> None:
    from websockets.sync.client import connect

    def client(url: str) -> list[str | bytes]:
        got: list[str | bytes] = []
        with connect(url, ssl=make_client_context(), max_size=LIMIT, open_timeout=DEADLINE) as ws:
            for message in MESSAGES:
                ws.send(message)
                got.append(ws.recv(timeout=DEADLINE))
        return got

    async with tls_server(echo_app()) as server:
        with trio.fail_after(DEADLINE):
            got = await trio.to_thread.run_sync(client, f"wss://localhost:{server.port}/echo")
    assert got == MESSAGES


# -- our client -> websockets server -----------------------------------------------------------


@asynccontextmanager
async def websockets_tls_server(handler: Any) -> AsyncIterator[int]:
    from websockets.sync.server import serve

    server = serve(handler, HOST, 0, ssl=make_server_context(), max_size=LIMIT)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.socket.getsockname()[1]
    finally:
        with trio.fail_after(DEADLINE):
            await trio.to_thread.run_sync(server.shutdown)
            await trio.to_thread.run_sync(thread.join)


async def test_our_client_with_websockets_server() -> None:
    def echo(conn: Any) -> None:
        for message in conn:
            conn.send(message)

    async with websockets_tls_server(echo) as port:
        with trio.fail_after(DEADLINE):
            url = f"wss://localhost:{port}/"
            async with trio_ws.connect(url, ssl_context=make_client_context(), max_message_size=LIMIT) as ws:
                for message in MESSAGES:
                    await ws.send(message)
                    assert await ws.receive() == message


# -- verification: one error family ------------------------------------------------------------


async def test_untrusted_server_raises_handshake_error() -> None:
    """Default context = system trust store: a private CA is not trusted."""
    async with tls_server(echo_app()) as server:
        with trio.fail_after(DEADLINE), pytest.raises(HandshakeError) as info:
            async with trio_ws.connect(f"wss://{HOST}:{server.port}/echo"):
                pass  # pragma: no cover
    assert "certificate verify failed" in str(info.value)
    assert "unable to get local issuer certificate" in str(info.value)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert isinstance(info.value, trio_ws.TrioWSError)


async def test_wrong_host_name_raises_handshake_error() -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca().issue_cert("example.org").configure_cert(context)  # our CA, someone else's name
    client = make_client_context()
    async with tls_server(echo_app(), ssl_context=context) as server:
        with trio.fail_after(DEADLINE), pytest.raises(HandshakeError) as info:
            async with trio_ws.connect(f"wss://{HOST}:{server.port}/echo", ssl_context=client):
                pass  # pragma: no cover
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert "mismatch" in str(info.value)


async def test_wss_to_a_plain_server_raises_handshake_error() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(trio_ws.serve, echo_app(), HOST, 0)
        try:
            url = f"wss://{HOST}:{server.port}/echo"
            with trio.fail_after(DEADLINE), pytest.raises(HandshakeError, match="TLS handshake") as info:
                async with trio_ws.connect(url, ssl_context=make_client_context()):
                    pass  # pragma: no cover
            assert isinstance(info.value.__cause__, ssl.SSLError)
        finally:
            nursery.cancel_scope.cancel()
            close_listeners(server.listeners)


# -- TCP drops without close_notify ------------------------------------------------------------


async def _serve_then_drop(listener: trio.SocketListener, dropped: trio.Event) -> None:
    """Upgrade one wss client by hand, send one text frame, then close TCP: no close_notify."""
    tcp = await listener.accept()
    tls = trio.SSLStream(tcp, make_server_context(), server_side=True, https_compatible=True)
    try:
        conn = h11.Connection(h11.SERVER)
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                break
            assert event is h11.NEED_DATA
            conn.receive_data(bytes(await tls.receive_some(65536)))
        key = dict(event.headers)[b"sec-websocket-key"]
        headers = [
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", accept_key(key)),
        ]
        await tls.send_all(conn.send(h11.InformationalResponse(status_code=101, headers=headers)) or b"")
        await tls.send_all(frame(0x1, b"last words"))
    finally:
        await tcp.aclose()  # the raw socket: the TLS session is never shut down
        dropped.set()


async def test_client_sees_1006_when_server_drops_tcp() -> None:
    listener = (await trio.open_tcp_listeners(0, host=HOST))[0]
    dropped = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_serve_then_drop, listener, dropped)
            port = listener.socket.getsockname()[1]
            with trio.fail_after(DEADLINE):
                async with trio_ws.connect(f"wss://{HOST}:{port}/", ssl_context=make_client_context()) as ws:
                    assert await ws.receive() == "last words"
                    await dropped.wait()
                    with pytest.raises(ConnectionClosedError) as info:
                        await ws.receive()
    finally:
        await listener.aclose()
    assert info.value.code is None  # no Close frame arrived...
    assert ws.close_code == 1006  # ...which RFC 6455 §7.1.5 calls 1006
    assert not isinstance(info.value, ssl.SSLError)


async def test_server_handler_sees_1006_when_client_drops_tcp(caplog: pytest.LogCaptureFixture) -> None:
    closed: list[BaseException] = []
    async with tls_server(echo_app(closed)) as server:
        tls = await tls_connect(server.port)
        head, frames = await raw_upgrade(tls, upgrade_request("/echo"))
        assert head.startswith(b"HTTP/1.1 101")
        await tls.send_all(client_frame(0x1, b"ping?"))
        assert await frames.next() == (0x1, b"ping?")
        await tls.transport_stream.aclose()  # no close_notify, no Close frame
        with trio.fail_after(DEADLINE):
            while not closed:
                await trio.sleep(0.01)
    assert isinstance(closed[0], ConnectionClosedError)
    assert closed[0].code is None
    assert_no_tracebacks(caplog)


# -- the example -------------------------------------------------------------------------------


@pytest.mark.parametrize("own_files", [False, True])
async def test_tls_echo_example(own_files: bool) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "tls_echo.py"
    args = [sys.executable, str(example)]
    if own_files:
        pems = pem_dir()
        args += ["--certfile", str(pems / "cert.pem"), "--keyfile", str(pems / "key.pem")]
        args += ["--cafile", str(pems / "ca.pem")]
    with trio.fail_after(30):
        done = await trio.run_process(args, capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    assert lines[0].startswith("Serving https://localhost:")
    assert "wss://localhost:" in lines[0]
    assert lines[1] == "GOT ECHO REPLY: [hello over TLS]"
