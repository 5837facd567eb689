"""A file's last word is transcribed even when the recording stops in it (issue 22).

endgame_nagg_nell.wav ends 0.21 s into its last word, "No.", after a pause: Silero's regions shorter than
`min_speech` were dropped, and the zero padding of the last VAD window looked like a pause. The files here end the
same way: a few seconds of speech, a pause, then that "No." as it is cut in endgame (its last 0.28 s).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest

from app.audio.decode import decode_all
from app.engines.protocol import Decoding
from app.settings import AudioSettings
from app.transcription.pipeline import TranscriptionRun
from app.worker.cancel import CancelToken
from tests import gigaam_fixture
from tests.audio_factory import write_wav
from tests.audio_helpers import BECKETT, ENDGAME, load, tiny_en
from tests.server import ServerProcess

tiny_gigaam_models_dir = gigaam_fixture.tiny_gigaam_models_dir  # the fixture, for this module
SR = 16_000
PAUSES = (0.5, 1.0)  # shorter than the chunker's minimum chunk: the word joins the speech's chunk either way
LAST_WORD_SECONDS = 0.28  # endgame's tail: 0.06 s of quiet, then "No" until the file stops


def ending_in_a_cut_word(folder: Path, pause: float) -> tuple[Path, float]:
    """5 s of beckett, `pause` s of silence, endgame's last word; the file and the time that word starts."""
    speech = decode_all(BECKETT)[: 5 * SR]
    word = decode_all(ENDGAME)[-round(LAST_WORD_SECONDS * SR) :]
    audio = np.concatenate([speech, np.zeros(round(pause * SR), dtype=np.float32), word])
    path = write_wav(folder / f"cut_word_{pause}.wav", audio)
    return path, (speech.size + round(pause * SR)) / SR


def segments(path: Path, engine, language: str):
    run = TranscriptionRun(path, engine, Decoding(language=language), audio=AudioSettings(), cancel=CancelToken())
    return list(run.segments()), run.duration


@pytest.mark.parametrize("pause", PAUSES)
def test_whisper_hears_the_word_the_file_stops_in(tmp_path: Path, pause: float) -> None:
    path, word_start = ending_in_a_cut_word(tmp_path, pause)
    found, duration = segments(path, tiny_en(), "en")
    words = [w for s in found for w in s.words]
    assert re.sub(r"\W", "", words[-1].word).lower() == "no"
    assert word_start - 0.2 <= words[-1].start < words[-1].end <= duration


class Recording:
    """The real engine, keeping the chunks it was given."""

    def __init__(self, engine) -> None:  # type: ignore[no-untyped-def]
        self.engine = engine
        self.chunks: list[np.ndarray] = []

    @property
    def info(self):  # type: ignore[no-untyped-def]
        return self.engine.info

    def transcribe(self, chunks, decoding):  # type: ignore[no-untyped-def]
        self.chunks += list(chunks)
        return self.engine.transcribe(chunks, decoding)


def encoder_frames(engine, chunk: np.ndarray) -> int:  # type: ignore[no-untyped-def]
    """How many 40 ms encoder frames GigaAM's CTC head scores for `chunk`: one token (or blank) each."""
    asr = engine._model.asr  # onnx-asr's model behind our engine
    waveforms, lengths = chunk[None, :].astype(np.float32), np.array([chunk.size], dtype=np.int64)
    _, frames = asr._encode(*asr._preprocessor(waveforms, lengths))
    return int(frames[0])


@pytest.mark.parametrize("pause", PAUSES)
def test_gigaam_decodes_to_the_end_of_the_file(tmp_path: Path, tiny_gigaam_models_dir: Path, pause: float) -> None:
    """The random-weight GigaAM's text is noise (and sparse), so what is checked is what it decodes: the last chunk
    holds the word and ends with the file, and its encoder scores tokens to the chunk's end (within one frame and
    one feature window): neither the VAD, the chunker nor the engine's last frame loses the word."""
    path, word_start = ending_in_a_cut_word(tmp_path, pause)
    engine = Recording(load("v3_ctc", tiny_gigaam_models_dir, num_threads=2))
    found, duration = segments(path, engine, "ru")
    last, word = engine.chunks[-1], decode_all(path)[round(word_start * SR) :]
    assert last.size >= word.size  # the chunk starts before the word ...
    np.testing.assert_array_equal(last[-word.size :], word)  # ... and ends where the file does
    frame = engine.engine._frame
    assert encoder_frames(engine.engine, last) * frame >= last.size / SR - frame - 0.02
    assert all(w.end <= duration for s in found for w in s.words)


@pytest.mark.slow
def test_endgame_has_its_16_turns_the_last_one_no(whisper_server: ServerProcess) -> None:
    """tests/data/README.md lists 16 turns; each OpenAI shape of the answer ends with the 16th, "No."."""
    url = f"{whisper_server.url}/v1/audio/transcriptions"

    def answer(fmt: str) -> httpx.Response:
        with open(ENDGAME, "rb") as f:
            response = httpx.post(url, data={"response_format": fmt}, files={"file": f}, timeout=300)
        assert response.status_code == 200, response.text
        return response

    turns = answer("diarized_json").json()["segments"]
    assert len(turns) == 16 and turns[-1]["text"] == "No."
    assert turns[-1]["speaker"] != turns[-2]["speaker"] and turns[-1]["start"] > 27.8
    assert answer("verbose_json").json()["segments"][-1]["text"] == "No."
    assert answer("srt").text.rstrip().endswith("No.")
