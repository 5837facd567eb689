"""MODEL=auto: what detecting the language costs before a stream's first delta, on a 10 min file.

    uv run python -m bench.auto_route_bench [--rounds 5] [--minutes 10]

Variants (interleaved by bench/ab.py, each a fresh server process with NUM_THREADS=2):
- `fixed`: MODEL=tiny.en; the request names no model (what an OpenAI client does).
- `auto`: MODEL=auto, AUTO_ROUTES=en=tiny.en,*=base; no language, so Whisper `base` (the smallest allowed
  multilingual model) detects it on the first speech after VAD, then tiny.en transcribes.
- `auto+language`: the same server, the request says language=en: routed without detection (the control).

Each server first answers a short warm-up request, so every model the measured request needs is loaded (the
detector is loaded at start-up, tiny.en by the warm-up): the figures are the steady state, not a cold start. The
measured request uploads bench/out/inputs/speech_10m.wav (bench/server_bench.py's input) with stream=true; the
figure is the time from sending the request (the whole body is in memory; loopback) to the first
`transcript.text.delta`, and the server's own detection seconds (stt_language_detection_seconds_sum). Whisper
`base` is assembled from the dev-only packages (tests/whisper_base.py) into bench/out/models.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import ab
from bench.server_bench import build_input
from tests.server import AUDIO, ServerProcess
from tests.whisper_base import assemble_whisper_base

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MODELS = OUT / "models"
VARIANTS = ("fixed", "auto", "auto+language")


def server_env(variant: str, tmp: Path) -> dict[str, str]:
    env = {
        "ALLOWED_MODELS": "tiny.en,base",
        "MODELS_DIR": str(MODELS),
        "TMPDIR": str(tmp),
        "MAX_AUDIO_SECONDS": "0",
        "MAX_UPLOAD_MB": "8192",
        "NUM_THREADS": "2",
    }
    if variant == "fixed":
        return {**env, "MODEL": "tiny.en"}
    return {**env, "MODEL": "auto", "AUTO_ROUTES": "en=tiny.en,*=base"}


def detection_seconds(url: str) -> float:
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == "stt_language_detection_seconds_sum":
                return float(sample.value)
    return 0.0


def child(variant: str, minutes: int) -> None:
    path = build_input(minutes * 60, f"{minutes}m")
    body = path.read_bytes()
    form = {"stream": "true", **({"language": "en"} if variant == "auto+language" else {})}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(server_env(variant, Path(tmp)), log_path=Path(tmp) / "server.log")
        try:
            warm = {"file": ("beckett.wav", (AUDIO / "beckett.wav").read_bytes(), "audio/wav")}
            httpx.post(f"{server.url}/v1/audio/transcriptions", files=warm, timeout=600).raise_for_status()
            detected_before = detection_seconds(server.url)
            files = {"file": (path.name, body, "audio/wav")}
            started = time.monotonic()
            first_delta = None
            with httpx.stream(
                "POST", f"{server.url}/v1/audio/transcriptions", files=files, data=form, timeout=3600
            ) as response:
                response.raise_for_status()
                model = response.headers["x-model"]
                for line in response.iter_lines():
                    if first_delta is None and line.startswith("data: ") and "transcript.text.delta" in line:
                        first_delta = time.monotonic() - started
                        break  # hang up: the rest of the file is not what is measured
            if first_delta is None:
                raise RuntimeError("no delta")
            server.wait_until_idle()
            detection = detection_seconds(server.url) - detected_before
        finally:
            server.stop()
    print(json.dumps({"first_delta_s": first_delta, "detection_s": detection, "model_is_tiny_en": model == "tiny.en"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--child", choices=VARIANTS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.minutes)
        return
    if not (MODELS / "base" / "model.bin").is_file():
        assemble_whisper_base(MODELS)
    build_input(args.minutes * 60, f"{args.minutes}m")
    variants = [
        ab.Variant(
            name, [sys.executable, "-m", "bench.auto_route_bench", "--child", name, "--minutes", str(args.minutes)]
        )
        for name in VARIANTS
    ]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    lines = ab.header(
        f"MODEL=auto: time to the first delta on {args.minutes} min of English speech (tiny.en transcribes; "
        "`base` detects), stream=true, NUM_THREADS=2, models warm",
        results,
    )
    lines += [
        "| variant | first delta (s) | added vs fixed (s, paired) | detection (s, server) |",
        "|---|---|---|---|",
    ]
    for name in VARIANTS:
        added = [
            r[name]["first_delta_s"] - r["fixed"]["first_delta_s"] for r in results.rounds if name in r and "fixed" in r
        ]
        lines.append(
            f"| {name} | {ab.spread(results.values(name, 'first_delta_s'), '{:.2f}')} "
            f"| {ab.spread(added, '{:+.2f}')} | {ab.spread(results.values(name, 'detection_s'), '{:.2f}')} |"
        )
    (OUT / "auto_route.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
