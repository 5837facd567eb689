"""Start-up: from `python -m app` to `/health` with the model loaded, then the first transcription of a 10 s file.

    uv run python -m bench.startup_bench                       # v3_ctc int8 and fp32 from bench/out/models
    uv run python -m bench.startup_bench --model v3_ctc --quantization int8 --rounds 5

Variants, alternated each round (bench/ab.py), each a fresh server process:
- "first start": the CPU graph cache (`MODELS_DIR/.optimized/<model>.<quantization>`) removed before, so this start
  rewrites the graphs (app/engines/onnx_graph.py);
- "second start": the cache left by the first start;
- "OPTIMIZE_GRAPHS=false": the published graphs, as before the rewrite existed.
Figures: ready_s (process start -> /health says loaded), first_s (POST of a 10 s WAV -> the json answer), and the
server's peak RSS. Writes bench/out/startup.md. The full-size random-weight models come from bench/gigaam_bench.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from app.engines.onnx_graph import CACHE_DIR  # noqa: E402
from bench import ab  # noqa: E402
from bench.server_bench import mb, proc_status_kb  # noqa: E402
from tests.server import AUDIO, free_port  # noqa: E402

OUT = ROOT / "bench" / "out"
MODELS = OUT / "models"
VARIANTS = ("first start", "second start", "OPTIMIZE_GRAPHS=false")


def ten_seconds_wav() -> Path:
    """The first 10 s of two_cities.wav as a 16 kHz WAV (cached in bench/out)."""
    import wave

    import numpy as np

    from app.audio.decode import decode_all

    path = OUT / "speech_10s.wav"
    if not path.is_file():
        audio = decode_all(AUDIO / "two_cities.wav")[: 10 * 16000]
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def child(variant: str, model: str, quantization: str, models_dir: Path) -> None:
    """One start: prints {"ready_s", "first_s", "peak_rss_mb"} as JSON."""
    if variant == "first start":
        shutil.rmtree(models_dir / CACHE_DIR / f"{model}.{quantization}", ignore_errors=True)
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MODEL": model,
        "ALLOWED_MODELS": model,
        "MODELS_DIR": str(models_dir),
        "QUANTIZATION": quantization,
        "NUM_THREADS": "2",
        "LOAD_MODEL_ON_STARTUP": "true",
        "OPTIMIZE_GRAPHS": "false" if variant == "OPTIMIZE_GRAPHS=false" else "true",
        "LOG_LEVEL": "WARNING",
    }
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=1).json().get("loaded"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        ready = time.monotonic() - started
        wav = ten_seconds_wav()
        posted = time.monotonic()
        with wav.open("rb") as f:
            answer = httpx.post(
                f"{url}/v1/audio/transcriptions",
                files={"file": (wav.name, f, "audio/wav")},
                data={"model": model},
                timeout=120,
            )
        answer.raise_for_status()
        first = time.monotonic() - posted
        print(json.dumps({"ready_s": ready, "first_s": first, "peak_rss_mb": mb(proc_status_kb(proc.pid, "VmHWM"))}))
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="v3_ctc")
    parser.add_argument("--quantization", choices=["none", "int8"], default="int8")
    parser.add_argument("--models-dir", type=Path, default=MODELS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args.variant, args.model, args.quantization, args.models_dir)
        return
    ten_seconds_wav()
    common = ["--model", args.model, "--quantization", args.quantization, "--models-dir", str(args.models_dir)]
    variants = [ab.Variant(v, [sys.executable, "-m", "bench.startup_bench", "--variant", v, *common]) for v in VARIANTS]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    lines = ab.header(
        f"Start-up of `python -m app` with MODEL={args.model}, QUANTIZATION={args.quantization}, NUM_THREADS=2",
        results,
    )
    lines += [
        "| variant | ready: start -> /health loaded (s) | vs no rewrite (paired) | first 10 s file (s) | "
        "peak RSS (MB) |",
        "|---|---|---|---|---|",
    ]
    base = VARIANTS[-1]
    for name in VARIANTS:
        lines.append(
            f"| {name} | {ab.spread(results.values(name, 'ready_s'), '{:.2f}')} | "
            f"{ab.spread(results.paired_ratios(name, base, 'ready_s'), '{:.2f}x')} | "
            f"{ab.spread(results.values(name, 'first_s'), '{:.2f}')} | "
            f"{ab.spread(results.values(name, 'peak_rss_mb'), '{:.0f}')} |"
        )
    out = OUT / f"startup_{args.model}_{args.quantization}.md"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
