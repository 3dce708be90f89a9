"""RFC 9110 §13 conditional requests: validators, HTTP-dates, precondition order.

Theory of operation
-------------------
A static-file handler stats the file, builds its validators with :func:`make_etag`
and :func:`format_http_date`, then asks :func:`evaluate_preconditions` what to do.
That function walks RFC 9110 §13.2.2 step by step and returns an :class:`Outcome`:

====  ===============================================  =====================================
step  condition evaluated                              false means
====  ===============================================  =====================================
1     If-Match (strong comparison, ``*`` = exists)     412
2     If-Unmodified-Since, only when no If-Match       412
3     If-None-Match (weak comparison, ``*`` = exists)  304 for GET/HEAD, 412 otherwise
4     If-Modified-Since, GET/HEAD only, no INM         304
====  ===============================================  =====================================

Step 5 (If-Range) lives in :func:`if_range_allows`; its answer decides whether
``ranges.evaluate_range`` sees the Range header at all. The caller applies §13.2.1
itself: preconditions only count when the unconditional answer would be 2xx/412.

Policies (RFC 9110 leaves these to the server; each is tested)
---------------------------------------------------------------
* **Malformed If-Match fails closed (412).** §13.1.1 makes the condition true only
  for ``*`` or a listed tag that matches, "otherwise, the condition is false"; a value
  we cannot read lists no tag that matches. If-Match guards against lost updates, so
  guessing "true" would be the dangerous direction.
* **Malformed If-None-Match reads as "no tag matched"**, i.e. the condition is true
  and the request proceeds. That is the safe direction for GET (a full 200 is never
  wrong) and it still suppresses If-Modified-Since, since the field *is* present
  (§13.1.3).
* **Dates that are not a single valid HTTP-date are ignored** (§13.1.3, §13.1.4):
  garbage, a list of dates, or the field repeated on several lines.
* **If-Modified-Since is "not modified" when Last-Modified <= the date** (§13.1.3),
  not nginx's default ``if_modified_since exact`` equality: where nginx deviates,
  the RFC wins.
* **If-Range with a date** is true only when it *exactly* equals Last-Modified
  (§13.1.5 step 2; nginx does the same). §13.1.5 step 1 also wants the date to be a
  strong validator (§8.8.2.2): an origin server may treat Last-Modified as strong
  only if it knows the file did not change twice within that second. We cannot know
  that for a second that has not finished yet, so when the caller passes ``now``
  (its injected clock) a Last-Modified less than one second old is weak and the
  condition is false: a full 200 instead of bytes spliced from two versions.
  Clients holding our ETag must send it instead of a date (§13.1.5), and our ETag
  carries nanosecond mtime, size and inode, so the date form is a fallback.
* ``make_etag`` is strong: it changes with size, nanosecond mtime or inode. The
  residual risk (same size, rewritten within one filesystem timestamp tick, same
  inode) is the one every file server shares; nginx uses whole seconds.
"""

from __future__ import annotations

import calendar
import datetime
import enum
import re
from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

__all__ = [
    "ANY",
    "HeaderInput",
    "Outcome",
    "date_validator_is_strong",
    "evaluate_preconditions",
    "format_http_date",
    "get_header_values",
    "if_range_allows",
    "make_etag",
    "parse_entity_tags",
    "parse_http_date",
    "strong_match",
    "weak_match",
]

HeaderInput: TypeAlias = Sequence[tuple[bytes, bytes]] | Mapping[str, str]
"""h11-style ``[(name, value), ...]`` byte pairs, or a simple ``{name: value}`` mapping."""

ANY: Literal["*"] = "*"
"""What :func:`parse_entity_tags` returns for the ``*`` form."""

_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LONG_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

# RFC 9110 §5.6.7. HTTP-date is case-sensitive, so no re.IGNORECASE; [0-9] not \d
# (\d would accept non-ASCII digits).
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
_IMF_FIXDATE = re.compile(
    r"(?P<wday>[A-Z][a-z]{2}), (?P<day>[0-9]{2}) (?P<month>[A-Z][a-z]{2}) "
    r"(?P<year>[0-9]{4}) " + _TIME + r" GMT"
)
_RFC850_DATE = re.compile(
    r"(?P<wday>[A-Z][a-z]{5,8}), (?P<day>[0-9]{2})-(?P<month>[A-Z][a-z]{2})-"
    r"(?P<year>[0-9]{2}) " + _TIME + r" GMT"
)
_ASCTIME_DATE = re.compile(
    r"(?P<wday>[A-Z][a-z]{2}) (?P<month>[A-Z][a-z]{2}) (?P<day>[0-9]{2}| [0-9]) "
    + _TIME
    + r" (?P<year>[0-9]{4})"
)

# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE,
# etagc = %x21 / %x23-7E / obs-text.
_ENTITY_TAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"')
_OWS = " \t"


