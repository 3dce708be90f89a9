"""RFC 9110 §14: Range parsing, the 200/206/416 decision, multipart/byteranges framing."""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_ws.sansio.ranges import (
    DEFAULT_MAX_RANGES,
    MAX_SIZE,
    MultipartPlan,
    RangeDecision,
    RangeKind,
    coalesce_ranges,
    content_range,
    evaluate_range,
    parse_range,
    plan_multipart,
    unsatisfied_range,
)

FULL, PARTIAL, MULTI, UNSAT = (
    RangeKind.FULL,
    RangeKind.PARTIAL,
    RangeKind.MULTIPART,
    RangeKind.UNSATISFIABLE,
)


def decide(value: str | None, size: int, **kwargs: int) -> RangeDecision:
    return evaluate_range(value, size, **kwargs)


# --------------------------------------------------------------------------- parse_range


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # RFC 9110 §14.1.2's examples.
        ("bytes=0-499", [(0, 499)]),
        ("bytes=500-999", [(500, 999)]),
        ("bytes=-500", [(None, 500)]),
        ("bytes=9500-", [(9500, None)]),
        ("bytes=0-0,-1", [(0, 0), (None, 1)]),
        ("bytes= 0-999, 4500-5499, -1000", [(0, 999), (4500, 5499), (None, 1000)]),
        ("bytes=500-600,601-999", [(500, 600), (601, 999)]),
        ("bytes=500-700,601-999", [(500, 700), (601, 999)]),
        # Unit is case-insensitive (§14.1); OWS around elements; empty elements.
        ("BYTES=1-2", [(1, 2)]),
        ("Bytes=1-2", [(1, 2)]),
        ("  bytes=1-2\t", [(1, 2)]),
        ("bytes=,1-2,, ,3-4,", [(1, 2), (3, 4)]),
        ("bytes=\t1-2 ,\t3-", [(1, 2), (3, None)]),
        ("bytes=5-5", [(5, 5)]),
        ("bytes=007-010", [(7, 10)]),
        ("bytes=-0", [(None, 0)]),
        ("bytes=0-0", [(0, 0)]),
    ],
)
def test_parse_range_valid(value: str, expected: list[tuple[int | None, int | None]]) -> None:
    assert parse_range(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=,",
        "bytes= , ",
        "items=0-5",  # another unit is ignored (§14.2 MUST)
        "none",
        "bytes =0-5",
        "bytes= =0-5",
        "bytes:0-5",
        "0-5",
        "bytes=5",
        "bytes=-",
        "bytes=--5",
        "bytes=5--",
        "bytes=1-2-3",
        "bytes=a-b",
        "bytes=1-b",
        "bytes=0x10-0x20",
        "bytes=5-4",  # last < first: invalid (§14.1.1)
        "bytes=0-5,5-4",  # one invalid element spoils the whole header
        "bytes=0-5,garbage",
        "bytes=1 - 2",  # no whitespace inside a range-spec
        "bytes=1 -2",
        "bytes=- 5",
        # Peers' int() bugs: starlette reads these as numbers.
        "bytes=1_0-2_0",
        "bytes=+1-2",
        " bytes=+1-2",
        "bytes=1-+2",
        "bytes=-+5",
        "bytes=-1_0",
        "bytes=\u0661-\u0662",  # Arabic-Indic digits pass str.isdigit() and int()
        "bytes=\u00b2-\u00b3",  # superscripts: str.isdigit() says yes
        "bytes=1.0-2",
        "bytes=1e3-",
        "bytes=-5e1",
    ],
)
def test_parse_range_invalid(value: str) -> None:
    assert parse_range(value) is None


def test_parse_range_huge_numbers_do_not_overflow() -> None:
    # §14.1.2: recipients MUST anticipate large numerals. 5000 digits is past
    # CPython's int() digit limit, which would raise ValueError.
    big = "9" * 5000
    assert parse_range(f"bytes={big}-") == [(2**64, None)]
    assert parse_range(f"bytes=-{big}") == [(None, 2**64)]
    assert parse_range(f"bytes=0-{big}") == [(0, 2**64)]
    assert parse_range(f"bytes={'0' * 5000}1-2") == [(1, 2)]
    assert parse_range(f"bytes={big}-{big}") == [(2**64, 2**64)]
    assert parse_range(f"bytes={big}8-{big}") is None  # exact comparison still works
    assert parse_range("bytes=18446744073709551617-18446744073709551616") is None
    assert parse_range("bytes=18446744073709551615-") == [(2**64 - 1, None)]


