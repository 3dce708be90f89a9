"""Limits and timeouts: 431, 414, 408, idle keep-alive, requests per connection.

Timeouts run over loopback TCP with short real deadlines, and again over the
in-memory transport of :mod:`trio_ws.testing` under the autojump clock, where
the production defaults (10 s, 5 s) pass in virtual time.
"""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from trio_ws import ServerConfig
from trio_ws.testing import open_memory_client

from .conftest import (
    DEADLINE,
    assert_no_errors,
    closes,
    connect,
    get_ok,
    make_app,
    open_client,
    parse_responses,
    raw_exchange,
    read_until_eof,
    running,
    server_records,
    status_of,
)


async def test_headers_over_limit_431(caplog: pytest.LogCaptureFixture) -> None:
    """Parsed by h11 (under its buffer limit) but over ``max_header_size``."""
    config = ServerConfig(max_header_size=1000, max_target_length=1000)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            raw = await raw_exchange(
                server.port, b"GET / HTTP/1.1\r\nHost: x\r\nBig: " + b"v" * 1500 + b"\r\n\r\n"
            )
            assert status_of(raw) == 431
            await get_ok(server.port)
    assert_no_errors(caplog)


async def test_headers_over_h11_buffer_431() -> None:
    """Bigger than h11's incomplete-event limit: refused before the head completes."""
    config = ServerConfig(max_header_size=1000, max_target_length=1000)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            stream = await connect(server.port)
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nBig: " + b"v" * 5000)  # never finished
            raw = await read_until_eof(stream)
            assert status_of(raw) == 431
            await get_ok(server.port)


async def test_headers_exactly_at_limit_accepted() -> None:
    """Counted as name + value + 4 per line (``": "`` and CRLF)."""
    config = ServerConfig(max_header_size=100)
    value = b"v" * (100 - len(b"host") - len(b"x") - 4 - len(b"big") - 4)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            ok = await raw_exchange(
                server.port, b"GET / HTTP/1.1\r\nHost: x\r\nBig: " + value + b"\r\n\r\n", half_close=True
            )
            too_big = await raw_exchange(
                server.port, b"GET / HTTP/1.1\r\nHost: x\r\nBig: " + value + b"v\r\n\r\n"
            )
    assert status_of(ok) == 200
    assert status_of(too_big) == 431


async def test_long_target_414_after_parse(caplog: pytest.LogCaptureFixture) -> None:
    config = ServerConfig(max_target_length=100)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            raw = await raw_exchange(server.port, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(raw) == 414
            await get_ok(server.port)
    assert_no_errors(caplog)


async def test_long_target_414_before_parse() -> None:
    """A request line alone past h11's buffer limit: 414, not 431 (RFC 9110 §15.5.15)."""
    config = ServerConfig(max_target_length=100, max_header_size=100)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            stream = await connect(server.port)
            await stream.send_all(b"GET /" + b"a" * 1000)
            raw = await read_until_eof(stream)
            assert status_of(raw) == 414
            await get_ok(server.port)


async def test_trickled_head_408(caplog: pytest.LogCaptureFixture) -> None:
    """A client sending its head byte by byte slower than ``header_timeout`` allows."""
    caplog.set_level(logging.INFO)
    config = ServerConfig(header_timeout=0.5)
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 100 + b"\r\n\r\n"
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            stream = await connect(server.port)
            started = trio.current_time()

            async def trickle() -> None:
                try:
                    for byte in head:
                        await stream.send_all(bytes([byte]))
                        await trio.sleep(0.05)
                except trio.BrokenResourceError:
                    pass

            async with trio.open_nursery() as nursery:
                nursery.start_soon(trickle)
                raw = await read_until_eof(stream)
                nursery.cancel_scope.cancel()
            assert status_of(raw) == 408
            assert 0.4 < trio.current_time() - started < 3
            await get_ok(server.port)
    assert_no_errors(caplog)
    assert any("not received within" in r.getMessage() for r in server_records(caplog))


async def test_silent_new_connection_closed_quietly_after_header_timeout() -> None:
    config = ServerConfig(header_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            stream = await connect(server.port)
            assert await read_until_eof(stream) == b""


async def test_header_timeout_counts_from_accept() -> None:
    config = ServerConfig(header_timeout=0.5)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            stream = await connect(server.port)
            await trio.sleep(0.35)
            await stream.send_all(b"G")
            await trio.sleep(0.35)  # 0.7 s after accept, 0.35 s after the first byte
            await stream.send_all(b"ET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            raw = await read_until_eof(stream)
    assert status_of(raw) == 408


async def test_idle_keepalive_closed_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = ServerConfig(keepalive_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server, open_client(server.port) as client:
            assert (await client.request("GET", "/")).status == 200
            started = trio.current_time()
            assert await read_until_eof(client.stream) == b""  # no 408, just FIN
            assert 0.2 < trio.current_time() - started < 3
    assert not server_records(caplog)


async def test_max_requests_per_connection() -> None:
    config = ServerConfig(max_requests_per_connection=3)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server, open_client(server.port) as client:
            responses = [await client.request("GET", "/") for _ in range(3)]
            assert [closes(r) for r in responses] == [False, False, True]
            assert await client.at_eof()


async def test_max_requests_per_connection_pipelined() -> None:
    config = ServerConfig(max_requests_per_connection=2)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            raw = await raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
    responses = parse_responses(raw, ["GET", "GET"])
    assert [closes(r) for r in responses] == [False, True]
    assert raw.count(b"HTTP/1.1 200") == 2


# -- the same timeouts with production defaults, in virtual time ------------------------


async def test_default_header_timeout_virtual(autojump_clock: trio.testing.MockClock) -> None:
    config = ServerConfig()
    async with open_memory_client(make_app(), config=config) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\n")
        started = trio.current_time()
        raw = await stream.receive_some(4096)
        assert status_of(raw) == 408
        assert trio.current_time() - started == pytest.approx(config.header_timeout, abs=0.01)
        # Memory streams are not SocketStreams, so the server does not half-close before
        # lingering: EOF comes after LINGER_TIMEOUT (2 s).
        assert await read_until_eof(stream, timeout=60) == b""


async def test_default_keepalive_timeout_virtual(autojump_clock: trio.testing.MockClock) -> None:
    config = ServerConfig()
    async with open_memory_client(make_app(), config=config) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(await stream.receive_some(4096)) == 200
        started = trio.current_time()
        assert await read_until_eof(stream, timeout=60) == b""
        assert trio.current_time() - started == pytest.approx(config.keepalive_timeout, abs=0.01)


async def test_body_stall_virtual(autojump_clock: trio.testing.MockClock) -> None:
    async with open_memory_client(make_app()) as stream:
        await stream.send_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc")
        raw = await read_until_eof(stream, timeout=60)
    assert status_of(raw) == 408
