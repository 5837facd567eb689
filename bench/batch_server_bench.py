"""What BATCH_SIZE buys through the server: the full-size v3 CTC (random weights), fp32 and int8, by batch size.

    uv run python bench/batch_server_bench.py                          # 5 min input, batch 1 2 4, 3 rounds
    uv run python bench/batch_server_bench.py --size 10m --batches 1 4 --quantization int8

Each variant is a real server (`python -m app`, bench/server_bench.py's streamed upload: wall time -> RTF, peak RSS
VmHWM) started with BATCH_SIZE and QUANTIZATION set, on bench/server_bench.py's input (the recordings of
tests/data with pauses and a long silence every 3 min); variants alternate over rounds in fresh processes
(bench/ab.py), speed-ups paired per round against batch 1 of the same quantization. The text's length is reported
too: batches are exact (ADR 58), so it must not change with BATCH_SIZE. Needs bench/out/models/v3_ctc
(`uv run python bench/batch_bench.py` builds it and its masked graphs). Writes bench/out/batch_server.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import ab  # noqa: E402
from bench.server_bench import OUT, build_input, parse_size  # noqa: E402

MODELS = OUT / "models"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="5m")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--quantization", nargs="+", default=["none", "int8"])
    args = parser.parse_args()
    path = build_input(parse_size(args.size), args.size)
    name = {"none": "fp32", "int8": "int8"}
    server = ["--model", "v3_ctc", "--models-dir", str(MODELS), "--server-child", str(path)]
    variants = [
        ab.Variant(
            f"{name[q]} batch {b}",
            ["env", f"BATCH_SIZE={b}", f"QUANTIZATION={q}", sys.executable, "-m", "bench.server_bench", *server],
        )
        for q in args.quantization
        for b in args.batches
    ]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    lines = ab.header(
        f"GigaAM v3 CTC through the server, full size (random weights): {args.size} input, 2 threads, by BATCH_SIZE",
        results,
    )
    lines += [
        "| variant | RTF | speed-up vs batch 1 (paired) | peak RSS (MB) | text chars |",
        "|---|---|---|---|---|",
    ]
    for q in args.quantization:
        base = f"{name[q]} batch {args.batches[0]}"
        for b in args.batches:
            v = f"{name[q]} batch {b}"
            chars = sorted({int(c) for c in results.values(v, "text_chars")})
            lines.append(
                f"| {v} | {ab.spread(results.values(v, 'rtf'), '{:.4f}')} "
                f"| {ab.spread(results.paired_ratios(v, base, 'rtf', invert=True), '{:.2f}x')} "
                f"| {ab.spread(results.values(v, 'peak_rss_mb'), '{:.0f}')} | {', '.join(map(str, chars))} |"
            )
    (OUT / "batch_server.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
