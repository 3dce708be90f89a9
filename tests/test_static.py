"""StaticFiles behaviour, each rule checked through three clients.

Every test taking ``fetch`` runs three times: an h11 client over TCP (zero-copy
``sendfile``), raw socket bytes parsed by hand, and an h11 client over in-memory
streams (the worker-thread ``pread`` fallback). Tests taking ``inline`` run with
the default inline limit (small files read in the handler) and with 0 (every
body streamed by the producer), so both body paths see the same rules.
"""

from __future__ import annotations

import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from trio_ws import App, StaticFiles
from trio_ws.request import Handler
from trio_ws.sansio import conditional
from trio_ws.static import DEFAULT_INLINE_LIMIT, content_type_for

from .test_static_support import KINDS, Fetcher, parse_multipart, start_fetcher

StartApp = Callable[[Handler], Awaitable[Fetcher]]

TEN_K = random.Random(9110).randbytes(10000)
BIG = random.Random(7233).randbytes(300 * 1024)  # above the inline limit
OLD = 1_600_000_000  # a Last-Modified well in the past (a strong date validator)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start(kind: str, nursery: trio.Nursery) -> StartApp:
    async def start_app(app: Handler) -> Fetcher:
        return await start_fetcher(kind, app, nursery)

    return start_app


@pytest.fixture(params=[DEFAULT_INLINE_LIMIT, 0], ids=["inline", "producer"])
def inline(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "index.html").write_bytes(b"<h1>home</h1>\n")
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "ten_k.bin").write_bytes(TEN_K)
    (root / "big.bin").write_bytes(BIG)
    (root / "empty.txt").write_bytes(b"")
    (root / "one.bin").write_bytes(b"x")
    (root / "sub").mkdir()
    (root / "sub" / "a.txt").write_bytes(b"a\n")
    (root / "sub" / "inner").mkdir()
    (root / "sub" / "inner" / "index.html").write_bytes(b"inner\n")
    for name in ("ten_k.bin", "big.bin", "hello.txt"):
        os.utime(root / name, (OLD, OLD))
    (tmp_path / "secret.txt").write_bytes(b"TOP-SECRET")
    return root


def validators(path: Path) -> tuple[str, str]:
    st = path.stat()
    etag = conditional.make_etag(st.st_size, st.st_mtime_ns, st.st_ino)
    return etag, conditional.format_http_date(st.st_mtime_ns // 10**9)


# -- plain GET / HEAD -------------------------------------------------------------------


async def test_get_small_file(start: StartApp, tree: Path, inline: int) -> None:
    fetch = await start(StaticFiles(tree, inline_limit=inline))
    reply = await fetch("/hello.txt")
    etag, last_modified = validators(tree / "hello.txt")
    assert reply.status == 200
    assert reply.body == b"hello world\n"
    assert reply.header("content-type") == "text/plain; charset=utf-8"
    assert reply.header("content-length") == "12"
    assert reply.header("accept-ranges") == "bytes"
    assert reply.header("etag") == etag
    assert reply.header("last-modified") == last_modified == "Sun, 13 Sep 2020 12:26:40 GMT"
    assert reply.header("cache-control") is None


async def test_get_big_file(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree))
    reply = await fetch("/big.bin")
    assert reply.status == 200
    assert reply.body == BIG
    assert reply.header("content-length") == str(len(BIG))
    assert reply.header("content-type") == "application/octet-stream"


async def test_etag_is_strong_and_changes_with_the_file(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree))
    first = (await fetch("/hello.txt")).header("etag")
    assert first is not None
    assert first.startswith('"')
    (tree / "hello.txt").write_bytes(b"hello world?")  # same size, new mtime
    second = (await fetch("/hello.txt")).header("etag")
    assert second != first
    assert second == validators(tree / "hello.txt")[0]


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/hello.txt", []),
        ("/big.bin", []),
        ("/empty.txt", []),
        ("/ten_k.bin", [("range", "bytes=0-499")]),
        ("/ten_k.bin", [("range", "bytes=0-0,-1")]),
        ("/ten_k.bin", [("range", "bytes=10000-")]),
        ("/ten_k.bin", [("range", "bytes=x")]),
        ("/ten_k.bin", [("if-none-match", "*")]),
        ("/ten_k.bin", [("if-match", '"nope"')]),
        ("/missing", []),
        ("/sub", []),
        ("/sub/", []),
        ("/%2e%2e/secret.txt", []),
    ],
)
async def test_head_answers_like_get(
    start: StartApp, tree: Path, inline: int, target: str, headers: list[tuple[str, str]]
) -> None:
    fetch = await start(StaticFiles(tree, inline_limit=inline, cache_control="no-cache"))
    get = await fetch(target, headers=headers)
    head = await fetch(target, "HEAD", headers=headers)
    assert head.status == get.status
    assert head.comparable_headers() == get.comparable_headers()
    assert head.body == b""


