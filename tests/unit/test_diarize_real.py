"""Diarization of real voices (issue 27): a real telephone call of two women, and which audio is telephone-band.

The call is pyannote-audio's sample (tests/data/voices, MIT) with its reference turns. Before the telephone-band
calibration (ADR 67) the two women were one speaker (DER 0.46); measured after: 2 speakers, DER 0.03.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.diarization.diarize import audio_blocks, diarize
from app.diarization.features import is_narrow_band, mel_frames
from app.diarization.speaker_encoder import SpeakerEncoder
from tests.server import AUDIO
from tools.diar_eval import Turn, diarization_error_rate, rttm_turns, telephone

CALL = AUDIO / "voices" / "call_diane_sheila.flac"


def _decoded(path: Path, seconds: float = 10.0) -> np.ndarray:
    return np.concatenate(list(audio_blocks(path)))[: round(seconds * 16_000)]


def _narrow(audio: np.ndarray) -> bool:
    return is_narrow_band(mel_frames(audio).sum(axis=0, dtype=np.float64))


def test_the_call_of_two_women_finds_both() -> None:
    segs = diarize(CALL, SpeakerEncoder.load(num_threads=2))
    assert len({s.speaker for s in segs}) == 2
    reference = rttm_turns(CALL.with_suffix(".rttm"))
    result = diarization_error_rate(reference, [Turn(s.start, s.end, s.speaker) for s in segs])
    assert result.der <= 0.10, result


@pytest.mark.parametrize("recording", ["two_cities.wav", "voices/austen.flac", "voices/alsa_channels.flac"])
def test_wide_band_speech_and_its_telephone_copy(recording: str) -> None:
    audio = _decoded(AUDIO / recording)
    assert not _narrow(audio)
    assert _narrow(telephone(audio))


@pytest.mark.parametrize("recording", ["voices/allison.flac", "voices/call_diane_sheila.flac"])
def test_recordings_made_for_the_telephone_are_narrow_band(recording: str) -> None:
    assert _narrow(_decoded(AUDIO / recording))
