"""HTTPS: serve(ssl_context=...) with certificates from a throwaway trustme CA."""

from __future__ import annotations

import functools
import ssl

import pytest
import trio
import trustme

import trio_ws
from trio_ws import Request, Response, ServerConfig

from .conftest import DEADLINE, H11Client, assert_no_errors, connect, make_app, read_until_eof


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def test_https_request(ca: trustme.CA, caplog: pytest.LogCaptureFixture) -> None:
    server_ctx, client_ctx = contexts(ca)
    app = make_app()

    @app.route("/scheme")
    async def scheme(request: Request) -> Response:
        return Response.text(request.scheme)

    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(trio_ws.serve, app, "127.0.0.1", 0, ssl_context=server_ctx)
            )
            assert server.urls == [f"https://127.0.0.1:{server.port}/"]
            tcp = await connect(server.port)
            tls = trio.SSLStream(tcp, client_ctx, server_hostname="127.0.0.1", https_compatible=True)
            client = H11Client(tls)
            assert (await client.request("GET", "/scheme")).body == b"https"
            assert (await client.request("POST", "/echo", body=b"secret")).body == b"secret"
            await tls.aclose()
            nursery.cancel_scope.cancel()
    assert_no_errors(caplog)


async def test_tls_handshake_failure_and_timeout(ca: trustme.CA, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    server_ctx, client_ctx = contexts(ca)
    config = ServerConfig(tls_handshake_timeout=0.3)
    with trio.fail_after(DEADLINE):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    trio_ws.serve, make_app(), "127.0.0.1", 0, ssl_context=server_ctx, config=config
                )
            )
            # plain HTTP to a TLS port: the handshake fails, the connection closes
            plain = await connect(server.port)
            await plain.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await read_until_eof(plain)
            # a client that never starts the handshake is dropped after tls_handshake_timeout
            silent = await connect(server.port)
            started = trio.current_time()
            assert await read_until_eof(silent) == b""
            assert trio.current_time() - started < 3
            # the server still serves TLS
            tls = trio.SSLStream(await connect(server.port), client_ctx, server_hostname="127.0.0.1")
            client = H11Client(tls)
            assert (await client.request("GET", "/")).status == 200
            await tls.aclose()
            nursery.cancel_scope.cancel()
    assert_no_errors(caplog)
    messages = [r.getMessage() for r in caplog.records if r.name == "trio_ws.server"]
    assert any("TLS handshake failed" in m for m in messages)
    assert any("TLS handshake timed out" in m for m in messages)