async def test_cache_control(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree, cache_control="public, max-age=60"))
    for headers in ([], [("range", "bytes=0-1")], [("if-none-match", "*")]):
        reply = await fetch("/ten_k.bin", headers=headers)
        assert reply.status in (200, 206, 304)
        assert reply.header("cache-control") == "public, max-age=60"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"])
async def test_other_methods_405(start: StartApp, tree: Path, method: str) -> None:
    fetch = await start(StaticFiles(tree))
    reply = await fetch("/hello.txt", method)
    assert reply.status == 405
    assert reply.header("allow") == "GET, HEAD"


# -- Content-Type -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.html", "text/html; charset=utf-8"),
        ("a.HTM", "text/html; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.mjs", "text/javascript; charset=utf-8"),
        ("a.json", "application/json; charset=utf-8"),
        ("a.svg", "image/svg+xml; charset=utf-8"),
        ("a.xml", "application/xml; charset=utf-8"),
        ("a.webm", "video/webm"),
        ("a.mp4", "video/mp4"),
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.webp", "image/webp"),
        ("a.wasm", "application/wasm"),
        ("a.woff2", "font/woff2"),
        ("a.tar.gz", "application/gzip"),
        ("a.pdf", "application/pdf"),
        ("a.unknownext", "application/octet-stream"),
        ("Makefile", "application/octet-stream"),
        ("dir.d/Makefile", "application/octet-stream"),
        (".bashrc", "application/octet-stream"),
    ],
)
def test_content_type_for(name: str, expected: str) -> None:
    assert content_type_for(name) == expected


async def test_content_type_over_the_wire(start: StartApp, tree: Path) -> None:
    (tree / "clip.webm").write_bytes(b"\x1a\x45\xdf\xa3")
    (tree / "app.js").write_bytes(b"1;")
    fetch = await start(StaticFiles(tree))
    assert (await fetch("/clip.webm")).header("content-type") == "video/webm"
    assert (await fetch("/app.js")).header("content-type") == "text/javascript; charset=utf-8"


# -- conditional requests (RFC 9110 §13) --------------------------------------------


async def test_if_none_match_304(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree, cache_control="max-age=5"))
    etag, last_modified = validators(tree / "ten_k.bin")
    for value in (etag, f"W/{etag}", '"other", ' + etag, "*"):
        for method in ("GET", "HEAD"):
            reply = await fetch("/ten_k.bin", method, [("if-none-match", value)])
            assert reply.status == 304, value
            assert reply.body == b""
            assert reply.header("etag") == etag
            assert reply.header("last-modified") == last_modified
            assert reply.header("cache-control") == "max-age=5"
            assert reply.header("content-length") is None
            assert reply.header("content-type") is None


async def test_if_modified_since(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree))
    _, last_modified = validators(tree / "ten_k.bin")
    assert (await fetch("/ten_k.bin", headers=[("if-modified-since", last_modified)])).status == 304
    later = conditional.format_http_date(OLD + 3600)
    assert (await fetch("/ten_k.bin", headers=[("if-modified-since", later)])).status == 304
    earlier = conditional.format_http_date(OLD - 1)
    reply = await fetch("/ten_k.bin", headers=[("if-modified-since", earlier)])
    assert reply.status == 200
    assert reply.body == TEN_K
    # §13.1.3: If-None-Match present → If-Modified-Since ignored.
    mixed = [("if-none-match", '"other"'), ("if-modified-since", last_modified)]
    assert (await fetch("/ten_k.bin", headers=mixed)).status == 200
    garbage = await fetch("/ten_k.bin", headers=[("if-modified-since", "yesterday")])
    assert garbage.status == 200


