"""Who said what: a transcript's segments split at speaker changes and labelled, and voices matched to known ones.

Beside `diarize.py`, not inside it: the speaker turns come from `diarize()` as they are; this module only
- gives each word the speaker whose turn overlaps it most (the nearest turn when none does) and splits a segment
  wherever the speaker of its words changes, so a diarized segment never spans two speakers;
- labels anonymous speakers `A`, `B`, `C`, ... in order of first appearance in the answer;
- embeds reference recordings of known voices and each found speaker (from its turns' audio, at most
  `CENTROID_SECONDS` of it) with the same encoder and windows as `diarize()`, and names a found speaker after the
  known voice it matches best, one to one, when their cosine similarity is at least `MIN_SIMILARITY`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import msgspec
import numpy as np

from app.audio.decode import AudioDecoder, decode_all
from app.audio.types import SAMPLE_RATE, Audio
from app.diarization.diarize import BLOCK_SECONDS, STEP_FRAMES, WINDOW_FRAMES, DiarizationSegment
from app.diarization.features import mel_frames, normalize_volume
from app.diarization.speaker_encoder import SpeakerEmbedder
from app.errors import InvalidInput
from app.transcript import DiarizedSegment, Segment, Word, join_segments
from app.worker.cancel import CancelToken

MIN_SIMILARITY = 0.78  # cosine similarity of a found speaker's mean embedding to a known voice's (ADR)
CENTROID_SECONDS = 60.0  # speech per found speaker embedded to compare with the known voices


class KnownVoice(msgspec.Struct, frozen=True):
    """An enrolled voice: its name and 16 kHz mono samples of it alone (2-10 s)."""

    name: str
    audio: Audio


def anonymous_label(index: int) -> str:
    """A, B, ..., Z, AA, AB, ...: spreadsheet column names."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


class _TurnIndex:
    """The turns sorted by start, to find the speaker of a stretch of time."""

    def __init__(self, turns: Sequence[DiarizationSegment]) -> None:
        self.turns = sorted(turns, key=lambda t: (t.start, t.end))
        self.starts = [t.start for t in self.turns]
        self.max_length = max((t.end - t.start for t in self.turns), default=0.0)

    def speaker(self, start: float, end: float) -> int | None:
        """The speaker whose turns overlap [start, end] most; the nearest turn's when none does; None: no turns."""
        if not self.turns:
            return None
        overlap: dict[int, float] = {}
        lo = bisect.bisect_left(self.starts, start - self.max_length)
        hi = bisect.bisect_right(self.starts, end)
        for turn in self.turns[lo:hi]:
            shared = min(end, turn.end) - max(start, turn.start)
            if shared > 0:
                overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + shared
        if overlap:
            return max(overlap, key=lambda s: overlap[s])
        middle = (start + end) / 2
        i = bisect.bisect_left(self.starts, middle)
        near = self.turns[max(i - 1, 0) : i + 1]
        return min(near, key=lambda t: max(t.start - middle, middle - t.end, 0.0)).speaker


def split_by_speaker(
    segments: Sequence[Segment], turns: Sequence[DiarizationSegment], names: Mapping[int, str] | None = None
) -> list[DiarizedSegment]:
    """The transcript's segments cut wherever the speaker changes (by word times), each with its speaker.

    Speakers in `names` (diarization id -> known voice) carry that name; the others are labelled A, B, ... in
    order of first appearance here. A segment without word timings keeps the speaker that overlaps it most. The
    result is ordered and never overlaps, and its texts joined with spaces are the transcript's text.
    """
    index = _TurnIndex(turns)
    names = names or {}
    labels: dict[int, str] = {}

    def label(speaker: int | None) -> str:
        if speaker is None:
            speaker = -1
        if speaker in names:
            return names[speaker]
        if speaker not in labels:
            labels[speaker] = anonymous_label(len(labels))
        return labels[speaker]

    out: list[DiarizedSegment] = []
    last_end = 0.0
    for segment in segments:
        for start, end, text, speaker in _pieces(segment, index):
            if not text:
                continue
            start = max(start, last_end)
            end = max(end, start)
            out.append(DiarizedSegment(round(start, 3), round(end, 3), text, label(speaker)))
            last_end = end
    return out


def _pieces(segment: Segment, index: _TurnIndex) -> Iterator[tuple[float, float, str, int | None]]:
    """(start, end, text, speaker) runs of one segment's words that share a speaker."""
    words = [w for w in segment.words if w.word.strip()]
    if not words:
        yield segment.start, segment.end, segment.text, index.speaker(segment.start, segment.end)
        return
    speakers = [index.speaker(w.start, w.end) for w in words]
    if len(set(speakers)) == 1:
        yield segment.start, segment.end, segment.text, speakers[0]
        return
    run: list[Word] = []
    first = True
    for i, (word, speaker) in enumerate(zip(words, speakers, strict=True)):
        run.append(word)
        if i + 1 == len(words) or speakers[i + 1] != speaker:
            start = segment.start if first else run[0].start
            end = segment.end if i + 1 == len(words) else run[-1].end
            yield start, end, join_segments([w.word.strip() for w in run]), speaker
            run = []
            first = False


def diarized_text(segments: Sequence[DiarizedSegment]) -> str:
    return join_segments([s.text for s in segments])


# --- known voices ------------------------------------------------------------------------------------------------


def voice_embedding(encoder: SpeakerEmbedder, audio: Audio) -> Audio:
    """The unit mean embedding of `audio` over `diarize()`'s windows (1.6 s every 0.8 s)."""
    mel = mel_frames(normalize_volume(audio))
    n = mel.shape[0]
    offsets = list(range(0, n - WINDOW_FRAMES + 1, STEP_FRAMES)) if n >= WINDOW_FRAMES else [0]
    embeddings = encoder.embed([mel[off : off + WINDOW_FRAMES] for off in offsets])
    mean = embeddings.mean(axis=0)
    return np.asarray(mean / max(float(np.linalg.norm(mean)), 1e-9), dtype=np.float32)


