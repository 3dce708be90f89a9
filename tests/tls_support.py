"""TLS test helpers: a throwaway trustme CA, contexts, a running HTTPS server, TLS dialling.

Server contexts come from :func:`trio_ws.tls.server_context` loaded from PEM
files (the path users take), so the helper module is exercised by every test.
"""

from __future__ import annotations

import atexit
import functools
import logging
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trustme

import trio_ws
from trio_ws import Server, ServerConfig
from trio_ws.request import Handler
from trio_ws.tls import client_context, server_context

from .conftest import DEADLINE, close_listeners, connect

HOST = "127.0.0.1"


@functools.cache
def ca() -> trustme.CA:
    """One CA per test session (key generation is the slow part)."""
    return trustme.CA()


@functools.cache
def pem_dir() -> Path:
    """A directory holding ``ca.pem``, ``cert.pem`` (for 127.0.0.1 and localhost), ``key.pem``."""
    path = Path(tempfile.mkdtemp(prefix="trio_ws_tls_"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    leaf = ca().issue_cert(HOST, "localhost")
    ca().cert_pem.write_to_path(str(path / "ca.pem"))
    (path / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(path / "key.pem"))
    return path


def make_server_context() -> ssl.SSLContext:
    return server_context(pem_dir() / "cert.pem", pem_dir() / "key.pem")


def make_client_context() -> ssl.SSLContext:
    return client_context(cafile=pem_dir() / "ca.pem")


@asynccontextmanager
async def tls_server(
    app: Handler, *, config: ServerConfig | None = None, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    """Serve ``app`` over TLS on 127.0.0.1:0 for the block; cancelled (and its sockets closed) on exit."""
    server: Server | None = None
    context = ssl_context or make_server_context()
    try:
        async with trio.open_nursery() as nursery:
            start = functools.partial(trio_ws.serve, app, HOST, 0, config=config, ssl_context=context)
            server = await nursery.start(start)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    finally:
        close_listeners(server.listeners if server else [])


async def tls_connect(
    port: int, context: ssl.SSLContext | None = None, *, server_hostname: str = HOST
) -> trio.SSLStream[trio.SocketStream]:
    """A TLS client stream with the handshake done (its socket is closed at test end)."""
    tcp = await connect(port)
    tls = trio.SSLStream(
        tcp, context or make_client_context(), server_hostname=server_hostname, https_compatible=True
    )
    with trio.fail_after(DEADLINE):
        await tls.do_handshake()
    return tls


def server_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "trio_ws.server"]


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]
