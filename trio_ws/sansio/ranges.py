"""RFC 9110 §14 byte ranges: parse Range, decide 200/206/416, frame multipart/byteranges.

Theory of operation
-------------------
The static-file handler runs ``conditional.evaluate_preconditions`` first, then
``conditional.if_range_allows`` (a false If-Range means: pass ``None`` here), then::

    decision = evaluate_range(range_header, size)
    FULL          -> 200, the whole file
    PARTIAL       -> 206, Content-Range: content_range(start, end, size)
    MULTIPART     -> 206, plan_multipart(decision.ranges, size, ctype, boundary)
    UNSATISFIABLE -> 416, Content-Range: unsatisfied_range(size)

All positions are inclusive (``(0, 0)`` is the first byte) and plain Python ints, so
sizes past 4 GiB, up to ``2**63 - 1`` (off_t), need nothing special.

Parsing (:func:`parse_range`) is strict and never raises. Numbers are ASCII digits
only, checked with a regex, never with bare ``int()`` (which accepts ``1_0``, ``+1``,
surrounding spaces and non-ASCII digits). Anything invalid — another unit, a
malformed element, ``last < first`` — makes the *whole* header invalid, and an
invalid Range is ignored: a 200, never a 416 (§14.2 allows ignoring; nginx answers
416 to bad syntax, the RFC does not ask for that). Empty list elements are skipped
(§5.6.1.2). Huge numerals cannot overflow anything (§14.1.2 MUST): they are
compared exactly and then saturated at ``2**64``, beyond any file size.

Decision rules of :func:`evaluate_range`, in order
--------------------------------------------------
1. No header, an invalid one, ``max_ranges <= 0`` (ranges disabled, nginx's
   ``max_ranges 0``) -> FULL.
2. **Zero-length file -> FULL.** §14.1.2 makes a non-zero suffix-range satisfiable
   even then, yet no Content-Range can describe a part of nothing; §14.2 lets a
   server ignore Range when the representation has no content, so we always do.
   (nginx also answers ``bytes=0-`` and ``bytes=-5`` with 200 here; it gives 416
   for ``bytes=5-``, we give 200 — the same empty body either way.)
3. **More than ``max_ranges`` range-specs -> FULL** (nginx ``max_ranges``; nginx
   counts only satisfiable ones, we count what was sent: cheaper, and stricter).
4. Each spec is resolved: ``a-b`` clamps ``b`` to ``size - 1``; ``a-`` runs to the
   end; ``-n`` is the last ``n`` bytes, all of them if ``n >= size``; ``-0`` and
   ``a >= size`` are unsatisfiable. None satisfiable -> UNSATISFIABLE (416 with
   ``bytes */size``, §15.5.17).
5. **Amplification, nginx's rule:** with several satisfiable ranges whose lengths,
   summed *before* coalescing, exceed the file size -> FULL. Overlap tricks such as
   ``0-,0-,0-`` thus buy nothing.
6. Coalescing: ranges that overlap or touch (``0-4,5-9``) merge (§14.2 and
   §15.3.7.2 allow it "regardless of the order"). nginx does not coalesce; we do,
   so a request never makes us send the same byte twice. One range left ->
   PARTIAL (a plain 206; §15.3.7.2 allows it for a multi-range request).
7. **Framing overhead:** if the parts' bytes plus ``part_overhead`` (default 80, the
   per-part figure §15.3.7.2 quotes) per part exceed the file size, the multipart
   body would be larger than the file itself -> FULL. This is the "many tiny
   ranges" guard: ``0-0,2-2,4-4,...`` on a small file gets one cheap 200.
8. Otherwise MULTIPART.

**Order of parts.** Coalescing works on a sorted copy, but the surviving parts are
put back in the order of the earliest range-spec that fed each of them, because
§15.3.7.2 says a server SHOULD send parts in the order they were requested (nginx
also keeps request order). A request in ascending order therefore gets sorted parts;
a client asking for later parts first (§14.2 mentions reversed page stores) gets
them first.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MAX_RANGES",
    "DEFAULT_PART_OVERHEAD",
    "MAX_SIZE",
    "MultipartPlan",
    "RangeDecision",
    "RangeKind",
    "coalesce_ranges",
    "content_range",
    "evaluate_range",
    "parse_range",
    "plan_multipart",
    "unsatisfied_range",
]

DEFAULT_MAX_RANGES = 100
"""Most range-specs honoured in one request; more gets a 200 (nginx ``max_ranges``)."""

DEFAULT_PART_OVERHEAD = 80
"""Estimated framing bytes per multipart part (RFC 9110 §15.3.7.2: "around 80 bytes")."""

MAX_SIZE = 2**63 - 1
"""Largest representation size accepted (a signed 64-bit off_t)."""

_SATURATED = 2**64  # numerals at least this large all compare alike against any size
_DIGITS = re.compile(r"[0-9]+")  # ASCII only; str.isdigit() would take "²" or "٣"
_OWS = " \t"
# RFC 2046 §5.1.1: bcharsnospace / " ", 1 to 70 characters, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_TOKEN = re.compile(r"[0-9A-Za-z!#$%&'*+\-.^_`|~]+")  # RFC 9110 §5.6.2
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # no CR, LF, NUL, other CTLs

RangeSpec = tuple[int | None, int | None]
"""``(first, last)``: ``(a, b)`` for ``a-b``, ``(a, None)`` for ``a-``, ``(None, n)`` for ``-n``."""


# --------------------------------------------------------------------------- parsing


def _number(digits: str) -> int:
    """Exact value of an ASCII numeral, saturated at 2**64 (no int() digit-limit error)."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > 20:
        return _SATURATED
    return min(int(significant), _SATURATED)