async def test_if_match_and_if_unmodified_since_412(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree))
    etag, last_modified = validators(tree / "ten_k.bin")
    assert (await fetch("/ten_k.bin", headers=[("if-match", etag)])).status == 200
    assert (await fetch("/ten_k.bin", headers=[("if-match", "*")])).status == 200
    assert (await fetch("/ten_k.bin", headers=[("if-match", '"nope"')])).status == 412
    assert (await fetch("/ten_k.bin", headers=[("if-match", f"W/{etag}")])).status == 412
    earlier = conditional.format_http_date(OLD - 10)
    assert (await fetch("/ten_k.bin", headers=[("if-unmodified-since", earlier)])).status == 412
    assert (await fetch("/ten_k.bin", headers=[("if-unmodified-since", last_modified)])).status == 200
    # §13.2.2 order: If-Match (true) wins over If-Unmodified-Since (false, ignored);
    # then If-None-Match gives 304.
    both = [("if-match", etag), ("if-unmodified-since", earlier), ("if-none-match", etag)]
    assert (await fetch("/ten_k.bin", headers=both)).status == 304
    # If-Match false → 412 before If-None-Match is looked at.
    first = [("if-match", '"nope"'), ("if-none-match", etag)]
    assert (await fetch("/ten_k.bin", headers=first)).status == 412


async def test_unrelated_if_header_is_harmless(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree))
    reply = await fetch("/hello.txt", headers=[("if-schedule-tag-match", "x")])
    assert reply.status == 200


# -- ranges (RFC 9110 §14) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "start_end"),
    [
        # RFC 9110 §14.1.2's own examples, on its 10000-byte representation.
        ("bytes=0-499", (0, 499)),  # the first 500 bytes
        ("bytes=500-999", (500, 999)),  # the second 500 bytes
        ("bytes=-500", (9500, 9999)),  # the final 500 bytes
        ("bytes=9500-", (9500, 9999)),  # the final 500 bytes, again
        ("bytes= 500-600,601-999", (500, 999)),  # non-canonical, coalesced
        ("bytes=500-700,601-999", (500, 999)),  # overlapping, coalesced
        ("bytes=0-", (0, 9999)),
        ("bytes=9999-99999999999999999999999", (9999, 9999)),
        ("BYTES=1-1", (1, 1)),
    ],
)
async def test_single_range(
    start: StartApp, tree: Path, inline: int, value: str, start_end: tuple[int, int]
) -> None:
    fetch = await start(StaticFiles(tree, inline_limit=inline))
    reply = await fetch("/ten_k.bin", headers=[("range", value)])
    first, last = start_end
    assert reply.status == 206
    assert reply.header("content-range") == f"bytes {first}-{last}/10000"
    assert reply.header("content-length") == str(last - first + 1)
    assert reply.header("content-type") == "application/octet-stream"
    assert reply.header("etag") == validators(tree / "ten_k.bin")[0]
    assert reply.body == TEN_K[first : last + 1]


async def test_first_and_last_byte_multipart(start: StartApp, tree: Path, inline: int) -> None:
    """RFC 9110 §14.1.2: ``bytes=0-0,-1`` asks for the first and last bytes."""
    fetch = await start(StaticFiles(tree, inline_limit=inline))
    reply = await fetch("/ten_k.bin", headers=[("range", "bytes=0-0,-1")])
    assert reply.status == 206
    assert reply.header("content-range") is None
    assert reply.header("content-length") == str(len(reply.body))
    parts = parse_multipart(reply)
    assert [data for _, data in parts] == [TEN_K[:1], TEN_K[-1:]]
    assert [dict(h)["content-range"] for h, _ in parts] == ["bytes 0-0/10000", "bytes 9999-9999/10000"]
    assert all(dict(h)["content-type"] == "application/octet-stream" for h, _ in parts)


