"""Malformed and hostile input over raw sockets.

Each case gets the right status (or a quiet close), the server logs one INFO
line for it and no ERROR or traceback, and a fresh connection still gets 200.
Where h11 is lenient and RFC 9112 allows it, the leniency is pinned and the
RFC clause cited.
"""

from __future__ import annotations

import logging

import pytest
import trio

from trio_ws import App, Request, Response, ServerConfig

from .conftest import (
    DEADLINE,
    assert_no_errors,
    connect,
    get_ok,
    make_app,
    parse_responses,
    raw_exchange,
    read_until_eof,
    running,
    server_records,
    set_linger_zero,
    status_of,
)

HEAD = b"POST /echo HTTP/1.1\r\nHost: x\r\n"

REFUSED = {
    "malformed request line": (b"GARBAGE\r\n\r\n", 400),
    "request line with extra spaces": (b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "invalid header name": (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400),
    "header name with separator": (b"GET / HTTP/1.1\r\nHost: x\r\nBad(Name): v\r\n\r\n", 400),
    # RFC 9112 §5.1: whitespace between field name and colon MUST be rejected with 400.
    "space before colon": (b"GET / HTTP/1.1\r\nHost: x\r\nA : b\r\n\r\n", 400),
    "header without colon": (b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400),
    # RFC 9112 §2.2: whitespace before the first field line MUST be rejected (or ignored).
    "continuation first": (b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    # RFC 9112 §3.2: a 1.1 request without Host MUST get 400.
    "missing host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    # RFC 9112 §6.1 / §11.2: both framings is request smuggling.
    "content-length and transfer-encoding": (
        HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    # RFC 9110 §8.6: differing Content-Length values are unrecoverable.
    "duplicate differing content-length": (
        HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    ),
    "content-length list": (HEAD + b"Content-Length: 5, 6\r\n\r\nhello!", 400),
    "negative content-length": (HEAD + b"Content-Length: -1\r\n\r\n", 400),
    "non-numeric content-length": (HEAD + b"Content-Length: abc\r\n\r\n", 400),
    "bad chunk size": (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    "chunk size overflow": (HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 40 + b"\r\n", 400),
    # RFC 9112 §6.1: an unknown transfer coding SHOULD get 501.
    "unknown transfer-encoding": (HEAD + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    "chunked not last": (HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 501),
    "NUL in header value": (b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x00c\r\n\r\n", 400),
    "NUL in target": (b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "CR alone in header": (b"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n", 400),
    "absurdly many headers": (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a: b\r\n" * 5000 + b"\r\n", 431),
    "many tiny headers under the byte limit of h11": (
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a:\r\n" * 3500 + b"\r\n",
        431,
    ),
}


@pytest.mark.parametrize(("data", "status"), list(REFUSED.values()), ids=list(REFUSED))
async def test_bad_request_refused(data: bytes, status: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            raw = await raw_exchange(server.port, data)
            assert status_of(raw) == status
            (response,) = parse_responses(raw)
            assert "close" in (response.header("connection") or "")
            records = server_records(caplog)
            assert_no_errors(caplog)
            assert [r.levelname for r in records] == ["INFO"], [r.getMessage() for r in records]
            await get_ok(server.port)


async def test_half_head_then_eof(caplog: pytest.LogCaptureFixture) -> None:
    """EOF mid-head: h11 reports 'peer unexpectedly closed'; the 400 goes to a half-closed
    peer that may still read it, then the connection ends."""
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            raw = await raw_exchange(server.port, b"GET / HTTP/1.1\r\nHo", half_close=True)
            assert raw == b"" or status_of(raw) == 400
            await get_ok(server.port)
    assert_no_errors(caplog)


ACCEPTED = {
    # RFC 9112 §2.2: a recipient MAY recognize a single LF as a line terminator (h11 does).
    "bare LF line endings": b"GET /hdr HTTP/1.1\nHost: x\nA: b c\nConnection: close\n\n",
    # RFC 9112 §5.2: a server MAY replace each obs-fold with SP before interpreting (h11 does).
    "obs-fold": b"GET /hdr HTTP/1.1\r\nHost: x\r\nA: b\r\n  c\r\nConnection: close\r\n\r\n",
    # RFC 9110 §8.6: identical repeated Content-Length MAY be taken as one value.
    "duplicate equal content-length": (
        b"GET /hdr HTTP/1.1\r\nHost: x\r\nA: b c\r\nContent-Length: 0\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    ),
    # RFC 9110 §5.5: recipients MAY retain CTL characters other than NUL/CR/LF (h11 does).
    "control character in value": b"GET /hdr HTTP/1.1\r\nHost: x\r\nA: b\x01c\r\nConnection: close\r\n\r\n",
    # RFC 9110 §2.5: a higher minor version is answered as HTTP/1.1.
    "HTTP/1.2": b"GET /hdr HTTP/1.1\r\nHost: x\r\nA: b c\r\nConnection: close\r\n\r\n".replace(
        b"1.1", b"1.2", 1
    ),
}


def header_app() -> App:
    app = make_app()

    @app.route("/hdr")
    async def hdr(request: Request) -> Response:
        return Response.text(request.header("a") or "")

    return app


@pytest.mark.parametrize("data", list(ACCEPTED.values()), ids=list(ACCEPTED))
async def test_lenient_input_accepted(data: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(DEADLINE):
        async with running(header_app()) as server:
            raw = await raw_exchange(server.port, data)
    (response,) = parse_responses(raw)
    assert response.status == 200
    assert response.body in (b"b c", b"b\x01c")
    assert_no_errors(caplog)


async def test_bare_lf_in_chunked_framing_stalls_to_408(caplog: pytest.LogCaptureFixture) -> None:
    """h11 accepts bare LF in the head but not in chunk framing: it waits for CRLF,
    so the body stalls and the server answers 408 after ``header_timeout``."""
    config = ServerConfig(header_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            raw = await raw_exchange(server.port, HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n")
            assert status_of(raw) == 408
            await get_ok(server.port)
    assert_no_errors(caplog)


async def test_unread_malformed_chunked_body_closes(caplog: pytest.LogCaptureFixture) -> None:
    """A handler that never reads a (malformed) chunked body answers normally; the
    connection then closes instead of parsing the rest."""
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            raw = await raw_exchange(
                server.port, b"POST /noread HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
            )
            (response,) = parse_responses(raw, ["POST"])
            assert response.status == 200
            assert "close" in (response.header("connection") or "")
            await get_ok(server.port)
    assert_no_errors(caplog)


async def test_http2_preface_refused_once(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            raw = await raw_exchange(server.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            await get_ok(server.port)
    assert raw.count(b"HTTP/1.1 ") == 1, raw
    assert status_of(raw) in (400, 505)


async def test_http_major_version_2_is_505() -> None:
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            raw = await raw_exchange(server.port, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    assert status_of(raw) == 505


async def test_peer_resets_mid_request(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            stream = await connect(server.port)
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Partial: ")
            await trio.sleep(0.05)
            set_linger_zero(stream)
            await stream.aclose()
            await get_ok(server.port)
            # also mid-body, with a handler reading it
            stream = await connect(server.port)
            await stream.send_all(HEAD + b"Content-Length: 100\r\n\r\nabc")
            await trio.sleep(0.05)
            set_linger_zero(stream)
            await stream.aclose()
            await get_ok(server.port)
    assert_no_errors(caplog)


async def test_peer_resets_mid_response(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            stream = await connect(server.port)
            await stream.send_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await stream.receive_some(1000)
            set_linger_zero(stream)
            await stream.aclose()
            await get_ok(server.port)
            with trio.fail_after(DEADLINE):
                while server.statistics()["connections"]:
                    await trio.sleep(0.01)
    assert_no_errors(caplog)


async def test_garbage_after_response_on_keepalive(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            stream = await connect(server.port)
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x16\x03\x01garbage\r\n\r\n")
            raw = await read_until_eof(stream)
            responses = parse_responses(raw, ["GET", "GET"])
            assert [r.status for r in responses] == [200, 400]
            await get_ok(server.port)
    assert_no_errors(caplog)
