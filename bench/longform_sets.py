"""Long-form test sets for `bench/longform_bench.py`: 16 kHz WAVs with their reference text and where each reference
sentence lies in time (so that errors can be placed against chunk boundaries).

- `synthetic`: espeak-ng (en, 125 words/min) reading the CC0 1.0 legal code (`bench/data/cc0-1.0.txt`, a copy of
  Debian's `/usr/share/common-licenses/CC0-1.0`; the legal code is itself CC0), one clause at a time (split at
  . ; : and commas, at least 6 words) with pauses of 0.2-2.5 s between them (seeded), except two passages of more
  than 30 s read without punctuation, so without a pause: the chunker must cut them inside speech. 9.6 minutes.
- `real`: the exact-reference recordings of `tests/data` (two_cities 44 s, beckett 10 s), alternated with pauses of
  0.3-2.0 s (seeded) to about 10 minutes: a human reader, where chunk cuts fall at different places in each repeat.

Other seeds draw other pauses (so other chunk cuts): `synthetic-2`, `real-3`. Made once into
`bench/out/inputs/longform_<name>.{wav,json}` (the JSON holds the reference and the spans).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.server import AUDIO

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT / "bench" / "out" / "inputs"
CC0 = ROOT / "bench" / "data" / "cc0-1.0.txt"
RATE = 16000
LONG_PASSAGE_SECONDS = 30.0  # the two unpunctuated passages are longer than this
LONG_PASSAGE_WORDS = 85  # ~36 s at 125 words/min


@dataclass(frozen=True)
class Sentence:
    text: str
    start: float  # seconds
    end: float


@dataclass(frozen=True)
class LongformSet:
    name: str
    wav: Path
    sentences: list[Sentence]

    @property
    def reference(self) -> str:
        return " ".join(s.text for s in self.sentences)

    @property
    def seconds(self) -> float:
        return self.sentences[-1].end if self.sentences else 0.0


def load(name: str) -> LongformSet:
    """The set `name`, built when missing: "synthetic" or "real", optionally with a seed for the pauses
    ("synthetic-2"; the default seed is 1)."""
    kind, _, seed = name.partition("-")
    wav, meta = INPUTS / f"longform_{name}.wav", INPUTS / f"longform_{name}.json"
    if not (wav.is_file() and meta.is_file()):
        INPUTS.mkdir(parents=True, exist_ok=True)
        audio, sentences = {"synthetic": build_synthetic, "real": build_real}[kind](int(seed or 1))
        write_wav(wav, audio)
        meta.write_text(json.dumps([s.__dict__ for s in sentences], indent=0))
    sentences = [Sentence(**s) for s in json.loads(meta.read_text())]
    return LongformSet(name, wav, sentences)


def write_wav(path: Path, audio: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes())


def decoded(path: Path) -> np.ndarray:
    from app.audio.decode import decode_all

    return decode_all(path)


def cc0_utterances() -> list[str]:
    """The legal code as utterances: sentences and clauses (split at . ; :), list numbering dropped."""
    text = re.sub(r"\s+", " ", CC0.read_text())
    text = re.sub(r"(?<![\w.])(?:\d+|[ivx]+|[a-z])\.(?=\s)", " ", text)  # "1." "ii." "a." list markers
    text = re.sub(r"\(([ivx]+|[a-z])\)", " ", text)  # "(i)" "(a)"
    parts = [p.strip() for p in re.split(r"(?<=[.;:,])\s+", text) if p.strip()]
    utterances: list[str] = []
    for part in parts:  # clauses of fewer than 6 words join the next one
        if utterances and len(utterances[-1].split()) < 6:
            utterances[-1] += " " + part
        else:
            utterances.append(part)
    return utterances


def espeak(text: str, folder: Path) -> np.ndarray:
    """`text` read by espeak-ng, 16 kHz float32, leading and trailing silence trimmed."""
    path = folder / "utterance.wav"
    subprocess.run(["espeak-ng", "-v", "en", "-s", "125", "-w", str(path), text], check=True)
    audio = decoded(path)
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[loud[0] : loud[-1] + 1] if loud.size else audio[:0]


def without_punctuation(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text)).strip()


def build_synthetic(seed: int) -> tuple[np.ndarray, list[Sentence]]:
    rng = np.random.default_rng(seed)
    utterances = cc0_utterances()
    # Two runs of clauses, a third and two thirds in, are read as one passage without punctuation (espeak pauses at
    # commas): more than 30 s of unbroken speech each.
    longest = []
    for fraction in (1, 2):
        first = len(utterances) * fraction // 3
        last = first
        while len(" ".join(utterances[first : last + 1]).split()) < LONG_PASSAGE_WORDS:
            last += 1
        utterances[first : last + 1] = [" ".join(utterances[first : last + 1])]
        longest.append(first)
    pieces: list[np.ndarray] = []
    sentences: list[Sentence] = []
    at = 0
    with tempfile.TemporaryDirectory() as tmp:
        for index, text in enumerate(utterances):
            spoken = without_punctuation(text) if index in longest else text
            audio = espeak(spoken, Path(tmp))
            if index in longest and audio.size < LONG_PASSAGE_SECONDS * RATE:
                raise RuntimeError(f"passage {index} is only {audio.size / RATE:.1f} s long")
            sentences.append(Sentence(text, at / RATE, (at + audio.size) / RATE))
            pause = np.zeros(round(rng.uniform(0.2, 2.5) * RATE), dtype=np.float32)
            pieces += [audio, pause]
            at += audio.size + pause.size
    return np.concatenate(pieces), sentences


def build_real(seed: int, seconds: float = 600.0) -> tuple[np.ndarray, list[Sentence]]:
    rng = np.random.default_rng(seed)
    recordings = [
        (decoded(AUDIO / f"{name}.wav"), (AUDIO / f"{name}.txt").read_text().strip())
        for name in ("two_cities", "beckett")
    ]
    pieces: list[np.ndarray] = []
    sentences: list[Sentence] = []
    at = 0
    while at < seconds * RATE:
        for audio, text in recordings:
            sentences.append(Sentence(text, at / RATE, (at + audio.size) / RATE))
            pause = np.zeros(round(rng.uniform(0.3, 2.0) * RATE), dtype=np.float32)
            pieces += [audio, pause]
            at += audio.size + pause.size
    return np.concatenate(pieces), sentences
