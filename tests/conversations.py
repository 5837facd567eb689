"""Conversations with known turns for the speaker tests: two espeak-ng voices and a human reader (tests/data).

Each voice also gets a reference recording of other words than it says in the conversation (for enrolment).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from tests.audio_helpers import encode
from tests.server import AUDIO
from tools.diar_eval import SENTENCES, Turn, build_conversation, load

LINES = list(SENTENCES[:6])  # a meeting's first lines, read by synthetic voices
REFERENCE_LINES = {
    "en-us+m3": "Please remember that the report is due on Friday, and bring the printed copies with you.",
    "en+f3": "I will book the large room for next week and send everyone the agenda this afternoon.",
}
# The conversation's turns: (voice, utterance); voice 0 and 1 are espeak-ng, 2 is the human reader.
ORDER = [(0, 0), (1, 0), (2, 0), (0, 1), (2, 1), (1, 1), (2, 2), (0, 2), (1, 2), (2, 3), (0, 3)]
NAMES = ("Marcus", "Fiona", "Dickens")


class Conversation(msgspec.Struct, frozen=True):
    path: Path  # 16 kHz mono WAV
    turns: list[Turn]  # speaker ids index NAMES
    references: dict[str, Path]  # name -> a WAV of that voice alone, other words than in the conversation


def speak(text: str, voice: str, folder: Path) -> npt.NDArray[np.float32]:
    out = folder / f"{voice.replace('+', '_')}-{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], check=True)
    return load(out)


def three_voices(folder: Path) -> Conversation:
    """Two espeak-ng voices and the two_cities reader in 11 irregular turns (~35 s), with references."""
    voices = list(REFERENCE_LINES)
    male = np.concatenate([speak(line, voices[0], folder) for line in LINES[::2]])
    female = np.concatenate([speak(line, voices[1], folder) for line in LINES[1::2]])
    human = load(AUDIO / "two_cities.wav")
    audio, turns = build_conversation([(male, 0), (female, 1), (human, 2)], ORDER)
    path = encode(folder / "conversation.wav", audio, codec="pcm_s16le", rate=16000)
    references: dict[str, Path] = {}
    for name, voice in zip(NAMES, voices, strict=False):
        sample = speak(REFERENCE_LINES[voice], voice, folder)
        references[name] = encode(folder / f"{name}.wav", sample, codec="pcm_s16le", rate=16000)
    # The human reader's reference: the recording's last 8 s (the conversation uses its first utterances only).
    tail = human[-8 * 16000 :]
    references[NAMES[2]] = encode(folder / f"{NAMES[2]}.mp3", tail, codec="mp3", rate=16000)
    return Conversation(path, turns, references)
