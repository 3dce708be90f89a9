"""RFC 9110 §5.6 field-value helpers: token lists and parameters.

Shared by the WebSocket handshake (``Connection``, ``Upgrade``,
``Sec-WebSocket-Protocol``, ``Sec-WebSocket-Extensions``), permessage-deflate
negotiation and anything else that reads comma-separated HTTP fields.

Theory of operation
-------------------
Header values arrive either as ``bytes`` (h11 gives ``list[tuple[bytes, bytes]]``
with lowercase names) or as ``str``. Bytes are decoded as ISO-8859-1, which maps
every octet to one code point, so ``obs-text`` (%x80-FF, RFC 9110 §5.5) survives
and is rejected later by the token grammar rather than by a codec error.

Every parser has a fast path for the overwhelmingly common case -- one header
line, no double quote -- that is plain ``str.split`` plus a precompiled token
regex. Only a value containing ``"`` goes through the character scanner that
honours quoted-strings (RFC 9110 §5.6.4), so a comma or semicolon inside quotes
never splits an element.

Grammar implemented (RFC 9110)::

    #element     = [ element ] *( OWS "," OWS [ element ] )        ; §5.6.1
    token        = 1*tchar                                         ; §5.6.2
    tchar        = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "."
                 / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    OWS          = *( SP / HTAB )                                  ; §5.6.3
    quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE        ; §5.6.4
    qdtext       = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    quoted-pair  = "\\" ( HTAB / SP / VCHAR / obs-text )
    parameters   = *( OWS ";" OWS [ parameter ] )                  ; §5.6.6
    parameter    = parameter-name "=" parameter-value
    parameter-value = ( token / quoted-string )

One deliberate leniency: a parameter may have no ``=value`` (RFC 6455 §9.1's
``extension-param = token [ "=" (token | quoted-string) ]``, needed for
``client_max_window_bits``), and OWS around ``=`` is tolerated because RFC 6455
inherits RFC 2616's implied linear whitespace. Parameter names are
case-insensitive (§5.6.6) and are returned lowercased; element names and values
are returned as received.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "HeaderList",
    "Params",
    "get_all",
    "has_token",
    "is_token",
    "parse_params_list",
    "split_list",
]

#: Either h11's ``[(b"name", b"value")]`` or a ``[("Name", "value")]`` list.
HeaderList = Iterable[tuple[bytes, bytes]] | Iterable[tuple[str, str]]

#: One parsed list element: its name and its ``(parameter, value-or-None)`` pairs.
Params = tuple[str, list[tuple[str, str | None]]]

_OWS = " \t"  # RFC 9110 §5.6.3
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2 tchar
# qdtext (§5.6.4): HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
_QDTEXT_RE = re.compile(r"[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]")
# the octet after a backslash in a quoted-pair: HTAB / SP / VCHAR / obs-text
_QPAIR_RE = re.compile(r"[\t \x21-\x7e\x80-\xff]")


def _text(value: str | bytes) -> str:
    """Return ``value`` as ``str``; bytes are ISO-8859-1 so every octet maps to one char."""
    return value.decode("latin-1") if isinstance(value, bytes) else value


def is_token(s: str) -> bool:
    """Whether ``s`` is a non-empty RFC 9110 §5.6.2 ``token`` (``1*tchar``)."""
    return _TOKEN_RE.fullmatch(s) is not None


def get_all(headers: HeaderList, name: str | bytes) -> list[str]:
    """Every value of field ``name`` in ``headers``, in order, as ``str``.

    Field names are case-insensitive (RFC 9110 §5.1). h11 already lowercases
    them, so the equality test against the lowercased name usually succeeds
    without calling ``.lower()`` on every header.
    """
    lname = _text(name).lower()
    bname = lname.encode("latin-1")
    out: list[str] = []
    for key, value in headers:
        if isinstance(key, bytes):
            if key == bname or key.lower() == bname:
                out.append(_text(value))
        elif key == lname or key.lower() == lname:
            out.append(_text(value))
    return out


def _split_quoted(s: str, sep: str) -> list[str]:
    """Split ``s`` on ``sep`` outside quoted-strings; raise ValueError if a quote is unclosed.

    Only reached when ``s`` contains a double quote. Escapes are skipped, not
    validated, here: :func:`_unquote` checks them when a value is unquoted.
    """
    parts: list[str] = []
    start = 0
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            i += 1
            while i < n and s[i] != '"':
                i += 2 if s[i] == "\\" else 1
            if i >= n:
                raise ValueError(f"unterminated quoted-string in {s!r}")
        elif c == sep:
            parts.append(s[start:i])
            start = i + 1
        i += 1
    parts.append(s[start:])
    return parts


def split_list(values: Iterable[str | bytes]) -> list[str]:
    """Split comma-separated list fields (RFC 9110 §5.6.1) into trimmed elements.

    ``values`` are the field lines of one field, e.g. ``get_all(h, "connection")``;
    several lines are equivalent to one line joined with commas (RFC 9110 §5.3).
    Empty elements (``"a, , b"``, a leading or trailing comma) are dropped, as
    §5.6.1 requires recipients to accept and ignore them. Commas inside a
    quoted-string do not split; an unterminated quoted-string raises ValueError.
    """
    out: list[str] = []
    for raw in values:
        value = _text(raw)
        parts = value.split(",") if '"' not in value else _split_quoted(value, ",")
        for part in parts:
            part = part.strip(_OWS)
            if part:
                out.append(part)
    return out


def has_token(values: Iterable[str | bytes], token: str) -> bool:
    """Whether ``token`` is an element of the token-list field ``values`` (ASCII case-insensitive).

    Meant for fields whose grammar is a list of tokens, such as ``Connection``
    (RFC 9110 §7.6.1) and ``Upgrade`` (§7.8), where a quoted-string cannot
    appear: the split is a plain comma split and never raises.
    ``has_token(["keep-alive, Upgrade"], "upgrade")`` is true.
    """
    want = token.lower()
    for raw in values:
        value = _text(raw)
        if "," not in value:  # fast path: the usual single-element line
            if value.strip(_OWS).lower() == want:
                return True
            continue
        for part in value.split(","):
            if part.strip(_OWS).lower() == want:
                return True
    return False


def _unquote(value: str) -> str:
    """Unquote one RFC 9110 §5.6.4 quoted-string, which must span all of ``value``."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ValueError(f"malformed quoted-string {value!r}")
    out: list[str] = []
    i = 1
    end = len(value) - 1
    while i < end:
        c = value[i]
        if c == "\\":
            if i + 1 >= end:
                raise ValueError(f"dangling backslash in quoted-string {value!r}")
            c = value[i + 1]
            if not _QPAIR_RE.fullmatch(c):
                raise ValueError(f"invalid quoted-pair \\{c!r} in {value!r}")
            i += 2
        elif c == '"' or not _QDTEXT_RE.fullmatch(c):
            raise ValueError(f"invalid character {c!r} in quoted-string {value!r}")
        else:
            i += 1
        out.append(c)
    return "".join(out)


