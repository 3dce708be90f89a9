"""HTTP/1.1 semantics over loopback TCP, checked with an h11 client and raw bytes.

RFC 9112 (message syntax and connection management) and RFC 9110 (semantics).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator

import h11
import pytest
import trio

from trio_ws import App, Request, Response, ServerConfig

from .conftest import (
    DEADLINE,
    H11Client,
    assert_no_errors,
    closes,
    connect,
    get_ok,
    parse_responses,
    raw_exchange,
    read_until_eof,
    running,
    status_of,
)


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, raw
    return head, rest


# -- HTTP/1.0 -----------------------------------------------------------------------


async def test_http10_client_gets_response_then_close(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            raw = await raw_exchange(server.port, b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n")
    (response,) = parse_responses(raw)  # one response, then the server closed
    assert response.status == 200
    assert response.body == b"hello"
    assert response.header("content-length") == "5"
    assert raw.startswith(b"HTTP/1.1 200 ")  # RFC 9110 §2.5: we send our own version


async def test_http10_streamed_response_is_close_delimited(app: App) -> None:
    """RFC 9112 §6.3 rule 8: no chunked coding for a 1.0 peer; the body ends at close."""
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            raw = await raw_exchange(server.port, b"GET /stream HTTP/1.0\r\n\r\n")
    head, body = split_head(raw)
    assert b"transfer-encoding" not in head.lower()
    assert b"content-length" not in head.lower()
    assert body == b"one,two,three"


async def test_http11_streamed_response_is_chunked(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            response = await client.request("GET", "/stream")
            assert response.header("transfer-encoding") == "chunked"
            assert response.body == b"one,two,three"
            assert (await client.request("GET", "/")).status == 200  # still alive
            await client.aclose()


# -- Expect: 100-continue (RFC 9110 §10.1.1) ------------------------------------------


async def test_expect_continue_sent_only_when_handler_reads(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            await client.send(
                h11.Request(
                    method="POST",
                    target="/echo",
                    headers=[("host", "x"), ("content-length", "5"), ("expect", "100-continue")],
                )
            )
            event = await client.next_event()
            assert isinstance(event, h11.InformationalResponse)
            assert event.status_code == 100
            await client.send(h11.Data(data=b"hello"), h11.EndOfMessage())
            response = await client.read_response()
            assert (response.status, response.body) == (200, b"hello")
            await client.aclose()


async def test_expect_continue_not_sent_when_handler_does_not_read(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            await client.send(
                h11.Request(
                    method="POST",
                    target="/noread",
                    headers=[("host", "x"), ("content-length", "5"), ("expect", "100-continue")],
                )
            )
            response = await client.read_response()
            assert client.interim == []
            assert response.status == 200
            assert closes(response)
            assert await client.at_eof()
            await client.aclose()


# -- request bodies -----------------------------------------------------------------


async def test_body_is_read_only_when_handler_asks(app: App) -> None:
    """The response to a handler that ignores the body arrives before the body is sent;
    the small body is then drained and the connection reused."""
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            await client.send(
                h11.Request(
                    method="POST", target="/noread", headers=[("host", "x"), ("content-length", "10")]
                )
            )
            response = await client.read_response()
            assert response.status == 200
            assert response.header("connection") is None
            await client.send(h11.Data(data=b"0123456789"), h11.EndOfMessage())
            client.h11.start_next_cycle()
            assert (await client.request("GET", "/")).body == b"hello"
            await client.aclose()


async def test_content_length_body_read_by_handler(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            response = await client.request("POST", "/count", body=b"abcdefg" + b"h" * 70000)
            assert response.body == b"70007"
            assert (await client.request("PUT", "/echo", body=b"xyz")).body == b"xyz"
            await client.aclose()


async def test_chunked_body_read_by_handler(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            await client.send_request("POST", "/count", [("transfer-encoding", "chunked")])
            for piece in (b"abc", b"defg", b"h" * 70000):
                await client.send(h11.Data(data=piece))
            await client.send(h11.EndOfMessage())
            response = await client.read_response()
            assert response.body == b"70007"
            client.h11.start_next_cycle()
            assert (await client.request("GET", "/")).status == 200
            await client.aclose()


async def test_small_unread_chunked_body_closes(app: App) -> None:
    """A chunked body's size is unknown in advance, so an unread one is never drained."""
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            await client.send_request("POST", "/noread", [("transfer-encoding", "chunked")])
            await client.send(h11.Data(data=b"abc"), h11.EndOfMessage())
            response = await client.read_response()
            assert closes(response)
            assert await client.at_eof()
            await client.aclose()


async def test_large_unread_body_closes_and_response_survives(app: App) -> None:
    config = ServerConfig(max_drain_size=1000)
    with trio.fail_after(DEADLINE):
        async with running(app, config=config) as server:
            client = await H11Client.connect(server.port)
            await client.send(
                h11.Request(
                    method="POST", target="/noread", headers=[("host", "x"), ("content-length", "200000")]
                )
            )
            response = await client.read_response()
            assert response.status == 200
            assert closes(response)
            assert await client.at_eof()
            await client.aclose()
            await get_ok(server.port)


