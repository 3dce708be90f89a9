"""The seed's two curl commands, run with the real curl against the real server.

From the libwebsockets ranges commit (RFC 7233 support)::

    curl -s -r 64-95        http://localhost:7681/libwebsockets.org-logo.png | hexdump -C
    curl -s -r 64-95,128-143 http://localhost:7681/libwebsockets.org-logo.png | hexdump -C

The logo there is 7029 bytes; ours is 7029 random bytes under the same name,
served the way ``trio-ws serve ROOT`` serves it (``cli.build_app``). The single
range must come back byte for byte; the multipart body is parsed and each
part compared, along with the head curl dumped (``-D``).
"""

from __future__ import annotations

import functools
import importlib.util
import random
import shutil
from pathlib import Path
from types import ModuleType

import pytest
import trio

import trio_ws
from trio_ws.cli import build_app, make_parser
from trio_ws.server import Server

from .test_static_support import TIMEOUT, parse_multipart, parse_raw_response

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="the curl binary is not installed")

LOGO = random.Random(7029).randbytes(7029)
NAME = "libwebsockets.org-logo.png"


@pytest.fixture
async def url(tmp_path: Path, nursery: trio.Nursery) -> str:
    root = tmp_path / "root"
    root.mkdir()
    (root / NAME).write_bytes(LOGO)
    args = make_parser().parse_args(["serve", str(root), "--cache-control", "private, max-age=60"])
    server: Server = await nursery.start(functools.partial(trio_ws.serve, build_app(args), "127.0.0.1", 0))
    return f"http://127.0.0.1:{server.port}/{NAME}"


async def curl(*args: str) -> bytes:
    assert CURL is not None
    with trio.fail_after(TIMEOUT):
        done = await trio.run_process([CURL, "-s", "--max-time", "5", *args], capture_stdout=True)
    return bytes(done.stdout)


async def test_curl_single_range(url: str, tmp_path: Path) -> None:
    heads = tmp_path / "head.txt"
    body = await curl("-r", "64-95", "-D", str(heads), url)
    assert body == LOGO[64:96]
    head = parse_raw_response(heads.read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n", head_only=True)
    assert head.status == 206
    assert head.header("content-range") == "bytes 64-95/7029"
    assert head.header("content-length") == "32"
    assert head.header("content-type") == "image/png"
    assert head.header("accept-ranges") == "bytes"
    assert head.header("cache-control") == "private, max-age=60"


async def test_curl_multipart(url: str, tmp_path: Path) -> None:
    heads = tmp_path / "head.txt"
    body = await curl("-r", "64-95,128-143", "-D", str(heads), url)
    head = parse_raw_response(heads.read_bytes().split(b"\r\n\r\n")[0] + b"\r\n\r\n", head_only=True)
    assert head.status == 206
    assert head.header("content-length") == str(len(body))
    head.body = body
    parts = parse_multipart(head)
    assert [dict(headers) for headers, _ in parts] == [
        {"content-type": "image/png", "content-range": "bytes 64-95/7029"},
        {"content-type": "image/png", "content-range": "bytes 128-143/7029"},
    ]
    assert [data for _, data in parts] == [LOGO[64:96], LOGO[128:144]]


async def test_curl_whole_file_head_and_conditional(url: str, tmp_path: Path) -> None:
    assert await curl(url) == LOGO
    heads = tmp_path / "head.txt"
    assert await curl("-I", "-D", str(heads), url) == heads.read_bytes()
    head = parse_raw_response(heads.read_bytes(), head_only=True)
    assert head.header("content-length") == "7029"
    etag = head.header("etag")
    assert etag is not None
    # A revalidation with the ETag just received → 304.
    code = await curl("-o", "/dev/null", "-w", "%{http_code}", "-H", f"If-None-Match: {etag}", url)
    assert code == b"304"
    # A resumed download (-C): Range from the end of what is already there.
    partial = tmp_path / "partial.png"
    partial.write_bytes(LOGO[:5000])
    await curl("-C", "-", "-o", str(partial), url)
    assert partial.read_bytes() == LOGO


def _load_example() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "examples" / "static_files.py"
    spec = importlib.util.spec_from_file_location("static_files_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _hexdump_bytes(block: str) -> bytes:
    """The bytes a ``hexdump -C`` listing shows."""
    data = bytearray()
    for line in block.splitlines():
        fields = line.strip().split("  ")
        if len(fields) > 1:
            data += bytes.fromhex(" ".join(fields[1:3]))
    return bytes(data)


async def test_example_docstring_is_what_curl_prints(nursery: trio.Nursery) -> None:
    example = _load_example()
    root = example.make_demo_root()
    try:
        server: Server = await nursery.start(
            functools.partial(trio_ws.serve, example.make_app(root), "127.0.0.1", 0)
        )
        url = f"http://127.0.0.1:{server.port}/{example.DEMO_NAME}"
        doc = example.__doc__
        assert doc is not None
        single_doc = doc.split("hexdump -C\n", 1)[1].split("\n\n", 1)[0]
        assert await curl("-r", "64-95", url) == _hexdump_bytes(single_doc)
        multi_doc = _hexdump_bytes(doc.split("hexdump -C\n", 2)[2].split("\n\n", 1)[0])
        multi = await curl("-r", "64-95,128-143", url)
        boundary = multi[4:36]
        assert len(multi) == len(multi_doc) == 286
        assert multi == multi_doc.replace(multi_doc[4:36], boundary)
    finally:
        shutil.rmtree(root)