def _parse_param(part: str, element: str) -> tuple[str, str | None] | None:
    """Parse one ``name[=value]`` parameter; ``None`` for an empty one (``a;;b``)."""
    part = part.strip(_OWS)
    if not part:
        return None  # RFC 9110 §5.6.6: parameters = *( OWS ";" OWS [ parameter ] )
    name, eq, value = part.partition("=")
    name = name.rstrip(_OWS)
    if not is_token(name):
        raise ValueError(f"invalid parameter name {name!r} in {element!r}")
    if not eq:
        return name.lower(), None
    value = value.lstrip(_OWS)
    if value.startswith('"'):
        return name.lower(), _unquote(value)
    if not is_token(value):
        raise ValueError(f"invalid value {value!r} for parameter {name!r} in {element!r}")
    return name.lower(), value


def parse_params_list(values: Iterable[str | bytes]) -> list[Params]:
    """Parse a list of ``name *( ";" param[=value] )`` elements (RFC 9110 §5.6.1, §5.6.6).

    ``"permessage-deflate; client_max_window_bits; server_max_window_bits=10"``
    gives ``[("permessage-deflate", [("client_max_window_bits", None),
    ("server_max_window_bits", "10")])]``. Quoted values are unquoted (§5.6.4).
    Names and unquoted values must be tokens (§5.6.2). Anything malformed
    raises ValueError naming the offending piece.
    """
    out: list[Params] = []
    for element in split_list(values):
        parts = element.split(";") if '"' not in element else _split_quoted(element, ";")
        name = parts[0].rstrip(_OWS)
        if not is_token(name):
            raise ValueError(f"invalid element name {name!r} in {element!r}")
        params: list[tuple[str, str | None]] = []
        for part in parts[1:]:
            param = _parse_param(part, element)
            if param is not None:
                params.append(param)
        out.append((name, params))
    return out
