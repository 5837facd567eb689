"""Diarization evaluation: a diarization error rate (DER) and a conversation built from real recordings.

`python -m tools.diar_eval` prints the figures for the shared test recordings.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

RESOLUTION = 0.01  # seconds per scoring frame


class Turn(msgspec.Struct, frozen=True):
    start: float
    end: float
    speaker: int


class DerResult(msgspec.Struct, frozen=True):
    der: float
    missed: float
    false_alarm: float
    confusion: float
    total: float  # scored reference speech, seconds


def _activity(turns: Sequence[Turn], speakers: list[int], frames: int) -> npt.NDArray[np.bool_]:
    act = np.zeros((len(speakers), frames), dtype=bool)
    index = {s: i for i, s in enumerate(speakers)}
    for t in turns:
        a, b = round(t.start / RESOLUTION), round(t.end / RESOLUTION)
        act[index[t.speaker], max(a, 0) : min(b, frames)] = True
    return act


def diarization_error_rate(reference: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = 0.25) -> DerResult:
    """(missed + false alarm + confusion) / total reference speech, with the optimal one-to-one speaker mapping.

    Frames within `collar` seconds of any reference turn boundary are not scored (the usual NIST convention).
    Overlapping speech is scored per speaker count, as md-eval does.
    """
    from scipy.optimize import linear_sum_assignment

    end = max([t.end for t in reference] + [t.end for t in hypothesis] + [0.0])
    frames = round(end / RESOLUTION) + 1
    ref_spk = sorted({t.speaker for t in reference})
    hyp_spk = sorted({t.speaker for t in hypothesis})
    ref = _activity(reference, ref_spk, frames)
    hyp = _activity(hypothesis, hyp_spk, frames)
    scored = np.ones(frames, dtype=bool)
    c = round(collar / RESOLUTION)
    for t in reference:
        for edge in (round(t.start / RESOLUTION), round(t.end / RESOLUTION)):
            scored[max(edge - c, 0) : edge + c] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    correct = np.zeros(ref.shape[1], dtype=np.int64)
    if ref_spk and hyp_spk:
        overlap = ref.astype(np.int64) @ hyp.T.astype(np.int64)
        rows, cols = linear_sum_assignment(-overlap)
        for r, h in zip(rows, cols, strict=True):
            correct += ref[r] & hyp[h]
    total = float(n_ref.sum())
    missed = float(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = float((np.minimum(n_ref, n_hyp) - correct).sum())
    der = (missed + false_alarm + confusion) / total if total else 0.0
    return DerResult(der, missed * RESOLUTION, false_alarm * RESOLUTION, confusion * RESOLUTION, total * RESOLUTION)


def build_conversation(
    sources: Sequence[tuple[npt.NDArray[np.float32], int]], order: Sequence[tuple[int, int]], gap: float = 0.6
) -> tuple[npt.NDArray[np.float32], list[Turn]]:
    """Concatenate utterances into a conversation with known turns.

    `sources[i]` is (16 kHz samples, speaker id); `order` lists (source index, utterance index) where utterances
    are the speech regions of each source (Silero VAD, cut generously). Turns are separated by `gap` s of silence.
    """
    from app.diarization.diarize import SAMPLE_RATE, speech_regions

    utterances = [speech_regions(audio) for audio, _ in sources]
    silence = np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)
    parts: list[npt.NDArray[np.float32]] = []
    turns: list[Turn] = []
    t = 0.0
    for src, utt in order:
        audio, speaker = sources[src]
        start, end = utterances[src][utt % len(utterances[src])]
        piece = audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        parts += [piece, silence]
        turns.append(Turn(round(t, 3), round(t + len(piece) / SAMPLE_RATE, 3), speaker))
        t += (len(piece) + len(silence)) / SAMPLE_RATE
    return np.concatenate(parts), turns


def load(path: Path) -> npt.NDArray[np.float32]:
    from faster_whisper.audio import decode_audio

    return np.asarray(decode_audio(str(path), sampling_rate=16_000), dtype=np.float32)


def shared_conversation(audio_dir: Path) -> tuple[npt.NDArray[np.float32], list[Turn]]:
    """beckett (speaker 0) and two_cities (speaker 1) utterances interleaved in irregular turns."""
    beckett = load(audio_dir / "beckett.wav")
    cities = load(audio_dir / "two_cities.wav")
    order = [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (1, 4), (0, 4), (1, 5), (0, 5), (1, 6)]
    return build_conversation([(beckett, 0), (cities, 1)], order)


def main(argv: list[str]) -> int:
    from app.diarization.diarize import diarize
    from app.diarization.speaker_encoder import SpeakerEncoder

    encoder = SpeakerEncoder.load(num_threads=2)
    audio_dir = Path(argv[1]) if len(argv) > 1 else Path("tests/data")
    for name in ("endgame_nagg_nell", "two_cities", "beckett"):
        segs = diarize(audio_dir / f"{name}.wav", encoder)
        print(name, "speakers:", len({s.speaker for s in segs}), [(s.start, s.end, s.speaker) for s in segs])
    audio, ref = shared_conversation(audio_dir)
    hyp = [Turn(s.start, s.end, s.speaker) for s in diarize(audio, encoder)]
    print("conversation:", len(audio) / 16000, "s, reference turns", len(ref), "hypothesis turns", len(hyp))
    print("DER", diarization_error_rate(ref, hyp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
