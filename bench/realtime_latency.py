"""Live dictation latency (issue 11): `two_cities.wav` streamed over /v1/realtime at real time, alone and while a
10 min file transcription runs on the same server. Variants alternate over --rounds rounds (bench/ab.py), each in a
fresh process with its own server.

    uv run python -m bench.realtime_latency [--rounds 3] [--model tiny.en] [--file-minutes 10]

Figures per round: speech_stopped -> completed (median and worst over the recording's utterances) and
speech_started -> first partial text (median). With a file job, only utterances completed while the file job was
still running count (`under_load` says how many of them); the report goes to bench/out/realtime.md and stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402, F401  (privacy settings before onnxruntime)
from bench import ab  # noqa: E402
from tests.audio_factory import tiled_wav  # noqa: E402
from tests.realtime_client import Figures, pcm24k, stream, ws_url  # noqa: E402
from tests.server import AUDIO, tiny_server  # noqa: E402
from tools.textmetrics import word_error_rate  # noqa: E402

RECORDING = AUDIO / "two_cities.wav"
OUT = ROOT / "bench" / "out"


def one(variant: str, model: str, file_minutes: float) -> dict[str, float]:
    env = {"MODEL": model, "ALLOWED_MODELS": model, "MAX_AUDIO_SECONDS": "0", "NUM_THREADS": "2"}
    with tempfile.TemporaryDirectory() as tmp, tiny_server(Path(tmp), **env) as server:
        file_done = [float("inf")]
        worker: threading.Thread | None = None
        if variant == "with_file":
            path = tiled_wav(RECORDING, Path(tmp) / "long.wav", file_minutes * 60)

            def transcribe() -> None:
                with path.open("rb") as f:
                    httpx.post(
                        f"{server.url}/v1/audio/transcriptions", files={"file": ("long.wav", f)}, timeout=3600
                    ).raise_for_status()
                file_done[0] = time.monotonic()

            worker = threading.Thread(target=transcribe)
            worker.start()
            while httpx.get(f"{server.url}/health").json()["queue"]["running"] == 0:
                time.sleep(0.05)
        events = asyncio.run(stream(ws_url(server.url), pcm24k(RECORDING, silence_after=1.0)))
        if worker is not None:
            worker.join()
    completed_at = {
        e.event["item_id"]: e.at for e in events if e.type == "conversation.item.input_audio_transcription.completed"
    }
    loaded = {item for item, at in completed_at.items() if at < file_done[0]}
    kept = [e for e in events if "item_id" not in e.event or e.event["item_id"] in loaded]
    figures = Figures(kept)
    whole = Figures(events)
    return {
        "latency_median_s": statistics.median(figures.latencies),
        "latency_worst_s": max(figures.latencies),
        "first_partial_median_s": statistics.median(figures.first_partials) if figures.first_partials else -1.0,
        "first_partial_worst_s": max(figures.first_partials) if figures.first_partials else -1.0,
        "utterances": float(len(figures.latencies)),
        "wer": word_error_rate((AUDIO / "two_cities.txt").read_text(), whole.text),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--file-minutes", type=float, default=10.0)
    parser.add_argument("--one", choices=["alone", "with_file"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.model, args.file_minutes)))
        return
    base = [
        sys.executable,
        "-m",
        "bench.realtime_latency",
        "--model",
        args.model,
        "--file-minutes",
        str(args.file_minutes),
    ]
    variants = [ab.Variant(name, [*base, "--one", name]) for name in ("alone", "with_file")]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    lines = ab.header(f"Live dictation latency ({args.model}, two_cities.wav at real time)", results)
    lines += [
        "| variant | stopped -> completed, median | worst | speech start -> first partial, median | worst "
        "| utterances counted | WER |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in results.variants:
        cells = [
            ab.spread(results.values(name, figure), "{:.2f}") + " s"
            for figure in ("latency_median_s", "latency_worst_s", "first_partial_median_s", "first_partial_worst_s")
        ]
        cells += [ab.spread(results.values(name, "utterances"), "{:.0f}"), ab.spread(results.values(name, "wer"))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    report = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "realtime.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
