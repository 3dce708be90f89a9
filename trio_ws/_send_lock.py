"""The WebSocket send path's lock (``trio_ws._ws_core``, "Scheduler trips")."""

from __future__ import annotations

import trio

__all__ = ["SendLock"]


class SendLock:
    """The send path's mutex: FIFO, and no scheduler round to take it when free.

    ``trio.Lock`` costs a full scheduler round even uncontended, and tracks
    its owner; two of them per message were a measurable share of a small
    message's cost.  Here the hot path takes a free lock with
    :meth:`acquire_nowait` after a cancellation check (the write that follows
    is the checkpoint); :meth:`acquire` and ``async with`` are full
    checkpoints, like ``trio.Lock``'s.  A release with waiters hands the lock
    straight to the first one.  Not re-entrant; no owner checks (private use).
    """

    __slots__ = ("_locked", "_lot", "_waiting")

    def __init__(self) -> None:
        self._locked = False
        self._waiting = 0
        self._lot: trio.lowlevel.ParkingLot | None = None  # made at the first contention

    def locked(self) -> bool:
        return self._locked

    def acquire_nowait(self) -> None:
        """Take the lock, which the caller saw free (no yield in between)."""
        self._locked = True

    async def acquire(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._locked:
            if self._lot is None:
                self._lot = trio.lowlevel.ParkingLot()
            self._waiting += 1
            try:
                await self._lot.park()  # woken by release(): the lock is ours
            finally:
                self._waiting -= 1
        else:
            self._locked = True
            await trio.lowlevel.cancel_shielded_checkpoint()

    def release(self) -> None:
        # A waiter cancelled a moment ago may still count in _waiting but is
        # no longer parked: unpark() then wakes nobody, and the lock is freed.
        if not (self._waiting and self._lot is not None and self._lot.unpark()):
            self._locked = False  # else ownership passed on: it stays locked

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()