async def test_multipart_keeps_request_order_and_types(start: StartApp, tree: Path, inline: int) -> None:
    (tree / "page.html").write_bytes(TEN_K)
    fetch = await start(StaticFiles(tree, inline_limit=inline))
    reply = await fetch("/page.html", headers=[("range", "bytes=9000-9099, 100-199,5000-5009")])
    parts = parse_multipart(reply)
    expected = [(9000, 9099), (100, 199), (5000, 5009)]
    for (headers, data), (first, last) in zip(parts, expected, strict=True):
        assert dict(headers) == {
            "content-type": "text/html; charset=utf-8",
            "content-range": f"bytes {first}-{last}/10000",
        }
        assert data == TEN_K[first : last + 1]


async def test_multipart_boundary_is_random(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree))
    seen = set()
    for _ in range(3):
        reply = await fetch("/big.bin", headers=[("range", "bytes=1-2,100-200")])
        ctype = reply.header("content-type")
        assert ctype is not None
        boundary = ctype.split("boundary=")[1]
        assert len(boundary) == 32
        seen.add(boundary)
        assert [d for _, d in parse_multipart(reply)] == [BIG[1:3], BIG[100:201]]
    assert len(seen) == 3


@pytest.mark.parametrize("value", ["bytes=10000-", "bytes=10000-10001", "bytes=-0", "bytes=20000-,-0"])
async def test_unsatisfiable_416(start: StartApp, tree: Path, value: str) -> None:
    fetch = await start(StaticFiles(tree))
    reply = await fetch("/ten_k.bin", headers=[("range", value)])
    assert reply.status == 416
    assert reply.header("content-range") == "bytes */10000"


@pytest.mark.parametrize(
    "value",
    ["bytes=abc", "items=0-1", "bytes=5-1", "bytes=1-2;x", "bytes=", "0-1", "bytes=0-1,x", "bytes=--1"],
)
async def test_unparseable_range_is_ignored(start: StartApp, tree: Path, value: str) -> None:
    fetch = await start(StaticFiles(tree))
    reply = await fetch("/ten_k.bin", headers=[("range", value)])
    assert reply.status == 200
    assert reply.body == TEN_K
    assert reply.header("content-range") is None


async def test_range_caps_degrade_to_200(start: StartApp, tree: Path) -> None:
    capped = await start(StaticFiles(tree, max_ranges=2))
    reply = await capped("/ten_k.bin", headers=[("range", "bytes=0-1,10-11,20-21")])
    assert reply.status == 200
    assert reply.body == TEN_K
    assert (await capped("/ten_k.bin", headers=[("range", "bytes=0-1,10-11")])).status == 206
    disabled = await start(StaticFiles(tree, max_ranges=0))
    assert (await disabled("/ten_k.bin", headers=[("range", "bytes=0-1")])).status == 200
    # More bytes asked than the file holds (nginx's rule): a 200.
    default = await start(StaticFiles(tree))
    assert (await default("/ten_k.bin", headers=[("range", "bytes=0-,0-,0-")])).status == 200
    # Many tiny ranges whose framing outweighs the file: a 200.
    tiny = ",".join(f"{i}-{i}" for i in range(0, 200, 2))
    assert (await default("/hello.txt", headers=[("range", f"bytes={tiny}")])).status == 200


async def test_if_range(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree))
    etag, last_modified = validators(tree / "ten_k.bin")
    rng = ("range", "bytes=0-9")
    assert (await fetch("/ten_k.bin", headers=[rng, ("if-range", etag)])).status == 206
    assert (await fetch("/ten_k.bin", headers=[rng, ("if-range", last_modified)])).status == 206
    for stale in (f"W/{etag}", '"other"', conditional.format_http_date(OLD - 1), "garbage"):
        reply = await fetch("/ten_k.bin", headers=[rng, ("if-range", stale)])
        assert reply.status == 200, stale
        assert reply.body == TEN_K
    # If-Range without Range does nothing.
    assert (await fetch("/ten_k.bin", headers=[("if-range", '"other"')])).status == 200
    # Two If-Range lines are one list value, which is no validator: Range is ignored.
    reply = await fetch("/ten_k.bin", headers=[rng, ("if-range", etag), ("if-range", etag)])
    assert reply.status == 200


