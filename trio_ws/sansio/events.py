"""Events produced by :meth:`WebSocketProtocol.receive_data` (RFC 6455 §5.6, §5.5).

Frozen, slotted dataclasses: cheap to build, safe to hand across tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "BytesMessage",
    "CloseReceived",
    "Event",
    "Fragment",
    "Ping",
    "Pong",
    "TextMessage",
]


@dataclass(frozen=True, slots=True)
class TextMessage:
    """A complete text message (§5.6), already validated as UTF-8."""

    data: str


@dataclass(frozen=True, slots=True)
class BytesMessage:
    """A complete binary message (§5.6)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    """A Ping (§5.5.2).  The protocol has already queued the Pong reply."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """A Pong (§5.5.3), solicited or not."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseReceived:
    """The peer's Close frame (§5.5.1).

    ``code`` is ``None`` when the frame had no status code (reported as 1005,
    §7.1.5); ``reason`` is the decoded reason, ``""`` when absent.
    """

    code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Fragment:
    """A piece of a message, delivered as it arrives (``fragments=True``).

    ``data`` is ``str`` for text (always whole code points: bytes of a split code
    point are held back until it completes) and ``bytes`` for binary.  ``offset``
    is the byte offset of this piece within the message payload (for text, the
    number of UTF-8 bytes delivered before it); ``frame_bytes_left`` the payload
    bytes of the current frame not yet delivered; ``final`` is True for the
    message's last piece.
    """

    data: bytes | str
    binary: bool
    offset: int
    frame_bytes_left: int
    final: bool


Event: TypeAlias = TextMessage | BytesMessage | Ping | Pong | CloseReceived | Fragment
