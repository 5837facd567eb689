"""Resolve DEVICE=auto|cpu|cuda to what this machine really has."""

from __future__ import annotations

import functools


@functools.cache
def cuda_available() -> bool:
    try:
        import ctranslate2

        if ctranslate2.get_cuda_device_count() > 0:
            return True
    except Exception:  # noqa: S110 - no CUDA runtime is the common case on a NAS
        pass
    try:
        import onnxruntime

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    except Exception:
        return False


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    return device
