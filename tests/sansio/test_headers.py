"""RFC 9110 §5.6 list, token and parameter helpers (trio_ws.sansio.headers)."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from trio_ws.sansio.headers import (
    Params,
    get_all,
    has_token,
    is_token,
    parse_params_list,
    split_list,
)

TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters

# ---------------------------------------------------------------- is_token


@pytest.mark.parametrize("s", ["websocket", "Upgrade", "a", "13", TCHAR, "x-y.z~1", "!#$%&'*+"])
def test_is_token_true(s: str) -> None:
    assert is_token(s)


@pytest.mark.parametrize(
    "s",
    ["", " ", "a b", "a,b", "a;b", 'a"b', "a=b", "a/b", "(a)", "a\t", "a\n", "\x7f", "é", "a:b",
     "[a]", "{a}", "a@b", "a?b", "a\\b", "websocket\n", "\x00"],
)  # fmt: skip
def test_is_token_false(s: str) -> None:
    assert not is_token(s)


@pytest.mark.parametrize("code", range(256))
def test_is_token_every_single_octet(code: int) -> None:
    assert is_token(chr(code)) == (chr(code) in TCHAR)


# ---------------------------------------------------------------- get_all

BYTES_HEADERS = [
    (b"host", b"example.com"),
    (b"connection", b"keep-alive"),
    (b"connection", b"Upgrade"),
    (b"x-latin", b"caf\xe9"),
]
STR_HEADERS = [("Host", "example.com"), ("CONNECTION", "keep-alive"), ("connection", "Upgrade")]


def test_get_all_bytes_headers_in_order() -> None:
    assert get_all(BYTES_HEADERS, "connection") == ["keep-alive", "Upgrade"]
    assert get_all(BYTES_HEADERS, "Connection") == ["keep-alive", "Upgrade"]
    assert get_all(BYTES_HEADERS, b"CONNECTION") == ["keep-alive", "Upgrade"]
    assert get_all(BYTES_HEADERS, "upgrade") == []


def test_get_all_bytes_header_names_not_yet_lowercased() -> None:
    assert get_all([(b"Sec-WebSocket-Key", b"k")], "sec-websocket-key") == ["k"]


def test_get_all_decodes_latin1() -> None:
    assert get_all(BYTES_HEADERS, "x-latin") == ["café"]


def test_get_all_str_headers_case_insensitive() -> None:
    assert get_all(STR_HEADERS, "connection") == ["keep-alive", "Upgrade"]
    assert get_all(STR_HEADERS, "HOST") == ["example.com"]
    assert get_all(STR_HEADERS, b"host") == ["example.com"]
    assert get_all([], "host") == []


def test_get_all_works_on_h11_headers() -> None:
    import h11

    request = h11.Request(method="GET", target="/", headers=[("Host", "a"), ("X-A", "1"), ("x-a", "2")])
    assert get_all(request.headers, "x-a") == ["1", "2"]


# ---------------------------------------------------------------- split_list


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], []),
        ([""], []),
        (["a"], ["a"]),
        ([b"a"], ["a"]),
        (["a,b"], ["a", "b"]),
        (["a, b ,\tc"], ["a", "b", "c"]),
        ([" a "], ["a"]),
        # RFC 9110 §5.6.1: empty elements are accepted and ignored
        ([",a,,b,"], ["a", "b"]),
        ([", ,\t,"], []),
        (["a", "b, c"], ["a", "b", "c"]),
        ([b"a", "b"], ["a", "b"]),
        # commas inside a quoted-string do not split (§5.6.4)
        (['a; p="x, y", b'], ['a; p="x, y"', "b"]),
        (['"a,b"'], ['"a,b"']),
        ([r'a; p="x\", y", b'], [r'a; p="x\", y"', "b"]),
        (['a; p="", b'], ['a; p=""', "b"]),
        (['"x" , "y"'], ['"x"', '"y"']),
    ],
)
def test_split_list(values: list[str | bytes], expected: list[str]) -> None:
    assert split_list(values) == expected


@pytest.mark.parametrize("value", ['"abc', 'a, "b', 'a; p="x\\"', 'a; p="\\', '"'])
def test_split_list_unterminated_quote(value: str) -> None:
    with pytest.raises(ValueError, match="unterminated quoted-string"):
        split_list([value])


# ---------------------------------------------------------------- has_token


@pytest.mark.parametrize(
    "values",
    [
        ["Upgrade"],
        ["upgrade"],
        ["UPGRADE"],
        ["uPgRaDe"],
        ["keep-alive, Upgrade"],
        ["Upgrade, keep-alive"],
        ["keep-alive,Upgrade,close"],
        ["keep-alive ,\t upgrade\t"],
        ["keep-alive", "Upgrade"],
        ["close", "te, Upgrade"],
        [b"keep-alive, Upgrade"],
        [b"keep-alive", b"upgrade"],
        [",,Upgrade,"],
        [" Upgrade "],
    ],
)
def test_has_token_found(values: list[str | bytes]) -> None:
    assert has_token(values, "upgrade")
    assert has_token(values, "Upgrade")
    assert has_token(values, "UPGRADE")


@pytest.mark.parametrize(
    "values",
    [
        [],
        [""],
        ["keep-alive"],
        ["keep-alive, close"],
        ["upgrades"],
        ["Upgrade2"],
        ["up grade"],
        ["keep-alive Upgrade"],  # a space is not a list separator
        ["keep-alive; Upgrade"],
        ["xupgrade, upgradex"],
        [b"websocket"],
    ],
)
def test_has_token_not_found(values: list[str | bytes]) -> None:
    assert not has_token(values, "upgrade")


def test_has_token_websocket_any_case_any_position() -> None:
    for value in ["websocket", "WebSocket", "h2c, WEBSOCKET", "foo/1, websocket, bar"]:
        assert has_token([value], "websocket")
        assert has_token([value.encode()], "websocket")
    assert not has_token(["websocket/13"], "websocket")


# ---------------------------------------------------------------- parse_params_list


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], []),
        ([""], []),
        (["permessage-deflate"], [("permessage-deflate", [])]),
        (
            ["permessage-deflate; client_max_window_bits; server_max_window_bits=10"],
            [
                (
                    "permessage-deflate",
                    [("client_max_window_bits", None), ("server_max_window_bits", "10")],
                )
            ],
        ),
        (
            [b"permessage-deflate;client_max_window_bits;server_no_context_takeover"],
            [
                (
                    "permessage-deflate",
                    [("client_max_window_bits", None), ("server_no_context_takeover", None)],
                )
            ],
        ),
        # RFC 6455 §9.1 example: two offers, one per list element
        (
            ["foo, bar; baz=2"],
            [("foo", []), ("bar", [("baz", "2")])],
        ),
        # the same across several header lines (RFC 9110 §5.3)
        (["foo", "bar; baz=2"], [("foo", []), ("bar", [("baz", "2")])]),
        # quoted-string values are unquoted (§5.6.4)
        (['x; a="10"'], [("x", [("a", "10")])]),
        (['x; a="hello world"'], [("x", [("a", "hello world")])]),
        (['x; a="a,b;c=d"'], [("x", [("a", "a,b;c=d")])]),
        ([r'x; a="q\"uote\\d"'], [("x", [("a", 'q"uote\\d')])]),
        ([r'x; a="\a\b"'], [("x", [("a", "ab")])]),
        (['x; a=""'], [("x", [("a", "")])]),
        (['x; a="\t"'], [("x", [("a", "\t")])]),
        ([b'x; a="caf\xe9"'], [("x", [("a", "café")])]),
        # parameter names are case-insensitive (§5.6.6): lowercased; values kept
        (["X; Server_Max_Window_Bits=Ab"], [("X", [("server_max_window_bits", "Ab")])]),
        # OWS around ; and = tolerated; empty parameters ignored (§5.6.6)
        (["x ;  a = 1 ;\tb"], [("x", [("a", "1"), ("b", None)])]),
        (["x;;a=1;"], [("x", [("a", "1")])]),
        (["x; a=1; a=2"], [("x", [("a", "1"), ("a", "2")])]),  # repeats kept for the caller
        (['x; a="1", y; b="2"'], [("x", [("a", "1")]), ("y", [("b", "2")])]),
        (['x; a = "1" '], [("x", [("a", "1")])]),
    ],
)
def test_parse_params_list(values: list[str | bytes], expected: list[Params]) -> None:
    assert parse_params_list(values) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("; a=1", "invalid element name ''"),
        ("a b", "invalid element name 'a b'"),
        ("x/1", "invalid element name 'x/1'"),
        ('"x"', "invalid element name"),
        ("x; a b", "invalid parameter name 'a b'"),
        ("x; =1", "invalid parameter name ''"),
        ("x; a=", "invalid value '' for parameter 'a'"),
        ("x; a=b c", "invalid value 'b c'"),
        ("x; a=1=2", "invalid value '1=2'"),
        ("x; a=é", "invalid value"),
        ("x; a@=1", "invalid parameter name"),
        ('x; a="1"2', "malformed quoted-string"),
        ('x; a="1" "2"', "invalid character"),
        ('x; a="1\x00"', "invalid character"),
        ('x; a="\x7f"', "invalid character"),
        ('x; a="\n"', "invalid character"),
        ('x; a="a\\\x00"', "invalid quoted-pair"),
        ('x; a="unterminated', "unterminated quoted-string"),
        ('x; a="\u20ac"', "invalid character"),
        ('x; a="\\"', "unterminated quoted-string"),
    ],
)
def test_parse_params_list_malformed(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("|", r"\|")):
        parse_params_list([value])


def test_unquote_defensive_checks() -> None:
    # _split_quoted already rejects these before _unquote sees them; _unquote
    # still refuses them on its own, so it is safe to reuse.
    from trio_ws.sansio.headers import _unquote

    with pytest.raises(ValueError, match="malformed quoted-string"):
        _unquote('"')
    with pytest.raises(ValueError, match="dangling backslash"):
        _unquote('"a\\"')
    assert _unquote('"a\\"b"') == 'a"b'


# ---------------------------------------------------------------- properties

tokens = st.text(alphabet=TCHAR, min_size=1, max_size=12)
ows = st.sampled_from(["", " ", "\t", "  "])
# any qdtext / quoted-pair-able text: HTAB, SP, VCHAR, obs-text
qtext = st.text(alphabet="\t " + "".join(map(chr, range(0x21, 0x7F))) + "éÿ\x80", max_size=12)


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.lists(st.one_of(st.text(max_size=30), st.binary(max_size=30)), max_size=4))
@example(['"'])
@example(['a, "b\\", c'])
def test_split_list_only_raises_value_error(values: list[str | bytes]) -> None:
    try:
        result = split_list(values)
    except ValueError:
        return
    assert all(element and element == element.strip(" \t") for element in result)


@given(st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40)), max_size=4))
@example(['x; a="\\'])
@example(['x;a="1\\\x00"'])
def test_parse_params_list_only_raises_value_error(values: list[str | bytes]) -> None:
    try:
        result = parse_params_list(values)
    except ValueError:
        return
    for name, params in result:
        assert is_token(name)
        for key, _ in params:
            assert is_token(key)
            assert key == key.lower()


@given(st.lists(tokens, max_size=6), st.lists(ows, min_size=2, max_size=2), st.integers(1, 3))
def test_split_list_round_trip(elements: list[str], spaces: list[str], lines: int) -> None:
    before, after = spaces
    joined = ",".join(before + e + after for e in elements)
    assert split_list([joined]) == elements
    # spread over several header lines
    chunks = [", ".join(elements[i::lines]) for i in range(lines)]
    expected = [e for i in range(lines) for e in elements[i::lines]]
    assert split_list(chunks) == expected


@given(st.lists(tokens, max_size=6), tokens)
def test_has_token_agrees_with_split_list(elements: list[str], probe: str) -> None:
    line = ", ".join(elements)
    expected = probe.lower() in {e.lower() for e in elements}
    assert has_token([line], probe) == expected
    assert has_token([line.encode()], probe.upper()) == expected


params_strategy = st.lists(
    st.tuples(
        tokens.map(str.lower),
        st.one_of(st.none(), tokens.map(lambda t: (t, t)), qtext.map(lambda q: (q, quote(q)))),
    ),
    max_size=4,
)


@given(st.lists(st.tuples(tokens, params_strategy), max_size=4), ows)
def test_parse_params_list_round_trip(
    elements: list[tuple[str, list[tuple[str, tuple[str, str] | None]]]], space: str
) -> None:
    rendered = []
    expected: list[Params] = []
    for name, params in elements:
        text = name
        parsed: list[tuple[str, str | None]] = []
        for key, value in params:
            if value is None:
                text += f"{space};{space}{key}"
                parsed.append((key, None))
            else:
                plain, wire = value
                text += f"{space};{space}{key}={wire}"
                parsed.append((key, plain))
        rendered.append(text)
        expected.append((name, parsed))
    assert parse_params_list([", ".join(rendered)]) == expected
    assert parse_params_list([r.encode("latin-1") for r in rendered]) == expected
