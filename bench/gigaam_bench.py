"""GigaAM v3 speed and memory: torch vs our onnx-asr engine (fp32, int8), on full-size random-weight models.

    uv run python bench/gigaam_bench.py            # builds bench/out/models/v3_ctc once (~4 GB RAM), then measures
    uv run python bench/gigaam_bench.py --head rnnt --threads 4 --minutes 10

`--head ctc` (v3_ctc) or `rnnt` (v3_rnnt: the same encoder, gigaam's LSTM prediction and joint networks, decoded
greedily frame by frame). "published graph" variants load the graphs as exported (OPTIMIZE_GRAPHS=false); the
others go through the engine's CPU rewrite (app/engines/onnx_graph.py), built once before the rounds.

Each variant runs in its own subprocess (so peak RSS is its own) on the same 10 min of real speech (the files in
tests/data tiled) cut into fixed 20 s chunks, after one warm-up chunk. RTF = processing seconds / audio
seconds. Variants alternate over --rounds rounds (bench/ab.py): medians with min-max, ratios paired per round.
Writes bench/out/gigaam.md. Random weights: text is gibberish, compute is the real model's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import ab  # noqa: E402
from bench.server_bench import mb, proc_status_kb  # noqa: E402
from tests.server import AUDIO as TEST_AUDIO  # noqa: E402

OUT = ROOT / "bench" / "out"
MODELS = OUT / "models"
AUDIO = Path(os.environ["BENCH_AUDIO"]) if "BENCH_AUDIO" in os.environ else TEST_AUDIO
SR = 16_000
CHUNK_S = 20


def read_wav(path: Path) -> np.ndarray:
    from scipy.signal import resample_poly

    with wave.open(str(path)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    data = data.reshape(-1, channels).mean(axis=1)
    return resample_poly(data, SR, rate).astype(np.float32) if rate != SR else data


def speech_chunks(minutes: float) -> list[np.ndarray]:
    pieces = [read_wav(AUDIO / n) for n in ("two_cities.wav", "endgame_nagg_nell.wav", "beckett.wav")]
    one = np.concatenate(pieces)
    total = int(minutes * 60 * SR)
    audio = np.tile(one, total // one.size + 1)[:total]
    step = CHUNK_S * SR
    return [audio[i : i + step] for i in range(0, total, step)]


def run_torch(chunks: list[np.ndarray], threads: int, head: str) -> dict[str, float]:
    """gigaam's Conformer on torch (bench/torch_gigaam.py), one chunk at a time as gigaam does."""
    from bench.torch_gigaam import TorchGigaam

    started = time.perf_counter()
    model = TorchGigaam(f"v3_{head}", threads)  # same seed as the exported model: same weights
    load_s = time.perf_counter() - started
    model.transcribe(chunks[:1], language="ru")
    started = time.perf_counter()
    for chunk in chunks:
        model.transcribe([chunk], language="ru")
    return {"load_s": load_s, "seconds": time.perf_counter() - started}


def engine_settings(threads: int, quantization: str | None, optimize: bool) -> Any:
    from app.settings import EngineSettings

    return EngineSettings(
        models_dir=MODELS,
        quantization=quantization or "none",  # type: ignore[arg-type]
        num_threads=threads,
        device="cpu",
        optimize_graphs=optimize,
    )


def run_engine(chunks: list[np.ndarray], threads: int, variant: Variant, head: str) -> dict[str, float]:
    import msgspec

    from app.engines.protocol import Decoding
    from app.engines.registry import MODELS as REGISTRY
    from app.engines.registry import prepare_model

    started = time.perf_counter()
    engines = engine_settings(threads, variant.quantization, variant.optimize)
    batch = variant.batch
    entry = REGISTRY[f"v3_{head}"]
    engine = msgspec.structs.replace(entry.loader, batch_size=batch)(prepare_model(entry, engines), engines)
    load_s = time.perf_counter() - started
    engine.transcribe(chunks[:1], Decoding(language="ru"))
    started = time.perf_counter()
    engine.transcribe(chunks, Decoding(language="ru"))
    return {"load_s": load_s, "seconds": time.perf_counter() - started}


