"""The torch implementation of GigaAM v3 (PyPI `gigaam` 0.1.0's Conformer in the v3 shape, the seeds' design) behind
our Engine protocol, so a benchmark can run the server's very pipeline (decoding, VAD, chunking, batching) with it.

Dev-only (torch): used by bench/server_bench.py's `torch pipeline` variant. Same random weights as the exported
full-size models (tools/gigaam_build.py, same seed); greedy CTC, or gigaam's own greedy RNN-T decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from app.audio.types import SAMPLE_RATE, Audio
from app.engines.protocol import ChunkResult, ModelInfo
from app.engines.registry import MODELS
from app.transcript import Segment, Task
from tools.gigaam_build import BLANK, VOCAB, build_model, build_rnnt, feature_extractor


class TorchGigaam:
    """A full-size random-weight GigaAM v3 (`v3_ctc` or `v3_rnnt`) on torch; one chunk at a time, like gigaam."""

    def __init__(self, name: str, threads: int) -> None:
        torch.set_num_threads(threads)
        self._info = MODELS[name].info
        self._features = feature_extractor("v3").eval()
        self._ctc: Any = None
        self._rnnt: Any = None
        if name == "v3_ctc":
            self._ctc = build_model("v3", "full")
        else:
            self._rnnt = build_rnnt("v3", "full")
            from gigaam.decoding import RNNTGreedyDecoding

            self._decoding = RNNTGreedyDecoding(list(VOCAB))

    @property
    def info(self) -> ModelInfo:
        return self._info

    def _text(self, chunk: Audio) -> str:
        with torch.inference_mode():
            feats = self._features(torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))[None])
            lengths = torch.tensor([feats.shape[-1]])
            if self._ctc is not None:
                labels = self._ctc(feats, lengths).argmax(-1)[0].tolist()
                kept = [t for i, t in enumerate(labels) if t != BLANK and (i == 0 or labels[i - 1] != t)]
                return "".join(VOCAB[t] for t in kept).replace("▁", " ").strip()
            encoded, encoded_lengths = self._rnnt.encoder(feats, lengths)
            return str(self._decoding.decode(self._rnnt.head, encoded, encoded_lengths)[0]).strip()

    def transcribe(
        self,
        chunks: Sequence[Audio],
        *,
        language: str | None,
        task: Task = "transcribe",
        prompt: str | None = None,
        words: bool = True,
        keywords: Sequence[str] = (),
    ) -> list[ChunkResult]:
        results = []
        for chunk in chunks:
            text = self._text(chunk)
            duration = len(chunk) / SAMPLE_RATE
            segments = (Segment(start=0.0, end=duration, text=text),) if text else ()
            results.append(ChunkResult(segments, "ru"))
        return results
