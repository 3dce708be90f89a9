"""HTTPS: one TLS port for https:// and wss://, ALPN, truncation, plain HTTP, static files, curl, CLI.

Independent oracles: an ``h11`` client over ``trio.SSLStream`` and the real
``curl`` binary. Servers bind 127.0.0.1:0 with a throwaway trustme CA.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import trio

import trio_ws
import trio_ws._http_write
import trio_ws.tls
from trio_ws import App, Request, Response, StaticFiles, WebSocket
from trio_ws.testing import SimpleResponse

from .conftest import DEADLINE, H11Client, connect, read_until_eof, set_linger_zero
from .test_static_support import Reply, parse_multipart, parse_raw_response
from .tls_support import (
    HOST,
    assert_no_tracebacks,
    make_client_context,
    pem_dir,
    server_messages,
    tls_connect,
    tls_server,
)

ROOT = Path(__file__).resolve().parent.parent
CURL = shutil.which("curl")
#: Larger than StaticFiles' inline limit and than several worker-thread chunks.
FILE = random.Random(20240605).randbytes(3 * trio_ws._http_write.FILE_CHUNK_SIZE + 12345)
NAME = "blob.bin"


def web_app(root: Path | None = None) -> App:
    app = App()

    @app.route("/scheme")
    async def scheme(request: Request) -> Response:
        return Response.text(request.scheme)

    @app.websocket("/ws")
    async def echo(ws: WebSocket) -> None:
        async for message in ws:
            await ws.send(message)

    if root is not None:
        app.mount("/files", StaticFiles(root))
    return app


def as_reply(response: SimpleResponse) -> Reply:
    headers = [(k.decode(), v.decode("latin-1")) for k, v in response.headers]
    return Reply(response.status, headers, response.body)


# -- one port, two schemes; ALPN --------------------------------------------------------


async def test_https_and_wss_share_one_port(caplog: pytest.LogCaptureFixture) -> None:
    async with tls_server(web_app()) as server:
        assert server.urls == [f"https://{HOST}:{server.port}/"]
        tls = await tls_connect(server.port)
        assert tls.selected_alpn_protocol() == "http/1.1"
        client = H11Client(tls)
        assert (await client.request("GET", "/scheme")).body == b"https"
        with trio.fail_after(DEADLINE):
            url = f"wss://{HOST}:{server.port}/ws"
            async with trio_ws.connect(url, ssl_context=make_client_context()) as ws:
                await ws.send("over tls")
                assert await ws.receive() == "over tls"
        # the keep-alive HTTPS connection is still usable after the wss one came and went
        assert (await client.request("GET", "/scheme")).body == b"https"
        await tls.aclose()
    assert_no_tracebacks(caplog)


def test_tls_module_api_is_pinned() -> None:
    """The helpers are public in their module, not re-exported at the top level (like trio_ws.testing)."""
    assert sorted(trio_ws.tls.__all__) == ["ALPN_PROTOCOLS", "client_context", "server_context"]
    assert trio_ws.tls.ALPN_PROTOCOLS == ("http/1.1",)
    assert not set(trio_ws.tls.__all__) & set(trio_ws.__all__)


def test_helper_contexts() -> None:
    server = trio_ws.tls.server_context(pem_dir() / "cert.pem", pem_dir() / "key.pem")
    client = trio_ws.tls.client_context()
    for context in (server, client):
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert client.check_hostname
    assert client.verify_mode is ssl.CERT_REQUIRED
    with pytest.raises(FileNotFoundError):
        trio_ws.tls.server_context(pem_dir() / "missing.pem")
    with pytest.raises(ssl.SSLError):
        trio_ws.tls.server_context(pem_dir() / "ca.pem", pem_dir() / "key.pem")  # key does not match


async def test_alpn_h2_offer_gets_http11() -> None:
    async with tls_server(web_app()) as server:
        context = make_client_context()
        context.set_alpn_protocols(["h2", "http/1.1"])
        tls = await tls_connect(server.port, context)
        assert tls.selected_alpn_protocol() == "http/1.1"
        assert (await H11Client(tls).request("GET", "/scheme")).status == 200
        await tls.aclose()


async def test_a_user_context_that_negotiates_h2_is_refused_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem_dir() / "cert.pem", pem_dir() / "key.pem")
    context.set_alpn_protocols(["h2", "http/1.1"])  # a misconfiguration: we cannot speak h2
    async with tls_server(web_app(), ssl_context=context) as server:
        h2 = make_client_context()
        h2.set_alpn_protocols(["h2"])
        tls = await tls_connect(server.port, h2)
        assert tls.selected_alpn_protocol() == "h2"
        assert await read_until_eof(tls) == b""
        # no ALPN at all: HTTP/1.1 is assumed (RFC 7301 is opt-in)
        tls2 = await tls_connect(server.port, ssl.create_default_context(cafile=pem_dir() / "ca.pem"))
        assert tls2.selected_alpn_protocol() is None
        assert (await H11Client(tls2).request("GET", "/scheme")).body == b"https"
        await tls2.aclose()
    messages = [m for m in server_messages(caplog) if "ALPN" in m]
    assert len(messages) == 1
    assert "'h2'" in messages[0]
    assert "http/1.1" in messages[0]
    assert_no_tracebacks(caplog)


# -- truncation and plain HTTP -------------------------------------------------------------


async def test_peer_without_close_notify_is_a_clean_eof(caplog: pytest.LogCaptureFixture) -> None:
    """https_compatible=True: a TCP close with no close_notify is EOF, not an error."""
    caplog.set_level("DEBUG")
    async with tls_server(web_app()) as server:
        # after a full exchange
        tls = await tls_connect(server.port)
        assert (await H11Client(tls).request("GET", "/scheme")).status == 200
        await tls.transport_stream.aclose()
        # in the middle of a request head
        tls = await tls_connect(server.port)
        await tls.send_all(b"GET /scheme HTTP/1.1\r\nHost: x\r\n")
        await tls.transport_stream.aclose()
        # and the server goes on serving
        tls = await tls_connect(server.port)
        assert (await H11Client(tls).request("GET", "/scheme")).status == 200
        await tls.aclose()
        with trio.fail_after(DEADLINE):
            while server.statistics()["connections"]:
                await trio.sleep(0.01)
    assert_no_tracebacks(caplog)
    assert not [m for m in server_messages(caplog) if "ssl" in m.lower() or "EOF" in m]


async def test_peer_reset_mid_head_is_a_quiet_peer_gone(caplog: pytest.LogCaptureFixture) -> None:
    """A TCP reset under TLS while the server reads a head: logged at DEBUG, no traceback."""
    caplog.set_level("DEBUG")
    async with tls_server(web_app()) as server:
        tls = await tls_connect(server.port)
        await tls.send_all(b"GET /scheme HTTP/1.1\r\nHost: x\r\n")
        await trio.sleep(0.05)  # the server has read the start of the head
        set_linger_zero(tls.transport_stream)
        await tls.transport_stream.aclose()
        with trio.fail_after(DEADLINE):
            while server.statistics()["connections"]:
                await trio.sleep(0.01)
        tls = await tls_connect(server.port)
        assert (await H11Client(tls).request("GET", "/scheme")).status == 200
        await tls.aclose()
    assert_no_tracebacks(caplog)
    assert any("peer gone" in r.getMessage() for r in caplog.records)


async def test_plain_http_to_the_tls_port(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    async with tls_server(web_app()) as server:
        plain = await connect(server.port)
        started = trio.current_time()
        await plain.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await read_until_eof(plain, timeout=2) == b""
        assert trio.current_time() - started < 1  # closed at once, not at the handshake deadline
    records = [r for r in caplog.records if r.name == "trio_ws.server" and "TLS" in r.getMessage()]
    assert len(records) == 1, [r.getMessage() for r in records]
    message = records[0].getMessage()
    assert "\n" not in message
    assert "plain HTTP sent to the TLS port" in message
    assert records[0].exc_info is None
    assert_no_tracebacks(caplog)


# -- static files over TLS: the worker-thread path -----------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / NAME).write_bytes(FILE)
    return root


@pytest.fixture
def no_sendfile(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Fail if os.sendfile is reached; count the worker-thread copies."""
    copies: list[int] = []
    original = trio_ws._http_write._copy_file

    def forbidden(*args: object) -> int:
        raise AssertionError("os.sendfile used on a TLS stream")

    async def counting(send: Callable[[bytes], Awaitable[None]], fd: int, offset: int, count: int) -> None:
        copies.append(count)
        await original(send, fd, offset, count)

    monkeypatch.setattr(os, "sendfile", forbidden)
    monkeypatch.setattr(trio_ws._http_write, "_copy_file", counting)
    return copies