@given(st.text())
def test_parse_range_any_text_never_raises(value: str) -> None:
    _check_parsed(value)


@given(st.text(alphabet="bytesBYTES=0123456789-, \t_+"))
def test_parse_range_dense_alphabet_never_raises(value: str) -> None:
    _check_parsed(value)


def _check_parsed(value: str) -> None:
    result = parse_range(value)
    if result is not None:
        assert result
        for first, last in result:
            assert first is not None or last is not None
            if first is not None and last is not None:
                assert first <= last


# --------------------------------------------------------------------------- evaluate_range


def test_no_header_or_ignored_header_is_full() -> None:
    assert decide(None, 100) == RangeDecision(FULL)
    assert decide("garbage", 100).kind is FULL
    assert decide("items=0-5", 100).kind is FULL
    assert decide("bytes=5-4", 100).kind is FULL  # invalid: ignored, not 416


@pytest.mark.parametrize(
    ("value", "ranges"),
    [
        # RFC 9110 §14.1.2 examples against its 10000-byte representation.
        ("bytes=0-499", ((0, 499),)),
        ("bytes=500-999", ((500, 999),)),
        ("bytes=-500", ((9500, 9999),)),
        ("bytes=9500-", ((9500, 9999),)),
        ("bytes=500-600,601-999", ((500, 999),)),  # adjacent: coalesced
        ("bytes=500-700,601-999", ((500, 999),)),  # overlapping: coalesced
        ("bytes=0-", ((0, 9999),)),
        ("bytes=9999-", ((9999, 9999),)),
        ("bytes=0-99999", ((0, 9999),)),  # last clamped to size - 1
        ("bytes=-10000", ((0, 9999),)),
        ("bytes=-99999", ((0, 9999),)),  # suffix longer than the file: whole file
        ("bytes=20000-,0-9", ((0, 9),)),  # unsatisfiable element dropped
        ("bytes=-0,5-9", ((5, 9),)),
    ],
)
def test_partial(value: str, ranges: tuple[tuple[int, int], ...]) -> None:
    assert decide(value, 10000) == RangeDecision(PARTIAL, ranges)


def test_rfc_multipart_examples() -> None:
    assert decide("bytes=0-0,-1", 10000) == RangeDecision(MULTI, ((0, 0), (9999, 9999)))
    assert decide("bytes= 0-999, 4500-5499, -1000", 10000) == RangeDecision(
        MULTI, ((0, 999), (4500, 5499), (9000, 9999))
    )


def test_mongoose_suffix_bug_regression() -> None:
    # mongoose serves bytes=-10 as the whole file with a 206.
    assert decide("bytes=-10", 100) == RangeDecision(PARTIAL, ((90, 99),))


def test_aiohttp_multirange_bug_regression() -> None:
    # aiohttp answers any multi-range request with 416.
    assert decide("bytes=0-9,50-59", 1000).kind is MULTI


def test_starlette_underscore_bug_regression() -> None:
    assert decide("bytes=1_0-2_0", 100).kind is FULL
    assert decide(" bytes=+1-2", 100).kind is FULL


@pytest.mark.parametrize(
    "value",
    ["bytes=100-", "bytes=100-200", "bytes=-0", "bytes=100-,200-300,-0", "bytes=" + "9" * 40 + "-"],
)
def test_unsatisfiable(value: str) -> None:
    assert decide(value, 100) == RangeDecision(UNSAT)


def test_unsatisfiable_boundary() -> None:
    assert decide("bytes=99-", 100) == RangeDecision(PARTIAL, ((99, 99),))
    assert decide("bytes=100-", 100).kind is UNSAT


@pytest.mark.parametrize("value", ["bytes=0-", "bytes=-5", "bytes=5-", "bytes=-0", "bytes=0-0", "garbage"])
def test_zero_length_file_is_always_full(value: str) -> None:
    assert decide(value, 0) == RangeDecision(FULL)


def test_order_follows_request_not_sorting() -> None:
    # §15.3.7.2: parts SHOULD go out in request order.
    assert decide("bytes=500-599,0-99", 10000).ranges == ((500, 599), (0, 99))
    assert decide("bytes=-100,0-99", 10000).ranges == ((9900, 9999), (0, 99))


