"""PROVISIONAL (replaced by branch `audio`): make libraries honour NUM_THREADS."""

from __future__ import annotations

import os


def configure_threads(n: int) -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