async def test_range_lines_are_joined_like_any_header(start: StartApp, tree: Path) -> None:
    """Two Range lines make one value (RFC 9110 §5.3): "bytes=0-1, bytes=5-6" is invalid → 200."""
    fetch = await start(StaticFiles(tree))
    reply = await fetch("/ten_k.bin", headers=[("range", "bytes=0-1"), ("range", "bytes=5-6")])
    assert reply.status == 200
    reply = await fetch("/ten_k.bin", headers=[("range", "bytes=0-1"), ("range", "5-6")])
    assert reply.status == 206  # multipart/byteranges of both
    assert TEN_K[0:2] in reply.body
    assert TEN_K[5:7] in reply.body


async def test_if_range_date_of_a_fresh_file_is_weak(start: StartApp, tree: Path) -> None:
    fresh = tree / "fresh.bin"
    fresh.write_bytes(TEN_K)  # mtime: now — the date cannot be a strong validator yet
    fetch = await start(StaticFiles(tree))
    _, last_modified = validators(fresh)
    reply = await fetch("/fresh.bin", headers=[("range", "bytes=0-9"), ("if-range", last_modified)])
    assert reply.status == 200


async def test_empty_file(start: StartApp, tree: Path, inline: int) -> None:
    fetch = await start(StaticFiles(tree, inline_limit=inline))
    reply = await fetch("/empty.txt")
    assert reply.status == 200
    assert reply.body == b""
    assert reply.header("content-length") == "0"
    for value in ("bytes=0-", "bytes=-5", "bytes=5-"):
        reply = await fetch("/empty.txt", headers=[("range", value)])
        assert reply.status == 200
        assert reply.body == b""


async def test_one_byte_file(start: StartApp, tree: Path, inline: int) -> None:
    fetch = await start(StaticFiles(tree, inline_limit=inline))
    assert (await fetch("/one.bin")).body == b"x"
    for value in ("bytes=0-0", "bytes=-1", "bytes=0-", "bytes=-100", "bytes=0-5"):
        reply = await fetch("/one.bin", headers=[("range", value)])
        assert reply.status == 206, value
        assert reply.body == b"x"
        assert reply.header("content-range") == "bytes 0-0/1"
    reply = await fetch("/one.bin", headers=[("range", "bytes=1-")])
    assert reply.status == 416
    assert reply.header("content-range") == "bytes */1"


async def test_file_over_4_gib(start: StartApp, tmp_path: Path) -> None:
    root = tmp_path / "huge"
    root.mkdir()
    size = 5 * 2**30
    tail = b"0123456789abcdef"
    with open(root / "sparse.bin", "wb") as f:
        f.truncate(size)
        f.seek(size - 16)
        f.write(tail)
        f.seek(2**32)
        f.write(b"past 4 GiB")
    fetch = await start(StaticFiles(root))
    head = await fetch("/sparse.bin", "HEAD")
    assert head.status == 200
    assert head.header("content-length") == str(size)
    reply = await fetch("/sparse.bin", headers=[("range", "bytes=-16")])
    assert reply.status == 206
    assert reply.header("content-range") == f"bytes {size - 16}-{size - 1}/{size}"
    assert reply.body == tail
    reply = await fetch("/sparse.bin", headers=[("range", f"bytes={2**32 - 2}-{2**32 + 9}")])
    assert reply.body == b"\0\0past 4 GiB"
    reply = await fetch("/sparse.bin", headers=[("range", f"bytes=0-1,{2**32}-{2**32 + 3},{size - 4}-")])
    assert [d for _, d in parse_multipart(reply)] == [b"\0\0", b"past", b"cdef"]
    reply = await fetch("/sparse.bin", headers=[("range", f"bytes={size}-")])
    assert reply.status == 416
    assert reply.header("content-range") == f"bytes */{size}"


# -- directories ------------------------------------------------------------------------


async def test_index_and_redirects(start: StartApp, tree: Path) -> None:
    fetch = await start(StaticFiles(tree))
    root = await fetch("/")
    assert root.status == 200
    assert root.body == b"<h1>home</h1>\n"
    assert root.header("content-type") == "text/html; charset=utf-8"
    inner = await fetch("/sub/inner")
    assert inner.status == 301
    assert inner.header("location") == "/sub/inner/"
    query = await fetch("/sub/inner?a=1&b=%2F")
    assert query.header("location") == "/sub/inner/?a=1&b=%2F"
    assert (await fetch("/sub/inner/")).body == b"inner\n"
    assert (await fetch("/sub/")).status == 404  # no index, listing off
    assert (await fetch("/hello.txt/")).status == 404  # a file is not a directory
    assert (await fetch("/sub/a.txt")).body == b"a\n"


