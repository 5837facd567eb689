"""Resemblyzer's speaker encoder on torch (its shipped `pretrained.pt`): the resident model of diarization.

`load_speaker_encoder(num_threads)` is the one loader; the result has the shape diarization uses
(`embed(mels) -> (n, 256)` L2-normalised), so an onnxruntime encoder with the same shape can replace it by changing
that one call. torch is imported only here, only when the encoder loads.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.audio.types import Audio as FloatArray
from app.errors import ModelUnavailable

WINDOW_FRAMES = 160  # 1.6 s of 10 ms mel frames: the encoder's native partial utterance
BATCH = 32
EMBEDDING_SIZE = 256


def _weights_path() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("Diarization needs the `resemblyzer` package (its speaker encoder weights)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise ModelUnavailable(f"Speaker encoder weights not found at {path}")
    return path


class TorchSpeakerEncoder:
    """Resemblyzer's VoiceEncoder network (3-layer LSTM over 40-band mel frames) with its shipped weights."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def embed(self, mels: Sequence[FloatArray]) -> FloatArray:
        """One embedding per mel window; full 1.6 s windows go in batches, shorter ones one by one."""
        import torch

        result: dict[int, FloatArray] = {}
        with torch.inference_mode():
            full = [i for i, m in enumerate(mels) if m.shape[0] == WINDOW_FRAMES]
            for start in range(0, len(full), BATCH):
                idx = full[start : start + BATCH]
                batch = torch.from_numpy(np.stack([mels[i] for i in idx]))
                for i, emb in zip(idx, self._model(batch).numpy(), strict=True):
                    result[i] = emb
            for i, m in enumerate(mels):
                if m.shape[0] != WINDOW_FRAMES:
                    result[i] = self._model(torch.from_numpy(m[None]))[0].numpy()
        if not result:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        return np.stack([result[i] for i in range(len(mels))]).astype(np.float32)


def load_speaker_encoder(num_threads: int) -> TorchSpeakerEncoder:
    import torch
    from torch import nn

    torch.set_num_threads(num_threads)

    class VoiceEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(40, 256, 3, batch_first=True)
            self.linear = nn.Linear(256, 256)
            self.relu = nn.ReLU()

        def forward(self, mels: torch.Tensor) -> torch.Tensor:
            _, (hidden, _) = self.lstm(mels)
            raw = self.relu(self.linear(hidden[-1]))
            normed: torch.Tensor = raw / torch.norm(raw, dim=1, keepdim=True).clamp_min(1e-9)
            return normed

    checkpoint = torch.load(_weights_path(), map_location="cpu", weights_only=True)
    state = {k: v for k, v in checkpoint["model_state"].items() if not k.startswith("similarity_")}
    model = VoiceEncoder()
    model.load_state_dict(state, strict=True)
    model.eval()
    return TorchSpeakerEncoder(model)
