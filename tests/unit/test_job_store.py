"""The store of jobs (`app/job_store.py`) on a clock the test moves: ids, MAX_JOBS, time to live and its refresh,
cancellation releasing a job's audio at once; and, for any sequence of submissions, finishes, fetches, deletions
and waits, the invariants a client relies on."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import QueueFull, UnknownJob
from app.job_store import ID_PREFIX, HeldJob, JobResult, JobStore, short_id
from app.settings import JobSettings
from app.transcript import Transcript
from app.worker.progress import Ticket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store_of(clock: Clock, *, ttl: float = 60.0, max_jobs: int = 4, refresh: bool = True) -> JobStore:
    settings = JobSettings(jobs_ttl_seconds=ttl, max_jobs=max_jobs, jobs_ttl_refresh=refresh)
    return JobStore(settings, clock=clock, wall=lambda: clock.now + 1_700_000_000)


def submit(store: JobStore, released: list[str] | None = None) -> HeldJob:
    owned = contextlib.ExitStack()
    if released is not None:
        owned.callback(released.append, "slot and audio")
    with store.reserving() as place:
        return place.hold(
            task="transcribe", model="tiny.en", response_format="json", diarized=False, ticket=Ticket(10.0), owned=owned
        )


RESULT = JobResult(Transcript(language="en", duration=10.0, segments=()), None, 1.0)


def test_an_id_carries_128_random_bits_and_logs_show_only_its_start() -> None:
    store = store_of(Clock())
    ids = {submit(store).id for _ in range(4)}
    assert len(ids) == 4
    for job_id in ids:
        assert job_id.startswith(ID_PREFIX)
        raw = base64.urlsafe_b64decode(job_id.removeprefix(ID_PREFIX) + "==")
        assert len(raw) * 8 >= 128
        shown = short_id(job_id)
        assert job_id.startswith(shown) and len(shown) < len(job_id) // 2


def test_a_finished_job_lives_its_ttl_from_its_last_fetch() -> None:
    clock = Clock()
    store = store_of(clock, ttl=5.0)
    job = submit(store)
    clock.now += 100  # a queued or running job does not expire
    assert store.get(job.id) is job and job.expires_at is None
    store.finish(job, "succeeded", result=RESULT)
    clock.now += 2
    assert store.get(job.id) is job  # fetched at 2 s: it now lives until 7 s
    clock.now += 4.9
    assert store.get(job.id, fetched=False) is job
    clock.now += 0.2
    with pytest.raises(UnknownJob, match="in memory only"):
        store.get(job.id)
    assert len(store) == 0


def test_without_refresh_a_fetch_does_not_extend_its_life() -> None:
    clock = Clock()
    store = store_of(clock, ttl=5.0, refresh=False)
    job = submit(store)
    store.finish(job, "succeeded", result=RESULT)
    clock.now += 4
    store.get(job.id)
    clock.now += 1.5
    with pytest.raises(UnknownJob):
        store.get(job.id)


def test_max_jobs_refuses_with_the_wait_until_the_next_expiry() -> None:
    clock = Clock()
    store = store_of(clock, ttl=30.0, max_jobs=2)
    first, second = submit(store), submit(store)
    with pytest.raises(QueueFull) as refused:
        submit(store)
    assert refused.value.code == "too_many_jobs" and refused.value.retry_after_seconds == 30  # nothing finished yet
    store.finish(first, "succeeded", result=RESULT)
    clock.now += 12
    with pytest.raises(QueueFull) as refused:
        submit(store)
    assert refused.value.retry_after_seconds == 18
    store.forget(second)
    assert submit(store).status == "queued"


def test_a_reservation_counts_while_the_upload_is_read_and_goes_if_it_fails() -> None:
    store = store_of(Clock(), max_jobs=1)
    with store.reserving(), pytest.raises(QueueFull):  # a second upload at the same time finds no place
        submit(store)
    with contextlib.suppress(ValueError), store.reserving():
        raise ValueError("the upload was refused")
    assert len(store) == 0 and submit(store).status == "queued"


def test_cancelling_releases_the_audio_at_once_and_keeps_the_outcome() -> None:
    clock = Clock()
    store = store_of(clock)
    released: list[str] = []
    job = submit(store, released)
    store.cancel(job)
    assert job.status == "cancelled" and job.cancel.cancelled and released == ["slot and audio"]
    job.release()  # the work, stopping at its batch boundary, releases again: nothing more happens
    store.finish(job, "succeeded", result=RESULT)  # a last batch finishing after the cancel changes nothing
    assert job.status == "cancelled" and job.result is None and released == ["slot and audio"]
    assert job.expires_at is not None


Operation = st.one_of(
    st.just(("submit", 0.0)),
    st.tuples(st.just("finish"), st.integers(0, 9).map(float)),
    st.tuples(st.just("fetch"), st.integers(0, 9).map(float)),
    st.tuples(st.just("delete"), st.integers(0, 9).map(float)),
    st.tuples(st.just("wait"), st.floats(0.0, 20.0)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(Operation, max_size=40), st.booleans())
def test_whatever_clients_do_the_store_keeps_its_promises(operations: list[tuple[str, float]], refresh: bool) -> None:
    clock = Clock()
    ttl = 10.0
    store = store_of(clock, ttl=ttl, max_jobs=3, refresh=refresh)
    submitted: list[HeldJob] = []
    deleted: set[str] = set()
    last_touch: dict[str, float] = {}  # finished jobs: when their life last (re)started
    for name, value in operations:
        pick = submitted[int(value) % len(submitted)] if submitted else None
        if name == "submit":
            try:
                submitted.append(submit(store))
            except QueueFull as refused:
                assert len(store) == 3 and refused.retry_after_seconds >= 1
        elif name == "finish" and pick is not None and pick.outcome is None:
            store.finish(pick, "succeeded", result=RESULT)
            last_touch[pick.id] = clock.now
        elif name == "fetch" and pick is not None:
            expected_gone = pick.id in deleted or (pick.id in last_touch and clock.now >= last_touch[pick.id] + ttl)
            try:
                store.get(pick.id)
            except UnknownJob:
                assert expected_gone
                deleted.add(pick.id)
            else:
                assert not expected_gone
                if refresh and pick.id in last_touch:
                    last_touch[pick.id] = clock.now
        elif name == "delete" and pick is not None and pick.outcome is not None:
            store.forget(pick)
            deleted.add(pick.id)
        elif name == "wait":
            clock.now += value
        held = store.jobs()
        assert len(held) <= 3
        assert [j.id for j in held] == [j.id for j in reversed(submitted) if j in held]  # newest first
        assert all(j.outcome is not None or j.expires_at is None for j in held)  # unfinished ones never expire
