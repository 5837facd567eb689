"""Resemblyzer's speaker encoder on onnxruntime: power mel frames -> 256-d unit speaker embeddings.

The network (a 3-layer LSTM over 40 mel bands, the last layer's hidden state at the last frame -> Linear -> ReLU ->
L2 normalisation) and its weights are Resemblyzer's (Apache-2.0, notice in
`app/diarization/data/SPEAKER_ENCODER_LICENSE`), converted once from its `pretrained.pt` by
`python -m tools.speaker_encoder_convert` into the bundled `app/diarization/data/speaker_encoder.onnx` (5.7 MB,
float32). No torch and no `resemblyzer` at run time;
`tests/unit/test_speaker_encoder.py` checks the file against the torch network on real speech.

Windows are run in batches of equal frame count: an LSTM's last hidden state depends on every frame it saw, so a
short window is never padded to the length of the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from app.errors import ModelUnavailable
from app.worker.threads import ort_session_options

FloatArray = npt.NDArray[np.float32]

BUNDLED_PATH = Path(__file__).resolve().parent / "data" / "speaker_encoder.onnx"
MEL_BANDS = 40
EMBEDDING_SIZE = 256
EMBED_BATCH = 32  # windows per run; 32, 64 and 200 windows of 160 frames ran equally fast on 2 threads


class SpeakerEncoder:
    """One onnxruntime session of the encoder; `embed` may be called from any thread."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self._session: ort.InferenceSession | None = session

    @classmethod
    def load(cls, num_threads: int, path: Path | None = None) -> SpeakerEncoder:
        """The encoder from `path` (default: the bundled file) with `num_threads` intra-op threads."""
        path = path or BUNDLED_PATH
        if not path.is_file():
            raise ModelUnavailable(f"Speaker encoder weights not found at {path}")
        session = ort.InferenceSession(
            str(path), sess_options=ort_session_options(num_threads), providers=["CPUExecutionProvider"]
        )
        return cls(session)

    def embed(self, mels: Sequence[FloatArray]) -> FloatArray:
        """(n, 256) float32 unit embeddings of n windows of (frames, 40) power mel frames; frame counts may differ."""
        if self._session is None:
            raise RuntimeError("the speaker encoder was closed")
        out = np.zeros((len(mels), EMBEDDING_SIZE), dtype=np.float32)
        by_length: dict[int, list[int]] = {}
        for i, mel in enumerate(mels):
            if mel.ndim != 2 or mel.shape[1] != MEL_BANDS or mel.shape[0] == 0:
                raise ValueError(f"a window must be (frames >= 1, {MEL_BANDS}) mel frames, got {mel.shape}")
            by_length.setdefault(mel.shape[0], []).append(i)
        for indices in by_length.values():
            for start in range(0, len(indices), EMBED_BATCH):
                batch = indices[start : start + EMBED_BATCH]
                stacked = np.stack([mels[i] for i in batch]).astype(np.float32, copy=False)
                (embeddings,) = self._session.run(["embeddings"], {"mels": stacked})
                out[batch] = embeddings
        return out

    def close(self) -> None:
        """Drop the session (its memory goes with the last reference)."""
        self._session = None


class SpeakerEmbedder(Protocol):
    """A loaded speaker encoder: log-mel windows in, one L2-normalised 256-d embedding per window out."""

    def embed(self, mels: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]: ...
