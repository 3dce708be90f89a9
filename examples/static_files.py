"""Lesson: serve a directory, byte ranges included.

Run it::

    python examples/static_files.py            # serves a demo directory on :7681
    python examples/static_files.py ROOT 8000  # serves ROOT on :8000

The demo directory holds ``libwebsockets.org-logo.png``: 7029 bytes, the size
of the logo in the libwebsockets commit that added range support, whose test
commands we repeat here (our bytes are pseudo-random, so only the framing
matches theirs). One range::

    $ curl -s -r 64-95 http://localhost:7681/libwebsockets.org-logo.png | hexdump -C
    00000000  ed 70 7e 14 25 c1 0e 58  ea 3d 00 1b 34 8a 3b 62  |.p~.%..X.=..4.;b|
    00000010  ac 10 a2 d6 7e 1e b9 ee  80 b3 69 27 b0 3c 10 0a  |....~.....i'.<..|
    00000020

The server answered ``206 Partial Content`` with ``Content-Range: bytes
64-95/7029`` and ``Content-Length: 32``, and curl printed the 32 bytes.

Two ranges::

    $ curl -s -r 64-95,128-143 http://localhost:7681/libwebsockets.org-logo.png | hexdump -C
    00000000  0d 0a 2d 2d 62 37 63 65  63 32 65 34 39 30 63 61  |..--b7cec2e490ca|
    00000010  39 32 37 31 64 36 64 31  61 35 39 39 63 30 36 63  |9271d6d1a599c06c|
    00000020  33 36 36 64 0d 0a 43 6f  6e 74 65 6e 74 2d 54 79  |366d..Content-Ty|
    00000030  70 65 3a 20 69 6d 61 67  65 2f 70 6e 67 0d 0a 43  |pe: image/png..C|
    00000040  6f 6e 74 65 6e 74 2d 52  61 6e 67 65 3a 20 62 79  |ontent-Range: by|
    00000050  74 65 73 20 36 34 2d 39  35 2f 37 30 32 39 0d 0a  |tes 64-95/7029..|
    00000060  0d 0a ed 70 7e 14 25 c1  0e 58 ea 3d 00 1b 34 8a  |...p~.%..X.=..4.|
    00000070  3b 62 ac 10 a2 d6 7e 1e  b9 ee 80 b3 69 27 b0 3c  |;b....~.....i'.<|
    00000080  10 0a 0d 0a 2d 2d 62 37  63 65 63 32 65 34 39 30  |....--b7cec2e490|
    00000090  63 61 39 32 37 31 64 36  64 31 61 35 39 39 63 30  |ca9271d6d1a599c0|
    000000a0  36 63 33 36 36 64 0d 0a  43 6f 6e 74 65 6e 74 2d  |6c366d..Content-|
    000000b0  54 79 70 65 3a 20 69 6d  61 67 65 2f 70 6e 67 0d  |Type: image/png.|
    000000c0  0a 43 6f 6e 74 65 6e 74  2d 52 61 6e 67 65 3a 20  |.Content-Range: |
    000000d0  62 79 74 65 73 20 31 32  38 2d 31 34 33 2f 37 30  |bytes 128-143/70|
    000000e0  32 39 0d 0a 0d 0a ea b7  cb 75 44 ae d8 fc a4 3f  |29.......uD....?|
    000000f0  56 a3 cc 34 c5 8e 0d 0a  2d 2d 62 37 63 65 63 32  |V..4....--b7cec2|
    00000100  65 34 39 30 63 61 39 32  37 31 64 36 64 31 61 35  |e490ca9271d6d1a5|
    00000110  39 39 63 30 36 63 33 36  36 64 2d 2d 0d 0a        |99c06c366d--..|
    0000011e

That is a ``multipart/byteranges`` body (RFC 9110 §14.6): each part opens with
CRLF, ``--`` and the boundary, carries its own Content-Type and Content-Range, a
blank line, then the bytes; CRLF ``--boundary--`` CRLF closes it. Its exact
length (286 here) was sent as Content-Length before the first byte. Compared
with the libwebsockets output in the seed, whose delimiters were the bare
boundary ``_lws`` (no ``--``) and whose body ended in ``_lws`` CR NUL: ours
follow RFC 2046 framing, and the boundary is 128 random bits per response
(``secrets.token_hex``), so it will differ on your machine; everything else
will match.
"""

from __future__ import annotations

import contextlib
import random
import sys
import tempfile
from pathlib import Path

import trio

import trio_ws

#: The demo file: deterministic bytes, so the hexdumps above are reproducible.
DEMO_NAME = "libwebsockets.org-logo.png"
DEMO_BYTES = random.Random(7029).randbytes(7029)


def make_demo_root() -> Path:
    """A temporary directory with the demo "logo" in it."""
    root = Path(tempfile.mkdtemp(prefix="trio-ws-static-"))
    (root / DEMO_NAME).write_bytes(DEMO_BYTES)
    (root / "index.html").write_text(f'<a href="{DEMO_NAME}">the logo</a>\n')
    return root


def make_app(root: Path) -> trio_ws.App:
    app = trio_ws.App()
    # StaticFiles is a handler like any other: ``await static(request)``. Mounted
    # at "/", it sees the whole path; mounted at "/static" it would see what
    # follows the prefix (``request.subpath``) and keep the prefix in redirects.
    static = trio_ws.StaticFiles(
        root,
        # Sent with 200, 206 and 304 answers. Every response also carries a strong
        # ETag (size + nanosecond mtime + inode) and Last-Modified, so clients
        # can revalidate with If-None-Match / If-Modified-Since and get a 304.
        cache_control="private, max-age=60",
        # Off by default: a directory without index.html is a 404.
        directory_listing=False,
        # More range-specs than this in one Range header get the whole file (200).
        max_ranges=100,
    )
    app.mount("/", static)
    return app


async def main(root: Path, port: int) -> None:
    app = make_app(root)
    async with trio.open_nursery() as nursery:
        # nursery.start returns once the listener is bound: the port is known.
        server = await nursery.start(trio_ws.serve, app, "127.0.0.1", port)
        print(f"serving {root} on {server.urls[0]}  (Ctrl-C to stop)")
        print(f"  curl -s -r 64-95 {server.urls[0]}{DEMO_NAME} | hexdump -C")
        print(f"  curl -s -r 64-95,128-143 {server.urls[0]}{DEMO_NAME} | hexdump -C")


if __name__ == "__main__":
    given_root = Path(sys.argv[1]) if len(sys.argv) > 1 else make_demo_root()
    given_port = int(sys.argv[2]) if len(sys.argv) > 2 else 7681
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the lesson
        trio.run(main, given_root, given_port)