def speaker_audio(
    path: Path, turns: Sequence[DiarizationSegment], cancel: CancelToken | None = None
) -> dict[int, Audio]:
    """Up to `CENTROID_SECONDS` of each speaker's turns (the earliest), from one decode of the file."""
    limit = round(CENTROID_SECONDS * SAMPLE_RATE)
    wanted: dict[int, list[tuple[int, int]]] = {}
    taken: dict[int, int] = {}
    for turn in sorted(turns, key=lambda t: t.start):
        a, b = round(turn.start * SAMPLE_RATE), round(turn.end * SAMPLE_RATE)
        room = limit - taken.get(turn.speaker, 0)
        if room <= 0 or b <= a:
            continue
        b = min(b, a + room)
        wanted.setdefault(turn.speaker, []).append((a, b))
        taken[turn.speaker] = taken.get(turn.speaker, 0) + b - a
    spans = sorted((a, b, speaker) for speaker, ranges in wanted.items() for a, b in ranges)
    parts: dict[int, list[Audio]] = {}
    if not spans:
        return {}
    position = 0
    with AudioDecoder(path) as decoder:
        for block in decoder.blocks(BLOCK_SECONDS):
            if cancel is not None:
                cancel.raise_if_cancelled()
            block_end = position + block.size
            for a, b, speaker in spans:
                lo, hi = max(a, position), min(b, block_end)
                if lo < hi:
                    parts.setdefault(speaker, []).append(block[lo - position : hi - position])
            position = block_end
            if position >= spans[-1][1]:
                break
    return {speaker: np.concatenate(chunks) for speaker, chunks in parts.items()}


def match_voices(
    found: Mapping[int, Audio], known: Mapping[str, Audio], min_similarity: float = MIN_SIMILARITY
) -> dict[int, str]:
    """Found speaker id -> known name, one to one, best pairs first, each at least `min_similarity` alike.

    `found` and `known` map to unit embeddings.
    """
    pairs = sorted(
        ((float(found[s] @ known[n]), s, n) for s in found for n in known),
        key=lambda p: p[0],
        reverse=True,
    )
    names: dict[int, str] = {}
    used: set[str] = set()
    for similarity, speaker, name in pairs:
        if similarity < min_similarity:
            break
        if speaker not in names and name not in used:
            names[speaker] = name
            used.add(name)
    return names


def name_speakers(
    path: Path,
    turns: Sequence[DiarizationSegment],
    voices: Sequence[KnownVoice],
    encoder: SpeakerEmbedder,
    cancel: CancelToken | None = None,
) -> dict[int, str]:
    """Which found speakers are which known voices (those alike enough); blocking, run it on the worker."""
    if not voices or not turns:
        return {}
    known = {v.name: voice_embedding(encoder, v.audio) for v in voices}
    found = {s: voice_embedding(encoder, audio) for s, audio in speaker_audio(path, turns, cancel).items()}
    return match_voices(found, known)


# --- enrolment -----------------------------------------------------------------------------------------------------

MIN_REFERENCE_SECONDS = 2.0
MAX_REFERENCE_SECONDS = 10.0
MAX_KNOWN_SPEAKERS = 4
REFERENCES = "known_speaker_references"
NAMES = "known_speaker_names"


def load_voice(name: str, path: Path, *, about: str = REFERENCES) -> KnownVoice:
    """A reference recording of one voice: any format we decode, 2-10 s long (refused otherwise, about `about`)."""
    try:
        audio = decode_all(path, max_seconds=MAX_REFERENCE_SECONDS + 1)
    except InvalidInput as exc:
        raise InvalidInput(f"The reference audio for '{name}' cannot be used: {exc.message}", about=about) from None
    seconds = audio.size / SAMPLE_RATE
    if not MIN_REFERENCE_SECONDS <= seconds <= MAX_REFERENCE_SECONDS:
        raise InvalidInput(
            f"The reference audio for '{name}' lasts {seconds:.1f} s; use {MIN_REFERENCE_SECONDS:g}-"
            f"{MAX_REFERENCE_SECONDS:g} s of that voice alone",
            about=about,
        )
    return KnownVoice(name, audio)


def saved_voices(folder: Path) -> dict[str, Path]:
    """The saved voices of SPEAKERS_DIR: `name.wav` files by name (none when the folder does not exist)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() == ".wav" and p.is_file()}


def load_known_voices(names: Sequence[str], references: Sequence[Path] | None, folder: Path) -> list[KnownVoice]:
    """The voices a request names: with one reference file per name, or else each a saved voice in `folder`."""
    if len(names) > MAX_KNOWN_SPEAKERS:
        raise InvalidInput(f"At most {MAX_KNOWN_SPEAKERS} known speakers per request", about=NAMES)
    if len(set(names)) != len(names):
        raise InvalidInput("Each known speaker name may be given once", about=NAMES)
    if references is not None:
        return [load_voice(name, path) for name, path in zip(names, references, strict=True)]
    saved = saved_voices(folder)
    missing = [n for n in names if n not in saved]
    if missing:
        raise InvalidInput(
            f"No saved voice named {', '.join(repr(n) for n in missing)}: send known_speaker_references[] "
            f"(one per name), or save a 2-10 s '<name>.wav' in SPEAKERS_DIR",
            about=REFERENCES,
        )
    return [load_voice(name, saved[name], about=NAMES) for name in names]
