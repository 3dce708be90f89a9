"""RFC 6455 §5.3 client-to-server masking.

``apply_mask(data, mask)`` XORs ``data`` with the 4-byte ``mask`` repeated; the
same call masks and unmasks.  It is on the hot path of every frame a server
receives and every frame a client sends, so it has two implementations with
identical results (the tests compare them with hypothesis):

* ``trio_ws._speedups.apply_mask``, a tiny optional C extension that XORs 8 bytes
  at a time (built by ``setup.py``; skipped when no compiler is available);
* :func:`apply_mask_python`, the pure-Python fallback, which turns the payload
  into one big integer and XORs it with the mask repeated, so the work happens
  inside CPython's C code rather than in a per-byte Python loop.

This module is pure (no I/O, no randomness): the mask keys themselves come from
the ``mask_source`` injected into :class:`~trio_ws.sansio.connection.WebSocketProtocol`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

__all__ = ["HAVE_SPEEDUPS", "BytesLike", "apply_mask", "apply_mask_python"]

#: What the mask functions accept (``collections.abc.Buffer`` needs Python 3.12).
BytesLike: TypeAlias = bytes | bytearray | memoryview


def apply_mask_python(data: BytesLike, mask: BytesLike) -> bytes:
    """Return ``data`` XOR-ed with ``mask`` (4 bytes) repeated (RFC 6455 §5.3)."""
    mask = bytes(mask)
    if len(mask) != 4:
        raise ValueError("mask must be exactly 4 bytes")
    data = bytes(data)
    n = len(data)
    if not n:
        return b""
    # §5.3: octet i of the transformed data is octet i XOR mask[i MOD 4].
    q, r = divmod(n, 4)
    key = mask * q + mask[:r]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


_apply_mask: Callable[[BytesLike, BytesLike], bytes]
try:
    from trio_ws._speedups import apply_mask as _c_apply_mask
except ImportError:  # pragma: no cover - depends on whether the extension was built
    HAVE_SPEEDUPS = False
    _apply_mask = apply_mask_python
else:
    HAVE_SPEEDUPS = True
    _apply_mask = _c_apply_mask

#: The fastest available implementation: ``apply_mask(data, mask) -> bytes``.
apply_mask = _apply_mask
