"""permessage-deflate over real connections: our client and server, websockets, aiohttp.

The oracles are independent implementations: the ``websockets`` client and
server (their own permessage-deflate, checked to have negotiated it) and
aiohttp's client (``compress=15``).  Our client against our server runs every
combination of the parameters either side can ask for.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws import App, NegotiationError, WebSocket
from trio_ws.sansio.deflate import DeflateSettings, client_offer, server_negotiate
from trio_ws.sansio.headers import get_all, parse_params_list
from trio_ws.ws_config import SERVER_MAX_WINDOW_BITS, WebSocketOptions
from trio_ws.ws_endpoint import echo_handler

from .ws_support import serving, wait_for

#: 1 MiB that compresses well, and 256 KiB that does not.
TEXTY = ("All work and no play makes Jack a dull boy. " * 24000)[: 1 << 20]
NOISE = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(8192))
MESSAGES: list[str | bytes] = ["Hello", "héllo wörld " * 50, b"\x00\x01" * 300, b"", "", TEXTY, NOISE]
BIG = 4 << 20


def extensions_header(ws: WebSocket) -> str | None:
    values = get_all(ws.response_headers, "sec-websocket-extensions")
    return values[0] if values else None


def echo_app(stats: list[tuple[int, int]] | None = None, **kwargs: Any) -> App:
    """``/echo`` echoes; ``/stats`` echoes and records (bytes received, bytes sent) at the end."""
    app = App()
    options = cast(WebSocketOptions, {"max_message_size": BIG, **kwargs})
    app.websocket("/echo", **options)(echo_handler)

    @app.websocket("/stats", **options)
    async def record(ws: WebSocket) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        finally:
            if stats is not None:
                stats.append((ws.statistics().bytes_received, ws.statistics().bytes_sent))

    return app


async def echo_all(ws: WebSocket, messages: list[str | bytes] = MESSAGES) -> None:
    for message in messages:
        await ws.send(message)
        assert await ws.receive() == message


# -- our client ↔ our server ------------------------------------------------------------

CLIENT_CHOICES = [
    {},
    {"max_window_bits": 8},
    {"max_window_bits": 11},
    {"compression_no_context_takeover": True},
    {"max_window_bits": 9, "compression_no_context_takeover": True},
]
SERVER_CHOICES = [
    {},
    {"max_window_bits": 15},
    {"max_window_bits": 9},
    {"compression_no_context_takeover": True},
    {"max_window_bits": 10, "compression_no_context_takeover": True, "compression_threshold": 0},
]


def expected_answer(client: dict[str, Any], server: dict[str, Any]) -> str:
    """What our server must answer to our client's offer, from the sansio functions."""
    offer = client_offer(
        DeflateSettings(
            max_window_bits=client.get("max_window_bits", 15),
            no_context_takeover=client.get("compression_no_context_takeover", False),
        )
    )
    server_settings = DeflateSettings(
        max_window_bits=server.get("max_window_bits", SERVER_MAX_WINDOW_BITS),
        no_context_takeover=server.get("compression_no_context_takeover", False),
    )
    params = server_negotiate(parse_params_list([offer]), server_settings)
    assert params is not None
    return params.header()


@pytest.mark.parametrize(
    ("client", "server"),
    list(itertools.product(CLIENT_CHOICES, SERVER_CHOICES)),
    ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()) or "defaults",
)
async def test_our_client_our_server_every_combination(
    client: dict[str, Any], server: dict[str, Any]
) -> None:
    stats: list[tuple[int, int]] = []
    with trio.fail_after(30):
        async with (
            serving(echo_app(stats, **server), "memory") as h,
            h.connect("/stats", max_message_size=BIG, **client) as ws,
        ):
            answer = extensions_header(ws)
            assert answer == expected_answer(client, server)
            await echo_all(ws)
            # Fragmented messages, compressed as one stream, both ways.
            await ws.send_fragments([TEXTY[:1000], TEXTY[1000:5000], ""])
            assert await ws.receive() == TEXTY[:5000]
            await ws.aclose()
            await wait_for(lambda: bool(stats))
    wire_in, wire_out = stats[0]
    payload = sum(len(m.encode() if isinstance(m, str) else m) for m in MESSAGES) + 5000
    # TEXTY deflates ~100:1, so the wire carries far less than the payload both ways.
    assert wire_in < payload // 2
    assert wire_out < payload // 2


async def test_context_takeover_makes_the_repeat_smaller() -> None:
    message = "The quick brown fox jumps over the lazy dog; " * 40
    sizes: dict[bool, list[int]] = {}
    for no_takeover in (False, True):
        async with (
            serving(echo_app(), "memory") as h,
            h.connect("/echo", compression_no_context_takeover=no_takeover) as ws,
        ):
            seen = []
            for _ in range(2):
                before = ws.statistics().bytes_sent
                await ws.send(message)
                assert await ws.receive() == message
                seen.append(ws.statistics().bytes_sent - before)
            sizes[no_takeover] = seen
    assert sizes[False][1] < sizes[False][0]  # the second refers back to the first
    assert sizes[True][1] == sizes[True][0]  # each message compressed on its own
    assert sizes[True][0] == sizes[False][0]