def test_coalesced_part_takes_earliest_position() -> None:
    # 0-9 (second) and 10-19 (third) merge; the merged part sits where 0-9 was.
    assert decide("bytes=500-599,0-9,10-19", 10000).ranges == ((500, 599), (0, 19))
    assert decide("bytes=10-19,500-599,0-9", 10000).ranges == ((0, 19), (500, 599))


def test_max_ranges() -> None:
    ranges = ",".join(f"{i * 100}-{i * 100}" for i in range(DEFAULT_MAX_RANGES))
    assert decide(f"bytes={ranges}", 10**6).kind is MULTI
    assert len(decide(f"bytes={ranges}", 10**6).ranges) == DEFAULT_MAX_RANGES
    assert decide(f"bytes={ranges},5000000-", 10**7).kind is FULL  # one too many
    assert decide("bytes=0-1,5-6,9-10", 10**6, max_ranges=2).kind is FULL
    assert decide("bytes=0-1,5-6", 10**6, max_ranges=2).kind is MULTI
    # Empty elements do not count.
    assert decide("bytes=0-1,,,,5-6", 10**6, max_ranges=2).kind is MULTI


def test_max_ranges_zero_disables_ranges() -> None:
    assert decide("bytes=0-1", 100, max_ranges=0).kind is FULL
    assert decide("bytes=0-1", 100, max_ranges=1).kind is PARTIAL


def test_amplification_sum_before_coalescing_exceeds_size() -> None:
    # nginx's rule: the satisfiable lengths add up to more than the file.
    assert decide("bytes=0-,0-", 1000).kind is FULL
    assert decide("bytes=0-599,400-999", 1000).kind is FULL  # 1200 > 1000
    assert decide("bytes=0-499,400-899", 1000) == RangeDecision(PARTIAL, ((0, 899),))  # 1000
    assert decide(",".join(["bytes=0-99"] + ["0-99"] * 10), 1000).kind is FULL  # 1100
    assert decide(",".join(["bytes=0-99"] + ["0-99"] * 9), 1000) == RangeDecision(PARTIAL, ((0, 99),))


def test_amplification_multipart_overhead_exceeds_size() -> None:
    # Two 1-byte parts cost ~2 + 2 * 80 bytes: more than a 100-byte file.
    assert decide("bytes=0-0,-1", 100).kind is FULL
    assert decide("bytes=0-0,-1", 162).kind is MULTI
    assert decide("bytes=0-0,-1", 161).kind is FULL
    assert decide("bytes=0-0,-1", 100, part_overhead=0).kind is MULTI
    tiny = ",".join(f"{i}-{i}" for i in range(0, 100, 2))  # 50 one-byte ranges
    assert decide(f"bytes={tiny}", 1000).kind is FULL
    assert decide(f"bytes={tiny}", 10**6).kind is MULTI


def test_sizes_beyond_four_gib() -> None:
    size = 5 * 2**30
    assert decide("bytes=4294967296-", size) == RangeDecision(PARTIAL, ((2**32, size - 1),))
    assert decide("bytes=-1", size) == RangeDecision(PARTIAL, ((size - 1, size - 1),))
    assert content_range(2**32, size - 1, size) == f"bytes 4294967296-{size - 1}/{size}"
    big = MAX_SIZE
    assert decide("bytes=0-", big) == RangeDecision(PARTIAL, ((0, big - 1),))
    assert decide(f"bytes={big - 1}-", big) == RangeDecision(PARTIAL, ((big - 1, big - 1),))
    assert decide(f"bytes={big}-", big).kind is UNSAT
    assert decide("bytes=-" + "9" * 30, big) == RangeDecision(PARTIAL, ((0, big - 1),))
    assert decide(f"bytes=0-0,{big - 1}-", big) == RangeDecision(MULTI, ((0, 0), (big - 1, big - 1)))
    assert unsatisfied_range(big) == f"bytes */{big}"


def test_size_is_validated() -> None:
    with pytest.raises(ValueError, match="size"):
        decide("bytes=0-1", -1)
    with pytest.raises(ValueError, match="size"):
        decide("bytes=0-1", MAX_SIZE + 1)


