"""NVIDIA Parakeet TDT 0.6B v2 (English; Reflector's default model) on onnxruntime through onnx-asr."""

from __future__ import annotations

from pathlib import Path

from app.engines.onnx_asr import OnnxAsrEngine, load_onnx_asr
from app.engines.protocol import ModelInfo

PARAKEET_MODELS = ("nvidia/parakeet-tdt-0.6b-v2",)
DEFAULT_MODEL = "nvidia/parakeet-tdt-0.6b-v2"
FRAME_SECONDS = 0.08  # 10 ms feature hop x subsampling 8

ParakeetEngine = OnnxAsrEngine


def parakeet_info(name: str = DEFAULT_MODEL) -> ModelInfo:
    if name not in PARAKEET_MODELS:
        raise KeyError(name)
    return ModelInfo(name=name, family="parakeet", languages=frozenset({"en"}), can_translate=False, owned_by="nvidia")


def load_parakeet(
    name: str = DEFAULT_MODEL,
    *,
    models_dir: Path,
    quantization: str | None = None,
    num_threads: int = 2,
    device: str = "cpu",
    batch_size: int = 1,
) -> ParakeetEngine:
    """Load Parakeet (fetching its files on first use). Raises ModelUnavailable when it cannot."""
    return load_onnx_asr(
        name,
        parakeet_info(name),
        models_dir=models_dir,
        quantization=quantization,
        num_threads=num_threads,
        device=device,
        frame=FRAME_SECONDS,
        batch_size=batch_size,
    )
