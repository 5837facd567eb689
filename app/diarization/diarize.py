"""Offline speaker diarization: Silero VAD regions -> speaker embeddings -> clustering -> speaker turns.

- Speech regions come from `app.audio.vad` (the same streaming Silero on onnxruntime as the transcription
  pipeline): the file is decoded block by block (`app.audio.decode`), and each region is turned into encoder
  windows and embedded as soon as it is final. Only the audio a future region may still need and the embeddings
  (1 kB per 0.8 s) are kept, so memory does not grow with the file as a decoded copy (~230 MB per hour) would.
- Embeddings come from Resemblyzer's pretrained speaker encoder (a 3-layer LSTM over 40-band mel frames), run on
  onnxruntime by `app.diarization.speaker_encoder` from the ONNX file bundled in `app/diarization/data/` (converted
  once from Resemblyzer's `pretrained.pt` by `tools/speaker_encoder_convert.py`; Apache-2.0, notice beside it). Its mel
  features are computed here in numpy: neither torch nor the `resemblyzer` package (whose import needs
  `pkg_resources`, gone from current setuptools, and whose librosa features cost ~8 s of numba warm-up) is used at
  run time.
  `tests/test_diarize.py` checks the features against librosa's, `tests/test_speaker_encoder.py` the converted
  encoder against the torch network on real speech.
- Windows of 1.6 s (the encoder's native partial length) every 0.8 s inside each region; shorter regions give one
  window. Clustering is average-linkage agglomerative on cosine distance, cut at `DISTANCE_THRESHOLD` (one
  speaker's windows merge below ~0.32, two distinct voices separate at ~0.47), so the number of speakers is
  estimated, and a single speaker results when all embeddings are close. Voices that sound alike (two readers, two
  synthetic voices of one engine) are nearly as close as one voice's windows and get merged; so each cluster is then
  tried as two (`_split_mixed`): the split is kept when it follows the turns (consecutive windows of a region fall
  on the same side) and the halves' centroids are apart. Measured with `python -m tools.diar_eval` (ADR 18).
- At most `MAX_CLUSTERED` windows (~13 min of speech) are clustered: longer files cluster blocks of consecutive
  windows spread over the file and assign the others to the nearest centroid, so memory stays bounded.
- Labels are smoothed (a lone window between two of another speaker inside one region flips), tiny clusters are
  folded into the nearest big one, pieces are merged into turns, and speakers are numbered 0..k-1 in order of
  first appearance.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from app.audio.buffer import AudioBuffer
from app.audio.decode import AudioDecoder
from app.audio.types import SAMPLE_RATE
from app.audio.types import Audio as FloatArray
from app.audio.vad import SpeechRegion, SpeechSegmenter, load_vad
from app.diarization.clustering import average_linkage_labels, two_means
from app.diarization.speaker_encoder import EMBED_BATCH, EMBEDDING_SIZE
from app.worker.cancel import CancelToken

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


WINDOW_FRAMES = 160  # 1.6 s of 10 ms mel frames: the encoder's native partial utterance
STEP_FRAMES = 80
MIN_REGION_S = 0.25  # regions shorter than this get no embedding of their own
DISTANCE_THRESHOLD = 0.40
MIN_CLUSTER_S = 1.0  # a cluster covering less speech than this is folded into the nearest larger one
MERGE_GAP_S = 0.5
MAX_SPEAKERS = 12
# A cluster is split in two (once) when both halves cover >= SPLIT_MIN_SIDE_S of speech, their centroids are at
# most SPLIT_MAX_COSINE alike, and consecutive windows of one region fall on the same side at least SPLIT_COHERENCE
# of the time over >= SPLIT_MIN_PAIRS such pairs: a second voice comes in turns, noise in one voice does not.
SPLIT_MAX_COSINE = 0.93  # halves of one voice: >= 0.93 once large; two voices alike: 0.77-0.93
SPLIT_COHERENCE = 0.95
SPLIT_MIN_PAIRS = 10
SPLIT_MIN_SIDE_S = 3.0
# Clustering memory and time are quadratic in the windows clustered: beyond this many (~13 min of speech), blocks of
# consecutive windows spread over the file are clustered and every other window joins its nearest centroid.
MAX_CLUSTERED = 1000
SAMPLE_BLOCK = 10
SPEECH_PAD_S = 0.1  # added around each speech region (never overlapping the previous one)
MIN_SPEECH_S = 0.2
MIN_SILENCE_S = 0.3  # a pause this long ends a region (short turns of a dialogue stay apart)
BLOCK_SECONDS = 30.0  # decode block


class DiarizationSegment(msgspec.Struct, frozen=True):
    start: float
    end: float
    speaker: int


# --- features -------------------------------------------------------------------------------------------------


def _hz_to_mel(freq: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Slaney's mel scale (librosa's default, htk=False)."""
    f_sp = 200.0 / 3
    mels = freq / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_part = freq >= min_log_hz
    mels[log_part] = min_log_mel + np.log(freq[log_part] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_part = mels >= min_log_mel
    freqs[log_part] = min_log_hz * np.exp(logstep * (mels[log_part] - min_log_mel))
    return freqs


def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = 400, n_mels: int = 40) -> FloatArray:
    """Slaney-normalised triangular mel filters, equal to `librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    edges = _hz_to_mel(np.array([0.0, sr / 2.0]))
    mel_f = _mel_to_hz(np.linspace(edges[0], edges[1], n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


_FILTERS = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)).astype(np.float32)  # periodic Hann


def mel_frames(wav: FloatArray) -> FloatArray:
    """Power mel spectrogram as Resemblyzer computes it (25 ms window, 10 ms hop, centred): (frames, 40)."""
    padded = np.pad(wav.astype(np.float32), 200, mode="constant")
    count = 1 + (len(padded) - 400) // 160
    frames = np.lib.stride_tricks.sliding_window_view(padded, 400)[::160][:count]
    spectrum = np.fft.rfft(frames * _WINDOW, axis=1)  # complex64 from float32 input (numpy >= 2)
    power = np.square(spectrum.real) + np.square(spectrum.imag)  # |X|^2 without a square root and back
    # einsum, not `@`: this small product in BLAS wakes OpenBLAS's thread pool once per region, which cost ~50x
    # more (1.3 s vs 0.02 s per 1000 s of speech) on a busy 2-core machine; einsum's single loop costs ~0.14 s.
    return np.asarray(np.einsum("fb,mb->fm", power, _FILTERS), dtype=np.float32)


def normalize_volume(wav: FloatArray, target_dbfs: float = -30.0) -> FloatArray:
    """Raise quiet audio to `target_dbfs` RMS (never lowers it), as Resemblyzer's preprocessing does."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) if len(wav) else 0.0
    if rms <= 1e-9:
        return wav
    change_db = target_dbfs - 20 * float(np.log10(rms))
    if change_db <= 0:
        return wav
    gain = np.float32(10 ** (change_db / 20))
    return np.asarray(wav * gain, dtype=np.float32)


