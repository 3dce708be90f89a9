"""RFC 9110 §13: validators, HTTP-date, entity-tag lists, §13.2.2 order, If-Range."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_ws.sansio.conditional import (
    ANY,
    HeaderInput,
    Outcome,
    date_validator_is_strong,
    evaluate_preconditions,
    format_http_date,
    get_header_values,
    if_range_allows,
    make_etag,
    parse_entity_tags,
    parse_http_date,
    strong_match,
    weak_match,
)

# RFC 9110 §5.6.7's example instant, in its three spellings.
EXAMPLE = calendar.timegm((1994, 11, 6, 8, 49, 37, 0, 0, 0))
IMF = "Sun, 06 Nov 1994 08:49:37 GMT"
RFC850 = "Sunday, 06-Nov-94 08:49:37 GMT"
ASCTIME = "Sun Nov  6 08:49:37 1994"

ETAG = '"abc"'
WEAK = 'W/"abc"'
LM = EXAMPLE
OLDER = format_http_date(LM - 10)
SAME = format_http_date(LM)
NEWER = format_http_date(LM + 10)


def h(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


def ev(method: str, headers: HeaderInput, *, etag: str | None = ETAG, exists: bool = True) -> Outcome:
    return evaluate_preconditions(method, headers, etag=etag, last_modified=LM, exists=exists)


P, N304, F412 = Outcome.PROCEED, Outcome.NOT_MODIFIED, Outcome.PRECONDITION_FAILED


# --------------------------------------------------------------------------- make_etag


def test_make_etag_shape() -> None:
    assert make_etag(1000, 0x1234, 7) == '"3e8-1234-7"'
    assert make_etag(0, 0, 0) == '"0-0-0"'


def test_make_etag_changes_with_each_input() -> None:
    base = make_etag(10, 10**18, 5)
    assert len({base, make_etag(11, 10**18, 5), make_etag(10, 10**18 + 1, 5), make_etag(10, 10**18, 6)}) == 4


def test_make_etag_is_a_valid_strong_tag_for_big_and_negative_values() -> None:
    for tag in (make_etag(2**63 - 1, -1, 2**64 - 1), make_etag(5 * 2**30, -(10**18), 1)):
        assert parse_entity_tags(tag) == (tag,)
        assert strong_match(tag, tag)
        assert tag.count("-") == 2
    assert make_etag(1, -1, 1) == f'"1-{2**64 - 1:x}-1"'


def test_make_etag_rejects_negative_size_or_inode() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        make_etag(-1, 0, 0)
    with pytest.raises(ValueError, match="non-negative"):
        make_etag(0, 0, -1)


# --------------------------------------------------------------------------- HTTP-date


@pytest.mark.parametrize("text", [IMF, RFC850, ASCTIME, f"  {IMF}\t"])
def test_parse_http_date_three_formats(text: str) -> None:
    assert parse_http_date(text) == EXAMPLE == 784111777


def test_format_http_date() -> None:
    assert format_http_date(EXAMPLE) == IMF
    assert format_http_date(EXAMPLE + 0.999) == IMF  # fraction dropped
    assert format_http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    assert format_http_date(-1) == "Wed, 31 Dec 1969 23:59:59 GMT"
    assert format_http_date(-0.5) == "Wed, 31 Dec 1969 23:59:59 GMT"  # floor, not trunc
    assert format_http_date(253402300799) == "Fri, 31 Dec 9999 23:59:59 GMT"


@given(st.integers(min_value=-(2**35), max_value=253402300799))
def test_format_parse_round_trip(ts: int) -> None:
    assert parse_http_date(format_http_date(ts)) == ts


def test_asctime_single_digit_day_and_two_digit_day() -> None:
    assert parse_http_date("Thu Jan  1 00:00:00 1970") == 0
    assert parse_http_date("Sat Jan 31 00:00:00 1970") == 30 * 86400


def test_leap_second_and_leap_day() -> None:
    assert parse_http_date("Wed, 31 Dec 2016 23:59:60 GMT") == calendar.timegm((2017, 1, 1, 0, 0, 0))
    assert parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT") is not None
    assert parse_http_date("Thu, 29 Feb 2023 00:00:00 GMT") is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "Sun, 06 Nov 1994 08:49:37 UTC",  # must be GMT
        "Sun, 06 Nov 1994 08:49:37 gmt",  # HTTP-date is case-sensitive
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",  # IMF needs 2DIGIT day
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",  # not a day name
        "Sun, 06 Foo 1994 08:49:37 GMT",  # not a month
        "Sun, 32 Oct 1994 08:49:37 GMT",
        "Sun, 00 Oct 1994 08:49:37 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 23:60:00 GMT",
        "Sun, 06 Nov 1994 23:59:61 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",  # a list
        "Sun, 06 Nov 1994 08:49:37 GMT garbage",
        "Sun, ٠٦ Nov 1994 08:49:37 GMT",  # non-ASCII digits
        "Sun, 06 Nov 1994 08:49:37 GMT".replace("1994", "1_94"),
        "Sunday, 06-Nov-1994 08:49:37 GMT",  # RFC 850 has a 2-digit year
        "Sun, 06-Nov-94 08:49:37 GMT",  # RFC 850 needs the long day name
        "Sonday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",  # asctime pads with a space
        "Sun Nov  6 08:49:37 1994 GMT",
        "1994-11-06T08:49:37Z",
        "784111777",
    ],
)
def test_parse_http_date_rejects(text: str) -> None:
    assert parse_http_date(text) is None


def test_rfc850_two_digit_year_without_clock() -> None:
    assert parse_http_date("Thursday, 01-Jan-70 00:00:00 GMT") == 0
    assert parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT") == calendar.timegm((2000, 1, 1, 0, 0, 0))
    assert parse_http_date("Wednesday, 01-Jan-69 00:00:00 GMT") == calendar.timegm((2069, 1, 1, 0, 0, 0))


def test_rfc850_fifty_year_rule_with_clock() -> None:
    now = calendar.timegm((2025, 6, 1, 0, 0, 0))
    # 2075 is exactly 50 years ahead: not "more than 50", so it stays in the future.
    assert parse_http_date("Tuesday, 01-Jan-75 00:00:00 GMT", now=now) == calendar.timegm(
        (2075, 1, 1, 0, 0, 0)
    )
    # 2076 is more than 50 years ahead: the most recent past year ending in 76.
    assert parse_http_date("Thursday, 01-Jan-76 00:00:00 GMT", now=now) == calendar.timegm(
        (1976, 1, 1, 0, 0, 0)
    )
    assert parse_http_date("Friday, 01-Jan-99 00:00:00 GMT", now=now) == calendar.timegm(
        (1999, 1, 1, 0, 0, 0)
    )
    assert parse_http_date("Wednesday, 01-Jan-25 00:00:00 GMT", now=now) == calendar.timegm(
        (2025, 1, 1, 0, 0, 0)
    )


@given(st.text())
def test_parse_http_date_never_raises(text: str) -> None:
    result = parse_http_date(text)
    assert result is None or isinstance(result, int)


def test_date_validator_is_strong() -> None:
    assert not date_validator_is_strong(100, 100.0)
    assert not date_validator_is_strong(100, 100.999)
    assert date_validator_is_strong(100, 101.0)


# --------------------------------------------------------------------------- entity tags


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("*", ANY),
        ("  *  ", ANY),
        ('"x"', ('"x"',)),
        ('W/"x"', ('W/"x"',)),
        ('""', ('""',)),
        ('"a", W/"b" ,"c"', ('"a"', 'W/"b"', '"c"')),
        ('"a,b"', ('"a,b"',)),  # commas inside quotes are data
        (', ,"a",,\t,', ('"a"',)),  # empty list elements are ignored (§5.6.1.2)
        ("", ()),
        (" , ", ()),
        ('"\x80\xff"', ('"\x80\xff"',)),  # obs-text
    ],
)
def test_parse_entity_tags(value: str, expected: object) -> None:
    assert parse_entity_tags(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "x",
        '"x',
        'x"',
        'w/"x"',  # the weak prefix is case-sensitive
        'W/ "x"',
        '"a" "b"',  # missing comma
        '"a"b',
        '*, "a"',  # "*" only as the whole value
        '"a", *',
        "**",
        '"a b"',  # SP is not etagc
        '"a"b"',
        '"\x7f"',
        '"\x01"',
    ],
)
def test_parse_entity_tags_malformed(value: str) -> None:
    assert parse_entity_tags(value) is None


def test_strong_and_weak_comparison_table() -> None:
    # RFC 9110 §8.8.3.2's own table.
    rows = [
        ('W/"1"', 'W/"1"', False, True),
        ('W/"1"', 'W/"2"', False, False),
        ('W/"1"', '"1"', False, True),
        ('"1"', '"1"', True, True),
    ]
    for a, b, strong, weak in rows:
        assert strong_match(a, b) is strong
        assert strong_match(b, a) is strong
        assert weak_match(a, b) is weak
        assert weak_match(b, a) is weak


# --------------------------------------------------------------------------- headers


def test_get_header_values_pairs_and_mapping() -> None:
    pairs = [(b"if-match", b' "a" '), (b"host", b"x"), (b"If-Match", b'"b"\t')]
    assert get_header_values(pairs, "If-Match") == ['"a"', '"b"']
    assert get_header_values(pairs, "range") == []
    assert get_header_values({"If-Match": ' "a"'}, "if-match") == ['"a"']
    assert get_header_values([(b"if-match", b'"\xff"')], "if-match") == ['"\xff"']


# --------------------------------------------------------------------------- §13.2.2


def test_no_preconditions_proceed() -> None:
    assert ev("GET", []) is P
    assert ev("PUT", h(("host", "x"))) is P


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ETAG, P),
        ('"zzz", "abc"', P),
        ("*", P),
        ('"zzz"', F412),
        (WEAK, F412),  # §13.1.1: strong comparison
        ("garbage", F412),  # malformed If-Match fails closed
        ("", F412),  # an empty list matches nothing
        ('*, "abc"', F412),
    ],
)
def test_if_match(value: str, expected: Outcome) -> None:
    for method in ("GET", "HEAD", "PUT", "DELETE"):
        assert ev(method, h(("if-match", value))) is expected


def test_if_match_against_a_weak_current_etag_never_matches() -> None:
    assert ev("GET", h(("if-match", WEAK)), etag=WEAK) is F412
    assert ev("GET", h(("if-match", ETAG)), etag=WEAK) is F412
    assert ev("GET", h(("if-match", "*")), etag=WEAK) is P


def test_if_match_star_needs_a_current_representation() -> None:
    assert ev("PUT", h(("if-match", "*")), exists=False, etag=None) is F412
    assert ev("PUT", h(("if-match", ETAG)), etag=None) is F412


def test_if_match_list_across_lines() -> None:
    assert ev("PUT", h(("if-match", '"x"'), ("if-match", '"y", "abc"'))) is P
    assert ev("PUT", h(("if-match", '"x"'), ("if-match", '"y"'))) is F412
    # "*" on one line and a tag on another is "*" mixed with a list: malformed.
    assert ev("PUT", h(("if-match", "*"), ("if-match", ETAG))) is F412


@pytest.mark.parametrize(
    ("value", "expected"),
    [(OLDER, F412), (SAME, P), (NEWER, P), ("garbage", P), (f"{SAME}, {SAME}", P)],
)
def test_if_unmodified_since(value: str, expected: Outcome) -> None:
    assert ev("PUT", h(("if-unmodified-since", value))) is expected
    assert ev("GET", h(("if-unmodified-since", value))) is expected


def test_if_unmodified_since_on_two_lines_is_ignored() -> None:
    assert ev("PUT", h(("if-unmodified-since", OLDER), ("if-unmodified-since", OLDER))) is P


def test_if_unmodified_since_ignored_without_last_modified() -> None:
    headers = h(("if-unmodified-since", OLDER))
    assert evaluate_preconditions("PUT", headers, etag=ETAG, last_modified=None) is P


def test_if_match_true_overrides_failing_if_unmodified_since() -> None:
    # §13.1.4: MUST ignore If-Unmodified-Since when If-Match is present.
    assert ev("PUT", h(("if-match", ETAG), ("if-unmodified-since", OLDER))) is P
    assert ev("PUT", h(("if-match", '"x"'), ("if-unmodified-since", NEWER))) is F412


@pytest.mark.parametrize(
    ("value", "safe", "unsafe"),
    [
        (ETAG, N304, F412),
        (WEAK, N304, F412),  # §13.1.2: weak comparison
        ('"x", W/"abc"', N304, F412),
        ("*", N304, F412),
        ('"x"', P, P),
        ("garbage", P, P),  # malformed If-None-Match: nothing matched
        ("", P, P),
    ],
)
def test_if_none_match(value: str, safe: Outcome, unsafe: Outcome) -> None:
    headers = h(("if-none-match", value))
    assert ev("GET", headers) is safe
    assert ev("HEAD", headers) is safe
    assert ev("head", headers) is safe
    assert ev("PUT", headers) is unsafe
    assert ev("POST", headers) is unsafe


def test_if_none_match_star_without_representation() -> None:
    assert ev("PUT", h(("if-none-match", "*")), exists=False, etag=None) is P
    assert ev("GET", h(("if-none-match", ETAG)), etag=None) is P


def test_if_none_match_list_across_lines() -> None:
    assert ev("GET", h(("if-none-match", '"x"'), ("if-none-match", ETAG))) is N304


@pytest.mark.parametrize(
    ("value", "expected"),
    [(SAME, N304), (NEWER, N304), (OLDER, P), ("garbage", P), (f"{SAME}, {SAME}", P)],
)
def test_if_modified_since(value: str, expected: Outcome) -> None:
    assert ev("GET", h(("if-modified-since", value))) is expected
    assert ev("HEAD", h(("if-modified-since", value))) is expected
    # §13.1.3: ignored for methods other than GET and HEAD.
    assert ev("POST", h(("if-modified-since", value))) is P
    assert ev("PUT", h(("if-modified-since", value))) is P


def test_if_modified_since_rfc850_and_asctime() -> None:
    assert ev("GET", h(("if-modified-since", RFC850))) is N304
    assert ev("GET", h(("if-modified-since", ASCTIME))) is N304


def test_if_modified_since_on_two_lines_is_ignored() -> None:
    assert ev("GET", h(("if-modified-since", SAME), ("if-modified-since", SAME))) is P


def test_if_modified_since_ignored_without_last_modified() -> None:
    headers = h(("if-modified-since", NEWER))
    assert evaluate_preconditions("GET", headers, etag=ETAG, last_modified=None) is P


def test_if_none_match_suppresses_if_modified_since() -> None:
    # §13.1.3: a non-matching If-None-Match must not be rescued into a 304.
    assert ev("GET", h(("if-none-match", '"other"'), ("if-modified-since", NEWER))) is P
    assert ev("GET", h(("if-none-match", "garbage"), ("if-modified-since", NEWER))) is P
    assert ev("GET", h(("if-none-match", ETAG), ("if-modified-since", OLDER))) is N304


def test_order_if_match_before_if_none_match() -> None:
    # Step 1 fails first: 412, even on GET where step 3 would have said 304.
    assert ev("GET", h(("if-match", '"x"'), ("if-none-match", ETAG))) is F412
    # Step 1 passes; step 3 then decides.
    assert ev("GET", h(("if-match", ETAG), ("if-none-match", ETAG))) is N304
    assert ev("PUT", h(("if-match", ETAG), ("if-none-match", ETAG))) is F412


def test_order_if_unmodified_since_before_if_none_match() -> None:
    assert ev("GET", h(("if-unmodified-since", OLDER), ("if-none-match", ETAG))) is F412
    assert ev("GET", h(("if-unmodified-since", NEWER), ("if-none-match", ETAG))) is N304
    assert ev("GET", h(("if-unmodified-since", NEWER), ("if-modified-since", SAME))) is N304


def test_mapping_headers() -> None:
    assert ev("GET", {"If-None-Match": ETAG}) is N304


def test_all_four_at_once() -> None:
    headers = h(
        ("if-match", ETAG),
        ("if-unmodified-since", OLDER),  # ignored: If-Match present
        ("if-none-match", '"x"'),  # true: proceed
        ("if-modified-since", NEWER),  # ignored: If-None-Match present
    )
    assert ev("GET", headers) is P


# --------------------------------------------------------------------------- If-Range


def test_if_range_strong_etag() -> None:
    assert if_range_allows(ETAG, etag=ETAG, last_modified=LM)
    assert if_range_allows(f" {ETAG} ", etag=ETAG, last_modified=LM)
    assert not if_range_allows('"stale"', etag=ETAG, last_modified=LM)  # aiohttp's bug


def test_if_range_weak_never_allowed() -> None:
    assert not if_range_allows(WEAK, etag=ETAG, last_modified=LM)
    assert not if_range_allows(WEAK, etag=WEAK, last_modified=LM)
    assert not if_range_allows(ETAG, etag=WEAK, last_modified=LM)


def test_if_range_etag_without_current_etag() -> None:
    assert not if_range_allows(ETAG, etag=None, last_modified=LM)


def test_if_range_date_exact_match_only() -> None:
    assert if_range_allows(SAME, etag=ETAG, last_modified=LM)
    assert if_range_allows(RFC850, etag=ETAG, last_modified=LM)
    assert not if_range_allows(NEWER, etag=ETAG, last_modified=LM)  # not "<=" like IUS
    assert not if_range_allows(OLDER, etag=ETAG, last_modified=LM)
    assert not if_range_allows(SAME, etag=ETAG, last_modified=None)


def test_if_range_date_must_be_strong_when_clock_given() -> None:
    assert not if_range_allows(SAME, etag=ETAG, last_modified=LM, now=LM + 0.5)
    assert if_range_allows(SAME, etag=ETAG, last_modified=LM, now=LM + 1)


@pytest.mark.parametrize(
    "value",
    ["", "garbage", '"abc', '"abc", "abc"', f"{SAME}, {SAME}", "*", 'X/"abc"', "784111777"],
)
def test_if_range_garbage_is_false(value: str) -> None:
    assert not if_range_allows(value, etag=ETAG, last_modified=LM)


@given(st.text())
def test_if_range_never_raises(value: str) -> None:
    assert if_range_allows(value, etag=ETAG, last_modified=LM) in (True, False)
