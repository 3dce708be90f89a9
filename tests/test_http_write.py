"""The response writer (``trio_ws._http_write``): direct responses, producers'
Content-Length, the h11 fallback for producers of unknown length, the plain-TCP
write path, keep-alive decided without h11, and 101 written directly."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h11
import pytest
import trio

import trio_ws._direct_io
import trio_ws._http_write
from trio_ws import App, BodySink, Request, Response
from trio_ws.testing import open_memory_client

from .conftest import (
    DEADLINE,
    Gate,
    assert_no_errors,
    connect,
    get_ok,
    make_app,
    parse_responses,
    raw_exchange,
    read_until_eof,
    running,
    set_linger_zero,
    status_of,
)


class Pieces:
    """A producer: ``sends`` through ``sink.send``, then ``files`` through ``sink.sendfile``."""

    def __init__(
        self,
        length: int | None,
        sends: tuple[bytes, ...] = (),
        files: tuple[tuple[Path, int, int], ...] = (),
    ) -> None:
        self.length = length
        self.sends = sends
        self.files = files

    async def produce(self, sink: BodySink) -> None:
        for data in self.sends:
            await sink.send(data)
        for path, offset, count in self.files:
            fd = os.open(path, os.O_RDONLY)
            try:
                await sink.sendfile(fd, offset, count)
            finally:
                os.close(fd)


def producer_app(body: Pieces) -> App:
    app = App()

    @app.route("/")
    async def root(request: Request) -> Response:
        return Response.text("hello")  # what get_ok expects

    @app.route("/p")
    async def produced(request: Request) -> Response:
        return Response(200, body)

    @app.route("/switch")
    async def switch(request: Request) -> Response:
        await request.switch_protocols([("upgrade", "x")])
        return Response(101)  # pragma: no cover - switch_protocols raises

    return app


GET = b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 64)  # 16 KiB
    return path


async def exchange(app: App, data: bytes, transport: str = "tcp") -> bytes:
    with trio.fail_after(DEADLINE):
        if transport == "tcp":
            async with running(app) as server:
                raw = await raw_exchange(server.port, data, half_close=True)
                await get_ok(server.port)
                return raw
        async with open_memory_client(app) as stream:
            await stream.send_all(data)
            assert isinstance(stream, trio.abc.HalfCloseableStream)
            await stream.send_eof()
            return await read_until_eof(stream)


@pytest.mark.parametrize("transport", ["tcp", "memory"])
async def test_producer_of_known_length_with_empty_sends_and_files(
    data: Path, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Direct: empty sends are skipped, the head rides with the first piece, Content-Length is ours."""
    body = Pieces(3 + 100 + 0, sends=(b"", b"abc"), files=((data, 10, 100), (data, 0, 0)))
    raw = await exchange(producer_app(body), GET + GET, transport)
    responses = parse_responses(raw, ["GET", "GET"])
    for response in responses:
        assert response.status == 200
        assert response.header("content-length") == "103"
        assert response.body == b"abc" + data.read_bytes()[10:110]
    assert_no_errors(caplog)