# --- the encoder ---------------------------------------------------------------------------------------------


class SpeakerEmbedder(Protocol):
    """A loaded speaker encoder: log-mel windows in, one L2-normalised 256-d embedding per window out."""

    def embed(self, mels: Sequence[FloatArray]) -> FloatArray: ...


# --- the pipeline ---------------------------------------------------------------------------------------------


class _Window(msgspec.Struct):
    region: int
    start: float
    end: float


class RegionStream:
    """Padded Silero speech regions with their audio, as soon as each is final, from blocks of any size.

    Only the audio that a future region may still need is kept (from the segmenter's horizon minus the padding),
    so memory does not grow with the length of the file.
    """

    def __init__(self, threshold: float = 0.5) -> None:
        self._vad = load_vad().stream()
        self._segmenter = SpeechSegmenter(
            threshold=threshold, min_speech_seconds=MIN_SPEECH_S, min_silence_seconds=MIN_SILENCE_S
        )
        self._buffer = AudioBuffer()
        self._pad = round(SPEECH_PAD_S * SAMPLE_RATE)
        self._last_end = 0  # padded end of the previous region: padding never overlaps it
        self.total = 0  # samples fed

    def feed(self, block: FloatArray) -> list[tuple[int, int, FloatArray]]:
        self._buffer.append(block)
        self.total += block.size
        found = self._take(self._segmenter.push(self._vad.feed(block)))
        keep_from = max(0, self._segmenter.horizon - self._pad)
        self._buffer.drop_before(min(keep_from, self._buffer.end))
        return found

    def finish(self) -> list[tuple[int, int, FloatArray]]:
        return self._take(self._segmenter.push(self._vad.finish()) + self._segmenter.finish(self.total))

    def _take(self, regions: list[SpeechRegion]) -> list[tuple[int, int, FloatArray]]:
        out: list[tuple[int, int, FloatArray]] = []
        for region in regions:
            start = max(region.start - self._pad, self._last_end, 0)
            end = min(region.end + self._pad, self.total)
            if end <= start:
                continue
            out.append((start, end, self._buffer.slice(start, end)))
            self._last_end = end
        return out


