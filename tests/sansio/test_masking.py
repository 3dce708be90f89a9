"""RFC 6455 §5.3 masking: the C speedup and the pure-Python fallback agree."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_ws.sansio import masking
from trio_ws.sansio.masking import BytesLike, apply_mask, apply_mask_python

MaskFn = Callable[[BytesLike, BytesLike], bytes]

try:
    from trio_ws._speedups import apply_mask as c_apply_mask
except ImportError:  # pragma: no cover - only when the extension is not built
    IMPLEMENTATIONS: list[MaskFn] = [apply_mask_python]
else:
    IMPLEMENTATIONS = [apply_mask_python, c_apply_mask]


def reference(data: bytes, mask: bytes) -> bytes:
    """§5.3 literally: octet i XOR masking-key octet (i MOD 4)."""
    return bytes(b ^ mask[i % 4] for i, b in enumerate(data))


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda f: f.__module__)
def impl(request: pytest.FixtureRequest) -> MaskFn:
    fn: MaskFn = request.param
    return fn


class TestSection5_3:
    def test_rfc_5_7_example(self, impl: MaskFn) -> None:
        # §5.7: "A single-frame masked text message": 0x81 0x85 0x37 0xfa 0x21 0x3d ...
        assert impl(bytes.fromhex("7f9f4d5158"), bytes.fromhex("37fa213d")) == b"Hello"

    @pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 7, 8, 9, 31, 32, 33, 63, 64, 65, 1000])
    def test_lengths(self, impl: MaskFn, n: int) -> None:
        data = bytes(range(256)) * 4
        assert impl(data[:n], b"\x01\x80\xff\x5a") == reference(data[:n], b"\x01\x80\xff\x5a")

    def test_large_payload(self, impl: MaskFn) -> None:
        data = bytes(range(256)) * 4099 + b"xyz"  # above the C module's GIL threshold
        mask = b"\xde\xad\xbe\xef"
        out = impl(data, mask)
        assert out[:1024] == reference(data[:1024], mask)
        assert out[-3:] == reference(data, mask)[-3:]
        assert impl(out, mask) == data

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_buffer_types(self, impl: MaskFn, kind: Callable[[bytes], BytesLike]) -> None:
        assert impl(kind(b"abcdefghi"), kind(b"\x01\x02\x03\x04")) == reference(
            b"abcdefghi", b"\x01\x02\x03\x04"
        )

    def test_memoryview_slice(self, impl: MaskFn) -> None:
        buf = bytearray(b"0123456789")
        with memoryview(buf) as view:
            assert impl(view[3:8], b"abcd") == reference(b"34567", b"abcd")

    @pytest.mark.parametrize("mask", [b"", b"abc", b"abcde"])
    def test_mask_must_be_4_bytes(self, impl: MaskFn, mask: bytes) -> None:
        with pytest.raises(ValueError, match="4 bytes"):
            impl(b"data", mask)

    def test_returns_bytes(self, impl: MaskFn) -> None:
        assert type(impl(bytearray(b"abc"), b"abcd")) is bytes
        assert impl(b"", b"abcd") == b""


@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4))
def test_implementations_agree(data: bytes, mask: bytes) -> None:
    expected = reference(data, mask)
    for fn in IMPLEMENTATIONS:
        assert fn(data, mask) == expected
        assert fn(expected, mask) == data  # masking is an involution


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4), st.integers(0, 300))
def test_unaligned_views_agree(data: bytes, mask: bytes, start: int) -> None:
    with memoryview(data) as view:
        part = view[start:]
        results = {fn(part, mask) for fn in IMPLEMENTATIONS}
        part.release()
    assert results == {reference(data[start:], mask)}


def test_fast_implementation_selected() -> None:
    if masking.HAVE_SPEEDUPS:
        assert apply_mask is IMPLEMENTATIONS[-1]
    else:  # pragma: no cover
        assert apply_mask is apply_mask_python
