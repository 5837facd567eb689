"""Where work stands in the one queue (`Runner.standing`, `app/worker/progress.py`): positions counted over every
request's work (the running one included, work whose client left not), each model's speed measured from the work
that finished, and an estimate that follows a running ticket's own pace and counts down between its reports."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    step = progress.PACE_AUDIO_SECONDS  # one report's audio: the earlier one then weighs PACE_DECAY of the next
    ticket = Ticket(5 * step, "m")
    speeds = Speeds()
    assert ticket.remaining(speeds, clock.now) is None  # nothing measured, no progress: unknown
    ticket.begin()
    clock.now += 0.5 * step
    ticket.advance(step)  # the first chunk, with the start-up costs: 0.5 s of work per second of audio
    assert ticket.remaining(speeds, clock.now) == pytest.approx(4 * step * 0.5)  # all there is to go by
    clock.now += 0.2 * step
    ticket.advance(2 * step)  # 0.2 s per second: the first report no longer counts
    assert ticket.remaining(speeds, clock.now) == pytest.approx(3 * step * 0.2)
    assert ticket.remaining(speeds, clock.now + 2.0) == pytest.approx(3 * step * 0.2 - 2.0)  # counts down
    clock.now += 0.1 * step
    ticket.advance(3 * step)  # the machine got twice as fast: 0.1 s per second
    # nearer the recent 0.1 than the average 0.15 of the two
    pace = (progress.PACE_DECAY * 0.2 + 0.1) / (progress.PACE_DECAY + 1)
    assert 0.1 < pace < 0.15 and ticket.remaining(speeds, clock.now) == pytest.approx(2 * step * pace)
    assert ticket.fraction == 0.6
    ticket.advance(step / 2)  # progress never goes back
    assert ticket.done_seconds == 3 * step
    ticket.advance(6 * step)  # the header understated the length: it grows
    assert ticket.audio_seconds == 6 * step and ticket.fraction == 1.0
    assert ticket.end() == (6 * step, pytest.approx(0.8 * step))  # what the piece did, for the model's speed


@given(
    st.floats(0.02, 1.0),  # the first chunk's work seconds per audio second (start-up costs included)
    st.lists(st.floats(0.02, 0.5), min_size=1, max_size=12),  # then per 80 s of audio
    st.sampled_from([1, 2, 4, 8]),  # reports per 80 s of audio: batches ... or a chunk each (BATCH_SIZE=1)
)
def test_a_pace_does_not_depend_on_how_often_progress_is_reported(first: float, rates: list[float], split: int) -> None:
    """The same work, reported once per 80 s of audio or `split` times as often (BATCH_SIZE=4 or 1), gives the same
    estimate: the weight of what was done earlier decays with the audio done since, not with the number of reports
    (the first report, one chunk in either case, is dropped once there is another)."""

    def estimate(pieces: int) -> float:
        now = [0.0]
        ticket = Ticket(20.0 + len(rates) * progress.PACE_AUDIO_SECONDS + 1.0, "m")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(progress.time, "monotonic", lambda: now[0])
            ticket.begin()
            now[0] += first * 20.0
            ticket.advance(20.0)  # the first chunk goes alone
            step = progress.PACE_AUDIO_SECONDS / pieces
            for rate in rates:
                for _ in range(pieces):
                    now[0] += rate * step
                    ticket.advance(ticket.done_seconds + step)
        remaining = ticket.remaining(Speeds(), now[0])
        assert remaining is not None
        return remaining

    coarse, fine = estimate(1), estimate(split)
    assert fine == pytest.approx(coarse, rel=1e-9)


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