def _audio_blocks(source: Path | str | FloatArray) -> Iterator[FloatArray]:
    """16 kHz mono float32 blocks of a file (decoded incrementally) or of an array."""
    if isinstance(source, np.ndarray):
        audio = source.astype(np.float32, copy=False)
        step = round(BLOCK_SECONDS * SAMPLE_RATE)
        for i in range(0, len(audio), step):
            yield audio[i : i + step]
        return
    with AudioDecoder(Path(source)) as decoder:
        yield from decoder.blocks(BLOCK_SECONDS)


def speech_regions(audio: FloatArray, threshold: float = 0.5) -> list[tuple[float, float]]:
    """Speech regions in seconds (Silero VAD with short silences split, small padding)."""
    stream = RegionStream(threshold)
    found = [r for block in _audio_blocks(audio) for r in stream.feed(block)] + stream.finish()
    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end, _ in found]


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


def cluster(
    embeddings: FloatArray,
    durations: FloatArray,
    threshold: float = DISTANCE_THRESHOLD,
    follows: npt.NDArray[np.bool_] | None = None,
) -> npt.NDArray[np.int64]:
    """Cluster labels 0..k-1 for L2-normalised embeddings in time order; k estimated, never given.

    Average linkage cut at `threshold`, small clusters folded into their nearest neighbour, then clusters that hold
    two voices taking turns are split (`_split_mixed`; needs `follows`: row i is the window right after row i-1 in
    the same speech region).
    """
    n = len(embeddings)
    if n <= 1:
        return np.zeros(n, np.int64)
    labels = _fold_small(embeddings, durations, average_linkage_labels(embeddings, threshold, MAX_SPEAKERS))
    if follows is not None:
        labels = _split_mixed(embeddings, durations, follows, labels)
    _, dense = np.unique(labels, return_inverse=True)
    return np.asarray(dense, dtype=np.int64)