@given(
    st.one_of(st.none(), st.integers(0, 300)),
    st.one_of(st.none(), st.integers(0, 300)),
    st.integers(1, 400),
)
def test_one_range_decides_as_the_general_rules_do(first: int | None, last: int | None, size: int) -> None:
    """The single-range shortcut agrees with the full path: the same spec twice is
    resolved, summed and coalesced back into one range (or none)."""
    spec = f"{'' if first is None else first}-{'' if last is None else last}"
    if spec == "-" or (first is not None and last is not None and last < first):
        return
    single = decide(f"bytes={spec}", size)
    assert single.kind is not RangeKind.MULTIPART
    if 2 * sum(end - start + 1 for start, end in single.ranges) <= size:
        assert decide(f"bytes={spec},{spec}", size) == single


@given(st.text(alphabet="bytes=0123456789-, ", max_size=60), st.integers(0, 2000))
def test_any_decision_is_well_formed(value: str, size: int) -> None:
    _check_decision(value, size, decide(value, size))


@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 300)), st.one_of(st.none(), st.integers(0, 300))),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 400),
    st.integers(0, 100),
)
def test_structured_ranges_are_well_formed(
    specs: list[tuple[int | None, int | None]], size: int, overhead: int
) -> None:
    parts = []
    for first, last in specs:
        if first is None:
            parts.append(f"-{last if last is not None else 0}")
        elif last is None or last < first:
            parts.append(f"{first}-")
        else:
            parts.append(f"{first}-{last}")
    value = "bytes=" + ",".join(parts)
    _check_decision(value, size, decide(value, size, part_overhead=overhead))


def _check_decision(value: str, size: int, decision: RangeDecision) -> None:
    specs = parse_range(value)
    if decision.kind in (FULL, UNSAT):
        assert decision.ranges == ()
    if specs is None or size == 0:
        assert decision.kind is FULL
        return
    if decision.kind is PARTIAL:
        assert len(decision.ranges) == 1
    if decision.kind is MULTI:
        assert len(decision.ranges) >= 2
    for start, end in decision.ranges:
        assert 0 <= start <= end < size
    by_start = sorted(decision.ranges)
    for (_, end), (start, _) in itertools.pairwise(by_start):
        assert start > end + 1  # disjoint and not adjacent
    # Every byte sent was asked for, and every satisfiable byte asked for is sent.
    if decision.kind in (PARTIAL, MULTI):
        wanted = _bytes_wanted(specs, size)
        sent = {i for start, end in decision.ranges for i in range(start, end + 1)}
        assert sent == wanted
    if decision.kind is UNSAT:
        assert not _bytes_wanted(specs, size)


def _bytes_wanted(specs: list[tuple[int | None, int | None]], size: int) -> set[int]:
    wanted: set[int] = set()
    for first, last in specs:
        if first is None:
            assert last is not None
            wanted.update(range(max(0, size - last), size) if last else ())
        else:
            wanted.update(range(first, min(size, (last if last is not None else size) + 1)))
    return wanted


# --------------------------------------------------------------------------- coalesce_ranges


def test_coalesce_ranges() -> None:
    assert coalesce_ranges([]) == ()
    assert coalesce_ranges([(0, 4), (5, 9)]) == ((0, 9),)
    assert coalesce_ranges([(0, 4), (6, 9)]) == ((0, 4), (6, 9))
    assert coalesce_ranges([(6, 9), (0, 4)]) == ((6, 9), (0, 4))
    assert coalesce_ranges([(0, 9), (2, 3)]) == ((0, 9),)
    assert coalesce_ranges([(2, 3), (0, 9)]) == ((0, 9),)
    assert coalesce_ranges([(8, 9), (0, 1), (2, 7)]) == ((0, 9),)


@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 50)).map(lambda t: (t[0], t[0] + t[1]))))
def test_coalesce_ranges_properties(ranges: list[tuple[int, int]]) -> None:
    merged = coalesce_ranges(ranges)
    by_start = sorted(merged)
    for (_, end), (start, _) in itertools.pairwise(by_start):
        assert start > end + 1
    covered = {i for start, end in ranges for i in range(start, end + 1)}
    assert covered == {i for start, end in merged for i in range(start, end + 1)}
    if ranges == sorted(ranges):
        assert list(merged) == by_start


# --------------------------------------------------------------------------- Content-Range