# --------------------------------------------------------------------------- validators


def make_etag(size: int, mtime_ns: int, inode: int) -> str:
    """A strong entity-tag ``"<size>-<mtime_ns>-<inode>"`` (lowercase hex, quoted).

    A negative ``mtime_ns`` (a file dated before 1970) is written as its 64-bit
    two's complement so the tag keeps exactly three hex fields.
    """
    if size < 0 or inode < 0:
        raise ValueError("size and inode must be non-negative")
    mtime = mtime_ns if mtime_ns >= 0 else mtime_ns % (1 << 64)
    return f'"{size:x}-{mtime:x}-{inode:x}"'


def format_http_date(ts: float) -> str:
    """``ts`` (epoch seconds, fraction dropped) as an IMF-fixdate, always GMT (§5.6.7)."""
    when = _EPOCH + datetime.timedelta(seconds=int(ts // 1))
    return (
        f"{_DAY_NAMES[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} "
        f"{when.year:04d} {when.hour:02d}:{when.minute:02d}:{when.second:02d} GMT"
    )


def parse_http_date(value: str, *, now: float | None = None) -> int | None:
    """Epoch seconds of an HTTP-date in any of the three §5.6.7 forms, else ``None``.

    Accepted: IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), the obsolete RFC 850
    form (``Sunday, 06-Nov-94 08:49:37 GMT``) and asctime (``Sun Nov  6 08:49:37
    1994``). Leading/trailing whitespace is ignored; anything else invalid gives
    ``None`` (callers then ignore the header, §13.1.3/§13.1.4). The day name must be
    a real one but, like nginx and most servers, is not checked against the date.

    RFC 850's two-digit year: §5.6.7 says a year "more than 50 years in the future"
    means the most recent past year with those digits. That needs a clock, so pass
    ``now`` (epoch seconds) from the injected clock; without it the years 1970-2069
    are assumed.
    """
    text = value.strip(_OWS)
    if match := _IMF_FIXDATE.fullmatch(text):
        names: tuple[str, ...] = _DAY_NAMES
        year = int(match["year"])
    elif match := _RFC850_DATE.fullmatch(text):
        names = _LONG_DAY_NAMES
        year = _expand_two_digit_year(int(match["year"]), now)
    elif match := _ASCTIME_DATE.fullmatch(text):
        names = _DAY_NAMES
        year = int(match["year"])
    else:
        return None
    if match["wday"] not in names or match["month"] not in _MONTHS:
        return None
    month = _MONTHS.index(match["month"]) + 1
    day, hour, minute = int(match["day"]), int(match["hour"]), int(match["minute"])
    second = int(match["second"])
    if year == 0 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    if hour > 23 or minute > 59 or second > 60:  # second 60: a leap second (§5.6.7)
        return None
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def _expand_two_digit_year(yy: int, now: float | None) -> int:
    if now is None:
        return 1900 + yy if yy >= 70 else 2000 + yy
    this_year = (_EPOCH + datetime.timedelta(seconds=int(now // 1))).year
    year = this_year - this_year % 100 + yy
    # RFC 9110 §5.6.7: MUST read "more than 50 years in the future" as the past.
    if year > this_year + 50:
        year -= 100
    return year


def date_validator_is_strong(last_modified: int, now: float) -> bool:
    """True once the second ``last_modified`` names has fully passed (§8.8.2.2).

    Until then a second change within the same second could still give the file a
    new body under the same Last-Modified, so the date cannot be a strong validator.
    """
    return now >= last_modified + 1


# --------------------------------------------------------------------------- entity tags


def parse_entity_tags(value: str) -> Literal["*"] | tuple[str, ...] | None:
    """Read an If-Match / If-None-Match value: ``"*" / #entity-tag`` (§13.1.1, §13.1.2).

    Returns :data:`ANY` for ``*``, a tuple of tags (``'"x"'``, ``'W/"y"'``) for a list
    (empty elements skipped per §5.6.1.2; commas inside quotes are data), or
    ``None`` when the value is malformed, including ``*`` mixed with tags. Header
    lines are joined with ``", "`` by :func:`get_header_values` callers beforehand.
    """
    text = value.strip(_OWS)
    if text == "*":
        return ANY
    tags: list[str] = []
    pos, end = 0, len(text)
    while pos < end:
        char = text[pos]
        if char in _OWS or char == ",":
            pos += 1
            continue
        match = _ENTITY_TAG.match(text, pos)
        if match is None:
            return None
        tags.append(match.group())
        pos = match.end()
        while pos < end and text[pos] in _OWS:
            pos += 1
        if pos < end and text[pos] != ",":
            return None
    return tuple(tags)


def _is_weak(tag: str) -> bool:
    return tag.startswith("W/")


def _opaque(tag: str) -> str:
    return tag[2:] if _is_weak(tag) else tag


def strong_match(a: str, b: str) -> bool:
    """§8.8.3.2 strong comparison: neither tag weak, and identical."""
    return not _is_weak(a) and not _is_weak(b) and a == b


def weak_match(a: str, b: str) -> bool:
    """§8.8.3.2 weak comparison: opaque-tags identical, ``W/`` ignored."""
    return _opaque(a) == _opaque(b)


# --------------------------------------------------------------------------- headers


def get_header_values(headers: HeaderInput, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive), in order, OWS-stripped.

    Bytes are decoded as Latin-1 (h11's own convention), so obs-text survives and
    nothing can raise.
    """
    wanted = name.lower()
    if isinstance(headers, Mapping):
        return [v.strip(_OWS) for k, v in headers.items() if k.lower() == wanted]
    found = []
    for raw_name, raw_value in headers:
        if raw_name.decode("latin-1").lower() == wanted:
            found.append(raw_value.decode("latin-1").strip(_OWS))
    return found


def _single_date(headers: HeaderInput, name: str) -> int | None:
    """One valid HTTP-date or ``None``; a field on several lines is a list: ignored."""
    values = get_header_values(headers, name)
    if len(values) != 1:
        return None
    return parse_http_date(values[0])


# --------------------------------------------------------------------------- §13.2.2


class Outcome(enum.Enum):
    """What §13.2.2 tells the handler to do."""

    PROCEED = "proceed"
    NOT_MODIFIED = "304"
    PRECONDITION_FAILED = "412"


def _any_tag_matches(
    tags: Literal["*"] | tuple[str, ...] | None,
    etag: str | None,
    exists: bool,
    *,
    strong: bool,
) -> bool:
    if isinstance(tags, str):  # ANY
        return exists
    if tags is None or etag is None:
        return False
    compare = strong_match if strong else weak_match
    return any(compare(tag, etag) for tag in tags)


def evaluate_preconditions(
    method: str,
    headers: HeaderInput,
    *,
    etag: str | None,
    last_modified: int | None,
    exists: bool = True,
) -> Outcome:
    """Evaluate If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since.

    ``etag`` is the current strong or weak tag (``None`` if the resource has none),
    ``last_modified`` its modification time in whole epoch seconds, ``exists``
    whether there is a current representation (for ``*``). Order per RFC 9110
    §13.2.2, which is a MUST.
    """
    safe = method.upper() in ("GET", "HEAD")
    if_match = get_header_values(headers, "if-match")
    if if_match:
        # §13.1.1: strong comparison; "*" is true iff a representation exists.
        tags = parse_entity_tags(", ".join(if_match))
        if not _any_tag_matches(tags, etag, exists, strong=True):
            return Outcome.PRECONDITION_FAILED
    else:
        # §13.1.4: MUST ignore If-Unmodified-Since when If-Match is present.
        since = _single_date(headers, "if-unmodified-since")
        if since is not None and last_modified is not None and last_modified > since:
            return Outcome.PRECONDITION_FAILED

    if_none_match = get_header_values(headers, "if-none-match")
    if if_none_match:
        # §13.1.2: weak comparison; false → 304 for GET/HEAD, 412 for the rest.
        tags = parse_entity_tags(", ".join(if_none_match))
        if _any_tag_matches(tags, etag, exists, strong=False):
            return Outcome.NOT_MODIFIED if safe else Outcome.PRECONDITION_FAILED
    elif safe:
        # §13.1.3: MUST ignore If-Modified-Since with If-None-Match or other methods.
        since = _single_date(headers, "if-modified-since")
        if since is not None and last_modified is not None and last_modified <= since:
            return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


# --------------------------------------------------------------------------- §13.1.5


def if_range_allows(
    value: str,
    *,
    etag: str | None,
    last_modified: int | None,
    now: float | None = None,
) -> bool:
    """Whether an If-Range field lets the Range header through (§13.1.5).

    * an entity-tag: true only if it strongly matches ``etag`` (a weak tag, ours or
      theirs, is never enough: the client is splicing bytes);
    * an HTTP-date: true only if it exactly equals ``last_modified`` and, when
      ``now`` is given, that date is a strong validator
      (:func:`date_validator_is_strong`);
    * anything else (garbage, a list, an empty value): false.

    False means: ignore Range and send the whole representation with 200.
    """
    text = value.strip(_OWS)
    # §13.1.5: a valid entity-tag is told from a date by a DQUOTE in the first
    # three characters.
    if '"' in text[:3]:
        if _ENTITY_TAG.fullmatch(text) is None or etag is None:
            return False
        return strong_match(text, etag)
    date = parse_http_date(text)
    if date is None or last_modified is None or date != last_modified:
        return False
    return now is None or date_validator_is_strong(last_modified, now)
