"""Where work stands in the one queue (`Runner.standing`, `app/worker/progress.py`): positions counted over every
request's work (the running one included, work whose client left not), each model's speed measured from the work
that finished, and an estimate that follows a running ticket's own pace and counts down between its reports."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.worker import progress
from app.worker.cancel import CancelToken
from app.worker.progress import Speeds, Ticket
from app.worker.runner import Runner


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_running_ticket_is_estimated_from_its_own_recent_pace_counting_down(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(progress.time, "monotonic", clock)
    ticket = Ticket(100.0, "m")
    speeds = Speeds()
    assert ticket.remaining(speeds, clock.now) is None  # nothing measured, no progress: unknown
    ticket.begin()
    clock.now += 5.0
    ticket.advance(25.0)  # 0.2 s of work per second of audio
    assert ticket.remaining(speeds, clock.now) == pytest.approx(75.0 * 0.2)
    assert ticket.remaining(speeds, clock.now + 2.0) == pytest.approx(75.0 * 0.2 - 2.0)  # counts down
    clock.now += 2.5
    ticket.advance(50.0)  # the machine got twice as fast: 0.1 s per second
    # the earlier report weighs PACE_DECAY of the recent one: nearer the recent 0.1 than the whole run's average 0.15
    pace = (progress.PACE_DECAY * 5.0 + 2.5) / (progress.PACE_DECAY * 25.0 + 25.0)
    assert 0.1 < pace < 0.15 and ticket.remaining(speeds, clock.now) == pytest.approx(50.0 * pace)
    assert ticket.fraction == 0.5
    ticket.advance(10.0)  # progress never goes back
    assert ticket.done_seconds == 50.0
    ticket.advance(120.0)  # the header understated the length: it grows
    assert ticket.audio_seconds == 120.0 and ticket.fraction == 1.0
    assert ticket.end() == (120.0, 7.5)  # what the piece did, for the model's speed


def test_speeds_weigh_long_runs_more_and_forget_old_ones() -> None:
    speeds = Speeds()
    assert speeds.rate("m") is None
    speeds.observe("m", 10.0, 1.0)
    speeds.observe("m", 90.0, 27.0)
    assert speeds.rate("m") == (1.0 + 27.0) / 100.0
    speeds.observe("m", 0.0, 5.0)  # a piece that transcribed nothing (a language detection) is no measurement
    assert speeds.rate("m") == 0.28
    for _ in range(8):
        speeds.observe("m", 10.0, 5.0)
    assert speeds.rate("m") == 0.5
    assert speeds.rate("other") is None


def test_positions_count_the_running_work_and_skip_work_nobody_wants() -> None:
    async def scenario() -> None:
        runner = Runner(max_queue=8)
        release = threading.Event()
        running = threading.Event()
        first = Ticket(60.0, "m")

        def long_work() -> None:
            running.set()
            first.advance(30.0)
            release.wait(5)

        tickets = [Ticket(20.0, "m") for _ in range(3)]
        cancels = [CancelToken() for _ in tickets]
        works = [asyncio.ensure_future(runner.run(long_work, CancelToken(), ticket=first))]
        await asyncio.to_thread(running.wait, 5)
        works += [asyncio.ensure_future(runner.run(lambda: None, c, ticket=t)) for t, c in zip(tickets, cancels)]
        await asyncio.sleep(0.05)
        assert [runner.standing(t).position for t in tickets] == [1, 2, 3]
        assert runner.standing(first).position == 0 and runner.waiting == 3
        assert runner.standing(tickets[0]).eta_seconds is None  # no speed of "m" measured yet
        cancels[1].cancel()  # its client left: it no longer counts
        assert [runner.standing(t).position for t in (tickets[0], tickets[2])] == [1, 2]
        assert runner.standing(Ticket(5.0, "m")).position == 3  # not queued yet: behind everything that is
        release.set()
        await asyncio.gather(*works, return_exceptions=True)
        assert runner.speeds.rate("m") is not None  # measured from the work that finished
        runner.shutdown()

    asyncio.run(scenario())


def test_a_queued_ticket_waits_for_what_is_ahead_at_the_measured_speed() -> None:
    async def scenario() -> None:
        runner = Runner(max_queue=8)
        runner.speeds.observe("m", 100.0, 10.0)  # 0.1 worker seconds per audio second
        release = threading.Event()
        running = threading.Event()
        ahead = Ticket(None, "m")  # a running request of unknown length counts as nothing

        def blocking() -> None:
            running.set()
            release.wait(5)

        works = [asyncio.ensure_future(runner.run(blocking, CancelToken(), ticket=ahead))]
        await asyncio.to_thread(running.wait, 5)
        queued = [Ticket(30.0, "m"), Ticket(50.0, "m")]
        works += [asyncio.ensure_future(runner.run(lambda: None, CancelToken(), ticket=t)) for t in queued]
        await asyncio.sleep(0.05)
        second = runner.standing(queued[1])
        assert second.position == 2 and second.eta_seconds is not None
        assert abs(second.eta_seconds - (30.0 + 50.0) * 0.1) < 1e-6
        release.set()
        await asyncio.gather(*works)
        runner.shutdown()

    asyncio.run(scenario())
