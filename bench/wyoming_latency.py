"""Wyoming transcript latency (issue 21): `two_cities.wav` sent to the Wyoming server as Home Assistant sends audio
(16 kHz mono, 1024-sample chunks, at real time, through the `wyoming` library's AsyncTcpClient), and the time from
audio-stop to the transcript. Variants alternate over --rounds rounds (bench/ab.py), each in a fresh process with its
own server:

- `alone`: the recording plus 0.7 s of silence (Home Assistant's VAD ends a command after 0.7 s of silence);
- `with_file`: the same while a 10 min file transcribes over HTTP (posted 20 s into the stream, so that it is still
  running at audio-stop on machines of this kind; `file_running_at_stop` says whether it was);
- `no_silence`: audio-stop right after the last word (the last utterance is decoded only once audio-stop comes).

    uv run python -m bench.wyoming_latency [--rounds 5] [--model tiny.en] [--file-minutes 10]

The report goes to bench/out/wyoming.md and stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from tests import wyoming_client  # noqa: E402
from tests.audio_factory import pcm_s16le, tiled_wav  # noqa: E402
from tests.server import AUDIO, free_port, tiny_server  # noqa: E402
from tools.textmetrics import word_error_rate  # noqa: E402

RECORDING = AUDIO / "two_cities.wav"
OUT = ROOT / "bench" / "out"
VARIANTS = ("alone", "with_file", "no_silence")
FILE_AFTER_SECONDS = 20.0
HA_TRAILING_SILENCE = 0.7


def one(variant: str, model: str, file_minutes: float) -> dict[str, float]:
    port = free_port()
    env = {"MODEL": model, "ALLOWED_MODELS": model, "MAX_AUDIO_SECONDS": "0", "NUM_THREADS": "2"}
    with tempfile.TemporaryDirectory() as tmp, tiny_server(Path(tmp), WYOMING_PORT=str(port), **env) as server:
        audio = pcm_s16le(RECORDING, silence_after=0.0 if variant == "no_silence" else HA_TRAILING_SILENCE)
        file_done = [float("inf")]
        worker: threading.Thread | None = None
        if variant == "with_file":
            path = tiled_wav(RECORDING, Path(tmp) / "long.wav", file_minutes * 60)

            def transcribe_file() -> None:
                time.sleep(FILE_AFTER_SECONDS)
                with path.open("rb") as f:
                    httpx.post(
                        f"{server.url}/v1/audio/transcriptions", files={"file": ("long.wav", f)}, timeout=3600
                    ).raise_for_status()
                file_done[0] = time.monotonic()

            worker = threading.Thread(target=transcribe_file)
            worker.start()
        run = asyncio.run(wyoming_client.transcribe("127.0.0.1", port, audio, language="en"))
        answered = run.of("transcript")[0].at
        if worker is not None:
            worker.join()
    return {
        "latency_s": run.latency,
        "chunks_before_stop": float(len(run.chunks_before_stop)),
        "file_running_at_stop": float(file_done[0] > answered) if variant == "with_file" else -1.0,
        "wer": word_error_rate((AUDIO / "two_cities.txt").read_text(), run.transcript.text),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--file-minutes", type=float, default=10.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.model, args.file_minutes)))
        return
    base = [sys.executable, "-m", "bench.wyoming_latency", "--model", args.model]
    base += ["--file-minutes", str(args.file_minutes)]
    names = [name for name in args.variants.split(",") if name]
    variants = [ab.Variant(name, [*base, "--one", name]) for name in names]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    lines = ab.header(f"Wyoming: audio-stop -> transcript ({args.model}, two_cities.wav at real time)", results)
    lines += [
        "| variant | audio-stop -> transcript | transcript-chunks before audio-stop | file job running at the "
        "transcript | WER |",
        "|---|---|---|---|---|",
    ]
    for name in results.variants:
        overlap = results.values(name, "file_running_at_stop")
        cells = [
            ab.spread(results.values(name, "latency_s"), "{:.2f}") + " s",
            ab.spread(results.values(name, "chunks_before_stop"), "{:.0f}"),
            f"{sum(v > 0 for v in overlap)}/{len(overlap)} rounds" if name == "with_file" else "-",
            ab.spread(results.values(name, "wer")),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    report = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "wyoming.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
