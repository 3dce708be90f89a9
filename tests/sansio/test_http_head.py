"""The fast request-head parser agrees with h11 on every head it accepts, and declines the rest."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_ws.sansio.http_head import RequestHead, parse_simple_head

SIMPLE = b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept:  */* \r\nX-Empty:\r\nX-Obs: caf\xe9 au\tlait\r\n\r\n"


def h11_head(data: bytes) -> RequestHead | None:
    """h11's reading of ``data`` (None if it needs more or refuses it)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(event, h11.Request):
        return None
    return RequestHead(event.method, event.target, list(event.headers), event.http_version)


def test_a_simple_head_and_what_follows() -> None:
    parsed = parse_simple_head(SIMPLE + b"GET /next")
    assert parsed is not None
    head, end = parsed
    assert end == len(SIMPLE)
    assert head == RequestHead(
        b"GET",
        b"/a?b=c",
        [(b"host", b"x"), (b"accept", b"*/*"), (b"x-empty", b""), (b"x-obs", b"caf\xe9 au\tlait")],
        b"1.1",
    )
    assert head == h11_head(SIMPLE)


@pytest.mark.parametrize(
    "data",
    [
        SIMPLE[:-1],  # incomplete
        b"GET / HTTP/1.1\nHost: x\n\n",  # bare LF
        b"GET / HTTP/1.0\r\n\r\n",  # HTTP/1.0
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n",  # obs-fold
        b"GET / HTTP/1.1\r\nHost: x\r\nA: b\x01c\r\n\r\n",  # a control character
        b"GET / HTTP/1.1\r\nHost: x\r\nA : b\r\n\r\n",  # space before the colon
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",  # two Hosts
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok",  # a body
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",  # a body
        b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",  # a switch proposal of its own
        b"GET /\xe9 HTTP/1.1\r\nHost: x\r\n\r\n",  # a target outside visible ASCII
        b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",  # a leading empty line
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # the HTTP/2 preface
    ],
)
def test_anything_else_is_left_to_h11(data: bytes) -> None:
    assert parse_simple_head(data) is None


_TOKEN = st.text(alphabet="abcXYZ-!#_09", min_size=1, max_size=6).map(str.encode)
_VALUE = st.text(alphabet=" \tab~\x7f\x80\xe9", max_size=8).map(
    lambda text: text.encode("latin-1")
) | st.binary(max_size=12)
_HEADERS = st.lists(st.tuples(st.sampled_from([b"Host", b"host", b"X", b"Content-Length"]) | _TOKEN, _VALUE))


@settings(max_examples=300)
@given(
    st.sampled_from([b"GET", b"HEAD", b"CONNECT", b"get"]) | _TOKEN,
    st.text(alphabet="/a?=%~\x7f\xe9 ", min_size=1, max_size=8).map(lambda text: text.encode("latin-1")),
    st.sampled_from([b"1.1", b"1.1", b"1.1", b"1.0", b"2.0"]),
    _HEADERS,
    st.binary(max_size=8),
)
def test_whatever_it_accepts_h11_reads_the_same(
    method: bytes, target: bytes, version: bytes, headers: list[tuple[bytes, bytes]], rest: bytes
) -> None:
    """The oracle: h11 itself, on heads built from awkward pieces."""
    lines = [b"%s %s HTTP/%s" % (method, target, version), b"Host: h"]
    lines += [name + b":" + value for name, value in headers]
    data = b"\r\n".join(lines) + b"\r\n\r\n" + rest
    parsed = parse_simple_head(data)
    if parsed is None:
        return
    head, end = parsed
    assert head == h11_head(data)
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.next_event()
    assert conn.next_event() == h11.EndOfMessage()  # no body
    assert conn.trailing_data[0] == data[end:]  # the head ends where h11's does
