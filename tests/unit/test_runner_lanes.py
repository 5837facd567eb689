"""The Runner's two lanes: live work goes ahead of waiting file jobs and is taken at a running job's batch boundary,
always on the one worker thread."""

from __future__ import annotations

import asyncio
import threading

from app.worker.cancel import CancelToken
from app.worker.runner import Runner


def test_live_work_goes_before_waiting_jobs_and_at_batch_boundaries() -> None:
    async def scenario() -> tuple[list[str], set[str]]:
        runner = Runner(max_queue=8)
        order: list[str] = []
        threads: set[str] = set()
        started = threading.Event()
        release = threading.Event()

        def long_job() -> None:
            threads.add(threading.current_thread().name)
            order.append("file:batch1")
            started.set()
            release.wait(5)
            runner.serve_live()  # the pipeline's batch boundary
            order.append("file:batch2")

        def step(name: str) -> None:
            threads.add(threading.current_thread().name)
            order.append(name)

        file_job = asyncio.ensure_future(runner.run(long_job, CancelToken()))
        await asyncio.to_thread(started.wait, 5)
        waiting = asyncio.ensure_future(runner.run(lambda: step("file2"), CancelToken()))
        await asyncio.sleep(0.05)
        live = asyncio.ensure_future(runner.run(lambda: step("live"), CancelToken(), lane="live"))
        await asyncio.sleep(0.05)
        assert runner.live_waiting == 1
        release.set()
        await asyncio.gather(file_job, waiting, live)
        runner.shutdown()
        return order, threads

    order, threads = asyncio.run(scenario())
    assert order == ["file:batch1", "live", "file:batch2", "file2"]
    assert threads == {"inference"}


def test_serve_live_elsewhere_than_the_worker_runs_nothing() -> None:
    async def scenario() -> list[str]:
        runner = Runner(max_queue=2)
        order: list[str] = []
        block = threading.Event()
        running = threading.Event()

        def blocking() -> None:
            running.set()
            block.wait(5)

        blocker = asyncio.ensure_future(runner.run(blocking, CancelToken()))
        await asyncio.to_thread(running.wait, 5)
        live = asyncio.ensure_future(runner.run(lambda: order.append("live"), CancelToken(), lane="live"))
        await asyncio.sleep(0.05)
        runner.serve_live()  # not the worker thread: must not run model work here
        assert order == []
        block.set()
        await asyncio.gather(blocker, live)
        runner.shutdown()
        return order

    assert asyncio.run(scenario()) == ["live"]


def test_shutdown_cancels_waiting_work() -> None:
    async def scenario() -> bool:
        runner = Runner(max_queue=2)
        block = threading.Event()
        blocker = asyncio.ensure_future(runner.run(lambda: block.wait(5), CancelToken()))
        await asyncio.sleep(0.05)
        waiting = runner.run_internal(lambda: None)
        runner.shutdown()
        block.set()
        await blocker
        return waiting.cancelled()

    assert asyncio.run(scenario())


def test_final_text_goes_before_previews_and_previews_before_files() -> None:
    async def scenario() -> list[str]:
        runner = Runner(max_queue=8)
        order: list[str] = []
        running = threading.Event()
        block = threading.Event()

        def blocking() -> None:
            running.set()
            block.wait(5)

        blocker = asyncio.ensure_future(runner.run(blocking, CancelToken()))
        await asyncio.to_thread(running.wait, 5)
        queued = [
            asyncio.ensure_future(runner.run(lambda: order.append("file"), CancelToken())),
            asyncio.ensure_future(runner.run(lambda: order.append("preview"), CancelToken(), lane="preview")),
            asyncio.ensure_future(runner.run(lambda: order.append("live"), CancelToken(), lane="live")),
        ]
        await asyncio.sleep(0.05)
        block.set()
        await asyncio.gather(blocker, *queued)
        runner.shutdown()
        return order

    assert asyncio.run(scenario()) == ["live", "preview", "file"]
