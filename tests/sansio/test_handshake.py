"""RFC 6455 §4 opening handshake (trio_ws.sansio.handshake), both sides, byte level.

Requests and responses are written as raw HTTP bytes and parsed by h11, as the
trio layer will do, so header names arrive lowercased and values as bytes.
Interop tests use wsproto and websockets' sans-I/O cores as independent oracles.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

import h11
import pytest

from trio_ws.exceptions import HandshakeError, InvalidHandshake, NegotiationError
from trio_ws.sansio.handshake import (
    GUID,
    ClientOffer,
    ServerAccept,
    accept_key,
    accept_response_headers,
    build_request_headers,
    check_response,
    is_upgrade_request,
    make_key,
    validate_request,
)

Headers = list[tuple[bytes, bytes]]

# RFC 6455 §1.2 / §1.3 example handshake, verbatim.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
RFC_RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"\r\n"
)


def parse_request(raw: bytes) -> h11.Request:
    """Parse raw request bytes with an h11 server, as the HTTP layer does."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    event = conn.next_event()
    assert isinstance(event, h11.Request)
    return event


def parse_response(raw: bytes) -> h11.InformationalResponse | h11.Response:
    """Parse raw response bytes with an h11 client that has sent a GET upgrade."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(
        h11.Request(
            method="GET",
            target="/",
            headers=[("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade")],
        )
    )
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    event = conn.next_event()
    assert isinstance(event, h11.InformationalResponse | h11.Response)
    return event


def request_bytes(*lines: str, method: str = "GET", version: str = "1.1") -> bytes:
    head = f"{method} /chat HTTP/{version}\r\n" + "".join(f"{line}\r\n" for line in lines)
    return (head + "\r\n").encode("latin-1")


BASE = {
    "Host": "server.example.com",
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": RFC_KEY,
    "Sec-WebSocket-Version": "13",
}


def headers_with(**changes: str | list[str] | None) -> Headers:
    """BASE headers as h11 gives them, with fields replaced (list: several lines) or removed.

    Keyword names use underscores for dashes: ``Sec_WebSocket_Key=None``.
    """
    fields: dict[str, list[str]] = {name: [value] for name, value in BASE.items()}
    for key, value in changes.items():
        name = key.replace("_", "-")
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = [value] if isinstance(value, str) else value
    return [
        (name.lower().encode(), value.encode("latin-1"))
        for name, values in fields.items()
        for value in values
    ]


def validate(**changes: str | list[str] | None) -> ClientOffer:
    return validate_request(b"GET", b"1.1", headers_with(**changes))


def rejected(**changes: str | list[str] | None) -> InvalidHandshake:
    with pytest.raises(InvalidHandshake) as info:
        validate(**changes)
    return info.value


# ================================================================ keys


def test_accept_key_rfc_example() -> None:
    assert accept_key(RFC_KEY) == RFC_ACCEPT  # RFC 6455 §1.3
    assert accept_key(RFC_KEY.encode()) == RFC_ACCEPT
    assert accept_key(f" {RFC_KEY}\t") == RFC_ACCEPT


def test_accept_key_second_vector() -> None:
    assert accept_key("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk="


@pytest.mark.parametrize("key", [make_key(bytes([i]) * 16) for i in (0, 1, 0x7F, 0xFF)])
def test_accept_key_definition(key: str) -> None:
    digest = hashlib.sha1((key + GUID).encode()).digest()
    assert accept_key(key) == base64.b64encode(digest).decode()


def test_make_key() -> None:
    assert make_key(b"the sample nonce") == RFC_KEY  # the RFC's key decodes to this
    key = make_key(bytes(range(16)))
    assert len(key) == 24
    assert base64.b64decode(key, validate=True) == bytes(range(16))


@pytest.mark.parametrize("n", [0, 1, 15, 17, 32])
def test_make_key_wrong_length(n: int) -> None:
    with pytest.raises(ValueError, match=f"must be 16 bytes, got {n}"):
        make_key(b"x" * n)


# ================================================================ server: validate_request


def test_validate_rfc_example_request_bytes() -> None:
    request = parse_request(RFC_REQUEST)
    offer = validate_request(request.method, request.http_version, request.headers)
    assert offer == ClientOffer(key=RFC_KEY, subprotocols=["chat", "superchat"], extensions=[], version=13)


def test_validate_accepts_str_arguments_and_str_headers() -> None:
    headers = list(BASE.items())
    offer = validate_request("GET", "HTTP/1.1", headers)
    assert offer.key == RFC_KEY
    assert offer.subprotocols == []
    assert offer.version == 13


def test_client_offer_is_frozen() -> None:
    offer = validate()
    with pytest.raises(AttributeError):
        offer.key = "x"  # type: ignore[misc]


# ---- method (RFC 6455 §4.1 item 1)


@pytest.mark.parametrize("method", ["POST", b"POST", "get", "Get", "HEAD", "PUT", "CONNECT", ""])
def test_method_must_be_get(method: str | bytes) -> None:
    with pytest.raises(InvalidHandshake) as info:
        validate_request(method, b"1.1", headers_with())
    assert info.value.status_hint == 405
    assert info.value.headers == [("Allow", "GET")]
    assert "must use GET" in str(info.value)


def test_method_checked_first() -> None:
    with pytest.raises(InvalidHandshake) as info:
        validate_request(b"POST", b"1.0", [])
    assert info.value.status_hint == 405


def test_post_request_bytes_rejected() -> None:
    request = parse_request(request_bytes(*(f"{k}: {v}" for k, v in BASE.items()), method="POST"))
    with pytest.raises(InvalidHandshake, match="got 'POST'"):
        validate_request(request.method, request.http_version, request.headers)


# ---- HTTP version (RFC 6455 §4.1 item 1)


@pytest.mark.parametrize("version", ["1.1", b"1.1", "HTTP/1.1", b"HTTP/1.1", "1.2", "2", "2.0", "3"])
def test_http_version_ok(version: str | bytes) -> None:
    assert validate_request("GET", version, headers_with()).version == 13


@pytest.mark.parametrize(
    "version", ["1.0", b"1.0", "HTTP/1.0", "0.9", "1", "", "abc", "1.x", "x.1", "1.1.1", "-1.5"]
)
def test_http_version_too_old_or_garbage(version: str | bytes) -> None:
    with pytest.raises(InvalidHandshake, match=r"requires HTTP/1\.1 or later") as info:
        validate_request("GET", version, headers_with())
    assert info.value.status_hint == 400
    assert info.value.headers == []


def test_http_10_request_bytes_rejected() -> None:
    lines = [f"{k}: {v}" for k, v in BASE.items()]
    request = parse_request(request_bytes(*lines, version="1.0"))
    with pytest.raises(InvalidHandshake, match=r"got '1\.0'"):
        validate_request(request.method, request.http_version, request.headers)


# ---- Host (RFC 6455 §4.1 item 4 / §4.2.1 item 2; RFC 9112 §3.2)


def test_host_missing() -> None:
    error = rejected(Host=None)
    assert (error.status_hint, str(error)) == (400, "missing Host header")


def test_host_repeated() -> None:
    error = rejected(Host=["a.example", "b.example"])
    assert (error.status_hint, str(error)) == (400, "expected one Host header, got 2")


# ---- Upgrade (RFC 6455 §4.2.1 item 3)


@pytest.mark.parametrize(
    "upgrade",
    [
        "websocket",
        "WebSocket",
        "WEBSOCKET",
        "wEbSoCkEt",
        "h2c, websocket",
        "websocket, h2c",
        "foo/1, WebSocket, bar",
        "h2c,websocket",
        ["h2c", "websocket"],
        ["websocket", "h2c"],
        ["foo", "bar, Websocket"],
    ],
)
def test_upgrade_token_any_case_any_position(upgrade: str | list[str]) -> None:
    assert validate(Upgrade=upgrade).key == RFC_KEY


@pytest.mark.parametrize(
    ("upgrade", "shown"),
    [
        (None, "none"),
        ("websockets", "'websockets'"),
        ("web socket", "'web socket'"),
        ("h2c", "'h2c'"),
        ("websocket/13", "'websocket/13'"),
        ("websocket;q=1", "'websocket;q=1'"),
        (["h2c", "foo"], "'h2c, foo'"),
    ],
)
def test_upgrade_without_websocket_is_426(upgrade: str | list[str] | None, shown: str) -> None:
    error = rejected(Upgrade=upgrade)
    assert error.status_hint == 426
    assert error.headers == [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    assert str(error) == f"Upgrade header must contain 'websocket', got {shown}"


# ---- Connection (RFC 6455 §4.2.1 item 4)


@pytest.mark.parametrize(
    "connection",
    [
        "Upgrade",
        "upgrade",
        "UPGRADE",
        "keep-alive, Upgrade",
        "Upgrade, keep-alive",
        "keep-alive,upgrade,te",
        ["keep-alive", "Upgrade"],
        ["Upgrade", "keep-alive"],
        ["keep-alive", "te, UpGrAdE"],
    ],
)
def test_connection_token_any_case_any_position(connection: str | list[str]) -> None:
    assert validate(Connection=connection).key == RFC_KEY


@pytest.mark.parametrize(
    ("connection", "shown"),
    [
        (None, "none"),
        ("keep-alive", "'keep-alive'"),
        ("close", "'close'"),
        ("upgrades", "'upgrades'"),
        ("keep-alive upgrade", "'keep-alive upgrade'"),
        (["keep-alive", "close"], "'keep-alive, close'"),
    ],
)
def test_connection_without_upgrade_is_400(connection: str | list[str] | None, shown: str) -> None:
    error = rejected(Connection=connection)
    assert error.status_hint == 400
    assert error.headers == []
    assert str(error) == f"Connection header must contain 'Upgrade', got {shown}"


# ---- Sec-WebSocket-Version (RFC 6455 §4.2.1 item 6, §4.2.2 item 4)


@pytest.mark.parametrize(
    ("version", "shown"),
    [
        (None, "none"),
        ("8", "'8'"),
        ("12", "'12'"),
        ("14", "'14'"),
        ("013", "'013'"),
        ("13, 8", "'13, 8'"),
        ("13.0", "'13.0'"),
        ("", "''"),
        (["13", "13"], "'13, 13'"),
        (["8", "13"], "'8, 13'"),
    ],
)
def test_wrong_version_is_426_with_supported_version(version: str | list[str] | None, shown: str) -> None:
    error = rejected(Sec_WebSocket_Version=version)
    assert error.status_hint == 426
    assert error.headers == [("Sec-WebSocket-Version", "13")]
    assert str(error) == f"unsupported Sec-WebSocket-Version {shown}, this server speaks 13"


def test_version_checked_before_key() -> None:
    # a hixie-76 client sends neither a version nor Sec-WebSocket-Key
    error = rejected(Sec_WebSocket_Version=None, Sec_WebSocket_Key=None)
    assert error.status_hint == 426


def test_version_with_surrounding_whitespace_in_str_headers() -> None:
    headers = [(k, v) for k, v in BASE.items() if k != "Sec-WebSocket-Version"]
    offer = validate_request("GET", "1.1", [*headers, ("Sec-WebSocket-Version", " 13\t")])
    assert offer.version == 13


# ---- Sec-WebSocket-Key (RFC 6455 §4.1 item 7, §4.2.1 item 5)


@pytest.mark.parametrize("raw", [bytes(16), b"\xff" * 16, bytes(range(16)), b"the sample nonce"])
def test_key_valid(raw: bytes) -> None:
    key = base64.b64encode(raw).decode()
    assert validate(Sec_WebSocket_Key=key).key == key


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "missing Sec-WebSocket-Key header"),
        ([RFC_KEY, RFC_KEY], "expected one Sec-WebSocket-Key header, got 2"),
        ("", "Sec-WebSocket-Key must decode to 16 bytes, got 0"),
        ("AAAAAAAAAAAAAAAA", "Sec-WebSocket-Key must decode to 16 bytes, got 12"),
        (base64.b64encode(bytes(15)).decode(), "must decode to 16 bytes, got 15"),
        (base64.b64encode(bytes(17)).decode(), "must decode to 16 bytes, got 17"),
        (base64.b64encode(bytes(32)).decode(), "must decode to 16 bytes, got 32"),
        ("dGhlIHNhbXBsZSBub25jZQ", "Sec-WebSocket-Key is not valid base64: 'dGhlIHNhbXBsZSBub25jZQ'"),
        ("dGhlIHNh bXBsZSBub25jZQ==", "is not valid base64"),
        ("dGhlIHNhbXBsZSBub25jZQ==,", "is not valid base64"),
        ("dGhlIHNhbXBsZSBub25jZQ-_", "is not valid base64"),
        ("!!!!!!!!!!!!!!!!!!!!!!==", "is not valid base64"),
        ("dGhlIHNhbXBsZSBub25jZQ==\xff", "is not valid base64"),
        (f"{RFC_KEY}, {RFC_KEY}", "is not valid base64"),
    ],
)
def test_key_invalid(key: str | list[str] | None, message: str) -> None:
    error = rejected(Sec_WebSocket_Key=key)
    assert error.status_hint == 400
    assert message in str(error)


def test_key_non_ascii_str_header() -> None:
    headers = [(k, v) for k, v in BASE.items() if k != "Sec-WebSocket-Key"]
    with pytest.raises(InvalidHandshake, match="not valid base64"):
        validate_request("GET", "1.1", [*headers, ("Sec-WebSocket-Key", "\u20ac" * 24)])


# ---- Sec-WebSocket-Protocol (RFC 6455 §4.1 item 10)


@pytest.mark.parametrize(
    ("protocols", "expected"),
    [
        (None, []),
        ("chat", ["chat"]),
        ("chat, superchat", ["chat", "superchat"]),
        ("chat,superchat,,", ["chat", "superchat"]),
        (["chat", "superchat"], ["chat", "superchat"]),
        (["chat, v2.json", "mqtt"], ["chat", "v2.json", "mqtt"]),
        ("chat, Chat", ["chat", "Chat"]),  # case-sensitive identifiers
        ("chat, chat", ["chat"]),
        (["chat", "chat, x"], ["chat", "x"]),
        ("", []),
    ],
)
def test_subprotocols_parsed(protocols: str | list[str] | None, expected: list[str]) -> None:
    assert validate(Sec_WebSocket_Protocol=protocols).subprotocols == expected


@pytest.mark.parametrize(
    ("protocols", "message"),
    [
        ("chat/1", "invalid subprotocol 'chat/1' in Sec-WebSocket-Protocol"),
        ("chat superchat", "invalid subprotocol 'chat superchat'"),
        ('"chat"', "invalid subprotocol '\"chat\"'"),
        ("chat; v=1", "invalid subprotocol 'chat; v=1'"),
        ('"chat', "invalid Sec-WebSocket-Protocol header: unterminated quoted-string"),
    ],
)
def test_subprotocols_invalid(protocols: str, message: str) -> None:
    error = rejected(Sec_WebSocket_Protocol=protocols)
    assert error.status_hint == 400
    assert message in str(error)


# ---- Sec-WebSocket-Extensions (RFC 6455 §4.1 item 11, §9.1)


def test_extensions_parsed_across_lines() -> None:
    offer = validate(
        Sec_WebSocket_Extensions=[
            "permessage-deflate; client_max_window_bits",
            'permessage-deflate; server_max_window_bits="10", x-foo',
        ]
    )
    assert offer.extensions == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("permessage-deflate", [("server_max_window_bits", "10")]),
        ("x-foo", []),
    ]


@pytest.mark.parametrize("value", ["permessage-deflate; a b", "; x", 'x; y="', "x; y=a b"])
def test_extensions_invalid(value: str) -> None:
    error = rejected(Sec_WebSocket_Extensions=value)
    assert error.status_hint == 400
    assert str(error).startswith("invalid Sec-WebSocket-Extensions header: ")
    assert isinstance(error.__cause__, ValueError)


def test_invalid_handshake_is_a_handshake_error() -> None:
    assert isinstance(rejected(Host=None), HandshakeError)


# ---- is_upgrade_request


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"upgrade", b"websocket")], True),
        ([(b"upgrade", b"WebSocket")], True),
        ([(b"upgrade", b"h2c, websocket")], True),
        ([(b"upgrade", b"h2c"), (b"upgrade", b"websocket")], True),
        ([("Upgrade", "websocket")], True),
        ([], False),
        ([(b"upgrade", b"h2c")], False),
        ([(b"connection", b"upgrade")], False),
        ([(b"x-upgrade", b"websocket")], False),
        ([(b"upgrade", b'"websocket')], False),
    ],
)
def test_is_upgrade_request(headers: Headers, expected: bool) -> None:
    assert is_upgrade_request(headers) is expected


def test_is_upgrade_request_rfc_example() -> None:
    assert is_upgrade_request(parse_request(RFC_REQUEST).headers)


# ================================================================ server: accept_response_headers


def rfc_offer() -> ClientOffer:
    request = parse_request(RFC_REQUEST)
    return validate_request(request.method, request.http_version, request.headers)


def test_accept_headers_rfc_example() -> None:
    headers = accept_response_headers(rfc_offer(), subprotocol="chat")
    assert headers == [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", RFC_ACCEPT),
        ("Sec-WebSocket-Protocol", "chat"),
    ]


def test_accept_headers_serialize_to_rfc_response() -> None:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(RFC_REQUEST)
    assert isinstance(conn.next_event(), h11.Request)
    assert isinstance(conn.next_event(), h11.EndOfMessage)
    headers = accept_response_headers(rfc_offer(), subprotocol="chat")
    response = h11.InformationalResponse(status_code=101, headers=headers, reason=b"Switching Protocols")
    assert conn.send(response) == RFC_RESPONSE
    assert conn.our_state is h11.SWITCHED_PROTOCOL


def test_accept_headers_without_subprotocol() -> None:
    headers = accept_response_headers(rfc_offer(), subprotocol=None)
    assert [name for name, _ in headers] == ["Upgrade", "Connection", "Sec-WebSocket-Accept"]


@pytest.mark.parametrize(
    ("offered", "chosen", "message"),
    [
        (None, "chat", "cannot select subprotocol 'chat': the client offered none"),
        ("chat", "superchat", "cannot select subprotocol 'superchat': the client offered chat"),
        ("chat, superchat", "Chat", "the client offered chat, superchat"),
        ("chat", "", "cannot select subprotocol ''"),
    ],
)
def test_accept_headers_subprotocol_not_offered(offered: str | None, chosen: str, message: str) -> None:
    offer = validate(Sec_WebSocket_Protocol=offered)
    with pytest.raises(NegotiationError, match=message):
        accept_response_headers(offer, subprotocol=chosen)


def test_accept_headers_second_choice() -> None:
    headers = accept_response_headers(rfc_offer(), subprotocol="superchat")
    assert headers[-1] == ("Sec-WebSocket-Protocol", "superchat")


def test_accept_headers_extensions() -> None:
    offer = validate(Sec_WebSocket_Extensions="permessage-deflate; client_max_window_bits, x-foo")
    answer = "permessage-deflate; server_max_window_bits=10"
    headers = accept_response_headers(offer, subprotocol=None, extensions=answer)
    assert headers[-1] == ("Sec-WebSocket-Extensions", answer)
    assert accept_response_headers(offer, subprotocol=None, extensions="") == (
        accept_response_headers(offer, subprotocol=None)
    )


def test_accept_headers_extension_not_offered() -> None:
    offer = validate(Sec_WebSocket_Extensions="x-foo")
    with pytest.raises(
        NegotiationError,
        match="cannot accept extension 'permessage-deflate': the client did not offer it",
    ):
        accept_response_headers(offer, subprotocol=None, extensions="permessage-deflate")


def test_accept_headers_extension_malformed() -> None:
    offer = validate(Sec_WebSocket_Extensions="x-foo")
    with pytest.raises(ValueError, match="invalid parameter name"):
        accept_response_headers(offer, subprotocol=None, extensions="x-foo; a b")


def test_accept_headers_extra_headers_appended() -> None:
    extra = [("Set-Cookie", "a=b"), ("X-Served-By", "trio_ws"), ("Set-Cookie", "c=d")]
    headers = accept_response_headers(rfc_offer(), subprotocol=None, extra_headers=extra)
    assert headers[3:] == extra


@pytest.mark.parametrize(
    "name",
    [
        "Upgrade",
        "connection",
        "SEC-WEBSOCKET-ACCEPT",
        "Sec-WebSocket-Protocol",
        "sec-websocket-extensions",
    ],
)
def test_accept_headers_extra_cannot_override(name: str) -> None:
    with pytest.raises(ValueError, match=f"extra_headers may not set '{name}'"):
        accept_response_headers(rfc_offer(), subprotocol=None, extra_headers=[(name, "x")])


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (("Bad Name", "x"), "invalid header name 'Bad Name'"),
        (("", "x"), "invalid header name ''"),
        (("X-A:", "x"), "invalid header name"),
        (("X-A", "a\r\nSet-Cookie: evil=1"), "invalid character in value of header 'X-A'"),
        (("X-A", "a\nb"), "invalid character"),
        (("X-A", "a\0b"), "invalid character"),
    ],
)
def test_accept_headers_extra_must_be_well_formed(header: tuple[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        accept_response_headers(rfc_offer(), subprotocol=None, extra_headers=[header])


# ================================================================ client: build_request_headers

KEY = make_key(bytes(range(16)))


def test_build_request_headers_minimal() -> None:
    assert build_request_headers("example.com", key=KEY) == [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY),
        ("Sec-WebSocket-Version", "13"),
    ]


def test_build_request_headers_full() -> None:
    headers = build_request_headers(
        "example.com:8080",
        key=KEY,
        subprotocols=["chat", "superchat"],
        extensions="permessage-deflate; client_max_window_bits",
        extra_headers=[("Origin", "http://example.com"), ("Authorization", "Bearer x")],
    )
    assert headers[5:] == [
        ("Sec-WebSocket-Protocol", "chat, superchat"),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ("Origin", "http://example.com"),
        ("Authorization", "Bearer x"),
    ]


def test_build_request_headers_round_trip_through_h11_and_validate() -> None:
    headers = build_request_headers(
        "server.example.com", key=RFC_KEY, subprotocols=("chat", "superchat"),
        extra_headers=[("Origin", "http://example.com")],
    )  # fmt: skip
    client = h11.Connection(h11.CLIENT)
    data = client.send(h11.Request(method="GET", target="/chat", headers=headers))
    assert data is not None
    request = parse_request(data)
    offer = validate_request(request.method, request.http_version, request.headers)
    assert offer == rfc_offer()


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "upgrade",
        "CONNECTION",
        "Sec-WebSocket-Key",
        "sec-websocket-version",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
    ],
)
def test_build_request_headers_extra_cannot_override(name: str) -> None:
    with pytest.raises(ValueError, match=f"extra_headers may not set '{name}'"):
        build_request_headers("example.com", key=KEY, extra_headers=[(name, "x")])


def test_build_request_headers_extra_injection() -> None:
    with pytest.raises(ValueError, match="invalid character"):
        build_request_headers("h", key=KEY, extra_headers=[("Origin", "x\r\nHost: evil")])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": ""}, "invalid Host ''"),
        ({"host": "a b"}, "invalid Host"),
        ({"host": "a\r\nX: y"}, "invalid Host"),
        ({"key": "short"}, "is not valid base64"),
        ({"key": "AAAAAAAAAAAAAAAA"}, "must decode to 16 bytes, got 12"),
        ({"subprotocols": ["chat", "chat/2"]}, "subprotocol 'chat/2' is not an RFC 9110 token"),
        ({"subprotocols": [""]}, "subprotocol '' is not an RFC 9110 token"),
        ({"subprotocols": ["chat", "x", "chat"]}, "subprotocol 'chat' listed twice"),
        ({"extensions": "permessage-deflate; a b"}, "invalid parameter name"),
    ],
)
def test_build_request_headers_invalid(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"host": "example.com", "key": KEY, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_request_headers(**args)  # type: ignore[arg-type]


# ================================================================ client: check_response


def response_headers(**changes: str | list[str] | None) -> Headers:
    fields: dict[str, list[str]] = {
        "Upgrade": ["websocket"],
        "Connection": ["Upgrade"],
        "Sec-WebSocket-Accept": [RFC_ACCEPT],
    }
    for key, value in changes.items():
        name = key.replace("_", "-")
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = [value] if isinstance(value, str) else value
    return [(n.lower().encode(), v.encode("latin-1")) for n, vs in fields.items() for v in vs]


def check(
    *,
    subprotocols: Sequence[str] = (),
    extensions_offered: Sequence[str] = (),
    status: int = 101,
    **changes: str | list[str] | None,
) -> ServerAccept:
    return check_response(
        status,
        response_headers(**changes),
        key=RFC_KEY,
        subprotocols=subprotocols,
        extensions_offered=extensions_offered,
    )


def test_check_rfc_example_response_bytes() -> None:
    response = parse_response(RFC_RESPONSE)
    accepted = check_response(
        response.status_code, response.headers, key=RFC_KEY, subprotocols=["chat", "superchat"]
    )
    assert accepted == ServerAccept(
        subprotocol="chat",
        extensions=[],
        headers=[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", RFC_ACCEPT),
            ("sec-websocket-protocol", "chat"),
        ],
    )


def test_check_accepts_str_headers() -> None:
    headers = [("Upgrade", "WebSocket"), ("Connection", "upgrade"), ("Sec-WebSocket-Accept", RFC_ACCEPT)]
    accepted = check_response(101, headers, key=RFC_KEY, subprotocols=[])
    assert accepted.subprotocol is None
    assert accepted.headers == headers


@pytest.mark.parametrize("status", [100, 200, 204, 301, 400, 403, 426, 500])
def test_check_status_must_be_101(status: int) -> None:
    with pytest.raises(InvalidHandshake, match=f"expected HTTP 101 Switching Protocols, got {status}"):
        check(status=status)


@pytest.mark.parametrize("upgrade", ["websocket", "WebSocket", "h2c, WEBSOCKET", ["x", "websocket"]])
def test_check_upgrade_ok(upgrade: str | list[str]) -> None:
    assert check(Upgrade=upgrade).subprotocol is None


@pytest.mark.parametrize(("upgrade", "shown"), [(None, "none"), ("h2c", "'h2c'"), ("", "''")])
def test_check_upgrade_bad(upgrade: str | None, shown: str) -> None:
    with pytest.raises(InvalidHandshake, match=f"Upgrade header must contain 'websocket', got {shown}"):
        check(Upgrade=upgrade)


@pytest.mark.parametrize("connection", ["Upgrade", "UPGRADE", "keep-alive, upgrade", ["a", "Upgrade"]])
def test_check_connection_ok(connection: str | list[str]) -> None:
    assert check(Connection=connection).extensions == []


@pytest.mark.parametrize(("connection", "shown"), [(None, "none"), ("close", "'close'")])
def test_check_connection_bad(connection: str | None, shown: str) -> None:
    with pytest.raises(InvalidHandshake, match=f"Connection header must contain 'Upgrade', got {shown}"):
        check(Connection=connection)


@pytest.mark.parametrize(
    ("accept", "message"),
    [
        (None, "missing Sec-WebSocket-Accept header"),
        ([RFC_ACCEPT, RFC_ACCEPT], "expected one Sec-WebSocket-Accept header, got 2"),
        ("", f"Sec-WebSocket-Accept mismatch: expected '{RFC_ACCEPT}', got ''"),
        (RFC_ACCEPT.lower(), "Sec-WebSocket-Accept mismatch"),
        (accept_key(KEY), "Sec-WebSocket-Accept mismatch"),
        (RFC_KEY, "Sec-WebSocket-Accept mismatch"),  # echoing the key is not accepting it
    ],
)
def test_check_accept_bad(accept: str | list[str] | None, message: str) -> None:
    with pytest.raises(InvalidHandshake, match=message.replace("+", r"\+")):
        check(Sec_WebSocket_Accept=accept)


def test_check_accept_whitespace_tolerated_in_str_headers() -> None:
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", f" {RFC_ACCEPT} "),
    ]
    assert check_response(101, headers, key=RFC_KEY, subprotocols=[]).subprotocol is None


@pytest.mark.parametrize(
    ("chosen", "offered", "expected"),
    [
        (None, [], None),
        (None, ["chat"], None),
        ("", ["chat"], None),
        ("chat", ["chat"], "chat"),
        ("superchat", ["chat", "superchat"], "superchat"),
    ],
)
def test_check_subprotocol_ok(chosen: str | None, offered: list[str], expected: str | None) -> None:
    assert check(Sec_WebSocket_Protocol=chosen, subprotocols=offered).subprotocol == expected


@pytest.mark.parametrize(
    ("chosen", "offered", "message"),
    [
        ("chat", [], "server selected subprotocol 'chat', which we did not offer \\(offered: none\\)"),
        ("Chat", ["chat"], "server selected subprotocol 'Chat', which we did not offer"),
        ("x", ["chat", "superchat"], "\\(offered: chat, superchat\\)"),
        ("chat, superchat", ["chat", "superchat"], "more than one subprotocol: chat, superchat"),
        (["chat", "superchat"], ["chat", "superchat"], "more than one subprotocol"),
        (["chat", "chat"], ["chat"], "more than one subprotocol: chat, chat"),
        ('"chat', ["chat"], "invalid Sec-WebSocket-Protocol header: unterminated"),
    ],
)
def test_check_subprotocol_bad(chosen: str | list[str], offered: list[str], message: str) -> None:
    with pytest.raises(NegotiationError, match=message):
        check(Sec_WebSocket_Protocol=chosen, subprotocols=offered)


@pytest.mark.parametrize(
    "offered",
    [
        ["permessage-deflate"],
        ["permessage-deflate; client_max_window_bits"],
        ["x-foo", "permessage-deflate; client_max_window_bits, permessage-deflate"],
    ],
)
def test_check_extension_offered(offered: list[str]) -> None:
    accepted = check(
        Sec_WebSocket_Extensions="permessage-deflate; server_max_window_bits=10",
        extensions_offered=offered,
    )
    assert accepted.extensions == [("permessage-deflate", [("server_max_window_bits", "10")])]


@pytest.mark.parametrize(
    ("answer", "offered"),
    [
        ("permessage-deflate", []),
        ("permessage-deflate", ["x-foo"]),
        ("Permessage-Deflate", ["permessage-deflate"]),
        (["x-foo", "permessage-deflate"], ["x-foo"]),
    ],
)
def test_check_extension_not_offered(answer: str | list[str], offered: list[str]) -> None:
    with pytest.raises(NegotiationError, match=r"server accepted extension '.*', which we did not offer"):
        check(Sec_WebSocket_Extensions=answer, extensions_offered=offered)


def test_check_extension_malformed() -> None:
    with pytest.raises(InvalidHandshake, match="invalid Sec-WebSocket-Extensions header") as info:
        check(Sec_WebSocket_Extensions="permessage-deflate; =1", extensions_offered=["permessage-deflate"])
    assert isinstance(info.value.__cause__, ValueError)


def test_check_empty_extensions_header_is_no_extension() -> None:
    assert check(Sec_WebSocket_Extensions="").extensions == []


# ================================================================ both sides, our code only


def test_full_handshake_over_h11_bytes() -> None:
    client = h11.Connection(h11.CLIENT)
    server = h11.Connection(h11.SERVER)
    key = make_key(b"0123456789abcdef")
    request = h11.Request(
        method="GET",
        target="/ws",
        headers=build_request_headers(
            "localhost:8000", key=key, subprotocols=["v2", "v1"], extensions="x-foo; a=1"
        ),
    )
    server.receive_data(b"".join(d for d in (client.send(request), client.send(h11.EndOfMessage())) if d))
    received = server.next_event()
    assert isinstance(received, h11.Request)
    assert is_upgrade_request(received.headers)
    offer = validate_request(received.method, received.http_version, received.headers)
    assert offer.subprotocols == ["v2", "v1"]
    assert offer.extensions == [("x-foo", [("a", "1")])]
    assert isinstance(server.next_event(), h11.EndOfMessage)
    headers = accept_response_headers(offer, subprotocol="v1", extensions="x-foo")
    data = server.send(h11.InformationalResponse(status_code=101, headers=headers))
    assert data is not None
    client.receive_data(data + b"\x81\x00")  # trailing frame bytes stay unparsed
    response = client.next_event()
    assert isinstance(response, h11.InformationalResponse)
    accepted = check_response(
        response.status_code, response.headers, key=key, subprotocols=["v2", "v1"],
        extensions_offered=["x-foo; a=1"],
    )  # fmt: skip
    assert accepted.subprotocol == "v1"
    assert accepted.extensions == [("x-foo", [])]
    assert client.trailing_data == (b"\x81\x00", False)


# ================================================================ interop: wsproto


def test_wsproto_client_request_validates_and_accepts_our_response() -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    ws = WSConnection(ConnectionType.CLIENT)
    data = ws.send(Request(host="example.com", target="/chat", subprotocols=["chat", "superchat"]))
    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert is_upgrade_request(request.headers)
    offer = validate_request(request.method, request.http_version, request.headers)
    assert offer.subprotocols == ["chat", "superchat"]
    assert isinstance(server.next_event(), h11.EndOfMessage)

    headers = accept_response_headers(offer, subprotocol="superchat")
    ws.receive_data(server.send(h11.InformationalResponse(status_code=101, headers=headers)))
    events = list(ws.events())
    assert len(events) == 1
    assert isinstance(events[0], AcceptConnection)
    assert events[0].subprotocol == "superchat"


def test_wsproto_client_deflate_offer_parses() -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request
    from wsproto.extensions import PerMessageDeflate

    ws = WSConnection(ConnectionType.CLIENT)
    data = ws.send(Request(host="example.com", target="/", extensions=[PerMessageDeflate()]))
    request = parse_request(data)
    offer = validate_request(request.method, request.http_version, request.headers)
    assert [name for name, _ in offer.extensions] == ["permessage-deflate"]
    assert ("client_max_window_bits", "15") in offer.extensions[0][1]

    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    server.next_event()
    server.next_event()
    headers = accept_response_headers(offer, subprotocol=None, extensions="permessage-deflate")
    ws.receive_data(server.send(h11.InformationalResponse(status_code=101, headers=headers)))
    [event] = ws.events()
    assert isinstance(event, AcceptConnection)
    assert [ext.name for ext in event.extensions] == ["permessage-deflate"]


def test_wsproto_client_rejects_a_wrong_accept_that_we_also_reject() -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import Request
    from wsproto.utilities import RemoteProtocolError

    ws = WSConnection(ConnectionType.CLIENT)
    request = parse_request(ws.send(Request(host="example.com", target="/")))
    offer = validate_request(request.method, request.http_version, request.headers)
    bad = ClientOffer(key=RFC_KEY, subprotocols=[], extensions=[], version=13)
    headers = accept_response_headers(bad, subprotocol=None)
    raw = (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers)
        + b"\r\n"
    )
    with pytest.raises(RemoteProtocolError):
        ws.receive_data(raw)
    with pytest.raises(InvalidHandshake, match="Sec-WebSocket-Accept mismatch"):
        check_response(101, parse_response(raw).headers, key=offer.key, subprotocols=[])


def test_our_client_request_accepted_by_wsproto_server() -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request

    key = make_key(b"\x00" * 8 + b"\xff" * 8)
    client = h11.Connection(h11.CLIENT)
    headers = build_request_headers(
        "example.com", key=key, subprotocols=["chat", "superchat"],
        extra_headers=[("Origin", "http://example.com")],
    )  # fmt: skip
    data = client.send(h11.Request(method="GET", target="/chat", headers=headers))
    end = client.send(h11.EndOfMessage())
    assert data is not None
    assert end is not None

    ws = WSConnection(ConnectionType.SERVER)
    ws.receive_data(data + end)
    [event] = ws.events()
    assert isinstance(event, Request)
    assert event.subprotocols == ["chat", "superchat"]
    reply = ws.send(AcceptConnection(subprotocol="chat"))

    client.receive_data(reply)
    response = client.next_event()
    assert isinstance(response, h11.InformationalResponse)
    accepted = check_response(
        response.status_code, response.headers, key=key, subprotocols=["chat", "superchat"]
    )
    assert accepted.subprotocol == "chat"


# ================================================================ interop: websockets


def test_websockets_client_request_validates_and_accepts_our_response() -> None:
    from websockets.client import ClientProtocol
    from websockets.http11 import Response
    from websockets.protocol import State
    from websockets.typing import Subprotocol
    from websockets.uri import parse_uri

    ws = ClientProtocol(
        parse_uri("ws://example.com:8765/chat"),
        subprotocols=[Subprotocol("chat"), Subprotocol("superchat")],
    )
    ws.send_request(ws.connect())
    data = b"".join(ws.data_to_send())
    request = parse_request(data)
    offer = validate_request(request.method, request.http_version, request.headers)
    assert offer.subprotocols == ["chat", "superchat"]

    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    server.next_event()
    server.next_event()
    headers = accept_response_headers(offer, subprotocol="chat")
    reply = server.send(h11.InformationalResponse(status_code=101, headers=headers))
    assert reply is not None
    ws.receive_data(reply)
    assert ws.handshake_exc is None
    [event] = ws.events_received()
    assert isinstance(event, Response)
    assert event.status_code == 101
    assert ws.state is State.OPEN
    assert ws.subprotocol == "chat"


def test_our_client_request_accepted_by_websockets_server() -> None:
    from websockets.http11 import Request
    from websockets.server import ServerProtocol
    from websockets.typing import Subprotocol

    key = make_key(bytes(range(100, 116)))
    client = h11.Connection(h11.CLIENT)
    headers = build_request_headers("example.com", key=key, subprotocols=["superchat", "chat"])
    data = client.send(h11.Request(method="GET", target="/chat", headers=headers))
    assert data is not None

    ws = ServerProtocol(subprotocols=[Subprotocol("chat")])
    ws.receive_data(data)
    [event] = ws.events_received()
    assert isinstance(event, Request)
    response = ws.accept(event)
    assert ws.handshake_exc is None
    ws.send_response(response)
    assert response.status_code == 101

    client.send(h11.EndOfMessage())
    client.receive_data(b"".join(ws.data_to_send()))
    reply = client.next_event()
    assert isinstance(reply, h11.InformationalResponse)
    accepted = check_response(reply.status_code, reply.headers, key=key, subprotocols=["superchat", "chat"])
    assert accepted.subprotocol == "chat"
    assert ("upgrade", "websocket") in accepted.headers
