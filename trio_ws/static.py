"""Static files: safe path → stat → conditional → ranges → send.

Theory of operation
-------------------
:class:`StaticFiles` is an ordinary handler (``await static(request)``), so it
can be passed to :func:`~trio_ws.serve` directly or mounted anywhere with
``App.mount(prefix, static)``; it reads only ``request.subpath`` and builds
redirects from ``request.raw_path``, so the mount prefix is preserved. One
request goes through five steps:

1. **Path.** ``subpath`` is percent-decoded exactly once and split on ``/``
   (:func:`split_path`). The result names a file under the root or the request
   is refused; nothing is ever normalised into something else.
2. **Resolve.** Segments are walked from the (once) resolved root with one
   ``lstat`` per segment; a symlink is resolved with ``realpath`` and kept only
   if its target lies inside the root (the symlink policy below). The last
   ``stat`` is the file's identity: size, nanosecond mtime, device and inode.
3. **Validators and preconditions.** A strong ETag from size + mtime + inode and
   Last-Modified from the mtime (:mod:`trio_ws.sansio.conditional`), then RFC 9110
   §13.2.2 gives 304 or 412 or lets the request through.
4. **Ranges.** If-Range (§13.1.5) decides whether Range is looked at;
   :func:`~trio_ws.sansio.ranges.evaluate_range` answers 200, 206, multipart 206
   or 416. A multipart boundary is 32 random hex digits (``secrets``).
5. **Body.** Small files (``inline_limit``, 64 KiB by default) are read in the
   handler and returned as ``bytes``: the head and body then leave in a single
   write, the fastest path for the small-file benchmark. Larger bodies are a
   :class:`BodyProducer` that calls ``sink.sendfile`` — zero-copy ``os.sendfile``
   on plain TCP, worker-thread ``pread`` under TLS or in memory. Multipart parts
   go out as ``sink.send(part head)`` + ``sink.sendfile(range)``.

File descriptors and races
--------------------------
The producer opens the file *lazily*, inside ``produce()``, and closes it in a
``finally``. The server never calls ``produce()`` for HEAD, 304, or when the
client vanished before the head went out, so there is no descriptor to leak on
any of those paths (the alternative — opening in the handler and closing from a
finaliser — would leak until garbage collection). Right after ``open`` the
producer ``fstat``\\s the *opened* descriptor and compares device, inode, size
and mtime with the ``stat`` the validators were built from: if anything
changed, it raises :class:`OSError` and the server closes the connection, so the
bytes sent always belong to the ETag, Last-Modified and Content-Length already
sent. The inline path does the same check before reading (there it can still
answer properly: it starts over once, then gives 503). A file that shrinks while
being sent makes ``sink.sendfile`` raise :class:`OSError`: the connection is
closed short of Content-Length, never padded with wrong bytes. Files are opened
with ``O_NOFOLLOW`` (the resolved path has no symlinks left, so one appearing
there is a race) and ``O_NONBLOCK`` (a FIFO swapped in cannot block the event
loop; for regular files it is a no-op).

Filesystem calls (``lstat``, ``open``, ``fstat``, ``read`` of ≤ 64 KiB) run on the
event loop thread: on a local disk each takes microseconds. Measured on the
development machine, the whole small-file handler (resolve, validators, open,
read, close) takes ~38 µs, while one ``trio.to_thread.run_sync`` round trip
takes ~200 µs: a thread hop would cost five times the work it offloads. Only
the directory listing, whose cost grows with the directory, runs in a worker
thread. (A slow network filesystem would change this trade; then put the root
on local disk or front it with a cache.) Nothing is cached here except the
text of Last-Modified for a given second (a pure function): every request
stats the file, so validators are never stale.

For HEAD and for bodies above ``inline_limit`` the handler does not open the
file; it asks ``os.access(R_OK)`` so that an unreadable file is a 404 for HEAD
and GET alike rather than a connection cut after a 200 head.

Path policy (400 versus 404)
----------------------------
* **400 Bad Request** when the request string alone is unacceptable, whatever
  the filesystem holds: a NUL byte, a backslash, a malformed ``%`` escape, an
  empty segment (``//``, a leading ``/`` after the prefix, ``%2F%2F``), a ``.``
  or ``..`` segment (raw or encoded: ``%2e%2e``, ``..%2f``, ``%2e%2e%5c``), a
  segment that looks like a drive (``C:``), or a target that is not a path
  (absolute-form, ``*``). Answering these says nothing about the disk.
* **404 Not Found** for everything that depends on the filesystem: missing
  files, a symlink leaving the root, something that is not a regular file or a
  directory (FIFO, socket, device), a file addressed with a trailing slash, a
  directory without index when listing is off, permission errors. 403 is never
  used, so existence outside the served tree is never revealed.
* ``/dir`` (a directory without the trailing slash) → **301** to ``/dir/``
  (mount prefix and query kept); ``/dir/`` serves ``index`` or, if
  ``directory_listing`` is on, an HTML listing with every name escaped.

Symlink policy
--------------
The root itself is resolved once (``realpath``) when :class:`StaticFiles` is
made. A symlink anywhere under it is followed only when its fully resolved
target is the root or inside it; otherwise the request gets 404, and the
listing leaves the entry out. Symlinks between places inside the root work.
The check runs on every request (no cache). Residual risk, shared with nginx's
default ``disable_symlinks off``: someone who can create symlinks inside the
root *and* swap a directory for a symlink in the microseconds between our
``lstat`` walk and ``open`` could escape; the inode comparison catches a
swapped final file, not a swapped parent directory. Do not serve a directory
that untrusted users can write to.

HEAD and Range
--------------
HEAD answers exactly as GET would, Range included (same status, Content-Length,
Content-Range), without a body: RFC 9110 §9.3.2 says a HEAD response SHOULD carry
the header fields GET would, and nginx does the same (its range filter never
looks at the method). §14.2 defines Range for GET only; we read HEAD as "GET
without the body", which is what a client probing a range with HEAD expects.
"""

