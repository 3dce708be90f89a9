"""Independent clients against a real server: ``http.client`` (in a worker thread) and ``curl``."""

from __future__ import annotations

import http.client
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest
import trio

from trio_ws import ServerConfig

from .conftest import DEADLINE, assert_no_errors, get_ok, make_app, running

needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None, reason="needs the curl binary (Debian package curl)"
)

Result = tuple[int, dict[str, str], bytes]


def http_client_exchange(
    port: int,
    requests: list[tuple[str, str, bytes | Iterator[bytes] | None, dict[str, str]]],
    *,
    http10: bool = False,
) -> tuple[list[Result], int]:
    """Run ``requests`` on one ``http.client`` connection; return results and sockets opened."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    if http10:
        conn._http_vsn = 10  # type: ignore[attr-defined]
        conn._http_vsn_str = "HTTP/1.0"  # type: ignore[attr-defined]
    sockets = set()
    results: list[Result] = []
    try:
        for method, target, body, headers in requests:
            chunked = body is not None and not isinstance(body, bytes)
            conn.request(method, target, body=body, headers=headers, encode_chunked=chunked)
            response = conn.getresponse()
            sockets.add(id(conn.sock))
            results.append((response.status, dict(response.getheaders()), response.read()))
    finally:
        conn.close()
    return results, len(sockets)


async def in_thread(fn: Callable[[], tuple[list[Result], int]]) -> tuple[list[Result], int]:
    with trio.fail_after(DEADLINE):
        return await trio.to_thread.run_sync(fn)


async def test_http_client_keepalive_and_bodies() -> None:
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            results, sockets = await in_thread(
                lambda: http_client_exchange(
                    server.port,
                    [
                        ("GET", "/", None, {}),
                        ("POST", "/echo", b"payload", {}),
                        ("POST", "/count", iter([b"ab", b"cde"]), {}),
                        ("GET", "/stream", None, {}),
                        ("HEAD", "/", None, {}),
                        ("GET", "/missing", None, {}),
                    ],
                )
            )
    assert [r[0] for r in results] == [200, 200, 200, 200, 200, 404]
    assert [r[2] for r in results[:4]] == [b"hello", b"payload", b"5", b"one,two,three"]
    assert results[4][1]["content-length"] == "5"
    assert results[4][2] == b""
    assert sockets == 1, "keep-alive: every request on one connection"


async def test_http_client_http10() -> None:
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            results, _ = await in_thread(
                lambda: http_client_exchange(server.port, [("GET", "/stream", None, {})], http10=True)
            )
    assert results[0][0] == 200
    assert results[0][2] == b"one,two,three"


async def test_http_client_large_unread_body_response_survives(caplog: pytest.LogCaptureFixture) -> None:
    """http.client sends the whole 2 MB body before reading; the server ignores it,
    answers with ``Connection: close`` and must not reset the answer away."""
    config = ServerConfig(max_drain_size=1000)
    body = b"x" * (2 * 1024 * 1024)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            results, _ = await in_thread(
                lambda: http_client_exchange(server.port, [("POST", "/noread", body, {})])
            )
            await get_ok(server.port)
    assert results[0][0] == 200
    assert results[0][1]["connection"] == "close"
    assert_no_errors(caplog)


async def test_http_client_413_with_body_already_sent(caplog: pytest.LogCaptureFixture) -> None:
    config = ServerConfig(max_body_size=1000)
    body = b"x" * (2 * 1024 * 1024)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            results, _ = await in_thread(
                lambda: http_client_exchange(server.port, [("POST", "/echo", body, {})])
            )
            await get_ok(server.port)
    assert results[0][0] == 413
    assert_no_errors(caplog)


async def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(DEADLINE):
        return await trio.run_process(
            ["curl", "--silent", "--show-error", "--max-time", "5", *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


@needs_curl
async def test_curl_get_keepalive_and_status() -> None:
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            base = f"http://127.0.0.1:{server.port}"
            done = await curl("-v", f"{base}/", f"{base}/stream", "-w", "[%{http_code}]")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"hello[200]one,two,three[200]"
    assert b"Re-using existing connection" in done.stderr or b"Reusing existing" in done.stderr
    assert b"< server: trio_ws" in done.stderr


@needs_curl
async def test_curl_head_post_and_errors() -> None:
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            base = f"http://127.0.0.1:{server.port}"
            head = await curl("-I", f"{base}/")
            post = await curl("--data-binary", "hello curl", f"{base}/echo")
            missing = await curl("-o", "/dev/null", "-w", "%{http_code}", f"{base}/missing")
            http10 = await curl("--http1.0", f"{base}/stream")
            boom = await curl("-o", "/dev/null", "-w", "%{http_code}", f"{base}/boom")
    assert head.stdout.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 5\r\n" in head.stdout
    assert post.stdout == b"hello curl"
    assert missing.stdout == b"404"
    assert http10.stdout == b"one,two,three"
    assert boom.stdout == b"500"


@needs_curl
async def test_curl_expect_100_continue() -> None:
    with trio.fail_after(DEADLINE):
        async with running(make_app()) as server:
            base = f"http://127.0.0.1:{server.port}"
            done = await curl(
                "-v",
                "-H",
                "Expect: 100-continue",
                "--expect100-timeout",
                "4",
                "--data-binary",
                "x" * 5000,
                f"{base}/count",
            )
    assert done.stdout == b"5000"
    assert b"< HTTP/1.1 100 " in done.stderr  # h11 sends an empty reason phrase (RFC 9112 §4 allows it)


@needs_curl
async def test_curl_upload_over_cap_413() -> None:
    config = ServerConfig(max_body_size=1000)
    with trio.fail_after(DEADLINE):
        async with running(make_app(), config=config) as server:
            done = await curl(
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--data-binary",
                "x" * 5000,
                f"http://127.0.0.1:{server.port}/echo",
            )
    assert done.stdout == b"413"
