"""Configuration and statistics types of the trio WebSocket.

:class:`WebSocketConfig` holds every limit and timer of one connection (safe
defaults; ``None`` disables a limit or timer); :class:`WebSocketOptions` is the
same set as keyword arguments of :func:`trio_ws.connect` and
:meth:`trio_ws.App.websocket`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypedDict

from .sansio.connection import Role, State, WebSocketProtocol
from .sansio.deflate import DEFAULT_COMPRESSION_LEVEL, DEFAULT_MEM_LEVEL, DEFAULT_THRESHOLD, DeflateSettings
from .sansio.frames import Extension

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
#: A server's default permessage-deflate window: 4 KiB, so zlib costs ~43 KiB per
#: connection instead of ~300 KiB (see :mod:`trio_ws.sansio.deflate`).
SERVER_MAX_WINDOW_BITS = 12


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
    compression: bool
    compression_threshold: int
    compression_level: int
    compression_mem_level: int
    max_window_bits: int | None
    compression_no_context_takeover: bool


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
    #: Negotiate permessage-deflate (RFC 7692): offered by a client, accepted by a server.
    compression: bool = True
    #: Messages sent in one frame below this many bytes go uncompressed.
    compression_threshold: int = DEFAULT_THRESHOLD
    #: zlib level of our compressor (-1..9).
    compression_level: int = DEFAULT_COMPRESSION_LEVEL
    #: zlib memLevel of our compressor (1..9): its hash table costs ``1 << (mem_level + 9)`` bytes.
    compression_mem_level: int = DEFAULT_MEM_LEVEL
    #: LZ77 window (8..15) of our compressor, asked of the peer too; None: 12 on a server, 15 on a client.
    max_window_bits: int | None = None
    #: Keep no zlib state between messages (asked of the peer too): less memory, less compression.
    compression_no_context_takeover: bool = False

    def __post_init__(self) -> None:
        if self.max_queue < 1 or self.receive_size < 1:
            raise ValueError("max_queue and receive_size must be at least 1")
        if self.close_timeout <= 0:
            raise ValueError("close_timeout must be positive")
        self.deflate_settings(Role.CLIENT)  # validates the compression options

    def deflate_settings(self, role: Role) -> DeflateSettings | None:
        """The permessage-deflate settings for ``role``; None when compression is off."""
        if not self.compression:
            return None
        bits = self.max_window_bits
        if bits is None:
            bits = SERVER_MAX_WINDOW_BITS if role is Role.SERVER else 15
        return DeflateSettings(
            max_window_bits=bits,
            level=self.compression_level,
            mem_level=self.compression_mem_level,
            threshold=self.compression_threshold,
            no_context_takeover=self.compression_no_context_takeover,
        )

    def make_protocol(
        self,
        role: Role,
        mask_source: Callable[[], bytes] | None = None,
        extensions: Sequence[Extension] = (),
    ) -> WebSocketProtocol:
        """A protocol core with these limits and the negotiated ``extensions``."""
        return WebSocketProtocol(
            role,
            max_message_size=self.max_message_size,
            max_frame_size=self.max_frame_size,
            mask_source=mask_source,
            fragments=self.fragments,
            extensions=extensions,
        )


@dataclass(frozen=True, slots=True)
class WebSocketStatistics:
    """What :meth:`WebSocket.statistics` reports (trio's ``statistics()`` convention)."""

    state: State
    #: Messages (or fragments) waiting for ``receive()`` (channel and backlog), and their payload bytes.
    messages_queued: int
    bytes_queued: int
    max_queue: int
    #: True while the channel is full and the rest of a read waits in the backlog: nobody reads.
    reader_blocked: bool
    #: Bytes held by the protocol: a partial frame plus a partial message.
    bytes_buffered: int
    #: Control bytes (Pong, keepalive Ping, Close) scheduled but not written yet.
    control_bytes_pending: int
    pings_in_flight: int
    bytes_received: int
    bytes_sent: int