from __future__ import annotations

import functools
import html
import mimetypes
import os
import re
import secrets
import stat
import time
from collections.abc import Sequence
from urllib.parse import quote, unquote_to_bytes

import trio

from .request import BodySink, Request, Response
from .sansio import conditional, ranges

__all__ = ["DEFAULT_INLINE_LIMIT", "FileBody", "StaticFiles", "content_type_for", "split_path"]

#: Files up to this size are read in the handler and sent with the head in one write.
DEFAULT_INLINE_LIMIT = 64 * 1024
_ALLOW = "GET, HEAD"
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
)
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DRIVE = re.compile(r"[A-Za-z]:")
_DOT_SEGMENTS = frozenset({"", ".", ".."})

# -- Content-Type -----------------------------------------------------------------

#: Overrides of (and additions to) Python's built-in table, which varies between
#: versions; the system's mime.types is deliberately not read, so answers do not
#: depend on the machine.
_TYPE_OVERRIDES = {
    ".js": "text/javascript",  # RFC 9239
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".xml": "application/xml",  # RFC 7303 §9.1 prefers it to text/xml
    ".wasm": "application/wasm",
    ".webm": "video/webm",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".m4a": "audio/mp4",
    ".mkv": "video/x-matroska",
    ".ogv": "video/ogg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/vnd.microsoft.icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".md": "text/markdown",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".zst": "application/zstd",
    ".br": "application/octet-stream",
}
#: Non-``text/*`` types that are text and get ``; charset=utf-8`` too.
_TEXTUAL = frozenset(
    {
        "application/javascript",
        "application/json",
        "application/manifest+json",
        "application/xml",
        "image/svg+xml",
    }
)
_OCTET_STREAM = "application/octet-stream"


def _build_type_table() -> dict[str, str]:
    builtin = mimetypes.MimeTypes(filenames=())  # built-in defaults only, no system files
    table = {**builtin.types_map[True], **_TYPE_OVERRIDES}
    for ext, value in table.items():
        if value.startswith("text/") or value in _TEXTUAL:
            table[ext] = value + "; charset=utf-8"
    return table


_TYPES = _build_type_table()


def content_type_for(name: str) -> str:
    """The Content-Type we send for a file called ``name`` (by its last extension).

    Text types, JavaScript, JSON and SVG carry ``; charset=utf-8``; unknown
    extensions are ``application/octet-stream``.
    """
    dot = name.rfind(".")
    if dot <= name.rfind("/"):
        return _OCTET_STREAM
    return _TYPES.get(name[dot:].lower(), _OCTET_STREAM)


# -- paths ----------------------------------------------------------------------------


