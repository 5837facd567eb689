"""The registry of jobs a retried request attaches to (`app/api/resume.py`), on a real event loop: the grace, the
replay of a stream, cancellation when nobody comes back; and the request key's invariants."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from app.api.resume import ResumableJobs, request_key
from app.errors import Cancelled
from app.worker.cancel import CancelToken

GRACE = 0.2


async def ticks(count: int, cancel: CancelToken) -> AsyncIterator[int]:
    """Work that yields one item per 50 ms and stops at its next 'batch boundary' when cancelled."""
    for i in range(count):
        await asyncio.sleep(0.05)
        cancel.raise_if_cancelled()
        yield i


def start(jobs: ResumableJobs, key: str, count: int) -> tuple[CancelToken, list[str]]:
    cancel = CancelToken()
    closed: list[str] = []
    owned = contextlib.ExitStack()
    owned.callback(closed.append, "slot and files")
    jobs.start(key, ticks(count, cancel), cancel, owned)
    return cancel, closed


def start_and_wait(jobs: ResumableJobs, key: str, count: int) -> tuple[CancelToken, asyncio.Event]:
    """`start`, with an event set once the work has stopped (its slot and files released)."""
    cancel = CancelToken()
    stopped = asyncio.Event()
    owned = contextlib.ExitStack()
    owned.callback(stopped.set)
    jobs.start(key, ticks(count, cancel), cancel, owned)
    return cancel, stopped


def test_a_retry_gets_every_item_from_the_first() -> None:
    async def scenario() -> None:
        jobs = ResumableJobs(GRACE)
        _, closed = start(jobs, "k", 6)
        first = jobs.find("k")
        assert first is not None
        seen: list[int] = []
        async for item in first.follow():
            seen.append(item)
            if len(seen) == 2:
                break  # the client hangs up
        retry = jobs.find("k")
        assert retry is first
        assert [item async for item in retry.follow()] == list(range(6))
        assert jobs.find("k") is None  # delivered: forgotten
        assert closed == ["slot and files"]

    asyncio.run(scenario())


def test_nobody_back_cancels_after_the_grace() -> None:
    async def scenario() -> None:
        abandoned: list[int] = []
        jobs = ResumableJobs(1.0, on_abandoned=lambda: abandoned.append(1))
        cancel, stopped = start_and_wait(jobs, "k", 1000)
        job = jobs.find("k")
        assert job is not None
        follower = job.follow()
        await anext(follower)
        await follower.aclose()  # the client hangs up
        hung_up = time.monotonic()
        await asyncio.sleep(0.3)
        assert not cancel.cancelled and jobs.find("k") is job  # still running, waiting for a retry
        await asyncio.wait_for(stopped.wait(), timeout=10)
        assert time.monotonic() - hung_up >= 1.0  # not before the grace
        assert cancel.cancelled and abandoned == [1] and jobs.find("k") is None
        assert job.done and isinstance(job.error, Cancelled)

    asyncio.run(scenario())


def test_a_finished_result_waits_for_its_retry_then_goes() -> None:
    async def scenario() -> None:
        jobs = ResumableJobs(1.0)
        cancel, stopped = start_and_wait(jobs, "k", 2)
        job = jobs.find("k")
        await stopped.wait()  # finished with nobody following
        assert job is not None and job.done
        assert jobs.find("k") is job and await job.result() == 1  # the retry within the grace gets it
        _, stopped = start_and_wait(jobs, "other", 2)
        await stopped.wait()
        await asyncio.sleep(1.3)  # nobody came back for "other" within the grace
        assert jobs.find("other") is None and len(jobs) == 0 and not cancel.cancelled

    asyncio.run(scenario())


fields = st.dictionaries(st.text(max_size=8), st.lists(st.text(max_size=8), min_size=1, max_size=3), max_size=5)
files = st.lists(st.tuples(st.text(max_size=5), st.text(max_size=5), st.text("0123456789abcdef", min_size=64)))


@given(fields, files)
def test_the_key_ignores_order_and_changes_with_any_input(
    form: dict[str, list[str]], uploads: list[tuple[str, str, str]]
) -> None:
    key = request_key("transcribe:openai", form, uploads)
    assert key == request_key("transcribe:openai", dict(reversed(form.items())), list(reversed(uploads)))
    assert key != request_key("translate:openai", form, uploads)
    assert key != request_key("transcribe:openai", {**form, "extra-field": ["1"]}, uploads)
    assert key != request_key("transcribe:openai", form, [*uploads, ("file", "a.wav", "0" * 64)])