def _not_greater(a: str, b: str) -> bool:
    """``int(a) <= int(b)`` for ASCII numerals of any length, without converting."""
    a, b = a.lstrip("0"), b.lstrip("0")
    return (len(a), a) <= (len(b), b)


def _parse_spec(element: str) -> RangeSpec | None:
    first, dash, last = element.partition("-")
    if not dash:
        return None
    if not first:  # suffix-range = "-" suffix-length
        if _DIGITS.fullmatch(last) is None:
            return None
        return (None, _number(last))
    if _DIGITS.fullmatch(first) is None:
        return None
    if not last:  # "first-": to the end
        return (_number(first), None)
    if _DIGITS.fullmatch(last) is None:
        return None
    # §14.1.1: an int-range with last-pos < first-pos is invalid.
    if not _not_greater(first, last):
        return None
    return (_number(first), _number(last))


def parse_range(value: str) -> list[RangeSpec] | None:
    """Parse a Range value (§14.1, §14.2) or return ``None`` to have it ignored.

    ``bytes`` is matched case-insensitively (§14.1); the range-set is a comma list
    with optional whitespace around elements and at least one range-spec. Never
    raises for any ``str``.
    """
    unit, eq, range_set = value.strip(_OWS).partition("=")
    if not eq or unit.lower() != "bytes":
        return None  # §14.2: an origin server MUST ignore a unit it does not know
    specs: list[RangeSpec] = []
    for element in range_set.split(","):
        element = element.strip(_OWS)
        if not element:
            continue  # §5.6.1.2: ignore empty list elements
        spec = _parse_spec(element)
        if spec is None:
            return None
        specs.append(spec)
    return specs or None


# --------------------------------------------------------------------------- decision


class RangeKind(enum.Enum):
    """How to answer: 200, 206 single part, 206 multipart, or 416."""

    FULL = "200"
    PARTIAL = "206"
    MULTIPART = "206 multipart"
    UNSATISFIABLE = "416"


@dataclass(frozen=True)
class RangeDecision:
    """The answer to a Range header: ``ranges`` are inclusive ``(start, end)`` pairs.

    Empty for FULL and UNSATISFIABLE, one pair for PARTIAL, two or more for
    MULTIPART, disjoint and non-adjacent, in the order they should be sent.
    """

    kind: RangeKind
    ranges: tuple[tuple[int, int], ...] = ()


_FULL = RangeDecision(RangeKind.FULL)
_UNSATISFIABLE = RangeDecision(RangeKind.UNSATISFIABLE)


def _resolve(spec: RangeSpec, size: int) -> tuple[int, int] | None:
    """Clamp one spec to a non-empty file (§14.1.2), or ``None`` if unsatisfiable."""
    first, last = spec
    if first is None:
        assert last is not None
        if last == 0:  # §14.1.2: only a non-zero suffix-length is satisfiable
            return None
        return (max(0, size - last), size - 1)
    if first >= size:  # §14.1.2: first-pos must be less than the length
        return None
    return (first, size - 1 if last is None else min(last, size - 1))


