"""The one device resolver: DEVICE=auto|cpu|cuda to what every engine here really runs on.

`auto` means CUDA only when both engine libraries can use it (CTranslate2 sees a GPU and this onnxruntime build has
the CUDA provider), so /health, Whisper and the ONNX engines always agree on the device.
"""

from __future__ import annotations

import functools
from typing import Literal

from app.errors import ModelUnavailable

Device = Literal["cpu", "cuda"]


@functools.cache
def _ctranslate2_cuda() -> bool:
    try:
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count()) > 0
    except Exception:  # no CUDA runtime is the common case on a NAS
        return False


@functools.cache
def _onnxruntime_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def resolve_device(setting: str) -> Device:
    if setting == "cuda":
        return "cuda"
    if setting == "auto" and _ctranslate2_cuda() and _onnxruntime_cuda():
        return "cuda"
    return "cpu"


def onnx_providers(device: Device) -> list[str]:
    """onnxruntime execution providers for a resolved device (CUDA asked for but not in this build: an error)."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if not _onnxruntime_cuda():
        raise ModelUnavailable("DEVICE=cuda but this onnxruntime build has no CUDA support: set DEVICE=cpu or auto")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]
