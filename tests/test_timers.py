"""The run's timer service (``trio_ws._timers``): one task calls many objects back at their moments."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from trio_ws._timers import GRAIN, TimerService, timer_service


class Alarm:
    """A :class:`~trio_ws._timers.Timed` that records when it was called."""

    def __init__(self, calls: list[tuple[str, float]], name: str, fail: bool = False) -> None:
        self._timer_key: int | None = None
        self.calls = calls
        self.name = name
        self.fail = fail

    def _on_timer(self) -> None:
        self.calls.append((self.name, trio.current_time()))
        if self.fail:
            raise RuntimeError("callback bug")


async def test_objects_are_called_back_at_their_moment_rounded_up_to_the_grain(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls: list[tuple[str, float]] = []
    service = timer_service()
    assert timer_service() is service  # one per run
    start = trio.current_time()
    late, early = Alarm(calls, "late"), Alarm(calls, "early")
    service.schedule(late, start + 1.01)
    service.schedule(early, start + 0.3)
    assert len(service) == 2
    await trio.sleep(2)
    assert [name for name, _ in calls] == ["early", "late"]
    for (_, at), wanted in zip(calls, (0.3, 1.01), strict=True):
        assert start + wanted <= at <= start + wanted + GRAIN + 1e-9
    assert len(service) == 0
    assert late._timer_key is None


async def test_the_earlier_moment_wins_and_cancel_forgets(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[tuple[str, float]] = []
    service = timer_service()
    start = trio.current_time()
    alarm, gone = Alarm(calls, "alarm"), Alarm(calls, "gone")
    service.schedule(alarm, start + 5)
    service.schedule(alarm, start + 1)  # earlier: moves
    service.schedule(alarm, start + 3)  # later: the earlier one stays
    service.schedule(gone, start + 0.5)
    service.cancel(gone)
    service.cancel(gone)  # twice: a no-op
    await trio.sleep(10)
    assert len(calls) == 1
    name, at = calls[0]
    assert name == "alarm"
    assert start + 1 <= at <= start + 1 + GRAIN + 1e-9


async def test_an_earlier_moment_wakes_the_sleeping_service(autojump_clock: trio.testing.MockClock) -> None:
    calls: list[tuple[str, float]] = []
    service = timer_service()
    start = trio.current_time()
    service.schedule(Alarm(calls, "far"), start + 100)
    await trio.sleep(1)  # the service sleeps until +100 now
    service.schedule(Alarm(calls, "near"), start + 2)
    await trio.sleep(2)
    assert [name for name, _ in calls] == ["near"]


async def test_a_failing_callback_is_logged_and_the_others_still_run(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, float]] = []
    service = timer_service()
    start = trio.current_time()
    service.schedule(Alarm(calls, "bad", fail=True), start + 1)
    service.schedule(Alarm(calls, "good"), start + 1)
    service.schedule(Alarm(calls, "later"), start + 2)
    with caplog.at_level(logging.ERROR, logger="trio_ws.timers"):
        await trio.sleep(3)
    assert sorted(name for name, _ in calls) == ["bad", "good", "later"]
    assert "timer callback failed" in caplog.text


def test_a_service_outside_a_run_only_keeps_deadlines() -> None:
    service = TimerService()
    alarm = Alarm([], "x")
    service.schedule(alarm, 1.0)
    assert alarm._timer_key is not None
    assert len(service) == 1
