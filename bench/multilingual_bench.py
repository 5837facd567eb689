"""GigaAM Multilingual speed and memory: the engine alone on `multilingual_ctc` (220M) and `multilingual_large_ctc`
(600M), fp32 and int8 (as published and rewritten for the CPU), against `v3_ctc` on the same machine.

    uv run python bench/multilingual_bench.py --minutes 1.5 --rounds 3     # builds the models once (see below)
    uv run python bench/multilingual_bench.py --only large                  # variants whose name contains "large"

Full-size random-weight models (tools/gigaam_build.py) in bench/out/models, built when missing: `v3_ctc` (~4 GB of
RAM, a few minutes), `multilingual_ctc` (the same), `multilingual_large_ctc` (~10 GB, about eight minutes; 2.3 GB of
fp32 weights in `.onnx.data`, as published). The CPU rewrites (app/engines/onnx_graph.py) are built before the
rounds. Each variant runs in its own process on the same speech (tests/data tiled) cut into fixed 20 s chunks,
after one warm-up chunk, through `Engine.transcribe` (no server, no VAD); variants alternate over the rounds
(bench/ab.py): medians with min-max, ratios paired per round against v3_ctc fp32. Writes
bench/out/multilingual.md. Random weights: gibberish text, the real models' compute.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import ab  # noqa: E402
from bench.gigaam_bench import CHUNK_S, MODELS, OUT, SR, engine_settings, speech_chunks  # noqa: E402
from bench.server_bench import mb, proc_status_kb  # noqa: E402


@dataclass(frozen=True)
class Variant:
    model: str
    quantization: str | None = None
    optimize: bool = True  # the engine's CPU graph rewrite (int8 only)


VARIANTS: dict[str, Variant] = {
    "v3_ctc fp32": Variant("v3_ctc"),
    "v3_ctc int8": Variant("v3_ctc", "int8"),
    "multilingual_ctc fp32": Variant("multilingual_ctc"),
    "multilingual_ctc int8, published graph": Variant("multilingual_ctc", "int8", optimize=False),
    "multilingual_ctc int8": Variant("multilingual_ctc", "int8"),
    "multilingual_large_ctc fp32": Variant("multilingual_large_ctc"),
    "multilingual_large_ctc int8, published graph": Variant("multilingual_large_ctc", "int8", optimize=False),
    "multilingual_large_ctc int8": Variant("multilingual_large_ctc", "int8"),
}
BASELINE = "v3_ctc fp32"
BUILD = {
    "v3_ctc": ["--version", "v3"],
    "multilingual_ctc": ["--version", "multilingual", "--revision", "ctc"],
    "multilingual_large_ctc": ["--version", "multilingual", "--revision", "large_ctc"],
}


def child(name: str, minutes: float, threads: int) -> None:
    from app.engines.protocol import Decoding
    from app.engines.registry import MODELS as REGISTRY
    from app.engines.registry import prepare_model

    variant = VARIANTS[name]
    chunks = speech_chunks(minutes)
    started = time.perf_counter()
    engines = engine_settings(threads, variant.quantization, variant.optimize)
    entry = REGISTRY[variant.model]
    engine = entry.loader(prepare_model(entry, engines), engines)
    load_s = time.perf_counter() - started
    language = "ru"
    engine.transcribe(chunks[:1], Decoding(language=language))
    started = time.perf_counter()
    engine.transcribe(chunks, Decoding(language=language))
    seconds = time.perf_counter() - started
    audio_s = sum(c.size for c in chunks) / SR
    peak = mb(proc_status_kb(os.getpid(), "VmHWM"))  # ru_maxrss would carry the parent's peak across exec
    print(json.dumps({"rtf": seconds / audio_s, "peak_rss_mb": peak, "load_s": load_s, "audio_s": audio_s}))


def ensure_models(names: list[str], threads: int) -> None:
    """Build the full-size models the chosen variants need, then their CPU rewrites (no round pays for them)."""
    for model in dict.fromkeys(VARIANTS[n].model for n in names):
        folder = MODELS / model
        if not (folder / "config.json").is_file():
            print(f"building the full-size random-weight {model} (minutes, several GB of RAM)...", flush=True)
            command = [sys.executable, "-m", "tools.gigaam_build", "--size", "full", "--int8", "--out", str(folder)]
            subprocess.run([*command, *BUILD[model]], check=True, cwd=ROOT)
        if any(VARIANTS[n].model == model and VARIANTS[n].quantization and VARIANTS[n].optimize for n in names):
            warm = f"import bench.multilingual_bench as b; b.load_for_cache({model!r}, {threads})"
            subprocess.run([sys.executable, "-c", warm], check=True, cwd=ROOT)  # in a child: its peak is its own


def load_for_cache(model: str, threads: int) -> None:
    from app.engines.registry import load_engine

    load_engine(model, engine_settings(threads, "int8", optimize=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (A B C, A B C, ...)")
    parser.add_argument("--only", nargs="*", default=None, help="run only variants whose name contains this")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args.variant, args.minutes, args.threads)
        return
    names = [n for n in VARIANTS if not args.only or n == BASELINE or any(o in n for o in args.only)]
    ensure_models(names, args.threads)
    common = ["--threads", str(args.threads), "--minutes", str(args.minutes)]
    variants = [ab.Variant(n, [sys.executable, __file__, "--variant", n, *common]) for n in names]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    lines = report(results, names, args.minutes, args.threads)
    (OUT / "multilingual.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def report(results: ab.Results, names: list[str], minutes: float, threads: int) -> list[str]:
    lines = ab.header(
        f"GigaAM Multilingual vs v3 CTC, full size (random weights), engine alone: {minutes:g} min of speech in "
        f"{CHUNK_S} s chunks, {threads} threads",
        results,
    )
    lines += [
        f"| variant | RTF | time vs {BASELINE} (paired) | peak RSS (GB) | RSS vs {BASELINE} (paired) | load (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        time_ratio = ab.spread(results.paired_ratios(name, BASELINE, "rtf"), "{:.2f}x")
        mem = ab.spread(results.paired_ratios(name, BASELINE, "peak_rss_mb"), "{:.2f}x")
        rss_gb = [v / 1024 for v in results.values(name, "peak_rss_mb")]
        lines.append(
            f"| {name} | {ab.spread(results.values(name, 'rtf'))} | {time_ratio} | {ab.spread(rss_gb, '{:.2f}')} "
            f"| {mem} | {ab.spread(results.values(name, 'load_s'), '{:.1f}')} |"
        )
    return lines


if __name__ == "__main__":
    main()
