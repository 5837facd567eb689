"""What a model's weights are: the hub repository and the exact files (names or glob patterns) it needs."""

from __future__ import annotations

import msgspec

from app.settings import Quantization


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Where a model comes from and which files it needs. `{q}` in a file name is "" (fp32) or ".int8".

    `files` are names or glob patterns that must be there; `optional` ones are fetched when the repository has them;
    `fp32_only` files are needed without quantization only (e.g. external weight data of a >2 GB fp32 graph).
    """

    repo: str
    files: tuple[str, ...]
    optional: tuple[str, ...] = ()
    fp32_only: tuple[str, ...] = ()
    bundled: bool = False  # shipped in a Python package (`tiny.en`): nothing to download

    def files_for(self, quantization: Quantization) -> tuple[str, ...]:
        suffix = f".{quantization}" if quantization else ""
        names = tuple(f.format(q=suffix) for f in self.files)
        return names if quantization else names + self.fp32_only
