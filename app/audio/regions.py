"""The one speech-region stream: 16 kHz blocks in, Silero speech regions out as soon as each is final, with a buffer
of the audio a consumer may still cut from.

    stream = RegionStream(load_vad().stream(), SpeechSegmenter(threshold=0.5, min_silence_seconds=0.3))
    for block in blocks:
        for region in stream.feed(block):           # absolute sample positions
            use(stream.audio(region.start, region.end))
        stream.release_before(stream.horizon)       # keep only what a future region may still need
    last = stream.finish()

The file pipeline (chunks for the engines), live dictation (utterances) and diarization (embedding windows) all
read speech through it; each decides how much audio before the horizon it keeps (the chunker's open chunk, an
utterance's prefix, a region's padding). Without a VAD (a live session whose client commits by hand) it only
buffers.
"""

from __future__ import annotations

from app.audio.buffer import AudioBuffer
from app.audio.types import Audio
from app.audio.vad import SpeechRegion, SpeechSegmenter, VadStream


class RegionStream:
    """VAD + segmenter + buffer over one stream of audio. Positions are samples since the stream's first block."""

    def __init__(self, vad: VadStream | None, segmenter: SpeechSegmenter | None) -> None:
        if (vad is None) != (segmenter is None):
            raise ValueError("a region stream has both a VAD and a segmenter, or neither")
        self.buffer = AudioBuffer()
        self._vad = vad
        self._segmenter = segmenter
        self._origin = 0  # the sample the VAD's and segmenter's sample 0 is (moved by `restart`)

    @property
    def detects_speech(self) -> bool:
        return self._segmenter is not None

    @property
    def end(self) -> int:
        """Samples fed so far."""
        return self.buffer.end

    @property
    def held_from(self) -> int:
        """The first sample still buffered."""
        return self.buffer.end - self.buffer.size

    @property
    def horizon(self) -> int:
        """No region found from now on starts before this sample."""
        return self._origin + self._segmenter.horizon if self._segmenter is not None else self.end

    @property
    def next_start(self) -> int | None:
        """The start of the region now open, once it is certain to be kept."""
        start = self._segmenter.next_start if self._segmenter is not None else None
        return None if start is None else self._origin + start

    @property
    def min_future_end(self) -> int:
        """Every region found from now on ends at or after this sample."""
        return self._origin + self._segmenter.min_future_end if self._segmenter is not None else self.end

    def feed(self, block: Audio) -> list[SpeechRegion]:
        """Buffer `block` and return the regions it made final."""
        self.buffer.append(block)
        if self._vad is None or self._segmenter is None:
            return []
        return self._shifted(self._segmenter.push(self._vad.feed(block)))

    def finish(self) -> list[SpeechRegion]:
        """The end of the audio: the regions still open or pending, closed."""
        if self._vad is None or self._segmenter is None:
            return []
        regions = self._segmenter.push(self._vad.finish())
        return self._shifted(regions + self._segmenter.finish(self.end - self._origin))

    def restart(self, vad: VadStream | None, segmenter: SpeechSegmenter | None) -> None:
        """Detect speech afresh from the current end (the buffer stays): a live session's commit, clear or new
        settings."""
        if (vad is None) != (segmenter is None):
            raise ValueError("a region stream has both a VAD and a segmenter, or neither")
        self._vad, self._segmenter = vad, segmenter
        self._origin = self.end

    def audio(self, start: int, end: int) -> Audio:
        """A copy of samples [start, end), clipped to what is still buffered."""
        return self.buffer.slice(max(start, self.held_from), min(end, self.end))

    def release_before(self, sample: int) -> None:
        """Forget the audio before `sample` (never past the end)."""
        self.buffer.drop_before(max(0, min(sample, self.end)))

    def _shifted(self, regions: list[SpeechRegion]) -> list[SpeechRegion]:
        if not self._origin:
            return regions
        return [SpeechRegion(r.start + self._origin, r.end + self._origin) for r in regions]


def padded(region: SpeechRegion, before: int, after: int, *, not_before: int, end: int) -> tuple[int, int]:
    """`region` widened by `before`/`after` samples, starting no earlier than `not_before` (the previous region's
    padded end) and ending no later than `end`."""
    return max(region.start - before, not_before, 0), min(region.end + after, end)