@dataclass(frozen=True)
class Variant:
    kind: str  # torch | engine
    quantization: str | None = None
    batch: int = 1
    optimize: bool = True  # the engine's CPU graph rewrite


TORCH = "torch fp32 (gigaam 0.1.0 Conformer, v3 shape)"
VARIANTS: dict[str, Variant] = {
    TORCH: Variant("torch"),
    "engine fp32": Variant("engine"),
    "engine fp32, batch 4 (bucketed)": Variant("engine", batch=4),
    "engine int8, published graph": Variant("engine", "int8", optimize=False),
    "engine int8": Variant("engine", "int8"),
}


def child(args: argparse.Namespace) -> None:
    chunks = speech_chunks(args.minutes)
    variant = VARIANTS[args.variant]
    if variant.kind == "torch":
        result = run_torch(chunks, args.threads, args.head)
    else:
        result = run_engine(chunks, args.threads, variant, args.head)
    audio_s = sum(c.size for c in chunks) / SR
    # VmHWM: ru_maxrss would carry the parent's peak across fork and exec
    peak = mb(proc_status_kb(os.getpid(), "VmHWM"))
    result |= {"rtf": result["seconds"] / audio_s, "peak_rss_mb": peak, "audio_s": audio_s}
    print(json.dumps(result))


def ensure_model(head: str, threads: int) -> None:
    """Build the full-size model once, then its CPU rewrite (so no round pays for building the cache)."""
    folder = MODELS / f"v3_{head}"
    if not (folder / "config.json").is_file():
        print(f"building the full-size random-weight v3 {head} model (a few minutes, ~4 GB RAM)...", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tools.gigaam_build",
                "--size",
                "full",
                "--head",
                head,
                "--int8",
                "--out",
                str(folder),
            ],
            check=True,
            cwd=ROOT,
        )
    # In a child: a parent that had loaded a model would pass its peak RSS on to every variant's process.
    warm = f"import bench.gigaam_bench as b; b.load_engine_for_cache({head!r}, {threads})"
    subprocess.run([sys.executable, "-c", warm], check=True, cwd=ROOT)


def load_engine_for_cache(head: str, threads: int) -> None:
    from app.engines.registry import load_engine

    load_engine(f"v3_{head}", engine_settings(threads, "int8", optimize=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (A B C, A B C, ...)")
    parser.add_argument("--head", choices=["ctc", "rnnt"], default="ctc")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="*", default=None, help="run only variants whose name contains this")
    args = parser.parse_args()
    if args.variant:
        child(args)
        return
    ensure_model(args.head, args.threads)
    names = [n for n in VARIANTS if not args.only or any(o in n for o in args.only)]
    common = ["--head", args.head, "--threads", str(args.threads), "--minutes", str(args.minutes)]
    variants = [
        ab.Variant(
            n,
            [sys.executable, __file__, "--variant", n, *common],
        )
        for n in names
    ]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    base = next((n for n in names if n.startswith("torch")), None)
    lines = ab.header(
        f"GigaAM v3 {args.head.upper()}, full size (random weights): {args.minutes:g} min of speech in "
        f"{CHUNK_S} s chunks, {args.threads} threads",
        results,
    )
    lines += [
        "| variant | RTF | speed vs torch (paired) | peak RSS (GB) | RSS vs torch (paired) | load (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        speed = ab.spread(results.paired_ratios(name, base, "rtf", invert=True), "{:.2f}x") if base else "-"
        mem = ab.spread(results.paired_ratios(name, base, "peak_rss_mb"), "{:.2f}") if base else "-"
        rss_gb = [v / 1024 for v in results.values(name, "peak_rss_mb")]
        lines.append(
            f"| {name} | {ab.spread(results.values(name, 'rtf'))} | {speed} | {ab.spread(rss_gb, '{:.2f}')} | {mem} "
            f"| {ab.spread(results.values(name, 'load_s'), '{:.1f}')} |"
        )
    (OUT / f"gigaam_{args.head}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
