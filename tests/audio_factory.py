"""Audio files made on the fly with PyAV for tests: silence, tiled speech, other containers."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """Write mono float samples in [-1, 1] as 16-bit PCM WAV."""
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    import wave

    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    return data, rate


def tiled(source: Path, seconds: float, path: Path) -> Path:
    """`source` repeated until `seconds` long (with a short pause between repeats)."""
    data, rate = read_wav(source)
    pause = np.zeros(int(0.7 * rate), dtype=np.float32)
    unit = np.concatenate([data, pause])
    reps = int(np.ceil(seconds * rate / len(unit)))
    return write_wav(path, np.tile(unit, reps)[: int(seconds * rate)], rate)


def silence(seconds: float, path: Path, rate: int = 16000) -> Path:
    rng = np.random.default_rng(0)
    return write_wav(path, rng.normal(0, 0.0005, int(seconds * rate)).astype(np.float32), rate)


def transcode(source: Path, path: Path, codec: str, *, channels: int = 1, rate: int | None = None) -> Path:
    """Re-encode a WAV into another container/codec (by `path`'s suffix) with PyAV."""
    data, src_rate = read_wav(source)
    rate = rate or src_rate
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        frame_size = 1024
        pcm = (np.clip(data, -1, 1) * 32767).astype(np.int16)
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=rate)
        for start in range(0, len(pcm), frame_size * 4):
            block = pcm[start : start + frame_size * 4]
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = src_rate
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    out.mux(packet)
        for converted in resampler.resample(None):
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def tiled_wav(source: Path, path: Path, seconds: float) -> Path:
    """`source` (a 16-bit mono WAV) repeated to `seconds`, at its own rate: long speech for load and latency runs."""
    import wave

    with wave.open(str(source)) as w:
        rate = w.getframerate()
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    repeated = np.tile(frames, int(np.ceil(seconds * rate / frames.size)))[: int(seconds * rate)]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(repeated.tobytes())
    return path


def pcm_s16le(path: Path, *, rate: int = 16000, channels: int = 1, silence_after: float = 0.0) -> bytes:
    """The recording as raw interleaved s16le (what `ffmpeg -f s16le` writes) at `rate` with `channels` (PyAV's
    resampler), plus `silence_after` seconds of silence."""
    layout = "mono" if channels == 1 else "stereo"
    resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
    parts: list[bytes] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts.extend(out.to_ndarray().tobytes() for out in resampler.resample(frame))
    parts.extend(out.to_ndarray().tobytes() for out in resampler.resample(None))
    return b"".join(parts) + bytes(2 * channels * round(silence_after * rate))
