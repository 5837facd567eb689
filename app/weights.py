"""Model weights on disk: which files each model needs, and fetching them from the Hugging Face hub on first use.

Each model lives in `MODELS_DIR/<name>/` in the layout onnx-asr loads. `ensure_model_files` returns that folder,
downloading missing files from the hub repo onnx-asr uses (honouring `HF_ENDPOINT` and `HF_HUB_OFFLINE`) into a
temporary folder next to it, then moving them into place, so the server never sees a half-written model. When the
hub cannot be reached it raises `ModelUnavailable` with one line saying what to do. `python -m app download NAME`
is meant to call the same function.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import msgspec

from app.errors import ModelUnavailable

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Where a model comes from and which files onnx-asr needs. `{q}` in a file name is "" or ".int8"."""

    repo: str
    onnx_asr_name: str
    files: tuple[str, ...]
    fp32_only: tuple[str, ...] = ()  # e.g. external weight data of a >2 GB fp32 graph

    def files_for(self, quantization: str | None) -> tuple[str, ...]:
        suffix = f".{quantization}" if quantization else ""
        names = tuple(f.format(q=suffix) for f in self.files)
        return names if quantization else names + self.fp32_only


def _gigaam(version: str, kind: str, vocab: str) -> ModelSpec:
    graphs = [f"{version}_{kind}{{q}}.onnx"] if kind.endswith("ctc") else []
    if kind.endswith("rnnt"):
        graphs = [f"{version}_{kind}_{part}{{q}}.onnx" for part in ("encoder", "decoder", "joint")]
    return ModelSpec(
        repo=f"istupakov/gigaam-{version}-onnx",
        onnx_asr_name=f"gigaam-{version}-{kind.replace('_', '-')}",
        files=(*graphs, vocab, "config.json"),
    )


MODEL_SPECS: dict[str, ModelSpec] = {
    "v3_ctc": _gigaam("v3", "ctc", "v3_vocab.txt"),
    "v3_rnnt": _gigaam("v3", "rnnt", "v3_vocab.txt"),
    "v3_e2e_ctc": _gigaam("v3", "e2e_ctc", "v3_e2e_ctc_vocab.txt"),
    "v3_e2e_rnnt": _gigaam("v3", "e2e_rnnt", "v3_e2e_rnnt_vocab.txt"),
    "v2_ctc": _gigaam("v2", "ctc", "v2_vocab.txt"),
    "v2_rnnt": _gigaam("v2", "rnnt", "v2_vocab.txt"),
    "nvidia/parakeet-tdt-0.6b-v2": ModelSpec(
        repo="istupakov/parakeet-tdt-0.6b-v2-onnx",
        onnx_asr_name="nemo-parakeet-tdt-0.6b-v2",
        files=("encoder-model{q}.onnx", "decoder_joint-model{q}.onnx", "vocab.txt", "config.json"),
        fp32_only=("encoder-model.onnx.data",),
    ),
}


def model_dir(name: str, models_dir: Path) -> Path:
    return models_dir / name


def missing_files(name: str, models_dir: Path, quantization: str | None = None) -> list[str]:
    """The files of `name` (for that quantization) not yet in its folder."""
    folder = model_dir(name, models_dir)
    return [f for f in MODEL_SPECS[name].files_for(quantization) if not (folder / f).is_file()]


def ensure_model_files(
    name: str, models_dir: Path, *, quantization: str | None = None, endpoint: str | None = None
) -> Path:
    """Return `models_dir/name`, first fetching any missing file from the model's hub repo.

    Raises KeyError for a model not in MODEL_SPECS and ModelUnavailable (one-line message) when files are missing
    and cannot be fetched. Safe against crashes: files land in a temporary sibling folder and are moved in at the end.
    """
    spec = MODEL_SPECS[name]
    target = model_dir(name, models_dir)
    missing = missing_files(name, models_dir, quantization)
    if not missing:
        return target
    endpoint = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    advice = f"run `python -m app download {name}` on a machine with network, or copy {', '.join(missing)} there"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    except OSError as exc:
        raise ModelUnavailable(
            f"Model {name!r} is not in {target} and {target.parent} is not writable: {advice}"
        ) from exc
    try:
        log.info("fetching model files", extra={"model": name, "repo": spec.repo, "files": missing})
        _download(spec.repo, missing, tmp, endpoint)
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's download metadata
        _move_into_place(tmp, target, missing)
    except ModelUnavailable:
        raise
    except Exception as exc:
        raise ModelUnavailable(
            f"Model {name!r} is not in {target} and could not be fetched from {endpoint}/{spec.repo} "
            f"({type(exc).__name__}): {advice}"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _download(repo: str, files: list[str], dest: Path, endpoint: str) -> None:
    import httpx
    from huggingface_hub import hf_hub_download

    # huggingface_hub retries a refused connection with back-off for ~25 s; one quick probe fails fast instead.
    httpx.head(f"{endpoint.rstrip('/')}/{repo}/resolve/main/{files[0]}", timeout=10.0)
    for filename in files:
        hf_hub_download(repo, filename, local_dir=dest, endpoint=endpoint, etag_timeout=10)


def _move_into_place(tmp: Path, target: Path, files: list[str]) -> None:
    if not target.exists():
        tmp.chmod(0o755)  # mkdtemp makes it private
        try:
            tmp.rename(target)  # atomic: the whole folder appears at once
            return
        except OSError:
            if not target.is_dir():  # lost a race with another process: fall through to per-file moves
                raise
    for filename in files:
        os.replace(tmp / filename, target / filename)