def cluster_bounded(
    embeddings: FloatArray,
    durations: FloatArray,
    follows: npt.NDArray[np.bool_],
    threshold: float = DISTANCE_THRESHOLD,
    max_clustered: int = MAX_CLUSTERED,
) -> npt.NDArray[np.int64]:
    """`cluster` on at most ~`max_clustered` windows: blocks of SAMPLE_BLOCK consecutive windows evenly spread over
    the file are clustered (so turn coherence can still be seen), the others take their nearest centroid.

    Memory: the clustering matrix is at most `max_clustered`^2 float64 (8 MB at 1000, ~2x that while it is
    built), whatever the file's length; the embeddings themselves are 1 kB per window (~4.6 MB per hour).
    """
    n = len(embeddings)
    stride = -(-n // max_clustered)
    if stride <= 1:
        return cluster(embeddings, durations, threshold, follows)
    sample = np.flatnonzero((np.arange(n) // SAMPLE_BLOCK) % stride == 0)
    sample_follows = follows[sample] & (np.diff(sample, prepend=-2) == 1)
    sample_labels = cluster(embeddings[sample], durations[sample], threshold, sample_follows)
    sums = np.stack([embeddings[sample[sample_labels == c]].sum(axis=0) for c in range(int(sample_labels.max()) + 1)])
    centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)
    labels = np.asarray(np.argmax(embeddings @ centroids.T, axis=1), dtype=np.int64)
    labels[sample] = sample_labels
    return labels


def _fold_small(embeddings: FloatArray, durations: FloatArray, labels: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Fold clusters that cover too little speech into the nearest larger cluster (by centroid cosine)."""
    labels = labels.copy()
    while True:
        ids = np.unique(labels)
        if len(ids) <= 1:
            return labels
        cover = {int(c): float(durations[labels == c].sum()) for c in ids}
        small = min(cover, key=lambda c: cover[c])
        if cover[small] >= MIN_CLUSTER_S:
            return labels
        centroids = {int(c): embeddings[labels == c].mean(axis=0) for c in ids}
        mine = centroids[small] / max(float(np.linalg.norm(centroids[small])), 1e-9)
        best = max(
            (c for c in centroids if c != small),
            key=lambda c: float(mine @ centroids[c]) / max(float(np.linalg.norm(centroids[c])), 1e-9),
        )
        labels[labels == small] = best


def _split_mixed(
    embeddings: FloatArray, durations: FloatArray, follows: npt.NDArray[np.bool_], labels: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Split clusters that hold two voices, once each.

    Average linkage merges voices that sound alike (two synthetic voices of one engine, two readers) because their
    windows are nearly as close as one voice's noisy windows are to each other. A two-means split of such a cluster
    follows the turns (consecutive windows of a region land on the same side) and its halves' centroids are clearly
    apart; a split of one voice scatters and its halves stay close. Splitting the halves again over-split long
    recordings of few voices (5-7 speakers for 4 on a 10 min input) for no gain on the tuning conversations.
    """
    labels = labels.copy()
    next_id = int(labels.max()) + 1
    for current in np.unique(labels).tolist():
        members = np.flatnonzero(labels == current)
        if len(members) < 4:
            continue
        side = two_means(embeddings[members])
        sums = np.stack([embeddings[members[side == k]].sum(axis=0) for k in (0, 1)])
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)
        adjacent = (np.diff(members) == 1) & follows[members[1:]]
        pairs = int(adjacent.sum())
        agree = float(np.mean(side[1:][adjacent] == side[:-1][adjacent])) if pairs else 0.0
        covers = [float(durations[members[side == k]].sum()) for k in (0, 1)]
        if (
            pairs >= SPLIT_MIN_PAIRS
            and agree >= SPLIT_COHERENCE
            and float(centroids[0] @ centroids[1]) <= SPLIT_MAX_COSINE
            and min(covers) >= SPLIT_MIN_SIDE_S
        ):
            labels[members[side == 1]] = next_id
            next_id += 1
    return labels


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
    """What the streamed first pass keeps: speech regions, encoder windows and their embeddings (no audio)."""

    regions: list[tuple[float, float]]
    windows: list[_Window]
    embeddings: FloatArray


def embed_speech(
    path_or_audio: Path | str | FloatArray, encoder: SpeakerEmbedder, *, cancel: CancelToken | None = None
) -> Embedded:
    """Speech regions and the embedding of every encoder window, streamed (memory flat in the audio's length)."""
    regions: list[tuple[float, float]] = []
    windows: list[_Window] = []
    pending: list[FloatArray] = []
    parts: list[FloatArray] = []

    def add(found: list[tuple[int, int, FloatArray]], *, final: bool = False) -> None:
        for start, end, audio in found:
            regions.append((start / SAMPLE_RATE, end / SAMPLE_RATE))
            more, mels = _region_windows(len(regions) - 1, *regions[-1], audio)
            windows.extend(more)
            pending.extend(mels)
        if pending and (final or len(pending) >= EMBED_BATCH):  # embed as we go: 1 kB per window, not the audio
            if cancel is not None:
                cancel.raise_if_cancelled()
            parts.append(encoder.embed(pending))
            pending.clear()

    stream = RegionStream()
    for block in _audio_blocks(path_or_audio):
        if cancel is not None:
            cancel.raise_if_cancelled()
        add(stream.feed(block))
    add(stream.finish(), final=True)
    embeddings = np.concatenate(parts) if parts else np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
    return Embedded(regions, windows, embeddings)


def speaker_turns(embedded: Embedded, threshold: float = DISTANCE_THRESHOLD) -> list[tuple[float, float, int]]:
    """Speaker turns (start, end, speaker 0..k-1 by first appearance) from the first pass's embeddings."""
    regions, windows = embedded.regions, embedded.windows
    if not windows:
        return [(s, e, 0) for s, e in regions]
    durations = np.array([w.end - w.start for w in windows], dtype=np.float32)
    region_of = np.array([w.region for w in windows], dtype=np.int64)
    follows = np.diff(region_of, prepend=-1) == 0
    labels = _smooth(windows, cluster_bounded(embedded.embeddings, durations, follows, threshold))
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
    threshold: float = DISTANCE_THRESHOLD,
) -> list[DiarizationSegment]:
    """Who spoke when: speaker turns (speaker ids 0..k-1 by first appearance), times shifted by `offset`.

    `path_or_audio` is an audio file or 16 kHz mono float32 samples; `encoder` a loaded speaker encoder (a resident
    model). Blocking and CPU-heavy: run it in the worker.
    """
    turns = speaker_turns(embed_speech(path_or_audio, encoder, cancel=cancel), threshold)
    return [DiarizationSegment(round(s + offset, 3), round(e + offset, 3), spk) for s, e, spk in turns]