async def test_mounted_under_a_prefix(start: StartApp, tree: Path) -> None:
    app = App()
    app.mount("/static", StaticFiles(tree))
    fetch = await start(app)
    assert (await fetch("/static/hello.txt")).body == b"hello world\n"
    top = await fetch("/static?x=1")
    assert top.status == 301
    assert top.header("location") == "/static/?x=1"
    assert (await fetch("/static/")).body == b"<h1>home</h1>\n"
    sub = await fetch("/static/sub/inner")
    assert sub.header("location") == "/static/sub/inner/"
    assert (await fetch("/static/sub/inner/")).body == b"inner\n"
    assert (await fetch("/static/%68ello.txt")).body == b"hello world\n"  # percent-decoded
    assert (await fetch("/hello.txt")).status == 404  # outside the mount


async def test_mounted_at_root(start: StartApp, tree: Path) -> None:
    app = App()
    app.mount("/", StaticFiles(tree))
    fetch = await start(app)
    assert (await fetch("/")).body == b"<h1>home</h1>\n"
    assert (await fetch("/sub/inner")).header("location") == "/sub/inner/"
    assert (await fetch("//hello.txt")).status == 400  # empty segment


async def test_index_can_be_changed_or_disabled(start: StartApp, tree: Path) -> None:
    (tree / "sub" / "home.txt").write_bytes(b"home!")
    fetch = await start(StaticFiles(tree, index="home.txt"))
    reply = await fetch("/sub/")
    assert reply.body == b"home!"
    assert reply.header("content-type") == "text/plain; charset=utf-8"
    assert (await fetch("/")).status == 404
    none = await start(StaticFiles(tree, index=None, directory_listing=True))
    assert b"index.html" in (await none("/")).body
    with pytest.raises(ValueError, match="index"):
        StaticFiles(tree, index="a/b")
    with pytest.raises(NotADirectoryError):
        StaticFiles(tree / "hello.txt")


async def test_directory_listing(start: StartApp, tree: Path) -> None:
    nasty = "<script>&\"x'.txt"
    (tree / "sub" / nasty).write_bytes(b"!")
    (tree / "sub" / "caf\u00e9 #1.txt").write_bytes(b"!")
    (tree / "sub" / "inside-link").symlink_to(tree / "hello.txt")
    (tree / "sub" / "outside-link").symlink_to(tree.parent / "secret.txt")
    fetch = await start(StaticFiles(tree, directory_listing=True))
    reply = await fetch("/sub/")
    assert reply.status == 200
    assert reply.header("content-type") == "text/html; charset=utf-8"
    page = reply.body.decode()
    assert "<script>" not in page
    assert "&lt;script&gt;&amp;&quot;x&#x27;.txt" in page
    assert 'href="%3Cscript%3E%26%22x%27.txt"' in page
    assert 'href="caf%C3%A9%20%231.txt"' in page
    assert 'href="inner/"' in page
    assert "inner/</a>" in page
    assert "inside-link" in page
    assert "outside-link" not in page
    assert "Index of /sub/" in page
    # The listed hrefs work.
    assert (await fetch("/sub/%3Cscript%3E%26%22x%27.txt")).body == b"!"
    assert (await fetch("/sub/caf%C3%A9%20%231.txt")).body == b"!"
    # A directory with an index still serves it.
    assert (await fetch("/sub/inner/")).body == b"inner\n"


@pytest.mark.skipif(os.name != "posix", reason="undecodable file names are a POSIX thing")
async def test_undecodable_file_name(start: StartApp, tree: Path) -> None:
    name = os.fsdecode(b"raw\xff.bin")
    (tree / name).write_bytes(b"raw")
    fetch = await start(StaticFiles(tree, directory_listing=True, index=None))
    assert (await fetch("/raw%FF.bin")).body == b"raw"
    page = (await fetch("/")).body.decode()
    assert 'href="raw%FF.bin"' in page
    assert "raw\ufffd.bin" in page
