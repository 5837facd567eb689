"""Diarization evaluation: a diarization error rate (DER) and conversations with known turns.

The evaluation set (issue 10, item 5) is built here, by code, from `tests/data` and espeak-ng:

- six voices: two human readers (`two_cities.wav`, `beckett.wav`) and four espeak-ng voices (`en+m3`, `en+f2`,
  `en-us+m1`, `en+f4`) reading different sentences. Each voice becomes one "speech stream": its speech regions
  (Silero, padded 0.1 s) end to end, so no pause inside a stream is longer than ~0.2 s;
- a conversation of k voices (k = 1..4, the voices drawn by the seed) is ~60 s (at most 2k times the shortest
  voice's stream, so no material is used much more than twice) of turns of 1-6 s cut from those
  streams at their quietest 10 ms near the drawn length, separated by pauses of 0.2-0.8 s; the next speaker is
  another voice (or, 15% of the time, the same one again after a pause). A turn's reference span is its audio with
  quiet ends trimmed. Turns, voices and pauses all follow from the seed;
- `TUNE_SEEDS` are for choosing thresholds, `HELD_OUT_SEEDS` for the figures we report.

The real-voice set (issue 27, ADR 66) is built the same way from eight real people only (`REAL_VOICES`: tests/data
and tests/data/voices, licences in its README): one to three voices (two always of one sex), quick turns of 0.5-2 s,
pauses of 0.1-0.6 s, each conversation also as a telephone copy (`telephone`); plus the real call of two women as
recorded (`the_call`). `REAL_TUNE_SEEDS` / `REAL_HELD_OUT_SEEDS` as above.

`python -m tools.diar_eval [--seeds held-out|tune] [--set both|espeak|real] [--threshold X]` prints both sets'
per-conversation DER (0.25 s collar) and speaker counts, their summaries, and the figures for the real recordings.
"""

from __future__ import annotations

import argparse
import functools
import io
import itertools
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
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


def speech_regions(audio: npt.NDArray[np.float32]) -> list[tuple[float, float]]:
    """Speech regions in seconds, as the diarizer finds them (Silero VAD, short silences split, small padding)."""
    from app.diarization.diarize import SAMPLE_RATE, audio_blocks, padded_regions

    return [(start / SAMPLE_RATE, end / SAMPLE_RATE) for start, end, _ in padded_regions(audio_blocks(audio))]


def build_conversation(
    sources: Sequence[tuple[npt.NDArray[np.float32], int]], order: Sequence[tuple[int, int]], gap: float = 0.6
) -> tuple[npt.NDArray[np.float32], list[Turn]]:
    """Concatenate utterances into a conversation with known turns.

    `sources[i]` is (16 kHz samples, speaker id); `order` lists (source index, utterance index) where utterances
    are the speech regions of each source (Silero VAD, cut generously). Turns are separated by `gap` s of silence.
    """
    from app.diarization.diarize import SAMPLE_RATE

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


# --- the evaluation set -----------------------------------------------------------------------------------------

HUMAN_VOICES = {"reader1": "two_cities.wav", "reader2": "beckett.wav"}
SYNTHETIC_VOICES = ("en+m3", "en+f2", "en-us+m1", "en+f4")
VOICES = (*HUMAN_VOICES, *SYNTHETIC_VOICES)
TUNE_SEEDS = (0, 1, 2, 3, 4)
HELD_OUT_SEEDS = (100, 101, 102, 103, 104)
SENTENCES = (
    "Good morning everyone, shall we begin the meeting?",
    "Yes, I have the numbers from last week ready to share.",
    "The budget looks fine but the schedule is slipping.",
    "We should ask the design team about the delay.",
    "I agree, let us write that down as an action item.",
    "Thank you, that is all from me today.",
    "Could you send me the report before Friday afternoon?",
    "The new office opens in March, if the builders finish on time.",
    "I think the customers will like the simpler version better.",
    "Nobody told me the server was down all weekend.",
    "Let us move on to the next point on the agenda.",
    "My train was late again, so I missed the first half.",
    "We tested it on three machines and it worked on two of them.",
    "Please remember to lock the door when you leave.",
    "The weather has been strange this whole month.",
    "How many people signed up for the workshop so far?",
    "I would rather wait until we have the final figures.",
    "That sounds reasonable to me, but ask the others first.",
    "The printer on the second floor is out of paper again.",
    "We could save a lot of money by buying fewer licences.",
    "Her presentation was the clearest one I have seen this year.",
    "Maybe we should start earlier tomorrow morning.",
    "The results were better than anyone expected.",
    "I will call the supplier and ask about the prices.",
)
SYNTH_RATES = {"en+m3": 150, "en+f2": 165, "en-us+m1": 158, "en+f4": 172}  # words per minute