def coalesce_ranges(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Merge overlapping or adjacent inclusive ranges (§14.2, §15.3.7.2).

    The result is disjoint and non-adjacent; each part sits where the earliest
    range that fed it sat in ``ranges`` (§15.3.7.2 SHOULD keep request order).
    """
    order = sorted(range(len(ranges)), key=lambda i: ranges[i])
    merged: list[list[int]] = []  # [start, end, earliest index]
    for index in order:
        start, end = ranges[index]
        if merged and start <= merged[-1][1] + 1:
            last = merged[-1]
            last[1] = max(last[1], end)
            last[2] = min(last[2], index)
        else:
            merged.append([start, end, index])
    merged.sort(key=lambda part: part[2])
    return tuple((start, end) for start, end, _ in merged)


def evaluate_range(
    value: str | None,
    size: int,
    *,
    max_ranges: int = DEFAULT_MAX_RANGES,
    part_overhead: int = DEFAULT_PART_OVERHEAD,
) -> RangeDecision:
    """Decide how to answer ``Range: value`` for a representation of ``size`` bytes.

    Pass ``value=None`` when there is no Range header, when the method is not GET
    (§14.2: Range is only defined for GET) or when If-Range was false. The rules
    are listed in the module docstring.
    """
    if not 0 <= size <= MAX_SIZE:
        raise ValueError(f"size must be within [0, {MAX_SIZE}]")
    if value is None or max_ranges <= 0 or size == 0:
        return _FULL
    specs = parse_range(value)
    if specs is None or len(specs) > max_ranges:
        return _FULL
    if len(specs) == 1:
        # The common single range: rules 5-7 cannot apply to one clamped range.
        only = _resolve(specs[0], size)
        return _UNSATISFIABLE if only is None else RangeDecision(RangeKind.PARTIAL, (only,))
    resolved = [r for r in (_resolve(spec, size) for spec in specs) if r is not None]
    if not resolved:
        return _UNSATISFIABLE  # §15.5.17: no range-spec overlaps the file
    if sum(end - start + 1 for start, end in resolved) > size:
        return _FULL  # nginx: asking for more bytes than the file holds
    parts = coalesce_ranges(resolved)
    if len(parts) == 1:
        return RangeDecision(RangeKind.PARTIAL, parts)
    payload = sum(end - start + 1 for start, end in parts)
    if payload + part_overhead * len(parts) > size:
        return _FULL  # the multipart body would outweigh the whole file
    return RangeDecision(RangeKind.MULTIPART, parts)


# --------------------------------------------------------------------------- framing


def _check_range(start: int, end: int, size: int) -> None:
    if not 0 <= start <= end < size <= MAX_SIZE:
        raise ValueError(f"range {start}-{end} does not lie within a {size}-byte file")


def content_range(start: int, end: int, size: int) -> str:
    """The Content-Range value of a 206 part: ``"bytes 64-95/1000"`` (§14.4)."""
    _check_range(start, end, size)
    return f"bytes {start}-{end}/{size}"


def unsatisfied_range(size: int) -> str:
    """The Content-Range value a 416 carries: ``"bytes */1000"`` (§14.4, §15.5.17)."""
    if not 0 <= size <= MAX_SIZE:
        raise ValueError(f"size must be within [0, {MAX_SIZE}]")
    return f"bytes */{size}"


@dataclass(frozen=True)
class MultipartPlan:
    """A multipart/byteranges body as a plan (§14.6).

    Send, for each ``(head, start, end)`` in ``parts``: ``head``, then file bytes
    ``start..end`` inclusive; then ``trailer``. ``content_length`` is the exact body
    length and ``content_type`` the response's Content-Type value.
    """

    parts: tuple[tuple[bytes, int, int], ...]
    trailer: bytes
    content_length: int
    content_type: str


def plan_multipart(
    ranges: Sequence[tuple[int, int]],
    size: int,
    content_type: str | None,
    boundary: str,
) -> MultipartPlan:
    """Frame ``ranges`` of a ``size``-byte file as multipart/byteranges (§14.6).

    Each part is ``CRLF "--" boundary CRLF``, ``Content-Type`` (omitted when
    ``content_type`` is ``None``; §14.6 SHOULD repeat the 200's type), the
    MUST-have ``Content-Range``, a blank line, the data; the body ends with
    ``CRLF "--" boundary "--" CRLF``. CRLF throughout, as nginx frames it.

    ``boundary`` comes from the caller (randomness is not ours to make, and it must
    not occur in the file, RFC 2046 §5.1.1): 1-70 RFC 2046 characters, no trailing
    space. It is quoted in the Content-Type when it is not a token.
    """
    if _BOUNDARY.fullmatch(boundary) is None:
        raise ValueError(f"invalid multipart boundary {boundary!r} (RFC 2046 §5.1.1)")
    if content_type is not None and _FIELD_VALUE.fullmatch(content_type) is None:
        raise ValueError(f"invalid Content-Type value {content_type!r}")
    if not ranges:
        raise ValueError("a multipart/byteranges body needs at least one range")
    type_line = "" if content_type is None else f"Content-Type: {content_type}\r\n"
    parts = []
    length = 0
    for start, end in ranges:
        head = (
            f"\r\n--{boundary}\r\n{type_line}Content-Range: {content_range(start, end, size)}\r\n\r\n"
        ).encode("latin-1")
        parts.append((head, start, end))
        length += len(head) + end - start + 1
    trailer = f"\r\n--{boundary}--\r\n".encode("ascii")
    shown = boundary if _TOKEN.fullmatch(boundary) else f'"{boundary}"'
    return MultipartPlan(
        parts=tuple(parts),
        trailer=trailer,
        content_length=length + len(trailer),
        content_type=f"multipart/byteranges; boundary={shown}",
    )
