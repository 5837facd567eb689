"""Compare faster-whisper sequential vs batched decoding (and beam sizes) on the same VAD chunks.

    uv run python -m bench.whisper_batching [--threads 2] [--repeat 3]

Prints wall and CPU seconds per configuration (best of --repeat, modes interleaved to share noise) and the WER
against two_cities.txt. Uses the shipped tiny.en; no network.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from app.audio.chunking import chunk_regions
from app.audio.decode import decode_all
from app.audio.vad import load_vad, speech_regions
from app.engines.whisper import load_whisper
from app.textmetrics import word_error_rate
from app.threads import configure_threads
from tests.server import AUDIO as TEST_AUDIO

AUDIO = TEST_AUDIO / "two_cities.wav"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tiles", type=int, default=2)
    args = parser.parse_args()
    configure_threads(args.threads)
    audio = np.tile(decode_all(AUDIO), args.tiles)
    reference = " ".join([Path(AUDIO.with_suffix(".txt")).read_text()] * args.tiles)
    regions = speech_regions(load_vad().probabilities(audio), audio.size, max_speech_seconds=29.6)
    chunks = [audio[c.start : c.end] for c in chunk_regions(regions, audio.size)]
    print(f"{audio.size / 16000:.1f} s of audio, {len(chunks)} chunks: {[round(c.size / 16000, 1) for c in chunks]}")
    configs = {
        "sequential beam1": {"beam_size": 1, "batched": False},
        "sequential beam5": {"beam_size": 5, "batched": False},
        "batched beam1": {"beam_size": 1, "batched": True},
        "batched beam5": {"beam_size": 5, "batched": True},
    }
    engines = {
        name: load_whisper("tiny.en", device="cpu", num_threads=args.threads, **opts)  # type: ignore[arg-type]
        for name, opts in configs.items()
    }
    best: dict[str, tuple[float, float]] = {}
    wer: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, engine in engines.items():
            wall, cpu = time.perf_counter(), time.process_time()
            results = engine.transcribe(chunks, language="en")
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            text = " ".join(s.text for r in results for s in r.segments)
            wer[name] = word_error_rate(reference, text)
            old = best.get(name, (1e9, 1e9))
            best[name] = (min(old[0], wall), min(old[1], cpu))
    duration = audio.size / 16000
    for name, (wall, cpu) in best.items():
        print(f"{name:18s} wall {wall:6.2f} s (RTF {wall / duration:.3f})  cpu {cpu:6.2f} s  WER {wer[name]:.3f}")


if __name__ == "__main__":
    main()
