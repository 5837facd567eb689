"""What BATCH_SIZE buys: the onnx-asr engine at batch 1, 2, 4, 8, fp32 and int8, on the full-size v3 CTC.

    uv run python bench/batch_bench.py                       # engine alone, 3 min of speech, 3 rounds
    uv run python bench/batch_bench.py --batches 1 4 --quantization int8 --minutes 5 --rounds 5
    uv run python bench/batch_bench.py --quantization int8 --batches 1 4 --masked-single --fixed   # what costs what

Chunks are real speech (tests/data tiled) cut at lengths drawn uniformly from 15-22 s (seeded), as the VAD's
chunker cuts them (VAD_MIN_DURATION..VAD_MAX_DURATION), so batches pay for their padding (`--fixed`: all 20 s, no
padding). All chunks go to the engine in one call (it sorts them by length into batches: the least padding);
`--per-call` calls it with BATCH_SIZE consecutive chunks at a time, as the pipeline does. `--masked-single` adds,
per quantization, the masked graphs run one chunk at a time (what the masks cost by themselves). Each
variant runs in a fresh process (bench/ab.py: interleaved rounds, medians with min-max, speed-ups paired per round
against batch 1 of the same quantization), after one warm-up call. Batches above one load the graphs with padding
masks (ADR 58), built once before the rounds. Random weights: text is gibberish, compute is the real model's.
Writes bench/out/batch.md. The server's side of the same question: `bench/server_bench.py --batch-sizes`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import ab  # noqa: E402
from bench.gigaam_bench import MODELS, OUT, SR, ensure_model, read_wav  # noqa: E402
from bench.server_bench import mb, proc_status_kb  # noqa: E402
from tests.server import AUDIO  # noqa: E402


def vad_like_chunks(minutes: float, seed: int = 0, fixed: bool = False) -> list[np.ndarray]:
    pieces = [read_wav(AUDIO / n) for n in ("two_cities.wav", "endgame_nagg_nell.wav", "beckett.wav")]
    one = np.concatenate(pieces)
    total = int(minutes * 60 * SR)
    audio = np.tile(one, total // one.size + 1)[:total]
    rng = np.random.default_rng(seed)
    chunks, start = [], 0
    while start < total:
        length = 20 * SR if fixed else int(rng.uniform(15.0, 22.0) * SR)
        chunks.append(audio[start : start + length])
        start += length
    return chunks


def engine(quantization: str, batch: int, threads: int) -> object:
    from app.engines.registry import MODELS as REGISTRY
    from app.engines.registry import prepare_model, speech_loader
    from app.settings import EngineSettings

    engines = EngineSettings(models_dir=MODELS, quantization=quantization, num_threads=threads, device="cpu")  # type: ignore[arg-type]
    entry = REGISTRY["v3_ctc"]
    return speech_loader(entry, batch)(prepare_model(entry, engines), engines)


def child(args: argparse.Namespace) -> None:
    from app.engines.protocol import Decoding

    chunks = vad_like_chunks(args.minutes, fixed=args.fixed)
    started = time.perf_counter()
    model = engine(args.quantization, max(args.batch, 2 if args.masked_single else 1), args.threads)
    load_s = time.perf_counter() - started
    model.transcribe(chunks[: args.batch], Decoding(language="ru"))  # type: ignore[attr-defined]
    started = time.perf_counter()
    per_call = args.batch if args.per_call or args.masked_single else len(chunks)
    for start in range(0, len(chunks), per_call):  # --per-call: as the pipeline calls it, BATCH_SIZE chunks a call
        model.transcribe(chunks[start : start + per_call], Decoding(language="ru"))  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    audio_s = sum(c.size for c in chunks) / SR
    peak = mb(proc_status_kb(os.getpid(), "VmHWM"))
    print(json.dumps({"rtf": seconds / audio_s, "peak_rss_mb": peak, "load_s": load_s, "audio_s": audio_s}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--quantization", nargs="+", default=["none", "int8"])
    parser.add_argument("--fixed", action="store_true", help="20 s chunks (no padding) instead of 15-22 s")
    parser.add_argument("--per-call", action="store_true", help="BATCH_SIZE chunks per call (else all: sorted)")
    parser.add_argument("--masked-single", action="store_true", help="also: masked graphs, one chunk per call")
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch:
        args.quantization = args.quantization[0]
        child(args)
        return
    ensure_model("ctc", args.threads)
    for quantization in args.quantization:  # the masked graphs, built once (in a child: its peak is not ours)
        warm = f"import bench.batch_bench as b; b.engine({quantization!r}, 2, {args.threads})"
        subprocess.run([sys.executable, "-c", warm], check=True, cwd=ROOT)
    name = {"none": "fp32", "int8": "int8"}
    flags = [flag for flag, on in (("--fixed", args.fixed), ("--per-call", args.per_call)) if on]
    common = ["--threads", str(args.threads), "--minutes", str(args.minutes), *flags]
    variants = [
        ab.Variant(
            f"{name[q]} batch {b}",
            [sys.executable, __file__, "--batch", str(b), "--quantization", q, *common],
        )
        for q in args.quantization
        for b in args.batches
    ]
    if args.masked_single:
        variants += [
            ab.Variant(
                f"{name[q]} batch 1, masked graph",
                [sys.executable, __file__, "--batch", "1", "--masked-single", "--quantization", q, *common],
            )
            for q in args.quantization
        ]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    lines = ab.header(
        f"GigaAM v3 CTC engine, full size (random weights): {args.minutes:g} min of speech in "
        f"{'20' if args.fixed else '15-22'} s chunks, "
        f"{args.threads} threads, by BATCH_SIZE",
        results,
    )
    lines += [
        "| variant | RTF | speed-up vs batch 1 (paired) | peak RSS (MB) | load (s) |",
        "|---|---|---|---|---|",
    ]
    for q in args.quantization:
        base = f"{name[q]} batch {args.batches[0]}"
        masked = [f"{name[q]} batch 1, masked graph"] if args.masked_single else []
        for v in [f"{name[q]} batch {b}" for b in args.batches] + masked:
            lines.append(
                f"| {v} | {ab.spread(results.values(v, 'rtf'), '{:.4f}')} "
                f"| {ab.spread(results.paired_ratios(v, base, 'rtf', invert=True), '{:.2f}x')} "
                f"| {ab.spread(results.values(v, 'peak_rss_mb'), '{:.0f}')} "
                f"| {ab.spread(results.values(v, 'load_s'), '{:.1f}')} |"
            )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "batch.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
