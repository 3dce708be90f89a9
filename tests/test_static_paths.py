"""Nothing outside the root is ever readable, however the path is spelled.

A secret file (and a secret directory) sit next to the served root; every
spelling below is sent as raw bytes over TCP — and through h11's client where
h11 agrees to send it — under three mountings (direct, ``App.mount("/")``,
``App.mount("/static")``). No response may contain the secret. A hypothesis
test then throws arbitrary paths at the handler directly.
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path
from urllib.parse import quote

import h11
import pytest
import trio
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import trio_ws
from trio_ws import App, Request, Response, StaticFiles
from trio_ws.request import Handler
from trio_ws.server import Server
from trio_ws.static import FileBody, split_path

from .test_static_support import H11Fetcher, RawFetcher, parse_raw_response

SECRET = b"TOP-SECRET-0xC0FFEE"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello world\n")
    (root / "index.html").write_bytes(b"home\n")
    (root / "sub").mkdir()
    (root / "sub" / "a.txt").write_bytes(b"a\n")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret2.txt").write_bytes(SECRET)
    # A sibling whose name starts like the root's: "root" is a prefix of "root2".
    (tmp_path / "root2").mkdir()
    (tmp_path / "root2" / "secret3.txt").write_bytes(SECRET)
    (root / "link-out").symlink_to(tmp_path / "secret.txt")
    (root / "link-out-relative").symlink_to("../secret.txt")
    (root / "link-dir-out").symlink_to(tmp_path / "outside")
    (root / "link-sibling").symlink_to(tmp_path / "root2")
    (root / "sub" / "chain1").symlink_to("../chain2")
    (root / "chain2").symlink_to("link-out")
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    (root / "link-in").symlink_to("hello.txt")
    (root / "link-dir-in").symlink_to("sub")
    (root / "link-root").symlink_to(".")
    return root


def spellings(secret_path: Path) -> list[str]:
    """Ways to name ``../secret.txt`` (and friends) from the mount point."""
    absolute = str(secret_path)
    return [
        "/../secret.txt",
        "/..",
        "/../",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%2e%2e%5csecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/....//secret.txt",
        "/..;/secret.txt",
        "/./../secret.txt",
        "/.%2e/.%2e/secret.txt",
        "/hello.txt/../../secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%c0%ae%c0%ae%c0%afsecret.txt",
        "/%EF%BC%8E%EF%BC%8E/secret.txt",
        "/%uff0e%uff0e/secret.txt",
        "/%2",
        "/%zz/../secret.txt",
        "//../secret.txt",
        "/%2f%2e%2e/secret.txt",
        "/" + absolute,
        "/" + quote(absolute, safe=""),
        "//" + absolute.lstrip("/"),
        "/C:/secret.txt",
        "/C:%5csecret.txt",
        "/c:secret.txt",
        "/secret.txt%00.html",
        "/%00",
        "/index.html%00/../../secret.txt",
        "/link-out",
        "/link-out-relative",
        "/link-dir-out/secret2.txt",
        "/link-dir-out/",
        "/link-dir-out",
        "/link-sibling/secret3.txt",
        "/sub/chain1",
        "/chain2",
        "/loop-a",
        "/link-root/../secret.txt",
        "/link-root/link-out",
        "/sub/../link-out",
        "/%6c%69%6e%6b-out",
        "/../root2/secret3.txt",
        "/%2e%2e/root2/secret3.txt",
        "/.../secret.txt",
        "/ /../secret.txt",
        "/%20/../secret.txt",
        "/%0a/../secret.txt",
    ]


MOUNTS = ["direct", "root", "prefix"]


def mounted(tree: Path, how: str) -> tuple[Handler, str]:
    static = StaticFiles(tree, directory_listing=True)
    if how == "direct":
        return static, ""
    app = App()
    app.mount("/" if how == "root" else "/static", static)
    return app, "" if how == "root" else "/static"


@pytest.mark.parametrize("how", MOUNTS)
async def test_spellings_never_leak(tree: Path, nursery: trio.Nursery, how: str) -> None:
    app, base = mounted(tree, how)
    server: Server = await nursery.start(functools.partial(trio_ws.serve, app, "127.0.0.1", 0))
    raw, client = RawFetcher(server.port), H11Fetcher(server.port)
    # Controls: the same mounting serves what is inside.
    assert (await raw(base + "/hello.txt")).body == b"hello world\n"
    assert (await raw(base + "/link-in")).body == b"hello world\n"
    assert (await raw(base + "/link-dir-in/a.txt")).body == b"a\n"
    assert (await raw(base + "/link-root/hello.txt")).body == b"hello world\n"
    statuses = {}
    for target in spellings(tree.parent / "secret.txt"):
        for method in ("GET", "HEAD"):
            request = f"{method} {base}{target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            data = await raw.send_raw(request.encode("latin-1"))
            assert SECRET not in data, target
            # A target with a space breaks the request line: the server's h11
            # refuses it (400, with a body) before it knows the method.
            head_only = method == "HEAD" and " " not in target
            reply = parse_raw_response(data, head_only=head_only)
            assert reply.status in (400, 404), (target, reply.status)
            statuses[target] = reply.status
        try:
            via_h11 = await client(base + target)
        except h11.LocalProtocolError:
            continue  # h11 will not even send it
        assert SECRET not in via_h11.body
        assert via_h11.status == statuses[target], target


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/../secret.txt", 400),
        ("/%2e%2e/secret.txt", 400),
        ("/..%2fsecret.txt", 400),
        ("/%00", 400),
        ("/..\\secret.txt", 400),
        ("/%zz", 400),
        ("/C:/x", 400),
        ("//x", 400),
        ("/a/./b", 400),
        ("/link-out", 404),
        ("/link-dir-out/secret2.txt", 404),
        ("/link-sibling/secret3.txt", 404),
        ("/loop-a", 404),
        ("/missing", 404),
        ("/%252e%252e/secret.txt", 404),
    ],
)
async def test_refusal_status(tree: Path, target: str, status: int) -> None:
    """400: the string alone is wrong. 404: it depends on the disk (never 403)."""
    static = StaticFiles(tree)
    response = await static(Request("GET", target.encode(), []))
    assert response.status == status


async def test_symlinks_inside_the_root_are_followed(tree: Path) -> None:
    static = StaticFiles(tree)
    for target, body in [("/link-in", b"hello world\n"), ("/link-dir-in/a.txt", b"a\n")]:
        response = await static(Request("GET", target.encode(), []))
        assert response.status == 200
        assert response.body == body
    redirect = await static(Request("GET", b"/link-dir-in", []))
    assert redirect.status == 301


async def test_root_given_through_a_symlink(tree: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree)
    static = StaticFiles(alias)
    assert static.root == str(tree.resolve())
    assert (await static(Request("GET", b"/hello.txt", []))).status == 200
    assert (await static(Request("GET", b"/link-out", []))).status == 404


async def test_fifo_is_not_served(tree: Path) -> None:
    os.mkfifo(tree / "fifo")
    static = StaticFiles(tree)
    with trio.fail_after(5):
        assert (await static(Request("GET", b"/fifo", []))).status == 404


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
async def test_unreadable_file_is_404_for_get_and_head(tree: Path) -> None:
    (tree / "locked.txt").write_bytes(b"x" * 100_000)
    (tree / "locked-small.txt").write_bytes(b"x")
    static = StaticFiles(tree)
    for name in ("locked.txt", "locked-small.txt"):
        (tree / name).chmod(0)
        for method in ("GET", "HEAD"):
            response = await static(Request(method, f"/{name}".encode(), []))
            assert response.status == 404, (name, method)


@pytest.mark.parametrize(
    ("prefix", "subpath", "expected"),
    [
        ("", "/", [""]),
        ("", "/a/b", ["a", "b"]),
        ("", "/a/b/", ["a", "b", ""]),
        ("", "", [""]),
        ("", "*", None),
        ("", "http://h/a", None),
        ("/", "", [""]),
        ("/", "a%2Fb", ["a", "b"]),
        ("/", "/a", None),
        ("/static", "", [""]),
        ("/static/", "x%20y", ["x y"]),
        ("/static/", "x%", None),
        ("/static/", "%41%42", ["AB"]),
        ("/static/", "%2541", ["%41"]),
        ("/static/", "a/%2e", None),
        ("/static/", "D:", None),
        ("/static/", "ok:colon", ["ok:colon"]),
    ],
)
def test_split_path(prefix: str, subpath: str, expected: list[str] | None) -> None:
    request = Request("GET", b"/ignored", [])
    request.mount_prefix, request.subpath = prefix, subpath
    assert split_path(request) == expected


# -- property: arbitrary paths -------------------------------------------------------

_TOKENS = "/ . .. %2e %2E %2f %2F %5c \\ %00 % %25 secret.txt root2 link-out link-dir-out link-root sub"
_ALPHABET = st.sampled_from([*_TOKENS.split(), "hello.txt", "C:", ";", "?", "#", "%c0%ae", "~", ""])
_PATHS = st.lists(_ALPHABET, max_size=12).map("".join) | st.text(
    st.characters(codec="ascii", exclude_characters="\r\n"), max_size=40
)


def _body_bytes(response: Response) -> bytes:
    body = response.body
    if isinstance(body, FileBody):
        # Large files stream from disk: read what the producer would send.
        with open(body.path, "rb") as f:
            return f.read()
    assert isinstance(body, bytes)
    return body


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=_PATHS, how=st.sampled_from(MOUNTS), method=st.sampled_from(["GET", "HEAD"]))
@example(path="/../secret.txt", how="direct", method="GET")
@example(path="link-dir-out/secret2.txt", how="root", method="GET")
def test_no_path_reaches_the_secret(tree: Path, path: str, how: str, method: str) -> None:
    app, base = mounted(tree, how)
    target = base + (path if path.startswith("/") else "/" + path)

    async def ask() -> Response:
        return await app(Request(method, target.encode("ascii"), []))

    response = trio.run(ask)
    assert SECRET not in _body_bytes(response)
    if response.status == 200 and isinstance(response.body, FileBody):
        root = os.path.realpath(tree)
        assert os.path.realpath(response.body.path).startswith(root + os.sep)
    assert response.status in (200, 301, 400, 404), response.status


def test_fixture_is_what_we_think(tree: Path) -> None:
    assert stat.S_ISLNK(os.lstat(tree / "link-out").st_mode)
    assert (tree / "link-out").read_bytes() == SECRET
