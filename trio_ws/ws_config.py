"""Configuration and statistics types of the trio WebSocket.

:class:`WebSocketConfig` holds every limit and timer of one connection (safe
defaults; ``None`` disables a limit or timer); :class:`WebSocketOptions` is the
same set as keyword arguments of :func:`trio_ws.connect` and
:meth:`trio_ws.App.websocket`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypedDict

from .sansio.connection import Role, State, WebSocketProtocol

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_RECEIVE_SIZE",
    "WebSocketConfig",
    "WebSocketOptions",
    "WebSocketStatistics",
]

#: Messages (or fragments) buffered between the reader and ``receive()``.
DEFAULT_MAX_QUEUE = 16
#: Bytes asked of the socket per read.
DEFAULT_RECEIVE_SIZE = 64 * 1024


class WebSocketOptions(TypedDict, total=False):
    """Keyword options of :func:`trio_ws.connect` and :meth:`trio_ws.App.websocket`."""

    max_message_size: int | None
    max_frame_size: int | None
    max_queue: int
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float
    fragments: bool
    receive_size: int


@dataclass(frozen=True, slots=True)
class WebSocketConfig:
    """Limits and timers of one WebSocket (seconds and bytes; ``None`` disables)."""

    #: Largest incoming message (1009 beyond), checked before it is buffered.
    max_message_size: int | None = 1 << 20
    #: Largest incoming data frame (1009 beyond).
    max_frame_size: int | None = None
    #: Messages buffered for ``receive()``: the backpressure point.
    max_queue: int = DEFAULT_MAX_QUEUE
    #: Send a Ping this often...
    ping_interval: float | None = 20.0
    #: ... and fail with 1011 when its Pong takes longer than this.
    ping_timeout: float | None = 20.0
    #: Deadline of the whole closing handshake.
    close_timeout: float = 10.0
    #: Deliver messages piece by piece as they arrive (:meth:`WebSocket.receive_fragment`).
    fragments: bool = False
    #: Bytes asked of the socket per read.
    receive_size: int = DEFAULT_RECEIVE_SIZE

    def __post_init__(self) -> None:
        if self.max_queue < 1 or self.receive_size < 1:
            raise ValueError("max_queue and receive_size must be at least 1")
        if self.close_timeout <= 0:
            raise ValueError("close_timeout must be positive")

    def make_protocol(self, role: Role, mask_source: Callable[[], bytes] | None = None) -> WebSocketProtocol:
        """A protocol core with these limits."""
        return WebSocketProtocol(
            role,
            max_message_size=self.max_message_size,
            max_frame_size=self.max_frame_size,
            mask_source=mask_source,
            fragments=self.fragments,
        )


@dataclass(frozen=True, slots=True)
class WebSocketStatistics:
    """What :meth:`WebSocket.statistics` reports (trio's ``statistics()`` convention)."""

    state: State
    #: Messages (or fragments) waiting in the channel, and their payload bytes.
    messages_queued: int
    bytes_queued: int
    max_queue: int
    #: True while the reader waits for room in the channel (and so does not read).
    reader_blocked: bool
    #: Bytes held by the protocol: a partial frame plus a partial message.
    bytes_buffered: int
    #: Control bytes (Pong, Close) scheduled but not written yet.
    control_bytes_pending: int
    pings_in_flight: int
    bytes_received: int
    bytes_sent: int
