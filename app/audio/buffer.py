"""A window of decoded audio addressed by absolute sample index: append at the end, drop from the front, slice."""

from __future__ import annotations

import numpy as np

from app.audio.types import Audio


class AudioBuffer:
    """The decoded audio not yet given away as chunks: append at the end, drop from the front, slice by sample."""

    def __init__(self) -> None:
        self._blocks: list[Audio] = []
        self._start = 0  # absolute sample index of the first buffered sample
        self.size = 0  # samples held

    @property
    def end(self) -> int:
        return self._start + self.size

    def append(self, block: Audio) -> None:
        self._blocks.append(block)
        self.size += block.size

    def drop_before(self, sample: int) -> None:
        """Forget everything before absolute `sample` (copying the kept tail so dropped memory is really freed)."""
        while self._blocks and self._start + self._blocks[0].size <= sample:
            first = self._blocks.pop(0)
            self._start += first.size
            self.size -= first.size
        if self._blocks and sample > self._start:
            cut = sample - self._start
            self._blocks[0] = self._blocks[0][cut:].copy()
            self._start = sample
            self.size -= cut

    def slice(self, start: int, end: int) -> Audio:
        """A copy of samples [start, end), which must still be buffered."""
        if start < self._start or end > self.end:
            raise ValueError(f"samples {start}..{end} are not buffered ({self._start}..{self.end})")
        parts: list[Audio] = []
        offset = self._start
        for block in self._blocks:
            lo, hi = max(start, offset), min(end, offset + block.size)
            if lo < hi:
                parts.append(block[lo - offset : hi - offset])
            offset += block.size
            if offset >= end:
                break
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