async def test_declared_body_between_drain_and_cap_is_drained(app: App) -> None:
    """Declared small (≤ max_drain_size) but the drain reads more: the connection ends."""
    config = ServerConfig(max_drain_size=10)
    with trio.fail_after(DEADLINE):
        async with running(app, config=config) as server:
            raw = await raw_exchange(
                server.port,
                b"POST /noread HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n12345678"
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
    assert [r.status for r in parse_responses(raw, ["POST", "GET"])] == [200, 200]


# -- body cap: 413 (RFC 9110 §15.5.14) ---------------------------------------------------


async def test_declared_content_length_over_cap_refused_without_reading(app: App) -> None:
    config = ServerConfig(max_body_size=1000)
    with trio.fail_after(DEADLINE):
        async with running(app, config=config) as server:
            client = await H11Client.connect(server.port)
            await client.send(
                h11.Request(
                    method="POST", target="/echo", headers=[("host", "x"), ("content-length", "5000")]
                )
            )
            response = await client.read_response()  # not a byte of the body was sent
            assert response.status == 413
            assert closes(response)
            assert await client.at_eof()
            await client.aclose()
            await get_ok(server.port)


async def test_declared_over_cap_with_expect_gets_no_100(app: App) -> None:
    config = ServerConfig(max_body_size=1000)
    with trio.fail_after(DEADLINE):
        async with running(app, config=config) as server:
            client = await H11Client.connect(server.port)
            await client.send(
                h11.Request(
                    method="POST",
                    target="/echo",
                    headers=[("host", "x"), ("content-length", "5000"), ("expect", "100-continue")],
                )
            )
            response = await client.read_response()
            assert client.interim == []
            assert response.status == 413
            await client.aclose()


async def test_chunked_body_over_cap_413(app: App) -> None:
    config = ServerConfig(max_body_size=1000)
    with trio.fail_after(DEADLINE):
        async with running(app, config=config) as server:
            client = await H11Client.connect(server.port)
            await client.send_request("POST", "/echo", [("transfer-encoding", "chunked")])
            await client.send(h11.Data(data=b"a" * 600), h11.Data(data=b"b" * 600))
            response = await client.read_response()
            assert response.status == 413
            assert closes(response)
            await client.aclose()
            await get_ok(server.port)


async def test_handler_chosen_max_size() -> None:
    app = App()

    @app.route("/small", methods=["POST"])
    async def small(request: Request) -> Response:
        return Response.text(str(len(await request.body(max_size=4))))

    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            assert (await client.request("POST", "/small", body=b"1234")).body == b"4"
            assert (await client.request("POST", "/small", body=b"12345")).status == 413
            await client.aclose()


async def test_body_read_twice_is_empty_second_time() -> None:
    app = App()

    @app.route("/twice", methods=["POST"])
    async def twice(request: Request) -> Response:
        first = await request.body()
        second = await request.body()
        return Response.text(f"{first.decode()}|{second.decode()}")

    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            assert (await client.request("POST", "/twice", body=b"abc")).body == b"abc|"
            assert (await client.request("GET", "/twice")).status == 405
            await client.aclose()


async def test_get_without_body_reads_empty(app: App) -> None:
    """A request with no framing headers has an empty body (RFC 9112 §6.3 rule 7)."""
    echo_get = App()

    @echo_get.route("/", methods=["GET"])
    async def handler(request: Request) -> Response:
        return Response.text(repr(await request.body()))

    with trio.fail_after(DEADLINE):
        async with running(echo_get) as server:
            client = await H11Client.connect(server.port)
            assert (await client.request("GET", "/")).body == b"b''"
            await client.aclose()


async def test_body_stalls_408(app: App) -> None:
    config = ServerConfig(header_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with running(app, config=config) as server:
            client = await H11Client.connect(server.port)
            await client.send(
                h11.Request(method="POST", target="/echo", headers=[("host", "x"), ("content-length", "10")]),
                h11.Data(data=b"12345"),
            )
            response = await client.read_response()
            assert response.status == 408
            assert closes(response)
            await client.aclose()


async def test_peer_closes_mid_body(app: App, caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            raw = await raw_exchange(
                server.port,
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345",
                half_close=True,
            )
            assert raw == b""
            await get_ok(server.port)
    assert_no_errors(caplog)


# -- responses ----------------------------------------------------------------------


async def test_head_has_get_content_length_and_no_body(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            raw = await raw_exchange(
                server.port,
                b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n"
                b"HEAD /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
    heads = raw.split(b"\r\n\r\n")
    assert heads[-1] == b"", "HEAD responses carried a body"
    responses = parse_responses(raw, ["HEAD", "HEAD", "HEAD"])
    assert [r.status for r in responses] == [200, 200, 404]
    assert responses[0].header("content-length") == "5"
    assert responses[1].header("transfer-encoding") == "chunked"
    assert responses[2].header("content-length") == str(len(b"404 Not Found\n"))
    assert all(r.body == b"" for r in responses)


async def test_204_has_no_body_and_no_length(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            raw = await raw_exchange(
                server.port, b"GET /empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
    head, body = split_head(raw)
    assert status_of(raw) == 204
    assert b"content-length" not in head.lower()
    assert body == b""


async def test_explicit_content_length_not_duplicated() -> None:
    app = App()

    @app.route("/")
    async def handler(request: Request) -> Response:
        return Response(200, b"abc", headers=[("Content-Length", "3")])

    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            response = await client.request("GET", "/")
            assert [v for k, v in response.headers if k == b"content-length"] == [b"3"]
            await client.aclose()


async def test_date_and_server_headers(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            response = await client.request("GET", "/")
            await client.aclose()
    assert response.header("server") == "trio_ws"
    date = response.header("date")
    assert date is not None
    assert date.endswith(" GMT")
    sent = email.utils.parsedate_to_datetime(date).timestamp()
    assert abs(sent - time.time()) < 5


async def test_server_header_can_be_omitted(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app, config=ServerConfig(server_header="")) as server:
            client = await H11Client.connect(server.port)
            response = await client.request("GET", "/")
            await client.aclose()
    assert response.header("server") is None
    assert response.header("date") is not None


async def test_404_and_405_with_allow(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            assert (await client.request("GET", "/missing")).status == 404
            response = await client.request("DELETE", "/")
            assert response.status == 405
            assert response.header("allow") == "GET, HEAD"
            response = await client.request("GET", "/echo")
            assert response.header("allow") == "POST, PUT"
            assert (await client.request("HEAD", "/")).status == 200
            await client.aclose()


async def test_handler_exception_is_500_and_server_keeps_serving(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            response = await client.request("GET", "/boom")
            assert response.status == 500
            assert b"handler exploded" not in response.body  # no internals leaked
            assert (await client.request("GET", "/")).status == 200  # same connection survives
            await client.aclose()
            await get_ok(server.port)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "GET /boom" in errors[0].getMessage()


async def test_http_error_from_handler_is_that_status(app: App) -> None:
    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            response = await client.request("GET", "/teapot")
            assert response.status == 418
            assert b"short and stout" in response.body
            assert closes(response)
            await client.aclose()
            await get_ok(server.port)


async def test_error_response_has_one_connection_header(app: App) -> None:
    config = ServerConfig(header_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with running(app, config=config) as server:
            raw = await raw_exchange(
                server.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"
            )
    assert status_of(raw) == 408
    head, _ = split_head(raw)
    assert head.lower().count(b"\r\nconnection:") == 1, head


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([("x-bad", "a\r\nInjected: yes")], None),
        ([("x-bad\r\nInjected", "yes")], None),
        ([("bad name", "v")], None),
        ([("x-nul", "a\x00b")], None),
        ([], "OK\r\nInjected: yes"),
    ],
)
async def test_invalid_response_header_is_500(
    caplog: pytest.LogCaptureFixture, headers: list[tuple[str, str]], reason: str | None
) -> None:
    """Header injection through any part of a handler's response is refused, not sent."""
    app = App()

    @app.route("/")
    async def handler(request: Request) -> Response:
        return Response(200, b"x", headers=headers, reason=reason)

    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            raw = await raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"injected" not in raw.lower()
    assert status_of(raw) == 500


async def test_streamed_body_raising_closes_connection(caplog: pytest.LogCaptureFixture) -> None:
    app = App()

    @app.route("/")
    async def handler(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("generator failed")

        return Response(200, chunks())

    with trio.fail_after(DEADLINE):
        async with running(app) as server:
            client = await H11Client.connect(server.port)
            await client.send_request("GET", "/")
            head = await client.read_head()
            assert head.status_code == 200
            with pytest.raises(h11.RemoteProtocolError):  # truncated chunked body
                await client.read_rest()
            await client.aclose()
    assert any("failed while sending" in r.getMessage() for r in caplog.records)


async def test_peer_that_does_not_read_hits_send_timeout(app: App, caplog: pytest.LogCaptureFixture) -> None:
    """A write blocked longer than ``send_timeout`` ends the connection; others are unaffected."""
    config = ServerConfig(send_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with running(app, config=config) as server:
            stream = await connect(server.port)
            stream.socket.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
            await stream.send_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            await trio.sleep(0.8)  # never read: the server's write blocks and times out
            await get_ok(server.port)
            received = len(await read_until_eof(stream))
            assert received < 8 * 1024 * 1024  # the body was cut short
            await stream.aclose()
    assert_no_errors(caplog)
