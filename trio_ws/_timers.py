"""One timer task per trio run, so that an idle connection needs no task of its own.

A WebSocket on plain TCP whose handler sits in ``receive()`` is read by that
handler's own task; what else it needs is a clock: "if nobody has read the
socket for a while, start reading", "send the keepalive Ping now".  A parked
task per connection would do (it did, until this module), but a trio task, its
coroutine frames, its cancel scope and its event are ~3 KiB: a fifth of an idle
connection.  Instead, connections hand their next moment to this service, and
its one task calls them back (:meth:`Timed._on_timer`, synchronous: it may start
a task in the connection's own nursery, which then does the work).

Deadlines are kept in buckets of :data:`GRAIN` seconds (a dict of sets, plus a
heap of bucket numbers), so scheduling and cancelling are O(1) set operations
and a connection that closes leaves nothing behind.  A connection is in at most
one bucket: asking for a later moment keeps the earlier one (the callback
simply asks again); asking for an earlier one moves it.

The task is a trio *system task*, started on first use and cancelled when the
run ends, like trio's own services: it holds no connection beyond its deadline
and never raises (a failing callback is logged).
"""

from __future__ import annotations

import heapq
import logging
import math
from typing import Protocol

import trio

__all__ = ["GRAIN", "Timed", "TimerService", "timer_service"]

log = logging.getLogger("trio_ws.timers")

#: Resolution of the service, in seconds: deadlines are rounded up to it.
GRAIN = 0.05


class Timed(Protocol):
    """What the service schedules: a slot for its bucket, and the callback."""

    _timer_key: int | None

    def _on_timer(self) -> None: ...


class TimerService:
    """Deadlines of many objects, served by one task (module docstring)."""

    __slots__ = ("_buckets", "_keys", "_sleep")

    def __init__(self) -> None:
        self._buckets: dict[int, set[Timed]] = {}
        self._keys: list[int] = []  # heap of the buckets' numbers
        self._sleep: trio.CancelScope | None = None  # the task's current wait

    def schedule(self, target: Timed, when: float) -> None:
        """Call ``target._on_timer()`` at ``when`` (or up to :data:`GRAIN` later), unless
        it is already due earlier."""
        key = math.ceil(when / GRAIN)
        old = target._timer_key
        if old is not None:
            if old <= key:
                return
            self._buckets[old].discard(target)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
            heapq.heappush(self._keys, key)
            if self._keys[0] == key and self._sleep is not None:
                self._sleep.deadline = key * GRAIN
        bucket.add(target)
        target._timer_key = key

    def cancel(self, target: Timed) -> None:
        """Forget ``target`` (a no-op when it is not scheduled)."""
        key = target._timer_key
        if key is not None:
            target._timer_key = None
            self._buckets[key].discard(target)

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    async def run(self) -> None:
        """Sleep until the earliest bucket, call its objects back; forever."""
        while True:
            deadline = self._keys[0] * GRAIN if self._keys else math.inf
            with trio.CancelScope(deadline=deadline) as self._sleep:
                await trio.sleep_forever()
            self._sleep = None
            now = trio.current_time()
            while self._keys and self._keys[0] * GRAIN <= now:
                for target in self._buckets.pop(heapq.heappop(self._keys)):
                    target._timer_key = None
                    try:
                        target._on_timer()
                    except Exception:  # one object's bug must not stop the others' timers
                        log.exception("timer callback failed")


_SERVICE: trio.lowlevel.RunVar[TimerService] = trio.lowlevel.RunVar("trio_ws_timer_service")


def timer_service() -> TimerService:
    """This trio run's service, started on first use."""
    try:
        return _SERVICE.get()
    except LookupError:
        service = TimerService()
        _SERVICE.set(service)
        trio.lowlevel.spawn_system_task(service.run, name="trio_ws timers")
        return service
