"""RFC 6455 §4 opening handshake, both sides, over plain header lists.

Theory of operation
-------------------
This module never touches a socket and never parses HTTP framing: h11 does
that. It takes what an ``h11.Request`` / ``h11.InformationalResponse`` carries
(method, HTTP version, ``[(b"name", b"value")]`` headers, status) and answers
"valid or not, and why", or builds the header list to send.

Server side::

    h11.Request ──validate_request()──▶ ClientOffer ──(app picks)──▶
        accept_response_headers() ──▶ h11.InformationalResponse(101, headers)

    On failure validate_request() raises InvalidHandshake whose ``status_hint``
    and ``headers`` are the HTTP response to send instead.

Client side::

    make_key(16 random bytes) ──▶ build_request_headers() ──▶ h11.Request
    h11.InformationalResponse ──check_response()──▶ ServerAccept

Randomness is injected: the caller draws the 16 nonce bytes (RFC 6455 §4.1
requires them to be "randomly selected") and passes them to :func:`make_key`.

Status hints chosen by :func:`validate_request`
-----------------------------------------------
=============================  ======  =========================================
problem                        status  why
=============================  ======  =========================================
method is not GET              405     RFC 6455 §4.1 requires GET; the request is
                                       otherwise well formed, so "this resource
                                       does not allow that method" is the honest
                                       answer, and RFC 9110 §15.5.6 makes us send
                                       ``Allow: GET`` with it.
HTTP/1.0 or unparsable         400     RFC 9110 §7.8: an HTTP/1.0 Upgrade is
                                       ignored, so this is just a bad request.
Host missing or repeated       400     RFC 9112 §3.2 MUST.
no ``websocket`` in Upgrade    426     RFC 9110 §15.5.22: Upgrade Required, sent
                                       with ``Upgrade: websocket`` (a MUST) and
                                       ``Connection: Upgrade`` (§7.8).
no ``upgrade`` in Connection   400     malformed upgrade (RFC 6455 §4.2.1 item 4).
version not exactly 13         426     RFC 6455 §4.2.2 item 4, with
                                       ``Sec-WebSocket-Version: 13``.
bad or repeated key            400     RFC 6455 §4.2.1 item 5.
bad protocol/extension syntax  400     RFC 6455 §4.2.1 items 8-9.
=============================  ======  =========================================

Version is checked before the key so a pre-RFC client (hixie-76 sends
``Sec-WebSocket-Key1``/``Key2``) learns which version we speak.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from ..exceptions import InvalidHandshake, NegotiationError
from .headers import (
    HeaderList,
    Params,
    get_all,
    has_token,
    is_token,
    parse_params_list,
    split_list,
)

__all__ = [
    "GUID",
    "WEBSOCKET_VERSION",
    "ClientOffer",
    "ServerAccept",
    "accept_key",
    "accept_response_headers",
    "build_request_headers",
    "check_response",
    "is_upgrade_request",
    "make_key",
    "validate_request",
]

#: RFC 6455 §1.3: the fixed GUID appended to the client's key.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: RFC 6455 §4.1 item 9: the only version this implementation speaks.
WEBSOCKET_VERSION = 13

_KEY_BYTES = 16  # RFC 6455 §4.1 item 7: a 16-byte nonce
_OWS = " \t"

# Headers the handshake itself owns: extra_headers may not set them (on the
# client, Host comes from its own argument; protocols/extensions too).
_CLIENT_RESERVED = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)
_SERVER_RESERVED = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)


@dataclass(frozen=True)
class ClientOffer:
    """A validated client upgrade request (server side).

    ``key`` is the raw ``Sec-WebSocket-Key`` text; ``subprotocols`` are the
    offered subprotocols in the client's order of preference, duplicates
    removed; ``extensions`` are the parsed ``Sec-WebSocket-Extensions`` offers
    (see :func:`~trio_ws.sansio.headers.parse_params_list`); ``version`` is 13.
    """

    key: str
    subprotocols: list[str]
    extensions: list[Params]
    version: int


@dataclass(frozen=True)
class ServerAccept:
    """A validated 101 response (client side).

    ``subprotocol`` is the one the server chose, if any; ``extensions`` the
    parsed ``Sec-WebSocket-Extensions`` answer; ``headers`` every response
    header as ``str`` pairs, for the application (cookies and the like).
    """

    subprotocol: str | None
    extensions: list[Params]
    headers: list[tuple[str, str]]


def accept_key(key: str | bytes) -> str:
    """``Sec-WebSocket-Accept`` for ``key``: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2 5.4).

    The key is used as sent, base64 text and all, not decoded (§1.3).
    SHA-1 is not used for security here, hence ``usedforsecurity=False``,
    which keeps this working on FIPS-restricted builds.
    """
    raw = key.encode("ascii") if isinstance(key, str) else key
    digest = hashlib.sha1(raw.strip(b" \t") + GUID.encode("ascii"), usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode("ascii")


def make_key(random16: bytes) -> str:
    """``Sec-WebSocket-Key`` from 16 caller-supplied random bytes (RFC 6455 §4.1 item 7).

    The randomness is injected so this module stays pure; the trio layer
    passes ``secrets.token_bytes(16)``.
    """
    if len(random16) != _KEY_BYTES:
        raise ValueError(f"the WebSocket key nonce must be 16 bytes, got {len(random16)}")
    return base64.b64encode(random16).decode("ascii")


def _key_error(key: str) -> str | None:
    """Why ``key`` is not a valid ``Sec-WebSocket-Key``, or None if it is (§4.1 item 7)."""
    try:
        decoded = base64.b64decode(key.encode("latin-1"), validate=True)
    except (binascii.Error, ValueError):
        return f"Sec-WebSocket-Key is not valid base64: {key!r}"
    if len(decoded) != _KEY_BYTES:
        return f"Sec-WebSocket-Key must decode to 16 bytes, got {len(decoded)}"
    return None


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _shown(values: list[str]) -> str:
    """Header values for an error message: quoted, so odd bytes stay visible."""
    return repr(", ".join(values)) if values else "none"


def _http_version_ok(http_version: str | bytes) -> bool:
    """Whether ``http_version`` (``"1.1"``, ``b"1.1"`` or ``"HTTP/1.1"``) is 1.1 or later."""
    text = _text(http_version).strip()
    text = text.removeprefix("HTTP/")
    major, _, minor = text.partition(".")
    if not major.isdigit() or not (minor == "" or minor.isdigit()):
        return False
    return (int(major), int(minor or "0")) >= (1, 1)


def is_upgrade_request(headers: HeaderList) -> bool:
    """Cheap routing test: does ``Upgrade`` name ``websocket``? (no other validation)."""
    return has_token(get_all(headers, "upgrade"), "websocket")


#: The request fields :func:`validate_request` reads.
_REQUEST_FIELDS = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-version",
        "sec-websocket-key",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)


def _request_fields(headers: HeaderList) -> dict[str, list[str]]:
    """The values of every field in ``_REQUEST_FIELDS``, in order, from one pass over ``headers``.

    Equivalent to :func:`~trio_ws.sansio.headers.get_all` per field (names are
    case-insensitive, RFC 9110 §5.1), without walking the list once per field.
    """
    found: dict[str, list[str]] = {}
    for key, value in headers:
        name = _text(key)
        if name not in _REQUEST_FIELDS:
            name = name.lower()
            if name not in _REQUEST_FIELDS:
                continue
        found.setdefault(name, []).append(_text(value))
    return found


def _check_head(method: str | bytes, http_version: str | bytes, fields: dict[str, list[str]]) -> None:
    """Method, HTTP version, Host, Upgrade and Connection checks of :func:`validate_request`."""
    method_text = _text(method)
    if method_text != "GET":  # RFC 6455 §4.1 item 1 (methods are case-sensitive, RFC 9110 §9.1)
        raise InvalidHandshake(
            f"WebSocket handshake must use GET, got {method_text!r}",
            status_hint=405,
            headers=[("Allow", "GET")],  # RFC 9110 §15.5.6 MUST
        )
    if not _http_version_ok(http_version):  # RFC 6455 §4.1 item 1
        raise InvalidHandshake(f"WebSocket handshake requires HTTP/1.1 or later, got {_text(http_version)!r}")
    hosts = fields.get("host", [])
    if len(hosts) != 1:  # RFC 6455 §4.2.1 item 2; RFC 9112 §3.2 MUST answer 400
        raise InvalidHandshake(
            "missing Host header" if not hosts else f"expected one Host header, got {len(hosts)}"
        )
    upgrade = fields.get("upgrade", [])
    if not has_token(upgrade, "websocket"):  # RFC 6455 §4.2.1 item 3
        raise InvalidHandshake(
            f"Upgrade header must contain 'websocket', got {_shown(upgrade)}",
            status_hint=426,  # RFC 9110 §15.5.22: MUST send Upgrade; §7.8: with Connection
            headers=[("Upgrade", "websocket"), ("Connection", "Upgrade")],
        )
    connection = fields.get("connection", [])
    if not has_token(connection, "upgrade"):  # RFC 6455 §4.2.1 item 4
        raise InvalidHandshake(f"Connection header must contain 'Upgrade', got {_shown(connection)}")


def _offered_subprotocols(lines: list[str]) -> list[str]:
    """Parse every ``Sec-WebSocket-Protocol`` line; each element must be a token (§4.1 item 10)."""
    if not lines:
        return []
    try:
        elements = split_list(lines)
    except ValueError as exc:
        raise InvalidHandshake(f"invalid Sec-WebSocket-Protocol header: {exc}") from exc
    subprotocols: list[str] = []
    for element in elements:
        if not is_token(element):
            raise InvalidHandshake(f"invalid subprotocol {element!r} in Sec-WebSocket-Protocol")
        # §4.1 item 10 says the client MUST send unique values; tolerate a repeat
        # by keeping the first, which changes nothing about what may be chosen.
        if element not in subprotocols:
            subprotocols.append(element)
    return subprotocols


def validate_request(
    method: str | bytes,
    http_version: str | bytes,
    headers: Sequence[tuple[bytes, bytes]] | Sequence[tuple[str, str]],
) -> ClientOffer:
    """Validate a client's opening handshake (RFC 6455 §4.2.1) and return its offer.

    Takes the fields of an ``h11.Request``. Raises :class:`InvalidHandshake`
    whose ``status_hint`` and ``headers`` form the error response (see the
    module docstring for the table of statuses).
    """
    fields = _request_fields(headers)
    _check_head(method, http_version, fields)

    versions = fields.get("sec-websocket-version", [])
    if [v.strip(_OWS) for v in versions] != [str(WEBSOCKET_VERSION)]:  # §4.2.1 item 6
        raise InvalidHandshake(
            f"unsupported Sec-WebSocket-Version {_shown(versions)}, this server speaks 13",
            status_hint=426,  # RFC 6455 §4.2.2 item 4 MUST: say which versions we speak
            headers=[("Sec-WebSocket-Version", str(WEBSOCKET_VERSION))],
        )

    keys = fields.get("sec-websocket-key", [])
    if len(keys) != 1:  # RFC 6455 §4.2.1 item 5: exactly one key; §11.3.1 no repeats
        raise InvalidHandshake(
            "missing Sec-WebSocket-Key header"
            if not keys
            else f"expected one Sec-WebSocket-Key header, got {len(keys)}"
        )
    key = keys[0].strip(_OWS)
    problem = _key_error(key)
    if problem is not None:
        raise InvalidHandshake(problem)

    subprotocols = _offered_subprotocols(fields.get("sec-websocket-protocol", []))
    offers = fields.get("sec-websocket-extensions")
    try:  # RFC 6455 §4.2.1 item 9, grammar in §9.1
        extensions = parse_params_list(offers) if offers else []
    except ValueError as exc:
        raise InvalidHandshake(f"invalid Sec-WebSocket-Extensions header: {exc}") from exc

    return ClientOffer(key=key, subprotocols=subprotocols, extensions=extensions, version=WEBSOCKET_VERSION)


def _check_extra_headers(extra: Sequence[tuple[str, str]], reserved: frozenset[str]) -> None:
    """Refuse extra headers that would override the handshake or inject fields."""
    for name, value in extra:
        if not is_token(name):
            raise ValueError(f"invalid header name {name!r}")
        if name.lower() in reserved:
            raise ValueError(f"extra_headers may not set {name!r}: the handshake owns it")
        if any(c in value for c in "\r\n\0"):  # RFC 9110 §5.5: no CR, LF or NUL in values
            raise ValueError(f"invalid character in value of header {name!r}: {value!r}")


def accept_response_headers(
    offer: ClientOffer,
    *,
    subprotocol: str | None,
    extensions: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """Headers of the 101 response accepting ``offer`` (RFC 6455 §4.2.2 item 5).

    ``subprotocol`` must be one the client offered (§4.2.2 5.2 "MUST be derived
    from the client's handshake"), else :class:`NegotiationError`.
    ``extensions`` is the ready-made ``Sec-WebSocket-Extensions`` value; every
    extension it names must have been offered (§9.1), else NegotiationError;
    malformed syntax is ValueError. ``extra_headers`` may not set the handshake's
    own fields (ValueError).
    """
    if subprotocol is not None and subprotocol not in offer.subprotocols:
        offered = ", ".join(offer.subprotocols) or "none"
        raise NegotiationError(f"cannot select subprotocol {subprotocol!r}: the client offered {offered}")
    _check_extra_headers(extra_headers, _SERVER_RESERVED)
    headers = [
        ("Upgrade", "websocket"),  # §4.2.2 5.2
        ("Connection", "Upgrade"),  # §4.2.2 5.3
        ("Sec-WebSocket-Accept", accept_key(offer.key)),  # §4.2.2 5.4
    ]
    if subprotocol is not None:
        headers.append(("Sec-WebSocket-Protocol", subprotocol))
    if extensions:
        offered_names = {name for name, _ in offer.extensions}
        for name, _ in parse_params_list([extensions]):
            if name not in offered_names:
                raise NegotiationError(f"cannot accept extension {name!r}: the client did not offer it")
        headers.append(("Sec-WebSocket-Extensions", extensions))
    headers.extend(extra_headers)
    return headers


def build_request_headers(
    host: str,
    *,
    key: str,
    subprotocols: Sequence[str] = (),
    extensions: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """Headers of a client opening handshake (RFC 6455 §4.1), for an ``h11.Request``.

    ``key`` comes from :func:`make_key`. ``subprotocols`` must be unique tokens
    (§4.1 item 10); ``extensions`` is the ready-made offer (§4.1 item 11).
    ``extra_headers`` (Origin, Authorization, ...) may not override the
    handshake's own fields. Invalid arguments raise ValueError.
    """
    if not host or any(c in host for c in " \t\r\n\0"):
        raise ValueError(f"invalid Host {host!r}")
    problem = _key_error(key)
    if problem is not None:
        raise ValueError(problem)
    for i, protocol in enumerate(subprotocols):
        if not is_token(protocol):
            raise ValueError(f"subprotocol {protocol!r} is not an RFC 9110 token")
        if protocol in subprotocols[:i]:
            raise ValueError(f"subprotocol {protocol!r} listed twice")  # §4.1 item 10 MUST
    if extensions:
        parse_params_list([extensions])  # raises ValueError if malformed
    _check_extra_headers(extra_headers, _CLIENT_RESERVED)
    headers = [
        ("Host", host),  # §4.1 item 4
        ("Upgrade", "websocket"),  # §4.1 item 5
        ("Connection", "Upgrade"),  # §4.1 item 6
        ("Sec-WebSocket-Key", key),  # §4.1 item 7
        ("Sec-WebSocket-Version", str(WEBSOCKET_VERSION)),  # §4.1 item 9
    ]
    if subprotocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    if extensions:
        headers.append(("Sec-WebSocket-Extensions", extensions))
    headers.extend(extra_headers)
    return headers


def _offered_extension_names(extensions_offered: Sequence[str]) -> set[str]:
    """Names from offers given either as bare names or as full offer strings."""
    names: set[str] = set()
    for offer in extensions_offered:
        names.update(name for name, _ in parse_params_list([offer]))
    return names


def check_response(
    status: int,
    headers: Sequence[tuple[bytes, bytes]] | Sequence[tuple[str, str]],
    *,
    key: str,
    subprotocols: Sequence[str],
    extensions_offered: Sequence[str] = (),
) -> ServerAccept:
    """Validate the server's answer to our handshake (RFC 6455 §4.1, client items 1-6).

    Every failure here obliges the client to *Fail the WebSocket Connection*.
    A non-101 status raises :class:`InvalidHandshake` (the trio layer turns a
    real HTTP response into :class:`HandshakeRejected` before calling this);
    bad Upgrade/Connection/Accept headers raise InvalidHandshake; a subprotocol
    or extension we did not offer raises :class:`NegotiationError`.
    ``extensions_offered`` are our offers, as names or full offer strings.
    """
    if status != 101:  # §4.1 client item 1
        raise InvalidHandshake(f"expected HTTP 101 Switching Protocols, got {status}")
    upgrade = get_all(headers, "upgrade")
    if not has_token(upgrade, "websocket"):  # §4.1 client item 2
        raise InvalidHandshake(f"Upgrade header must contain 'websocket', got {_shown(upgrade)}")
    connection = get_all(headers, "connection")
    if not has_token(connection, "upgrade"):  # §4.1 client item 3
        raise InvalidHandshake(f"Connection header must contain 'Upgrade', got {_shown(connection)}")
    accepts = get_all(headers, "sec-websocket-accept")
    if len(accepts) != 1:  # §4.1 client item 4
        raise InvalidHandshake(
            "missing Sec-WebSocket-Accept header"
            if not accepts
            else f"expected one Sec-WebSocket-Accept header, got {len(accepts)}"
        )
    expected = accept_key(key)
    if accepts[0].strip(_OWS) != expected:
        raise InvalidHandshake(f"Sec-WebSocket-Accept mismatch: expected {expected!r}, got {accepts[0]!r}")

    try:  # §4.1 client item 5
        extensions = parse_params_list(get_all(headers, "sec-websocket-extensions"))
    except ValueError as exc:
        raise InvalidHandshake(f"invalid Sec-WebSocket-Extensions header: {exc}") from exc
    if extensions:
        offered_names = _offered_extension_names(extensions_offered)
        for name, _ in extensions:
            if name not in offered_names:
                raise NegotiationError(f"server accepted extension {name!r}, which we did not offer")

    subprotocol = _chosen_subprotocol(headers, subprotocols)
    return ServerAccept(
        subprotocol=subprotocol,
        extensions=extensions,
        headers=[(_text(k), _text(v)) for k, v in headers],
    )


def _chosen_subprotocol(headers: HeaderList, offered: Sequence[str]) -> str | None:
    """The server's ``Sec-WebSocket-Protocol`` choice: at most one, and offered (§4.1 item 6)."""
    try:
        chosen = split_list(get_all(headers, "sec-websocket-protocol"))
    except ValueError as exc:
        raise NegotiationError(f"invalid Sec-WebSocket-Protocol header: {exc}") from exc
    if not chosen:
        return None
    if len(chosen) > 1:
        raise NegotiationError(f"server selected more than one subprotocol: {', '.join(chosen)}")
    if chosen[0] not in offered:
        raise NegotiationError(
            f"server selected subprotocol {chosen[0]!r}, which we did not offer"
            f" (offered: {', '.join(offered) or 'none'})"
        )
    return chosen[0]