def split_path(request: Request) -> list[str] | None:
    """The request's path below the mount point as segments, or ``None`` (→ 400).

    Works whether the handler is mounted (``App.mount``: ``subpath`` follows a
    prefix ending in ``/``) or used directly (``subpath`` is the whole path and
    starts with ``/``). The segments are percent-decoded once, as bytes, then
    decoded with the filesystem encoding (so any name on disk is reachable). The
    last segment is ``""`` when the path ends with ``/``.
    """
    sub = request.subpath
    if not request.mount_prefix.endswith("/") and sub:
        if sub[0] != "/":
            return None  # "*", absolute-form, or a prefix that ends mid-segment
        sub = sub[1:]
    if "%" in sub:
        if _BAD_ESCAPE.search(sub):
            return None
        text = os.fsdecode(unquote_to_bytes(sub))  # the one and only decoding
    else:
        text = sub
    if "\x00" in text or "\\" in text:
        return None
    segments = text.split("/")
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        # "." and ".." never; "" only as the final segment ("dir/", or the root).
        if segment in _DOT_SEGMENTS and (segment or index != last):
            return None
    if ":" in text and any(_DRIVE.match(segment) for segment in segments):
        return None
    return segments


def _request_fields(headers: Sequence[tuple[bytes, bytes]]) -> tuple[bool, str | None, str | None]:
    """One pass over the request head: (any ``If-*`` field, Range, If-Range).

    Repeated Range or If-Range lines are joined with ``", "``, as
    :meth:`Request.header` joins them (so two Range lines make one invalid value).
    """
    preconditions = False
    found: dict[bytes, list[bytes]] = {}
    for key, value in headers:
        if key.startswith(b"if-"):
            preconditions = True
            if key != b"if-range":
                continue
        elif key != b"range":
            continue
        found.setdefault(key, []).append(value)
    if not found:
        return preconditions, None, None
    range_lines = found.get(b"range")
    if_range_lines = found.get(b"if-range")
    return (
        preconditions,
        None if range_lines is None else b", ".join(range_lines).decode("latin-1"),
        None if if_range_lines is None else b", ".join(if_range_lines).decode("latin-1"),
    )


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_dev, a.st_size, a.st_mtime_ns) == (b.st_ino, b.st_dev, b.st_size, b.st_mtime_ns)


# -- the producer -----------------------------------------------------------------------


class FileBody:
    """A :class:`~trio_ws.BodyProducer` sending pieces of one file.

    ``pieces`` are ``(head, offset, count)``: ``head`` bytes (multipart part
    headers, or ``b""``) followed by ``count`` file bytes from ``offset``; then
    ``trailer``. The file is opened only inside :meth:`produce` and must still
    be the one described by ``expected`` (else :class:`OSError`).
    """

    __slots__ = ("expected", "length", "path", "pieces", "trailer")

    length: int | None

    def __init__(
        self,
        path: str,
        expected: os.stat_result,
        pieces: Sequence[tuple[bytes, int, int]],
        trailer: bytes = b"",
    ) -> None:
        self.path = path
        self.expected = expected
        self.pieces = tuple(pieces)
        self.trailer = trailer
        self.length = sum(len(head) + count for head, _, count in self.pieces) + len(trailer)

    async def produce(self, sink: BodySink) -> None:
        """Open, check the file is still the one we described, send, close."""
        fd = os.open(self.path, _OPEN_FLAGS)
        try:
            if not _same_file(os.fstat(fd), self.expected):
                raise OSError(f"{self.path} changed between stat and open")
            for head, offset, count in self.pieces:
                if head:
                    await sink.send(head)
                await sink.sendfile(fd, offset, count)
            if self.trailer:
                await sink.send(self.trailer)
        finally:
            os.close(fd)


# -- the handler ----------------------------------------------------------------------


