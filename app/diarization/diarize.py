"""Offline speaker diarization: Silero VAD regions -> speaker embeddings -> clustering -> speaker turns.

- Regions come from the streaming Silero VAD (`app.audio.regions`) over the file decoded block by block; each is
  cut into encoder windows (1.6 s every 0.8 s) and embedded as soon as it is final, so only the embeddings (1 kB
  per 0.8 s) and the audio a future region may need are held: memory stays flat in the file's length.
- Embeddings: Resemblyzer's speaker encoder on onnxruntime (`speaker_encoder.py`, bundled ONNX, Apache-2.0), over
  numpy mel features (`features.py`); no torch or resemblyzer at run time.
- Clustering (`clustering.py`, ADR 18): average linkage on cosine distance cut at a threshold, so the count is
  estimated; a cluster holding two voices that take turns is split. Telephone-band audio (no power above 4 kHz,
  judged on the first 30 s block) ends regions at shorter pauses and has its own calibration (ADR 66, 67).
  At most `MAX_CLUSTERED` windows are clustered; the rest join the nearest centroid. Measured with
  `python -m tools.diar_eval`.
- Labels are smoothed (a lone window inside one region flips), pieces merge into turns, and speakers are numbered
  0..k-1 in order of first appearance.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from app.audio.decode import AudioDecoder
from app.audio.regions import RegionStream, padded
from app.audio.types import SAMPLE_RATE
from app.audio.types import Audio as FloatArray
from app.audio.vad import SpeechRegion, SpeechSegmenter, load_vad
from app.diarization.clustering import NARROW_BAND, WIDE_BAND, cluster_bounded
from app.diarization.features import is_narrow_band, mel_frames, normalize_volume
from app.diarization.speaker_encoder import EMBED_BATCH, EMBEDDING_SIZE, SpeakerEmbedder
from app.worker.cancel import CancelToken

WINDOW_FRAMES = 160  # 1.6 s of 10 ms mel frames: the encoder's native partial utterance
STEP_FRAMES = 80
MIN_REGION_S = 0.25  # regions shorter than this get no embedding of their own
MERGE_GAP_S = 0.5
SPEECH_PAD_S = 0.1  # added around each speech region (never overlapping the previous one)
MIN_SPEECH_S = 0.2
MIN_SILENCE_S = 0.3  # a pause this long ends a region (short turns of a dialogue stay apart)
# In telephone-band audio a shorter pause does (ADR 67): quick turns of a call keep fewer changes of speaker inside
# one region. Not in wide-band audio: espeak's sentences fell apart into windows too short to tell voices apart.
NARROW_BAND_MIN_SILENCE_S = 0.15
BLOCK_SECONDS = 30.0  # decode block


class DiarizationSegment(msgspec.Struct, frozen=True):
    start: float
    end: float
    speaker: int


class _Window(msgspec.Struct):
    region: int
    start: float
    end: float


def audio_blocks(source: Path | str | FloatArray) -> Iterator[FloatArray]:
    """16 kHz mono float32 blocks of a file (decoded incrementally) or of an array."""
    if isinstance(source, np.ndarray):
        audio = source.astype(np.float32, copy=False)
        step = round(BLOCK_SECONDS * SAMPLE_RATE)
        for i in range(0, len(audio), step):
            yield audio[i : i + step]
        return
    with AudioDecoder(Path(source)) as decoder:
        yield from decoder.blocks(BLOCK_SECONDS)


def padded_regions(
    blocks: Iterable[FloatArray],
    threshold: float = 0.5,
    cancel: CancelToken | None = None,
    min_silence_seconds: float = MIN_SILENCE_S,
) -> Iterator[tuple[int, int, FloatArray]]:
    """Speech regions (start, end in samples, with SPEECH_PAD_S padding that never overlaps the previous region)
    with their audio, each as soon as it is final; only the audio a future region may still need is held."""
    segmenter = SpeechSegmenter(
        threshold=threshold, min_speech_seconds=MIN_SPEECH_S, min_silence_seconds=min_silence_seconds
    )
    stream = RegionStream(load_vad().stream(), segmenter)
    pad = round(SPEECH_PAD_S * SAMPLE_RATE)
    last_end = 0

    def take(regions: list[SpeechRegion]) -> Iterator[tuple[int, int, FloatArray]]:
        nonlocal last_end
        for region in regions:
            start, end = padded(region, pad, pad, not_before=last_end, end=stream.end)
            if end > start:
                yield start, end, stream.audio(start, end)
                last_end = end

    for block in blocks:
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield from take(stream.feed(block))
        stream.release_before(stream.horizon - pad)
    yield from take(stream.finish())


def _region_windows(region: int, start: float, end: float, audio: FloatArray) -> tuple[list[_Window], list[FloatArray]]:
    """Encoder windows (1.6 s every 0.8 s, the last one flush with the end) of one region's audio."""
    if end - start < MIN_REGION_S:
        return [], []
    mel = mel_frames(normalize_volume(audio))
    n = mel.shape[0]
    offsets = list(range(0, n - WINDOW_FRAMES + 1, STEP_FRAMES)) if n >= WINDOW_FRAMES else [0]
    if n >= WINDOW_FRAMES and offsets[-1] != n - WINDOW_FRAMES:
        offsets.append(n - WINDOW_FRAMES)
    windows = [_Window(region, start + off / 100, min(end, start + (off + WINDOW_FRAMES) / 100)) for off in offsets]
    return windows, [mel[off : off + WINDOW_FRAMES] for off in offsets]