async def test_compression_off_on_either_side() -> None:
    stats: list[tuple[int, int]] = []
    async with serving(echo_app(stats), "memory") as h:
        async with h.connect("/stats", compression=False, max_message_size=BIG) as ws:
            assert extensions_header(ws) is None
            await echo_all(ws, [TEXTY])
        async with (
            serving(echo_app(stats, compression=False), "memory") as h2,
            h2.connect("/stats", max_message_size=BIG) as ws,
        ):
            assert extensions_header(ws) is None  # offered, not accepted
            await echo_all(ws, [TEXTY])
        await wait_for(lambda: len(stats) == 2)
    assert all(wire_in > len(TEXTY) for wire_in, _ in stats)


async def test_send_compress_false_and_threshold() -> None:
    stats: list[tuple[int, int]] = []
    async with serving(echo_app(stats), "memory") as h:
        async with h.connect("/stats", max_message_size=BIG) as ws:
            await ws.send(TEXTY, compress=False)  # e.g. already compressed, or secret
            assert await ws.receive() == TEXTY
        async with h.connect("/stats", max_message_size=BIG, compression_threshold=len(TEXTY) + 1) as ws:
            await ws.send(TEXTY)  # below the threshold: as is
            assert await ws.receive() == TEXTY
        async with h.connect("/stats", max_message_size=BIG) as ws:
            await ws.send(TEXTY)
            assert await ws.receive() == TEXTY
        async with h.connect("/stats", compression=False) as ws:
            await ws.send("x" * 200, compress=False)  # nothing negotiated: a no-op
            assert await ws.receive() == "x" * 200
        await wait_for(lambda: len(stats) == 4)
    (raw1, _), (raw2, _), (packed, _), _ = stats
    assert raw1 > len(TEXTY)
    assert raw2 > len(TEXTY)
    assert packed < len(TEXTY) // 20


async def test_a_message_too_big_after_inflating_closes_1009() -> None:
    app = App()
    app.websocket("/small", max_message_size=1000)(echo_handler)
    async with serving(app, "memory") as h, h.connect("/small") as ws:
        await ws.send("a" * 1000)
        assert await ws.receive() == "a" * 1000
        await ws.send("a" * 1001)  # ~20 bytes on the wire
        with pytest.raises(trio_ws.ConnectionClosedError) as info:
            await ws.receive()
    assert info.value.code == 1009


@asynccontextmanager
async def raw_server(answer: str) -> AsyncIterator[tuple[str, trio.abc.Stream]]:
    """A memory-stream server answering the upgrade with ``answer`` as its extensions."""
    client_end, server_end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:

        async def respond() -> None:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await server_end.receive_some(4096)
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            from trio_ws.sansio.handshake import accept_key

            await server_end.send_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n".encode()
                + f"Sec-WebSocket-Extensions: {answer}\r\n\r\n".encode()
            )

        nursery.start_soon(respond)
        yield "ws://raw.test/", client_end
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    "answer",
    [
        "permessage-deflate; client_max_window_bits",  # no value in a response (§7.1.2.2)
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; bogus",
        "permessage-deflate, permessage-deflate",
    ],
)
async def test_our_client_fails_the_handshake_on_a_bad_answer(answer: str) -> None:
    with trio.fail_after(5):
        async with raw_server(answer) as (url, stream):
            with pytest.raises(NegotiationError):
                async with trio_ws.connect(url, stream=stream):
                    pass  # pragma: no cover


async def test_our_client_fails_when_the_server_window_exceeds_our_offer() -> None:
    with trio.fail_after(5):
        async with raw_server("permessage-deflate; server_max_window_bits=12") as (url, stream):
            with pytest.raises(NegotiationError, match="above the 10 we offered"):
                async with trio_ws.connect(url, stream=stream, max_window_bits=10):
                    pass  # pragma: no cover


# -- websockets client → our server -----------------------------------------------------------


async def in_thread(fn: Callable[[], Any]) -> Any:
    return await trio.to_thread.run_sync(fn, abandon_on_cancel=True)


def websockets_extensions(**params: Any) -> list[Any] | None:
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    return [ClientPerMessageDeflateFactory(**params)] if params else None