def test_content_range() -> None:
    assert content_range(64, 95, 1000) == "bytes 64-95/1000"
    assert content_range(0, 0, 1) == "bytes 0-0/1"
    assert unsatisfied_range(1000) == "bytes */1000"
    assert unsatisfied_range(0) == "bytes */0"


@pytest.mark.parametrize(("start", "end", "size"), [(-1, 5, 10), (5, 4, 10), (0, 10, 10), (0, 0, 0)])
def test_content_range_rejects_bad_ranges(start: int, end: int, size: int) -> None:
    with pytest.raises(ValueError, match="does not lie"):
        content_range(start, end, size)


def test_unsatisfied_range_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="size"):
        unsatisfied_range(-1)


# --------------------------------------------------------------------------- multipart


def build_body(plan: MultipartPlan, data: bytes) -> bytes:
    body = b"".join(head + data[start : end + 1] for head, start, end in plan.parts)
    return body + plan.trailer


def parse_by_hand(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/byteranges body strictly by RFC 2046 delimiters."""
    delimiter = b"\r\n--" + boundary.encode()
    assert body.endswith(delimiter + b"--\r\n")
    chunks = body[: -len(b"--\r\n")].split(delimiter)
    assert chunks[0] == b""  # nothing before the first delimiter
    assert chunks[-1] == b""  # the close delimiter ends the body
    parts = []
    for chunk in chunks[1:-1]:
        assert chunk.startswith(b"\r\n")
        head, sep, payload = chunk[2:].partition(b"\r\n\r\n")
        assert sep
        fields = {}
        for line in head.split(b"\r\n"):
            name, _, val = line.decode().partition(": ")
            fields[name] = val
        parts.append((fields, payload))
    return parts


def test_multipart_rfc_example_structure() -> None:
    # RFC 9110 §14.6's example: two ranges of an 8000-byte PDF.
    data = bytes(range(256)) * 32
    plan = plan_multipart([(500, 999), (7000, 7999)], 8000, "application/pdf", "THIS_STRING_SEPARATES")
    assert plan.content_type == "multipart/byteranges; boundary=THIS_STRING_SEPARATES"
    body = build_body(plan, data)
    assert len(body) == plan.content_length
    assert body.startswith(
        b"\r\n--THIS_STRING_SEPARATES\r\nContent-Type: application/pdf\r\n"
        b"Content-Range: bytes 500-999/8000\r\n\r\n"
    )
    assert body.endswith(b"\r\n--THIS_STRING_SEPARATES--\r\n")
    parts = parse_by_hand(body, "THIS_STRING_SEPARATES")
    assert parts == [
        ({"Content-Type": "application/pdf", "Content-Range": "bytes 500-999/8000"}, data[500:1000]),
        ({"Content-Type": "application/pdf", "Content-Range": "bytes 7000-7999/8000"}, data[7000:8000]),
    ]


def test_multipart_parts_and_trailer_bytes_exact() -> None:
    plan = plan_multipart([(0, 0), (9, 9)], 10, "text/plain", "B")
    assert plan.parts == (
        (b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/10\r\n\r\n", 0, 0),
        (b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 9-9/10\r\n\r\n", 9, 9),
    )
    assert plan.trailer == b"\r\n--B--\r\n"
    assert build_body(plan, b"0123456789") == (
        b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-0/10\r\n\r\n0"
        b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 9-9/10\r\n\r\n9"
        b"\r\n--B--\r\n"
    )
    assert plan.content_length == len(build_body(plan, b"0123456789"))


def test_multipart_without_content_type() -> None:
    plan = plan_multipart([(0, 1)], 10, None, "B")
    assert plan.parts[0][0] == b"\r\n--B\r\nContent-Range: bytes 0-1/10\r\n\r\n"


def test_multipart_parsed_by_stdlib_email() -> None:
    data = bytes(range(32, 127)) * 20
    size = len(data)
    ranges = [(1500, 1899), (0, 9), (100, 199)]
    plan = plan_multipart(ranges, size, "text/plain; charset=us-ascii", "abc123XYZ")
    body = build_body(plan, data)
    assert len(body) == plan.content_length
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {plan.content_type}\r\n\r\n".encode() + body
    )
    assert message.is_multipart()
    assert message.get_content_type() == "multipart/byteranges"
    assert message.get_param("boundary") == "abc123XYZ"
    parts = list(message.iter_parts())
    assert len(parts) == len(ranges)
    for part, (start, end) in zip(parts, ranges, strict=True):
        assert part["Content-Range"] == f"bytes {start}-{end}/{size}"
        assert part.get_content_type() == "text/plain"
        assert part.get_payload(decode=True) == data[start : end + 1]
    assert not message.defects


@pytest.mark.parametrize("boundary", ["a b", "x:y/z", "(weird)=?", "'+_,-./:=?"])
def test_multipart_boundary_quoted_when_not_a_token(boundary: str) -> None:
    plan = plan_multipart([(0, 1), (5, 6)], 10, "text/plain", boundary)
    assert plan.content_type == f'multipart/byteranges; boundary="{boundary}"'
    data = b"abcdefghij"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {plan.content_type}\r\n\r\n".encode() + build_body(plan, data)
    )
    assert message.get_param("boundary") == boundary
    assert [p.get_payload(decode=True) for p in message.iter_parts()] == [b"ab", b"fg"]


def test_multipart_boundary_limits() -> None:
    assert plan_multipart([(0, 0)], 1, None, "a" * 70).trailer == b"\r\n--" + b"a" * 70 + b"--\r\n"
    for bad in ["", "a" * 71, "ends in space ", "semi;colon", 'quo"te', "back\\slash", "é", "cr\r\nlf"]:
        with pytest.raises(ValueError, match="boundary"):
            plan_multipart([(0, 0)], 1, None, bad)


@pytest.mark.parametrize("ctype", ["text/plain\r\nX-Injected: 1", "a\nb", "a\x00b", "snow☃"])
def test_multipart_rejects_header_injection_in_content_type(ctype: str) -> None:
    with pytest.raises(ValueError, match="Content-Type"):
        plan_multipart([(0, 0)], 1, ctype, "B")


def test_multipart_rejects_bad_ranges() -> None:
    with pytest.raises(ValueError, match="at least one"):
        plan_multipart([], 10, None, "B")
    with pytest.raises(ValueError, match="does not lie"):
        plan_multipart([(0, 10)], 10, None, "B")
    with pytest.raises(ValueError, match="does not lie"):
        plan_multipart([(3, 2)], 10, None, "B")


def test_multipart_beyond_four_gib() -> None:
    size = 5 * 2**30
    plan = plan_multipart([(0, 9), (size - 10, size - 1)], size, "video/mp4", "B")
    heads = sum(len(head) for head, _, _ in plan.parts)
    assert plan.content_length == heads + 20 + len(plan.trailer)
    assert plan.parts[1][0].endswith(f"Content-Range: bytes {size - 10}-{size - 1}/{size}\r\n\r\n".encode())


@given(
    st.binary(min_size=1, max_size=300),
    st.lists(st.tuples(st.integers(0, 299), st.integers(0, 299)), min_size=1, max_size=6),
    st.from_regex(re.compile(r"[0-9A-Za-z'()+_,\-./:=?]{1,70}"), fullmatch=True),
)
def test_multipart_round_trip_any_bytes(data: bytes, raw: list[tuple[int, int]], boundary: str) -> None:
    size = len(data)
    ranges = [(min(a % size, b % size), max(a % size, b % size)) for a, b in raw]
    plan = plan_multipart(ranges, size, "application/octet-stream", boundary)
    body = build_body(plan, data)
    assert len(body) == plan.content_length
    # The body is self-delimiting only if the boundary does not occur in the data
    # (RFC 2046: the caller picks a random one); check by hand when that holds.
    if b"--" + boundary.encode() not in data:
        parts = parse_by_hand(body, boundary)
        assert [payload for _, payload in parts] == [data[a : b + 1] for a, b in ranges]
        assert [f["Content-Range"] for f, _ in parts] == [f"bytes {a}-{b}/{size}" for a, b in ranges]


def test_decision_feeds_plan() -> None:
    data = bytes(range(256)) * 40
    decision = decide("bytes=-100,0-99,50-149", len(data))
    assert decision == RangeDecision(MULTI, ((len(data) - 100, len(data) - 1), (0, 149)))
    plan = plan_multipart(decision.ranges, len(data), "application/octet-stream", "sep")
    parts = parse_by_hand(build_body(plan, data), "sep")
    assert [p for _, p in parts] == [data[-100:], data[:150]]