async def test_static_ranges_over_tls_with_h11(files: Path, no_sendfile: list[int]) -> None:
    async with tls_server(web_app(files)) as server:
        tls = await tls_connect(server.port)
        client = H11Client(tls)
        whole = await client.request("GET", f"/files/{NAME}")
        assert whole.status == 200
        assert whole.body == FILE
        single = await client.request("GET", f"/files/{NAME}", [("range", "bytes=64-95")])
        assert single.status == 206
        assert single.body == FILE[64:96]
        assert single.header("content-range") == f"bytes 64-95/{len(FILE)}"
        spans = [(64, 95), (128, 143), (200_000, 600_000), (len(FILE) - 10, len(FILE) - 1)]
        ranges = ",".join(f"{a}-{b}" for a, b in spans)
        multi = await client.request("GET", f"/files/{NAME}", [("range", f"bytes={ranges}")])
        assert multi.status == 206
        parts = parse_multipart(as_reply(multi))
        assert [data for _, data in parts] == [FILE[a : b + 1] for a, b in spans]
        for (headers, _), (a, b) in zip(parts, spans, strict=True):
            assert ("content-range", f"bytes {a}-{b}/{len(FILE)}") in headers
        await tls.aclose()
    # The whole file went through worker-thread reads (small pieces may be inlined by
    # the handler instead); os.sendfile was never reached (it raises above).
    assert no_sendfile[0] == len(FILE)


@pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")
class TestCurl:
    async def curl(self, *args: str) -> bytes:
        assert CURL is not None
        command = [CURL, "-s", "-S", "--max-time", "5", "--cacert", str(pem_dir() / "ca.pem"), *args]
        with trio.fail_after(DEADLINE):
            done = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
        return bytes(done.stdout)

    async def test_single_range(self, files: Path, tmp_path: Path, no_sendfile: list[int]) -> None:
        async with tls_server(web_app(files)) as server:
            url = f"https://{HOST}:{server.port}/files/{NAME}"
            heads = tmp_path / "head.txt"
            assert await self.curl("-r", "64-95", "-D", str(heads), url) == FILE[64:96]
            head = parse_raw_response(heads.read_bytes(), head_only=True)
            assert head.status == 206
            assert head.header("content-range") == f"bytes 64-95/{len(FILE)}"
            assert await self.curl(url) == FILE
        assert no_sendfile

    async def test_multipart_ranges(self, files: Path, tmp_path: Path, no_sendfile: list[int]) -> None:
        async with tls_server(web_app(files)) as server:
            url = f"https://{HOST}:{server.port}/files/{NAME}"
            heads = tmp_path / "head.txt"
            body = await self.curl("-r", "64-95,128-143,300000-", "-D", str(heads), url)
        head = parse_raw_response(heads.read_bytes(), head_only=True)
        assert head.status == 206
        parts = parse_multipart(Reply(head.status, head.headers, body))
        assert [data for _, data in parts] == [FILE[64:96], FILE[128:144], FILE[300000:]]


# -- the CLI --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--certfile", "cert.pem"], "--certfile and --keyfile must be given together"),
        (["--keyfile", "key.pem"], "--certfile and --keyfile must be given together"),
        (["--certfile", "missing.pem", "--keyfile", "key.pem"], "cannot load --certfile"),
        (["--certfile", "ca.pem", "--keyfile", "key.pem"], "cannot load --certfile"),
    ],
)
def test_cli_tls_option_errors(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_ws.cli import main

    monkeypatch.chdir(pem_dir())
    with pytest.raises(SystemExit) as info:
        main(["serve", "--port", "0", *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.fixture
def cli_process(files: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trio_ws",
            "serve",
            str(files),
            "--port",
            "0",
            "--certfile",
            str(pem_dir() / "cert.pem"),
            "--keyfile",
            str(pem_dir() / "key.pem"),
            "--echo",
            "/ws",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=DEADLINE)
        assert proc.stdout is not None
        proc.stdout.close()


async def test_cli_serves_https_and_wss(cli_process: subprocess.Popen[bytes]) -> None:
    assert cli_process.stdout is not None
    with trio.fail_after(DEADLINE):
        line = (await trio.to_thread.run_sync(cli_process.stdout.readline, abandon_on_cancel=True)).decode()
    assert f"on https://{HOST}:" in line, line
    port = int(line.split(f"https://{HOST}:")[1].split("/")[0])
    tls = await tls_connect(port)
    response = await H11Client(tls).request("GET", f"/{NAME}", [("range", "bytes=0-9")])
    assert response.body == FILE[:10]
    await tls.aclose()
    with trio.fail_after(DEADLINE):
        async with trio_ws.connect(f"wss://{HOST}:{port}/ws", ssl_context=make_client_context()) as ws:
            await ws.send(b"cli")
            assert await ws.receive() == b"cli"
    cli_process.send_signal(signal.SIGTERM)
    with trio.fail_after(DEADLINE):
        assert await trio.to_thread.run_sync(cli_process.wait, abandon_on_cancel=True) == 0