def _smooth(windows: list[_Window], labels: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """A lone window whose two neighbours in the same region agree on another speaker takes their label."""
    out = labels.copy()
    for i in range(1, len(windows) - 1):
        same_region = windows[i - 1].region == windows[i].region == windows[i + 1].region
        if same_region and labels[i - 1] == labels[i + 1] != labels[i]:
            out[i] = labels[i - 1]
    return out


def _turns(
    windows: list[_Window], labels: npt.NDArray[np.int64], regions: list[tuple[float, float]]
) -> list[tuple[float, float, int]]:
    pieces: list[tuple[float, float, int]] = []
    by_region: dict[int, list[int]] = {}
    for i, w in enumerate(windows):
        by_region.setdefault(w.region, []).append(i)
    embedded = sorted(by_region)
    middles = np.array([(regions[e][0] + regions[e][1]) / 2 for e in embedded])  # in time order
    for r, (rstart, rend) in enumerate(regions):
        if r not in by_region:
            if not embedded:
                continue
            # Too short to embed: the speaker of the nearest embedded region (a binary search, not a scan).
            middle = (rstart + rend) / 2
            at = int(np.searchsorted(middles, middle))
            candidates = [c for c in (at - 1, at) if 0 <= c < len(embedded)]
            nearest = embedded[min(candidates, key=lambda c: abs(float(middles[c]) - middle))]
            idx = by_region[nearest]
            near_i = min(idx, key=lambda i: abs((windows[i].start + windows[i].end) / 2 - (rstart + rend) / 2))
            pieces.append((rstart, rend, int(labels[near_i])))
            continue
        idx = by_region[r]
        centers = [(windows[i].start + windows[i].end) / 2 for i in idx]
        for k, i in enumerate(idx):
            start = rstart if k == 0 else (centers[k - 1] + centers[k]) / 2
            end = rend if k == len(idx) - 1 else (centers[k] + centers[k + 1]) / 2
            if end > start:
                pieces.append((start, end, int(labels[i])))
    pieces.sort()
    merged: list[tuple[float, float, int]] = []
    for start, end, spk in pieces:
        if merged and merged[-1][2] == spk and start - merged[-1][1] <= MERGE_GAP_S:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end), spk)
        else:
            merged.append((start, end, spk))
    return merged


