"""Server-sent events, whatever they carry: keep-alive comments while nothing else is sent, and one owner of the
resources (queue slot, temp files) a stream holds until its last event."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from litestar.background_tasks import BackgroundTask
from litestar.response import Stream

from app.render.sse import SSE_KEEPALIVE

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def with_keepalive(events: AsyncGenerator[bytes], seconds: float) -> AsyncIterator[bytes]:
    """`events` as they come, with a `: keep-alive` comment whenever nothing was sent for `seconds`.

    When the client goes away, the pending event is cancelled and `events` is closed, so it can stop its work.
    """
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({pending}, timeout=seconds)
            if not done:
                yield SSE_KEEPALIVE
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
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
) -> Stream:
    """A text/event-stream response; `owned` (the queue slot, the files) is closed when the stream ends, and after
    the response in any case (a client gone before the first event never starts the generator)."""

    async def body() -> AsyncIterator[bytes]:
        with owned:
            async for event in with_keepalive(events, keepalive_seconds):
                yield event

    return Stream(
        body(),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **(headers or {})},
        background=BackgroundTask(owned.close),
    )
