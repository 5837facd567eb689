"""GigaAM (Salute's Russian Conformer models) on onnxruntime through onnx-asr.

Weights live in `MODELS_DIR/<name>/` in the layout onnx-asr loads (see `app.weights.store.MODEL_SPECS`); missing files
are fetched from the hub on first use, or `ModelUnavailable` says how to provide them.
"""

from __future__ import annotations

from pathlib import Path

from app.engines.onnx_asr import OnnxAsrEngine, load_onnx_asr
from app.engines.protocol import ModelInfo

GIGAAM_MODELS = ("v3_ctc", "v3_e2e_ctc", "v3_rnnt", "v3_e2e_rnnt", "v2_ctc", "v2_rnnt")
DEFAULT_MODEL = "v3_ctc"
FRAME_SECONDS = 0.04  # 10 ms feature hop x subsampling 4

GigaAMEngine = OnnxAsrEngine


def gigaam_info(name: str) -> ModelInfo:
    if name not in GIGAAM_MODELS:
        raise KeyError(name)
    return ModelInfo(
        name=name, family="gigaam", languages=frozenset({"ru"}), can_translate=False, owned_by="salute-developers"
    )


def load_gigaam(
    name: str = DEFAULT_MODEL,
    *,
    models_dir: Path,
    quantization: str | None = None,
    num_threads: int = 2,
    device: str = "cpu",
    batch_size: int = 1,
) -> GigaAMEngine:
    """Load a GigaAM model (fetching its files on first use). Raises ModelUnavailable when it cannot."""
    return load_onnx_asr(
        name,
        gigaam_info(name),
        models_dir=models_dir,
        quantization=quantization,
        num_threads=num_threads,
        device=device,
        frame=FRAME_SECONDS,
        batch_size=batch_size,
    )
