"""The pace a body (or a download) must keep: at least `min_bytes_per_second` on average over every window of
`window_seconds`, and at least one byte per window. A window ends early once it has its bytes, so a fast transfer
never waits on it; a stall (nothing for a window) or a trickle (a byte every 20 s) ends the transfer.

    pace = Pace(window_seconds=30, min_bytes_per_second=4096)
    chunk = await asyncio.wait_for(anext(chunks), pace.seconds_left())   # TimeoutError: too slow
    pace.received(len(chunk))
"""

from __future__ import annotations

import time


class Pace:
    def __init__(self, *, window_seconds: float, min_bytes_per_second: float) -> None:
        self.window_seconds = window_seconds
        self.min_bytes_per_second = min_bytes_per_second
        self._needed = max(1, round(min_bytes_per_second * window_seconds))
        self._window_start = time.monotonic()
        self._got = 0

    def seconds_left(self) -> float:
        """Until the current window ends (0 when it has already)."""
        return max(0.0, self._window_start + self.window_seconds - time.monotonic())

    def received(self, size: int) -> None:
        self._got += size
        if self._got >= self._needed:
            self._window_start = time.monotonic()
            self._got = 0
