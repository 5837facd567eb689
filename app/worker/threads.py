"""Make every numeric library honour NUM_THREADS.

Call `configure_threads(n)` once at start-up, before models load. It sets the OpenMP/MKL/OpenBLAS environment
variables (read by libraries when they initialise their pools), caps torch if torch is already imported (we never
import it here: importing torch costs ~1 s and memory), and remembers `n` for `ort_session_options`.

Never `import silero_vad`: its import calls `torch.set_num_threads(1)`; our VAD loads Silero's ONNX file directly.
"""

from __future__ import annotations

import os
import sys

import onnxruntime as ort

_THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

_configured: int | None = None


def configure_threads(n: int) -> None:
    """Apply a thread budget of `n` (>= 1) to every library that has one."""
    if n < 1:
        raise ValueError(f"thread count must be at least 1, got {n}")
    global _configured
    _configured = n
    for name in _THREAD_ENV_VARS:
        os.environ[name] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


def ort_session_options(n: int | None = None) -> ort.SessionOptions:
    """onnxruntime session options using `n` intra-op threads (default: the configured budget, else 1).

    inter-op is 1 (our graphs are sequential); logging is quiet; the arena is kept (it saves allocations on
    repeated runs of same-shaped inputs).
    """
    threads = n if n is not None else (_configured or 1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return opts