class Embedded(msgspec.Struct):
    """What the streamed first pass keeps: speech regions, encoder windows and their embeddings (no audio), and
    whether the audio is telephone-band (`narrow_band`)."""

    regions: list[tuple[float, float]]
    windows: list[_Window]
    embeddings: FloatArray
    narrow_band: bool = False


def embed_speech(
    path_or_audio: Path | str | FloatArray, encoder: SpeakerEmbedder, *, cancel: CancelToken | None = None
) -> Embedded:
    """Speech regions and the embedding of every encoder window, streamed (memory flat in the audio's length).

    The first decoded block (30 s) says whether the audio is telephone-band: that sets the pause that ends a region
    and, later, the clustering's calibration.
    """
    regions: list[tuple[float, float]] = []
    windows: list[_Window] = []
    pending: list[FloatArray] = []
    parts: list[FloatArray] = []
    blocks = audio_blocks(path_or_audio)
    first = next(blocks, None)
    narrow = first is not None and is_narrow_band(mel_frames(first).sum(axis=0, dtype=np.float64))
    min_silence = NARROW_BAND_MIN_SILENCE_S if narrow else MIN_SILENCE_S
    audio_stream = itertools.chain([] if first is None else [first], blocks)

    def embed_pending() -> None:
        if cancel is not None:
            cancel.raise_if_cancelled()
        parts.append(encoder.embed(pending))
        pending.clear()

    for start, end, audio in padded_regions(audio_stream, cancel=cancel, min_silence_seconds=min_silence):
        regions.append((start / SAMPLE_RATE, end / SAMPLE_RATE))
        more, mels = _region_windows(len(regions) - 1, *regions[-1], audio)
        windows.extend(more)
        pending.extend(mels)
        if len(pending) >= EMBED_BATCH:  # embed as we go: 1 kB per window, not the audio
            embed_pending()
    if pending:
        embed_pending()
    embeddings = np.concatenate(parts) if parts else np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
    return Embedded(regions, windows, embeddings, narrow)


def speaker_turns(embedded: Embedded, threshold: float | None = None) -> list[tuple[float, float, int]]:
    """Speaker turns (start, end, speaker 0..k-1 by first appearance) from the first pass's embeddings, clustered
    as the audio's band calls for (`threshold` overrides its cut, for evaluations)."""
    regions, windows = embedded.regions, embedded.windows
    if not windows:
        return [(s, e, 0) for s, e in regions]
    durations = np.array([w.end - w.start for w in windows], dtype=np.float32)
    region_of = np.array([w.region for w in windows], dtype=np.int64)
    follows = np.diff(region_of, prepend=-1) == 0
    calibration = NARROW_BAND if embedded.narrow_band else WIDE_BAND
    if threshold is not None:
        calibration = msgspec.structs.replace(calibration, threshold=threshold)
    labels = _smooth(windows, cluster_bounded(embedded.embeddings, durations, follows, calibration))
    turns = _turns(windows, labels, regions)
    order: dict[int, int] = {}
    for _, _, spk in turns:
        order.setdefault(spk, len(order))
    return [(s, e, order[spk]) for s, e, spk in turns]


def diarize(
    path_or_audio: Path | str | FloatArray,
    encoder: SpeakerEmbedder,
    *,
    offset: float = 0.0,
    cancel: CancelToken | None = None,
    threshold: float | None = None,
) -> list[DiarizationSegment]:
    """Who spoke when: speaker turns (speaker ids 0..k-1 by first appearance), times shifted by `offset`.

    `path_or_audio` is an audio file or 16 kHz mono float32 samples; `encoder` a loaded speaker encoder (a resident
    model). Blocking and CPU-heavy: run it in the worker.
    """
    turns = speaker_turns(embed_speech(path_or_audio, encoder, cancel=cancel), threshold)
    return [DiarizationSegment(round(s + offset, 3), round(e + offset, 3), spk) for s, e, spk in turns]
