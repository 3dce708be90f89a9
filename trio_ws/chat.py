"""Broadcast rooms: every message a member sends reaches every member.

Theory of operation
-------------------
::

    ws A ──receive()──▶ room.publish(m) ──send_nowait──▶ [queue B, max_queue] ──sender B──▶ ws B.send(m)
                                        ├─send_nowait──▶ [queue C, max_queue] ──sender C──▶ ws C.send(m)
                                        └─send_nowait──▶ [queue A, max_queue] ──sender A──▶ ws A.send(m)

* ``async with room.join(ws) as member`` adds a member: a bounded memory
  channel of ``max_queue`` messages and a *sender* task that drains it into
  ``ws.send``.  The task lives in the ``join`` block's own nursery, so it ends
  when the block does; exceptions of the block come out as themselves, never
  wrapped in an exception group.
* ``await room.publish(message)`` puts the message into every member's queue
  with ``send_nowait`` (the sender included: it sees its message come back,
  which is its delivery receipt).  It never waits for a member, so one slow
  member cannot slow the room.  :meth:`ChatRoom.serve` is a whole endpoint:
  join, publish every message received, leave.
* Messages are broadcast as they are: ``str`` stays text, ``bytes`` stays
  binary.  The same object is queued for every member, so the room holds at
  most the last ``max_queue`` messages plus one in flight per member.

Slow-member policy: disconnect, never skip
------------------------------------------
A member whose queue is full when a message arrives is ``max_queue`` messages
behind.  That member is **dropped**: the message is not queued for it, it
leaves the room at once, and its connection is closed with **1013 Try Again
Later** (IANA: "the server is terminating the connection due to a temporary
condition, e.g. it is overloaded and is casting off some of its clients").
The Close goes out after the frame being sent, if any, within the
WebSocket's ``close_timeout``; a peer that reads nothing at all is aborted
then.  Everyone else keeps getting every message, in order, without delay.

Why not skip messages for a slow member instead (websockets' ``broadcast()``
does)?  A chat with silent holes is worse than a visible disconnect: the
client knows it missed something and can reconnect (and, with a history
service, catch up).  Why not wait for it?  Then the slowest reader sets the
pace for everybody, and a client that stops reading stops the room.

The seam for other backends
---------------------------
:class:`Broadcast` is what endpoints depend on: ``join(ws)`` and
``publish(message)``.  :class:`ChatRoom` implements it in one process.  A
Redis pub/sub backend would implement ``publish`` as ``PUBLISH channel
message`` and run, per process, one subscriber task (owned by the
application's nursery) that calls the local room's :meth:`ChatRoom.deliver`
for each message it receives; ``join`` stays the local one.  ``deliver`` is
synchronous and never blocks, so the subscriber can never be slowed by a
member either.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import trio

from .exceptions import ConnectionClosed
from .websocket import Message, WebSocket

__all__ = [
    "DEFAULT_CHAT_QUEUE",
    "DROP_CODE",
    "DROP_REASON",
    "Broadcast",
    "ChatMember",
    "ChatRoom",
    "ChatRoomStatistics",
]

log = logging.getLogger("trio_ws.chat")

#: Messages waiting for one member before it counts as too slow.
DEFAULT_CHAT_QUEUE = 16
#: Close code for a member that fell ``max_queue`` messages behind (1013 Try Again Later).
DROP_CODE = 1013
DROP_REASON = "too slow: message queue full"


class Broadcast(Protocol):
    """What a chat endpoint needs from a broadcast backend (module docstring: the seam)."""

    def join(self, ws: WebSocket) -> AbstractAsyncContextManager[ChatMember]:
        """Membership for the duration of the ``async with`` block."""
        ...

    async def publish(self, message: Message) -> None:
        """Send ``message`` to every member; never waits for a slow one."""
        ...


class ChatMember:
    """One WebSocket in a room: its queue and its counters (made by :meth:`ChatRoom.join`)."""

    __slots__ = ("_dropped", "_receive", "_send", "sent", "websocket")

    def __init__(self, ws: WebSocket, max_queue: int) -> None:
        self.websocket = ws
        self._send, self._receive = trio.open_memory_channel[Message](max_queue)
        self._dropped = trio.Event()
        #: Messages written to the WebSocket so far.
        self.sent = 0

    @property
    def dropped(self) -> bool:
        """True once the room dropped this member for being too slow."""
        return self._dropped.is_set()

    @property
    def queued(self) -> int:
        """Messages waiting to be sent to this member."""
        return self._send.statistics().current_buffer_used

    def __repr__(self) -> str:
        client = self.websocket.request.client if self.websocket.request else None
        return f"<ChatMember {client} queued={self.queued} sent={self.sent}>"


@dataclass(frozen=True, slots=True)
class ChatRoomStatistics:
    """What :meth:`ChatRoom.statistics` reports."""

    members: int
    max_queue: int
    #: Messages published so far.
    published: int
    #: Members dropped for being too slow so far.
    dropped: int


class ChatRoom:
    """An in-process broadcast room (module docstring: fan-out and slow-member policy).

    ``max_queue`` bounds each member's queue; a member that falls that far
    behind is closed with :data:`DROP_CODE`.  Use it as an endpoint::

        room = ChatRoom(max_queue=32)
        app.websocket("/chat")(room.serve)
    """

    def __init__(self, *, max_queue: int = DEFAULT_CHAT_QUEUE) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_queue = max_queue
        self._members: dict[ChatMember, None] = {}  # insertion-ordered set: fan-out in join order
        self._published = 0
        self._dropped = 0

    @property
    def members(self) -> list[ChatMember]:
        return list(self._members)

    def statistics(self) -> ChatRoomStatistics:
        return ChatRoomStatistics(len(self._members), self.max_queue, self._published, self._dropped)

    # -- membership ---------------------------------------------------------------

    @asynccontextmanager
    async def join(self, ws: WebSocket) -> AsyncIterator[ChatMember]:
        """Be a member for the duration of the block; its sender task runs meanwhile."""
        member = ChatMember(ws, self.max_queue)
        error: BaseException | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._sender, member)
            nursery.start_soon(self._close_when_dropped, member)
            self._members[member] = None
            try:
                yield member
            except BaseException as exc:
                error = exc  # re-raised below, outside the nursery
            finally:
                self._leave(member)
                if not member.dropped:
                    nursery.cancel_scope.cancel()
                # A dropped member's closing handshake finishes on its own,
                # bounded by the WebSocket's close_timeout.
        if error is not None:
            raise error

    def _leave(self, member: ChatMember) -> None:
        self._members.pop(member, None)
        member._send.close()

    def _drop(self, member: ChatMember) -> None:
        log.info("dropping a slow chat member (close %d): %r", DROP_CODE, member)
        self._dropped += 1
        self._members.pop(member, None)
        member._receive.close()  # the sender stops at once: nothing more goes to it
        member._dropped.set()  # _close_when_dropped sends the 1013

    async def _sender(self, member: ChatMember) -> None:
        """Drain the member's queue into its WebSocket (never raises)."""
        try:
            async for message in member._receive:
                await member.websocket.send(message)
                member.sent += 1
        except (trio.ClosedResourceError, ConnectionClosed):
            pass  # dropped, or the connection ended: the handler's receive sees that too

    async def _close_when_dropped(self, member: ChatMember) -> None:
        await member._dropped.wait()
        await member.websocket.aclose(DROP_CODE, DROP_REASON)

    # -- broadcasting -------------------------------------------------------------

    async def publish(self, message: Message) -> None:
        """Queue ``message`` for every member (:meth:`deliver`); never waits for one."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self.deliver(message)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def deliver(self, message: Message) -> int:
        """The local fan-out: queue ``message`` for each member, dropping those that are full.

        Synchronous, so nothing can make it wait; returns how many members got it.
        A backend that receives messages from elsewhere calls this.
        """
        if not isinstance(message, str | bytes):
            raise TypeError(f"a chat message is str or bytes, not {type(message).__name__}")
        self._published += 1
        delivered = 0
        for member in list(self._members):
            try:
                member._send.send_nowait(message)
            except trio.WouldBlock:
                self._drop(member)
            else:
                delivered += 1
        return delivered

    async def serve(self, ws: WebSocket) -> None:
        """A whole endpoint: join, publish every message ``ws`` sends, leave when it closes."""
        async with self.join(ws):
            async for message in ws:
                await self.publish(message)

    def __repr__(self) -> str:
        return f"<ChatRoom members={len(self._members)} max_queue={self.max_queue}>"
