"""Server-sent events, whatever they carry: keep-alive comments while nothing else is sent, and one owner of the
resources (queue slot, temp files) a stream holds until its last event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping

from litestar.background_tasks import BackgroundTask
from litestar.response import Stream

from app import render
from app.render.sse import SSE_KEEPALIVE
from app.worker.progress import Ticket
from app.worker.runner import Runner, Standing

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
QUEUE_POLL_SECONDS = 1.0  # how often a waiting stream looks at its place in the queue


async def with_keepalive(
    events: AsyncGenerator[bytes], seconds: float, waiting: Callable[[], Standing | None] | None = None
) -> AsyncIterator[bytes]:
    """`events` as they come, with a `: keep-alive` comment whenever nothing was sent for `seconds`.

    `waiting`: where the work stands while it waits its turn (None once it began). Until then a `: queued
    position=N eta=Ns` comment goes out at once, whenever the position changes, and in place of each keep-alive.
    When the client goes away, the pending event is cancelled and `events` is closed, so it can stop its work.
    """
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[bytes] | None = None
    sent_at = loop.time()
    told: int | None = None  # the position last told
    try:
        while True:
            queued = False
            if waiting is not None:
                standing = waiting()
                if standing is None:
                    waiting = None
                elif standing.position > 0:
                    queued = True
                    if standing.position != told or loop.time() - sent_at >= seconds:
                        told, sent_at = standing.position, loop.time()
                        yield render.sse_queued(standing.position, standing.eta_seconds)
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            timeout = max(sent_at + seconds - loop.time(), 0.0)
            if waiting is not None:
                timeout = min(timeout, QUEUE_POLL_SECONDS)
            done, _ = await asyncio.wait({pending}, timeout=timeout)
            if not done:
                if not queued and loop.time() - sent_at >= seconds - 1e-3:  # (a queued notice replaces it)
                    sent_at = loop.time()
                    yield SSE_KEEPALIVE
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            sent_at = loop.time()
            yield event
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await events.aclose()


def sse_response(
    events: AsyncGenerator[bytes],
    *,
    keepalive_seconds: float,
    owned: contextlib.ExitStack,
    headers: Mapping[str, str] | None = None,
    waiting: Callable[[], Standing | None] | None = None,
) -> Stream:
    """A text/event-stream response; `owned` (the queue slot, the files) is closed when the stream ends, and after
    the response in any case (a client gone before the first event never starts the generator). `waiting`: where
    its work stands until it begins (`queue_standing`)."""

    async def body() -> AsyncIterator[bytes]:
        with owned:
            async for event in with_keepalive(events, keepalive_seconds, waiting):
                yield event

    return Stream(
        body(),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **(headers or {})},
        background=BackgroundTask(owned.close),
    )


def queue_standing(runner: Runner, ticket: Ticket) -> Callable[[], Standing | None]:
    """Where the work of `ticket` stands in `runner`'s queue, until it begins (then None)."""

    def standing() -> Standing | None:
        return None if ticket.started is not None else runner.standing(ticket)

    return standing
