"""Graceful shutdown: Server.aclose() finishes in-flight work, closes idle
connections at once, and cancels what is left after ``shutdown_timeout``."""

from __future__ import annotations

import h11
import pytest
import trio
import trio.testing

from trio_ws import Server, ServerConfig
from trio_ws.testing import open_memory_server

from .conftest import (
    DEADLINE,
    Gate,
    assert_no_errors,
    closes,
    connect,
    make_app,
    open_client,
    parse_responses,
    read_until_eof,
    running,
    status_of,
)


async def test_aclose_lets_inflight_response_finish_and_closes_idle(
    gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServerConfig(shutdown_timeout=DEADLINE)
    with trio.fail_after(DEADLINE):
        async with (
            running(make_app(gate), config=config) as server,
            open_client(server.port) as busy,
            open_client(server.port) as idle,
        ):
            assert (await idle.request("GET", "/")).status == 200
            await busy.send_request("GET", "/slow")
            await gate.entered.wait()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.aclose)
                # the idle keep-alive connection is closed promptly...
                assert await idle.at_eof()
                while server.statistics()["connections"] != 1:
                    await trio.sleep(0.01)
                gate.release.set()
                response = await busy.read_response()
                assert response.body == b"slow done"
                assert closes(response)
                assert await busy.at_eof()
    assert_no_errors(caplog)


async def test_shutdown_timeout_cancels_the_rest(gate: Gate, caplog: pytest.LogCaptureFixture) -> None:
    """A response still streaming after ``shutdown_timeout`` is cancelled mid-write:
    the connection closes and the client sees a truncated chunked body."""
    config = ServerConfig(shutdown_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with running(make_app(gate), config=config) as server, open_client(server.port) as client:
            await client.send_request("GET", "/forever")
            head = await client.read_head()
            assert head.status_code == 200
            await gate.entered.wait()
            started = trio.current_time()
            await server.aclose()
            assert 0.25 < trio.current_time() - started < 3
            with pytest.raises(h11.RemoteProtocolError):  # truncated chunked body
                await client.read_rest()
    assert_no_errors(caplog)


async def test_shutdown_cancels_slow_handler(gate: Gate) -> None:
    config = ServerConfig(shutdown_timeout=0.2)
    with trio.fail_after(DEADLINE):
        async with running(make_app(gate), config=config) as server, open_client(server.port) as client:
            await client.send_request("GET", "/slow")
            await gate.entered.wait()
            await server.aclose()
            assert await read_until_eof(client.stream) == b""


async def test_statistics_after_forced_shutdown(gate: Gate) -> None:
    config = ServerConfig(shutdown_timeout=0.2)
    with trio.fail_after(DEADLINE):
        async with running(make_app(gate), config=config) as server, open_client(server.port) as client:
            await client.send_request("GET", "/slow")
            await gate.entered.wait()
            await server.aclose()
            assert server.statistics()["connections"] == 0


async def test_connection_arriving_during_shutdown_is_not_served(gate: Gate) -> None:
    """During the grace period the accept loop has stopped: a new client is not served."""
    config = ServerConfig(shutdown_timeout=DEADLINE)
    with trio.fail_after(DEADLINE):
        async with running(make_app(gate), config=config) as server, open_client(server.port) as busy:
            await busy.send_request("GET", "/slow")
            await gate.entered.wait()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.aclose)
                await trio.sleep(0.05)
                try:
                    late = await connect(server.port)
                except OSError:
                    pass  # refused: fine too
                else:
                    await late.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    with trio.move_on_after(0.2) as waited:
                        await late.receive_some(100)
                    assert waited.cancelled_caught
                gate.release.set()
                assert (await busy.read_response()).status == 200


async def test_half_received_head_during_shutdown_still_answered(gate: Gate) -> None:
    """A request whose head has started is not idle: it is read and answered with close."""
    config = ServerConfig(shutdown_timeout=DEADLINE)
    with trio.fail_after(DEADLINE):
        async with running(make_app(gate), config=config) as server:
            stream = await connect(server.port)
            await stream.send_all(b"GET / HTTP/1.1\r\n")
            await trio.sleep(0.05)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.aclose)
                await trio.sleep(0.05)
                await stream.send_all(b"Host: x\r\n\r\n")
                raw = await read_until_eof(stream)
            assert status_of(raw) == 200
            assert b"connection: close" in raw.lower()


async def test_memory_server_shutdown_in_virtual_time(
    autojump_clock: trio.testing.MockClock, gate: Gate
) -> None:
    """The default 10 s grace period, without waiting 10 s."""
    async with open_memory_server(make_app(gate)) as memory:
        stream = await memory.connect()
        await stream.send_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await gate.entered.wait()
        started = trio.current_time()
        await memory.server.aclose()
        assert trio.current_time() - started == pytest.approx(ServerConfig().shutdown_timeout, abs=0.01)
        assert await read_until_eof(stream) == b""


async def test_idle_keepalive_at_shutdown_closes_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Regression: cancelling the idle read left ``data`` unbound in ``next_request``
    (UnboundLocalError logged as 'internal error on connection')."""
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server, open_client(server.port) as client:
            assert (await client.request("GET", "/")).status == 200
            await trio.sleep(0.05)  # the connection is now waiting for a next request
            await server.aclose()
            assert await client.at_eof()
    assert_no_errors(caplog)


async def test_a_stream_that_arrives_during_shutdown_is_closed_without_a_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Past aclose(), a new connection is not read at all: it closes at once."""
    gate = Gate()
    server = Server(make_app(gate), [], config=ServerConfig())
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        busy, busy_end = trio.testing.memory_stream_pair()
        nursery.start_soon(server.serve_stream, busy_end)
        await busy.send_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await gate.entered.wait()
        nursery.start_soon(server.aclose)
        await trio.sleep(0.1)  # aclose() waits for the busy connection
        late, late_end = trio.testing.memory_stream_pair()
        nursery.start_soon(server.serve_stream, late_end)
        assert await read_until_eof(late) == b""
        gate.release.set()
        (response,) = parse_responses(await read_until_eof(busy))
        assert response.body == b"slow done"
        assert response.header("connection") == "close"
    assert server.statistics() == {"connections": 0, "accepted": 2}


async def test_shutdown_during_a_long_response_ends_before_a_pipelined_partial_head() -> None:
    """The answer whose head went out before the shutdown finishes; the half-sent next
    request is not waited for."""
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server, trio.open_nursery() as nursery:
            stream = await connect(server.port)
            await stream.send_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET / HTT")
            await trio.sleep(0.1)  # the server is blocked writing the 8 MiB body
            nursery.start_soon(server.aclose)
            await trio.sleep(0.1)
            raw = await read_until_eof(stream)
    (response,) = parse_responses(raw)
    assert len(response.body) == 8 * 1024 * 1024
    assert response.header("connection") is None
