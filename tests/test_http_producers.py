"""Response bodies that write themselves (BodyProducer → BodySink, sendfile),
protocol switching (101), and Server.serve_stream()."""

from __future__ import annotations

import os
from pathlib import Path

import h11
import pytest
import trio
import trio.testing

from trio_ws import App, BodySink, Request, Response, Server, ServerConfig
from trio_ws.testing import open_memory_client, request

from .conftest import (
    DEADLINE,
    H11Client,
    assert_no_errors,
    connect,
    get_ok,
    make_app,
    open_client,
    parse_responses,
    raw_exchange,
    read_until_eof,
    running,
    set_linger_zero,
    status_of,
)


class FileBody:
    """A BodyProducer sending ``length`` bytes of ``path`` through ``sink.sendfile``."""

    def __init__(self, path: Path, length: int | None = None, *, pieces: int = 1) -> None:
        self.path = path
        self.length = path.stat().st_size if length is None else length
        self.pieces = pieces

    async def produce(self, sink: BodySink) -> None:
        assert self.length is not None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            step = -(-self.length // self.pieces)
            for offset in range(0, self.length, step):
                await sink.sendfile(fd, offset, min(step, self.length - offset))
            await sink.sendfile(fd, 0, 0)  # a zero-length piece is a no-op
        finally:
            os.close(fd)


class BytesBody:
    """A BodyProducer of unknown length writing through ``sink.send``."""

    length: int | None = None

    async def produce(self, sink: BodySink) -> None:
        for piece in (b"made ", b"", b"by ", b"producer"):
            await sink.send(piece)


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 16 * 1024)  # 4 MiB
    return path


def file_app(path: Path, **kwargs: object) -> App:
    app = make_app()

    @app.route("/file")
    async def file(request: Request) -> Response:
        return Response(200, FileBody(path, **kwargs))  # type: ignore[arg-type]

    @app.route("/produced")
    async def produced(request: Request) -> Response:
        return Response(200, BytesBody())

    return app


async def test_sendfile_over_tcp(data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(DEADLINE):
        async with running(file_app(data_file, pieces=3)) as server, open_client(server.port) as client:
            response = await client.request("GET", "/file")
            assert response.header("content-length") == str(data_file.stat().st_size)
            assert response.body == data_file.read_bytes()
            head = await client.request("HEAD", "/file")
            assert head.header("content-length") == str(data_file.stat().st_size)
            assert head.body == b""
            assert (await client.request("GET", "/")).status == 200
    assert_no_errors(caplog)


async def test_sendfile_chunked_for_unknown_length_producer() -> None:
    with trio.fail_after(DEADLINE):
        async with running(file_app(Path(__file__))) as server, open_client(server.port) as client:
            response = await client.request("GET", "/produced")
            assert response.header("transfer-encoding") == "chunked"
            assert response.body == b"made by producer"


async def test_file_copy_fallback_in_memory(data_file: Path) -> None:
    """Memory streams cannot sendfile: the file is read in worker threads instead."""
    result = await request(file_app(data_file), "GET", "/file")
    assert result.body == data_file.read_bytes()


@pytest.mark.parametrize("transport", ["tcp", "memory"])
async def test_file_that_shrank_closes_connection(
    tmp_path: Path, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The producer claims more bytes than the file has: the response is cut and the
    connection closed, rather than sending a wrong length (logged at INFO, no traceback)."""
    caplog.set_level("INFO")
    path = tmp_path / "short.bin"
    path.write_bytes(b"x" * 1000)
    app = file_app(path, length=5000)
    with trio.fail_after(DEADLINE):
        if transport == "tcp":
            async with running(app) as server:
                raw = await raw_exchange(server.port, b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
                await get_ok(server.port)
        else:
            async with open_memory_client(app) as stream:
                await stream.send_all(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
                raw = await read_until_eof(stream)
    assert status_of(raw) == 200
    with pytest.raises(h11.RemoteProtocolError):
        parse_responses(raw)
    assert_no_errors(caplog)
    assert any("shrank" in r.getMessage() for r in caplog.records)


async def test_peer_resets_during_sendfile(data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(DEADLINE):
        async with running(file_app(data_file)) as server:
            stream = await connect(server.port)
            stream.socket.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
            await stream.send_all(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await stream.receive_some(1000)
            set_linger_zero(stream)
            await stream.aclose()
            await get_ok(server.port)
    assert_no_errors(caplog)


async def test_sendfile_to_peer_that_does_not_read(data_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = ServerConfig(send_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with running(file_app(data_file), config=config) as server:
            stream = await connect(server.port)
            stream.socket.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
            await stream.send_all(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
            await trio.sleep(1.0)
            received = len(await read_until_eof(stream))
            assert received < data_file.stat().st_size
            await get_ok(server.port)
    assert_no_errors(caplog)


# -- 101 Switching Protocols ----------------------------------------------------------


def upgrade_app() -> App:
    app = make_app()

    @app.route("/up")
    async def up(request: Request) -> Response:
        stream, early = await request.switch_protocols([("upgrade", "echo"), ("connection", "upgrade")])
        await stream.send_all(b"early:" + early)
        data = await stream.receive_some(100)
        await stream.send_all(b"echo:" + data)
        return Response(200)  # ignored: the stream belongs to the new protocol

    return app


async def test_switch_protocols_hands_over_stream_and_trailing_data() -> None:
    with trio.fail_after(DEADLINE):
        async with running(upgrade_app()) as server:
            stream = await connect(server.port)
            await stream.send_all(
                b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nEARLY"
            )
            client = H11Client(stream)
            client.h11.send(
                h11.Request(
                    method="GET",
                    target="/up",
                    headers=[("host", "x"), ("connection", "upgrade"), ("upgrade", "echo")],
                )
            )
            client.h11.send(h11.EndOfMessage())
            event = await client.next_event()
            assert isinstance(event, h11.InformationalResponse)
            assert event.status_code == 101
            assert (b"upgrade", b"echo") in event.headers
            assert (b"server", b"trio_ws") in event.headers
            rest = client.h11.trailing_data[0]
            while not rest.endswith(b"EARLY"):
                rest += await stream.receive_some(100)
            assert rest == b"early:EARLY"
            await stream.send_all(b"hi")
            assert await stream.receive_some(100) == b"echo:hi"
            assert await read_until_eof(stream) == b""  # the connection ends with the handler


# -- Server.serve_stream --------------------------------------------------------------


async def test_serve_stream_on_a_server_with_a_listener(autojump_clock: trio.testing.MockClock) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    server = Server(make_app(), listeners, config=ServerConfig())
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        client, server_end = trio.testing.memory_stream_pair()
        nursery.start_soon(server.serve_stream, server_end)
        await client.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        (response,) = parse_responses(await read_until_eof(client))
        assert response.body == b"hello"
        await server.aclose()
    assert server.statistics() == {"connections": 0, "accepted": 1}


async def test_serve_stream_serves_a_connected_stream(autojump_clock: trio.testing.MockClock) -> None:
    server = Server(make_app(), [], config=ServerConfig())
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        client, server_end = trio.testing.memory_stream_pair()
        nursery.start_soon(server.serve_stream, server_end)
        await client.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        (response,) = parse_responses(await read_until_eof(client))
        assert response.body == b"hello"
        assert server.statistics()["accepted"] == 1
        await server.aclose()
    assert server.statistics()["connections"] == 0