@pytest.mark.parametrize("transport", ["tcp", "memory"])
async def test_producer_of_length_zero_sends_its_head(transport: str) -> None:
    raw = await exchange(producer_app(Pieces(0)), GET, transport)
    [response] = parse_responses(raw)
    assert (response.status, response.body, response.header("content-length")) == (200, b"", "0")


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        (Pieces(2, sends=(b"abc",)), b""),  # too much at once: the head, then the cut
        (Pieces(5, sends=(b"abc", b"def")), b"abc"),  # too much later
        (Pieces(10, sends=(b"abc",)), b"abc"),  # too little
        (Pieces(10), b""),  # nothing at all
    ],
    ids=["too-much-first", "too-much-later", "too-little", "nothing"],
)
async def test_producer_that_breaks_its_length_gets_the_connection_cut(
    body: Pieces, sent: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """As when h11 framed it: the head (and what fitted) goes out, then the connection closes."""
    raw = await exchange(producer_app(body), GET + GET)
    assert status_of(raw) == 200
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert f"content-length: {body.length}".encode() in head
    assert rest == sent  # and no second response
    assert any("invalid response" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("transport", ["tcp", "memory"])
async def test_producer_of_unknown_length_with_files_is_chunked_by_h11(data: Path, transport: str) -> None:
    body = Pieces(None, sends=(b"", b"abc"), files=((data, 0, 1000), (data, 5, 0)))
    raw = await exchange(producer_app(body), GET, transport)
    [response] = parse_responses(raw)
    assert response.header("transfer-encoding") == "chunked"
    assert response.body == b"abc" + data.read_bytes()[:1000]


async def test_producer_of_unknown_length_whose_file_shrank(
    data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = Pieces(None, files=((data, 0, 2 * data.stat().st_size),))
    raw = await exchange(producer_app(body), GET)
    assert status_of(raw) == 200
    with pytest.raises(h11.RemoteProtocolError):
        parse_responses(raw)
    assert any("shrank" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("request_head", "closes"),
    [
        (b"GET /p HTTP/1.1\r\nHost: x\r\n\r\n", False),
        (b"GET /p HTTP/1.0\r\n\r\n", True),
        (b"GET /p HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n", True),
        (b"GET /p HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n", False),
    ],
    ids=["1.1", "1.0", "close-token", "not-close"],
)
async def test_keep_alive_follows_the_client_as_h11_would(request_head: bytes, closes: bool) -> None:
    """RFC 9112 §9.3: HTTP/1.0 or a "close" token ends the connection after the answer."""
    app = producer_app(Pieces(2, sends=(b"ok",)))
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            stream = await connect(server.port)
            await stream.send_all(request_head + GET)
            raw = await read_until_eof(stream) if closes else b""
            if not closes:
                while raw.count(b"ok") < 2:
                    raw += await stream.receive_some(65536)
            await stream.aclose()
    count = 1 if closes else 2
    responses = parse_responses(raw, ["GET"] * count)
    assert [r.body for r in responses] == [b"ok"] * count
    assert (responses[0].header("connection") == "close") is closes


async def test_many_pipelined_requests_yield_to_other_tasks_now_and_then() -> None:
    """Reads and writes that never block still let other tasks run (OPS_PER_YIELD)."""
    count = 8 * trio_ws._direct_io.OPS_PER_YIELD
    raw = await exchange(producer_app(Pieces(2, sends=(b"ok",))), GET * count)
    assert [r.body for r in parse_responses(raw, ["GET"] * count)] == [b"ok"] * count


async def test_a_write_the_kernel_refuses_goes_through_send_all(monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.writev
    refused: list[int] = []

    def writev(fd: int, buffers: list[bytes]) -> int:
        if not refused:
            refused.append(fd)
            raise BlockingIOError
        return real(fd, buffers)

    monkeypatch.setattr(os, "writev", writev)
    raw = await exchange(producer_app(Pieces(2, sends=(b"ok",))), GET)
    assert refused
    assert parse_responses(raw)[0].body == b"ok"


async def test_a_reset_while_waiting_for_a_request_is_a_quiet_peer_gone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(DEADLINE):
        async with running(producer_app(Pieces(0))) as server:
            stream = await connect(server.port)
            await stream.send_all(b"GET / HTTP/1.1\r\n")
            await trio.sleep(0.05)
            set_linger_zero(stream)
            await stream.aclose()
            await trio.sleep(0.05)
            await get_ok(server.port)
    assert_no_errors(caplog)


async def test_switch_protocols_without_an_upgrade_request_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = await exchange(producer_app(Pieces(0)), b"GET /switch HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(raw) == 500
    assert any(r.exc_info and "did not ask for an upgrade" in str(r.exc_info[1]) for r in caplog.records)


async def test_header_names_past_the_cache_bound_are_still_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trio_ws._http_write, "_CHECKED_NAMES_MAX", 0)
    app = App()

    @app.route("/")
    async def root(request: Request) -> Response:
        return Response.text("hello")

    @app.route("/p")
    async def made_up(request: Request) -> Response:
        return Response(200, b"ok", headers=[("x-made-up", "1")])

    @app.route("/bad")
    async def bad(request: Request) -> Response:
        return Response(200, b"ok", headers=[("x made up", "1")])

    raw = await exchange(app, GET + b"GET /bad HTTP/1.1\r\nHost: x\r\n\r\n")
    ok, refused = parse_responses(raw, ["GET", "GET"])
    assert ok.header("x-made-up") == "1"
    assert refused.status == 500
    assert "x-made-up" not in trio_ws._http_write._checked_names


def test_format_head_matches_h11() -> None:
    headers = [(b"date", b"x"), (b"content-length", b"2")]
    ours = trio_ws._http_write.format_head(200, b"OK", headers)
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(GET)
    conn.next_event()
    theirs = conn.send(h11.Response(status_code=200, headers=headers, reason=b"OK"))
    assert ours == theirs


async def test_a_write_to_a_peer_that_reset_is_a_quiet_peer_gone(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gate = Gate()
    with trio.fail_after(DEADLINE):
        async with running(make_app(gate)) as server:
            stream = await connect(server.port)
            await stream.send_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            await gate.entered.wait()
            set_linger_zero(stream)
            await stream.aclose()  # RST: the answer's write fails
            await trio.sleep(0.05)
            gate.release.set()
            while server.statistics()["connections"]:
                await trio.sleep(0.01)
            await get_ok(server.port)
    assert_no_errors(caplog)
    assert any("peer gone" in r.getMessage() for r in caplog.records)