@pytest.mark.parametrize(
    "params",
    [
        {},  # websockets' default: "permessage-deflate; client_max_window_bits"
        {"server_no_context_takeover": True, "client_no_context_takeover": True},
        {"server_max_window_bits": 10, "client_max_window_bits": 9},
        {"server_max_window_bits": 9, "client_max_window_bits": 9},  # websockets: 9..15
        {"client_max_window_bits": None},  # no client_max_window_bits in the offer
    ],
    ids=["default", "no_context_takeover", "windows", "windows-9", "plain"],
)
async def test_websockets_client_with_our_server(params: dict[str, Any]) -> None:
    from websockets.sync.client import connect

    def client(url: str) -> tuple[list[str | bytes], list[str]]:
        got: list[str | bytes] = []
        extensions = websockets_extensions(**params)
        kwargs: dict[str, Any] = {"extensions": extensions} if extensions else {}
        with connect(url, max_size=BIG, **kwargs) as ws:
            negotiated = [repr(ext) for ext in ws.protocol.extensions]
            for message in MESSAGES:
                ws.send(message)
                got.append(ws.recv())
        return got, negotiated

    stats: list[tuple[int, int]] = []
    async with serving(echo_app(stats), "tcp") as h:
        got, negotiated = await in_thread(lambda: client(h.url("/stats")))
        await wait_for(lambda: bool(stats))
    assert got == MESSAGES
    assert len(negotiated) == 1
    assert "PerMessageDeflate" in negotiated[0]
    wire_in, wire_out = stats[0]
    assert wire_in < len(TEXTY) // 2
    assert wire_out < len(TEXTY) // 2


# -- our client → websockets server ----------------------------------------------------------


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


def websockets_server_extensions(**params: Any) -> list[Any]:
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    return [ServerPerMessageDeflateFactory(**params)]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ({}, {}),
        ({}, {"server_max_window_bits": 10, "client_max_window_bits": 9}),
        ({}, {"server_no_context_takeover": True, "client_no_context_takeover": True}),
        ({"max_window_bits": 10}, {}),
        ({"compression_no_context_takeover": True}, {}),
        ({"max_window_bits": 9, "compression_no_context_takeover": True}, {"client_max_window_bits": 9}),
    ],
    ids=["defaults", "their-windows", "their-no-takeover", "our-window", "our-no-takeover", "nine"],
)
async def test_our_client_with_websockets_server(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    negotiated: list[list[str]] = []

    def echo(conn: Any) -> None:
        negotiated.append([repr(ext) for ext in conn.protocol.extensions])
        for message in conn:
            conn.send(message)

    extensions = websockets_server_extensions(**theirs)
    async with websockets_server(echo, max_size=BIG, extensions=extensions) as port:
        url = f"ws://127.0.0.1:{port}/"
        async with trio_ws.connect(url, max_message_size=BIG, **ours) as ws:
            header = extensions_header(ws)
            assert header is not None
            assert header.startswith("permessage-deflate")
            before = ws.statistics()
            await echo_all(ws)
            after = ws.statistics()
    assert len(negotiated) == 1
    assert len(negotiated[0]) == 1
    assert "PerMessageDeflate" in negotiated[0][0]
    assert after.bytes_sent - before.bytes_sent < len(TEXTY) // 2 + len(NOISE) + 10_000
    assert after.bytes_received - before.bytes_received < len(TEXTY) // 2 + len(NOISE) + 10_000


@pytest.mark.parametrize(
    ("server_kwargs", "client_kwargs"),
    [
        ({"compression": None}, {}),
        # websockets only does 9..15 bits: it declines our 8-bit offer; we go on uncompressed.
        ({}, {"max_window_bits": 8}),
    ],
    ids=["compression-off", "declines-8-bits"],
)
async def test_our_client_with_websockets_server_declining(
    server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
) -> None:
    def echo(conn: Any) -> None:
        for message in conn:
            conn.send(message)

    async with (
        websockets_server(echo, **server_kwargs) as port,
        trio_ws.connect(f"ws://127.0.0.1:{port}/", **client_kwargs) as ws,
    ):
        assert extensions_header(ws) is None
        await echo_all(ws, ["plain", b"bytes", "x" * 1000])


# -- aiohttp client → our server ----------------------------------------------------------------


async def test_aiohttp_client_compress_15_with_our_server() -> None:
    aiohttp = pytest.importorskip("aiohttp", reason="needs aiohttp (PyPI), an interop peer in the test extra")

    async def client(url: str) -> tuple[list[str | bytes], int]:
        got: list[str | bytes] = []
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, compress=15, max_msg_size=BIG) as ws,
        ):
            for message in MESSAGES:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_bytes(message)
                got.append((await ws.receive()).data)
            return got, ws.compress

    stats: list[tuple[int, int]] = []
    async with serving(echo_app(stats), "tcp") as h:
        url = h.url("/stats")
        got, compress = await in_thread(lambda: asyncio.run(client(url)))
        await wait_for(lambda: bool(stats))
    assert got == MESSAGES
    assert compress == SERVER_MAX_WINDOW_BITS  # aiohttp offered 15; we answered client_max_window_bits=12
    wire_in, wire_out = stats[0]
    assert wire_in < len(TEXTY) // 2
    assert wire_out < len(TEXTY) // 2