class StaticFiles:
    """Serve the files under ``root``: ``await static(request) -> Response``.

    * ``cache_control``: a Cache-Control value for 200/206/304 answers
      (``None``: no header).
    * ``directory_listing``: list a directory that has no ``index`` file
      (off by default: such a directory is a 404).
    * ``index``: the file served for ``dir/`` (``None`` disables it).
    * ``max_ranges``: most range-specs honoured; more, or 0, gives a 200.
    * ``inline_limit``: files up to this size (in bytes) are read in the
      handler and sent in one write; larger ones stream through ``sendfile``.

    See the module docstring for the path, symlink and descriptor policies.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        cache_control: str | None = None,
        directory_listing: bool = False,
        index: str | None = "index.html",
        max_ranges: int = ranges.DEFAULT_MAX_RANGES,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
    ) -> None:
        resolved = os.path.realpath(root)
        if not os.path.isdir(resolved):
            raise NotADirectoryError(f"static root is not a directory: {root!r}")
        if index is not None and (not index or "/" in index or index in (".", "..")):
            raise ValueError(f"index must be a plain file name: {index!r}")
        self.root = resolved
        self._inside = resolved if resolved.endswith(os.sep) else resolved + os.sep
        self.cache_control = cache_control
        self.directory_listing = directory_listing
        self.index = index
        self.max_ranges = max_ranges
        self.inline_limit = inline_limit

    def __repr__(self) -> str:
        return f"<StaticFiles {self.root!r}>"

    async def __call__(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            response = Response.error(405)
            response.headers.append(("allow", _ALLOW))
            return response
        segments = split_path(request)
        if segments is None:
            return Response.error(400, "invalid path")
        found = self._resolve(self.root, segments)
        if found is None:
            return Response.error(404)
        path, st = found
        if stat.S_ISDIR(st.st_mode):
            return await self._directory(request, path)
        if not stat.S_ISREG(st.st_mode) or segments[-1] == "":
            return Response.error(404)
        return self._file(request, path, st, segments[-1])

    # -- resolution -----------------------------------------------------------------

    def _resolve(self, path: str, segments: Sequence[str]) -> tuple[str, os.stat_result] | None:
        """Walk ``segments`` below ``path`` (inside the root) with the symlink policy."""
        st: os.stat_result | None = None
        try:
            for segment in segments:
                if not segment:
                    break  # the trailing "" of "dir/"
                path = f"{path}{os.sep}{segment}" if path != os.sep else os.sep + segment
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    path = os.path.realpath(path)
                    if not self.contains(path):
                        return None
                    st = os.stat(path)
            if st is None:  # no segment walked: ``path`` itself
                st = os.stat(path)
        except (OSError, ValueError):
            return None
        return path, st

    def contains(self, path: str) -> bool:
        """Whether resolved ``path`` is the root or inside it."""
        return path == self.root or path.startswith(self._inside)

    # -- files --------------------------------------------------------------------------

    def _file(self, request: Request, path: str, st: os.stat_result, name: str) -> Response:
        for _ in range(2):
            response = self._file_once(request, path, st, name)
            if response is not None:
                return response
            # The file changed between stat and open (replaced by a rename, say):
            # start over once with what is there now. ``path`` is fully resolved,
            # so lstat: a symlink appearing there now is a race, and not served.
            try:
                st = os.lstat(path)
            except OSError:
                return Response.error(404)
            if not stat.S_ISREG(st.st_mode):
                return Response.error(404)
        response = Response.error(503, "the file is changing; try again")
        response.headers.append(("retry-after", "1"))
        return response

    def _validators(self, st: os.stat_result) -> tuple[str, int, list[tuple[str, str]]]:
        etag = conditional.make_etag(st.st_size, st.st_mtime_ns, st.st_ino)
        mtime = st.st_mtime_ns // 1_000_000_000
        headers = [("etag", etag), ("last-modified", _http_date(mtime))]
        if self.cache_control is not None:
            headers.append(("cache-control", self.cache_control))
        return etag, mtime, headers

    def _file_once(self, request: Request, path: str, st: os.stat_result, name: str) -> Response | None:
        """The answer for a regular file, or ``None`` if it changed under us."""
        size = st.st_size
        etag, mtime, validators = self._validators(st)
        headers = request.headers
        preconditions, range_value, if_range = _request_fields(headers)
        # RFC 9110 §13.2.2: the preconditions first (skipped cheaply when absent).
        if preconditions:
            outcome = conditional.evaluate_preconditions(
                request.method, headers, etag=etag, last_modified=mtime
            )
            if outcome is conditional.Outcome.NOT_MODIFIED:
                # §15.4.5: a 304 carries the validators and Cache-Control, no body.
                return Response(304, headers=validators)
            if outcome is conditional.Outcome.PRECONDITION_FAILED:
                return Response.error(412)
        decision = self._range_decision(range_value, if_range, size, etag, mtime)
        ctype = content_type_for(name)
        if decision.kind is ranges.RangeKind.UNSATISFIABLE:
            # §15.5.17: a 416 to a byte-range request SHOULD carry Content-Range: bytes */size.
            response = Response.error(416)
            response.headers.append(("content-range", ranges.unsatisfied_range(size)))
            return response
        out = [("content-type", ctype), ("accept-ranges", "bytes"), *validators]
        pieces: list[tuple[bytes, int, int]]
        trailer = b""
        if decision.kind is ranges.RangeKind.FULL:
            status, pieces = 200, [(b"", 0, size)]
        elif decision.kind is ranges.RangeKind.PARTIAL:
            start, end = decision.ranges[0]
            status, pieces = 206, [(b"", start, end - start + 1)]
            out.append(("content-range", ranges.content_range(start, end, size)))
        else:
            # §14.6: the boundary must not occur in the body; 128 random bits.
            plan = ranges.plan_multipart(decision.ranges, size, ctype, secrets.token_hex(16))
            status = 206
            pieces = [(head, start, end - start + 1) for head, start, end in plan.parts]
            trailer = plan.trailer
            out[0] = ("content-type", plan.content_type)
        # Inline by what is *sent*, not by the file's size: a 64 KiB range or a
        # multipart answer of a big file is then one pread per piece + one write.
        if request.method == "HEAD" or sum(count for _, _, count in pieces) > self.inline_limit:
            # The producer opens the file only when the body is sent; check now
            # that it will be able to, so that an unreadable file is a 404 for
            # GET and HEAD alike rather than a connection cut after a 200 head.
            if not os.access(path, os.R_OK):
                return Response.error(404)
            return Response(status, FileBody(path, st, pieces, trailer), headers=out)
        try:
            data = _read_pieces(path, st, pieces, trailer)
        except OSError:
            return Response.error(404)  # gone, unreadable, or a symlink now
        if data is None:
            return None
        return Response(status, data, headers=out)

    def _range_decision(
        self, value: str | None, if_range: str | None, size: int, etag: str, mtime: int
    ) -> ranges.RangeDecision:
        if value is None:
            return ranges.evaluate_range(None, size)
        # §13.1.5: If-Range false → ignore Range, send the whole file.
        if if_range is not None and not conditional.if_range_allows(
            if_range, etag=etag, last_modified=mtime, now=time.time()
        ):
            return ranges.evaluate_range(None, size)
        return ranges.evaluate_range(value, size, max_ranges=self.max_ranges)

    # -- directories ----------------------------------------------------------------

    async def _directory(self, request: Request, path: str) -> Response:
        if not request.raw_path.endswith("/"):
            # RFC 9110 §15.4.2; the prefix and the query survive, the path stays encoded.
            location = request.raw_path + "/" + (f"?{request.query}" if request.query else "")
            response = Response.text(f"Moved to {location}\n", 301)
            response.headers.append(("location", location))
            return response
        if self.index is not None:
            found = self._resolve(path, (self.index,))
            if found is not None and stat.S_ISREG(found[1].st_mode):
                return self._file(request, found[0], found[1], self.index)
        if not self.directory_listing:
            return Response.error(404)
        page = await trio.to_thread.run_sync(self._listing, path, request.path)
        return Response.html(page)

    def _listing(self, path: str, url_path: str) -> str:
        """An HTML index of ``path``; names escaped, symlinks leaving the root left out."""
        entries: list[tuple[str, bool]] = []
        with os.scandir(path) as it:
            for entry in it:
                full = entry.path
                if entry.is_symlink():
                    full = os.path.realpath(full)
                    if not self.contains(full):
                        continue
                entries.append((entry.name, os.path.isdir(full)))
        entries.sort()
        title = html.escape(_printable(url_path))
        lines = [
            "<!doctype html>",
            '<html><head><meta charset="utf-8">',
            f"<title>Index of {title}</title></head>",
            f"<body><h1>Index of {title}</h1><ul>",
        ]
        for name, is_dir in entries:
            slash = "/" if is_dir else ""
            href = quote(os.fsencode(name)) + slash
            lines.append(f'<li><a href="{html.escape(href)}">{html.escape(_printable(name))}{slash}</a></li>')
        lines.append("</ul></body></html>\n")
        return "\n".join(lines)


@functools.lru_cache(maxsize=1024)
def _http_date(seconds: int) -> str:
    """Last-Modified text; memoised (a pure function of ``seconds``, never stale)."""
    return conditional.format_http_date(seconds)


def _printable(name: str) -> str:
    """``name`` with undecodable bytes (surrogate escapes) shown as U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_pieces(
    path: str, expected: os.stat_result, pieces: Sequence[tuple[bytes, int, int]], trailer: bytes
) -> bytes | None:
    """The (small) body made of ``pieces``, or ``None`` if the file is no longer ``expected``."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not _same_file(os.fstat(fd), expected):
            return None
        out = []
        for head, offset, count in pieces:
            data = os.pread(fd, count, offset)
            if len(data) != count:
                return None  # a short read: it shrank after fstat
            out.append(head)
            out.append(data)
    finally:
        os.close(fd)
    if len(out) == 2 and not out[0] and not trailer:
        return out[1]
    out.append(trailer)
    return b"".join(out)