class Conversation(msgspec.Struct, frozen=True):
    name: str
    voices: tuple[str, ...]
    audio: npt.NDArray[np.float32]
    reference: list[Turn]

    @property
    def duration(self) -> float:
        return len(self.audio) / 16_000


def synthesize(voice: str, text: str, rate: int = 160) -> npt.NDArray[np.float32]:
    """espeak-ng speech (16 kHz float32) of `text` in `voice`."""
    from faster_whisper.audio import decode_audio

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", text], check=True, capture_output=True
    ).stdout
    return np.asarray(decode_audio(io.BytesIO(wav), sampling_rate=16_000), dtype=np.float32)


def speech_stream(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A recording's speech regions (Silero, padded) end to end: no long pause inside."""
    from app.diarization.diarize import SAMPLE_RATE

    regions = speech_regions(audio)
    return np.concatenate([audio[round(s * SAMPLE_RATE) : round(e * SAMPLE_RATE)] for s, e in regions])


@functools.lru_cache(maxsize=2)
def voice_streams(audio_dir: Path) -> dict[str, npt.NDArray[np.float32]]:
    """The speech stream of every voice in `VOICES` (espeak voices read rotated sentence lists)."""
    streams = {name: speech_stream(load(audio_dir / file)) for name, file in HUMAN_VOICES.items()}
    for i, voice in enumerate(SYNTHETIC_VOICES):
        lines = SENTENCES[6 * i :] + SENTENCES[: 6 * i]
        streams[voice] = speech_stream(synthesize(voice, " ".join(lines), SYNTH_RATES[voice]))
    return streams


def _frame_rms(audio: npt.NDArray[np.float32], hop: int = 160) -> npt.NDArray[np.float64]:
    n = len(audio) // hop
    frames = audio[: n * hop].astype(np.float64).reshape(n, hop)
    return np.asarray(np.sqrt(np.mean(frames**2, axis=1)))


def _cut_turn(
    stream: npt.NDArray[np.float32], cursor: int, length: float, shortest: float = 1.0, longest: float = 6.0
) -> tuple[int, int, int]:
    """(start, end, next cursor) in samples of a turn of about `length` s (`shortest`-`longest` s) cut at the
    quietest 10 ms within 0.4 s of it."""
    sr, hop = 16_000, 160
    if len(stream) - cursor < sr * 1.5:
        cursor = 0
    lo = cursor + round(max(shortest, length - 0.4) * sr)
    hi = min(cursor + round(min(longest, length + 0.4) * sr), len(stream))
    if hi - lo < hop:
        end = hi
    else:
        rms = _frame_rms(stream[lo:hi], hop)
        end = lo + int(np.argmin(rms)) * hop + hop // 2
    # Trim quiet ends (below 10% of the turn's median frame level) so the reference span is the speech.
    rms = _frame_rms(stream[cursor:end], hop)
    loud = np.flatnonzero(rms >= 0.1 * float(np.median(rms)))
    start = cursor + int(loud[0]) * hop if len(loud) else cursor
    stop = cursor + (int(loud[-1]) + 1) * hop if len(loud) else end
    return start, stop, end


def make_conversation(
    streams: dict[str, npt.NDArray[np.float32]],
    voices: Sequence[str],
    seed: int,
    duration: float = 60.0,
    turns: tuple[float, float] = (1.0, 6.0),
    pauses: tuple[float, float] = (0.2, 0.8),
    name: str = "",
) -> Conversation:
    """Turns of `turns` s (1-6) from `voices` (speaker ids = index in `voices`), pauses of `pauses` s (0.2-0.8),
    ~`duration` s long."""
    sr = 16_000
    rng = np.random.default_rng(seed)
    cursors = {v: int(rng.integers(0, max(1, len(streams[v]) - 6 * sr))) for v in voices}
    parts: list[npt.NDArray[np.float32]] = []
    reference: list[Turn] = []
    t = 0
    speaker = int(rng.integers(len(voices)))
    while t < duration * sr:
        voice = voices[speaker]
        length = float(rng.uniform(*turns))
        start, stop, cursors[voice] = _cut_turn(streams[voice], cursors[voice], length, *turns)
        piece = streams[voice][start:stop]
        reference.append(Turn(round(t / sr, 3), round((t + len(piece)) / sr, 3), speaker))
        gap = np.zeros(round(float(rng.uniform(*pauses)) * sr), dtype=np.float32)
        parts += [piece, gap]
        t += len(piece) + len(gap)
        if len(voices) > 1 and rng.random() >= 0.15:
            speaker = int(rng.choice([s for s in range(len(voices)) if s != speaker]))
    return Conversation(name or f"k{len(voices)}-s{seed}", tuple(voices), np.concatenate(parts), reference)


def conversation_set(
    audio_dir: Path, seeds: Sequence[int], counts: Sequence[int] = (1, 2, 3, 4), duration: float = 60.0
) -> list[Conversation]:
    """One conversation per (voice count, seed); the voices are drawn from `VOICES` by the seed."""
    streams = voice_streams(audio_dir)
    out = []
    for k in counts:
        for seed in seeds:
            rng = np.random.default_rng(1000 * k + seed)
            voices = [VOICES[i] for i in rng.choice(len(VOICES), size=k, replace=False)]
            # No voice's material is used much more than twice (beckett has only ~5.6 s of speech): repeated audio
            # gives identical embeddings, which no real conversation has.
            shortest = min(len(streams[v]) for v in voices) / 16_000
            out.append(make_conversation(streams, voices, seed, min(duration, 2 * k * shortest)))
    return out


# --- the real-voice set (issue 27) ------------------------------------------------------------------------------

# Real people only (tests/data and tests/data/voices, licences in their READMEs): name -> (file, sex).
REAL_VOICES = {
    "diane": ("voices/call_diane_sheila.flac", "f"),  # speaker90 of the call's RTTM
    "sheila": ("voices/call_diane_sheila.flac", "f"),  # speaker91
    "allison": ("voices/allison.flac", "f"),
    "alsa": ("voices/alsa_channels.flac", "f"),
    "two_cities": ("two_cities.wav", "m"),
    "beckett": ("beckett.wav", "m"),
    "austen": ("voices/austen.flac", "m"),
    "cards": ("voices/cards.flac", "m"),
}
CALL_SPEAKERS = {"diane": "speaker90", "sheila": "speaker91"}
REAL_TUNE_SEEDS = tuple(range(20))  # the real-voice calibration was chosen on these
REAL_HELD_OUT_SEEDS = (100, 101, 102, 103, 104)
QUICK_TURNS = (0.5, 2.0)  # seconds
QUICK_PAUSES = (0.1, 0.6)


def rttm_turns(path: Path) -> list[Turn]:
    """An RTTM file's SPEAKER lines as turns, speakers numbered by first appearance."""
    ids: dict[str, int] = {}
    turns = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, length = float(fields[3]), float(fields[4])
            turns.append(Turn(start, round(start + length, 3), ids.setdefault(fields[7], len(ids))))
    return turns


def _alone(turns: Sequence[Turn], speaker: int) -> list[tuple[float, float]]:
    """The spans where `speaker` talks and nobody else does."""
    spans = [(t.start, t.end) for t in turns if t.speaker == speaker]
    for other in (t for t in turns if t.speaker != speaker):
        spans = [
            piece
            for a, b in spans
            for piece in ([(a, b)] if other.end <= a or other.start >= b else [(a, other.start), (other.end, b)])
            if piece[1] - piece[0] > 0
        ]
    return spans


@functools.lru_cache(maxsize=2)
def real_voice_streams(audio_dir: Path) -> dict[str, npt.NDArray[np.float32]]:
    """The speech stream of every voice in `REAL_VOICES`; the call's two women are cut where each talks alone."""
    streams = {}
    call = rttm_turns(audio_dir / "voices" / "call_diane_sheila.rttm")
    call_ids = {spk: i for i, spk in enumerate(CALL_SPEAKERS)}  # speaker90 appears first
    for name, (file, _) in REAL_VOICES.items():
        audio = load(audio_dir / file)
        if name in CALL_SPEAKERS:
            spans = [(a, b) for a, b in _alone(call, call_ids[name]) if b - a >= 0.3]
            audio = np.concatenate([audio[round(a * 16_000) : round(b * 16_000)] for a, b in spans])
        streams[name] = speech_stream(audio)
    return streams


def telephone(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A narrow-band (telephone) copy at 16 kHz: 8 kHz sampling, 300-3400 Hz, G.711 mu-law, back to 16 kHz."""
    from scipy.signal import butter, resample_poly, sosfilt

    narrow = resample_poly(audio.astype(np.float64), 1, 2)
    narrow = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos"), narrow)
    mu = 255.0
    peak = max(float(np.max(np.abs(narrow))), 1e-9)
    companded = np.sign(narrow) * np.log1p(mu * np.abs(narrow / peak)) / np.log1p(mu)
    quantized = np.round(companded * 127) / 127  # 8-bit codes
    expanded = np.sign(quantized) * np.expm1(np.abs(quantized) * np.log1p(mu)) / mu * peak
    return np.asarray(resample_poly(expanded, 2, 1), dtype=np.float32)


def real_conversation_set(
    audio_dir: Path,
    seeds: Sequence[int],
    counts: Sequence[int] = (1, 2, 3),
    duration: float = 40.0,
    narrow_band: bool = True,
) -> list[Conversation]:
    """Conversations of real voices with quick turns (0.5-2 s), one per (voice count, seed), each also as a
    telephone copy (name suffix `-nb`). Two voices are always of one sex (women for even seeds, men for odd ones);
    one or three are drawn from all eight."""
    streams = real_voice_streams(audio_dir)
    out = []
    for k in counts:
        for seed in seeds:
            rng = np.random.default_rng(2000 * k + seed)
            pool = [v for v, (_, sex) in REAL_VOICES.items() if k != 2 or sex == "fm"[seed % 2]]
            voices = [pool[i] for i in rng.choice(len(pool), size=k, replace=False)]
            shortest = min(len(streams[v]) for v in voices) / 16_000  # each voice's material used at most ~twice
            conv = make_conversation(
                streams, voices, seed, min(duration, 2 * k * shortest), QUICK_TURNS, QUICK_PAUSES, f"real-k{k}-s{seed}"
            )
            out.append(conv)
            if narrow_band:
                out.append(Conversation(f"{conv.name}-nb", conv.voices, telephone(conv.audio), conv.reference))
    return out


def the_call(audio_dir: Path) -> Conversation:
    """The telephone call of two women as recorded, with its reference turns (overlaps included)."""
    folder = audio_dir / "voices"
    reference = rttm_turns(folder / "call_diane_sheila.rttm")
    return Conversation("call", tuple(CALL_SPEAKERS), load(folder / "call_diane_sheila.flac"), reference)


class Scored(msgspec.Struct, frozen=True):
    conversation: Conversation
    found: int
    der: float


def score(
    conversations: Sequence[Conversation], diarizer: Callable[[npt.NDArray[np.float32]], list[Turn]]
) -> list[Scored]:
    return [
        Scored(conv, len({t.speaker for t in hyp}), diarization_error_rate(conv.reference, hyp).der)
        for conv in conversations
        for hyp in [diarizer(conv.audio)]
    ]


def print_table(title: str, scored: Sequence[Scored]) -> None:
    print(f"\n{title}")
    print(f"{'conversation':<16} {'length':>6} {'turns':>5} {'k':>2} {'found':>5} {'DER':>6}  voices")
    for s in scored:
        c = s.conversation
        print(
            f"{c.name:<16} {c.duration:6.1f} {len(c.reference):5d} {len(c.voices):2d} {s.found:5d} {s.der:6.3f}  "
            + ",".join(c.voices)
        )


def print_summary(label: str, scored: Sequence[Scored]) -> None:
    if not scored:
        return
    ders = [s.der for s in scored]
    right = sum(s.found == len(s.conversation.voices) for s in scored)
    print(
        f"{label:<24} right count {right}/{len(scored)}, mean DER {np.mean(ders):.3f}, max {np.max(ders):.3f}, "
        f"DER <= 0.10: {sum(d <= 0.10 for d in ders)}/{len(ders)}"
    )


def main(argv: list[str]) -> int:
    from app.diarization.diarize import diarize
    from app.diarization.speaker_encoder import SpeakerEncoder

    parser = argparse.ArgumentParser(prog="python -m tools.diar_eval")
    parser.add_argument("--audio-dir", type=Path, default=Path("tests/data"))
    parser.add_argument("--seeds", choices=["held-out", "tune"], default="held-out")
    parser.add_argument("--set", choices=["both", "espeak", "real"], default="both")
    parser.add_argument("--threshold", type=float, default=None, help="the cut for every file (default: by band)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv[1:])
    encoder = SpeakerEncoder.load(num_threads=args.threads)
    spent, seconds = 0.0, 0.0

    def run(audio: npt.NDArray[np.float32]) -> list[Turn]:
        nonlocal spent, seconds
        started = time.perf_counter()
        segs = diarize(audio, encoder, threshold=args.threshold)
        spent += time.perf_counter() - started
        seconds += len(audio) / 16_000
        return [Turn(s.start, s.end, s.speaker) for s in segs]

    for name in ("endgame_nagg_nell", "two_cities", "beckett"):
        segs = diarize(args.audio_dir / f"{name}.wav", encoder, threshold=args.threshold)
        changes = sum(1 for a, b in itertools.pairwise(segs) if a.speaker != b.speaker)
        print(f"{name}: speakers {len({s.speaker for s in segs})}, turns {len(segs)}, changes {changes}")
    held_out = args.seeds == "held-out"
    if args.set in ("both", "espeak"):
        scored = score(conversation_set(args.audio_dir, HELD_OUT_SEEDS if held_out else TUNE_SEEDS), run)
        print_table(f"espeak set ({args.seeds} seeds): 2 readers + 4 espeak-ng voices, turns 1-6 s", scored)
        for k in (1, 2, 3, 4):
            print_summary(f"espeak k={k}", [s for s in scored if len(s.conversation.voices) == k])
        print_summary("espeak all", scored)
    if args.set in ("both", "real"):
        seeds = REAL_HELD_OUT_SEEDS if held_out else REAL_TUNE_SEEDS
        scored = score([the_call(args.audio_dir), *real_conversation_set(args.audio_dir, seeds)], run)
        print_table(f"real-voice set ({args.seeds} seeds): 8 real voices, turns 0.5-2 s, -nb = telephone", scored)
        call, built = scored[:1], scored[1:]
        for k in (1, 2, 3):
            for band, nb in (("recorded", False), ("telephone", True)):
                part = [
                    s for s in built if len(s.conversation.voices) == k and s.conversation.name.endswith("-nb") == nb
                ]
                print_summary(f"real k={k} {band}", part)
        print_summary("real k=2,3 (the target)", [s for s in built if len(s.conversation.voices) > 1])
        print_summary("the call (as recorded)", call)
    print(f"RTF {spent / max(seconds, 1e-9):.4f} (diarize() alone, {args.threads} threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
