"""How close int8 is to fp32 on the full-size v3 CTC (random weights), and what each int8 costs.

    uv run python bench/int8_accuracy.py                 # accuracy (one process), then speed/RSS rounds
    uv run python bench/int8_accuracy.py --rounds 0      # accuracy only

Three int8 graphs against the fp32 one, on real speech (tests/data, cut in 15-22 s chunks, batch of one):
- "published": `quantize_dynamic` of the whole graph, per-tensor weight scales (how onnx-asr's `*.int8.onnx` are
  made; tools/gigaam_build.py --int8 makes it the same way);
- "rewritten": the published one after the engine's CPU rewrite (ADR 34: ConvInteger -> DynamicQuantizeMatMul /
  fp32 Conv);
- "per-channel MatMul": `quantize_dynamic(fp32, per_channel=True, op_types_to_quantize=["MatMul"])`, convolutions
  left fp32 (made here, into bench/out/models_pc/; its time and peak memory are reported).
Accuracy: max and mean |logit - fp32 logit| (log-probs), frame argmax agreement with fp32, and the token error rate
of the greedy CTC tokens against fp32's (edit distance / fp32 tokens). Also, for the int8 graphs with padding masks,
the argmax agreement of a chunk batched (with 3 others of other lengths) against the same chunk alone: int8's
per-tensor activation scale is computed over the whole batch. Speed and peak RSS: the engine with each graph
(bench/ab.py rounds, fresh processes). Writes bench/out/int8.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import app  # noqa: E402, F401  (telemetry off before onnxruntime loads)
from bench import ab  # noqa: E402
from bench.batch_bench import vad_like_chunks  # noqa: E402
from bench.gigaam_bench import MODELS, OUT, SR, ensure_model  # noqa: E402
from bench.server_bench import mb, proc_status_kb  # noqa: E402

PER_CHANNEL = OUT / "models_pc"  # a MODELS_DIR whose v3_ctc int8 graph is the local per-channel quantization
GRAPHS = {
    "fp32": MODELS / "v3_ctc" / "v3_ctc.onnx",
    "published int8": MODELS / "v3_ctc" / "v3_ctc.int8.onnx",
    "rewritten int8": MODELS / ".optimized" / "v3_ctc.int8+cpu" / "v3_ctc.int8.onnx",
    "per-channel MatMul int8": PER_CHANNEL / "v3_ctc" / "v3_ctc.int8.onnx",
}


def quantize_per_channel() -> dict[str, float]:
    """Make the per-channel MatMul-only graph (in a child: its peak RSS is what `download` would need)."""
    code = (
        "import json, os, time; from onnxruntime.quantization import QuantType, quantize_dynamic; "
        "from bench.server_bench import mb, proc_status_kb; t = time.perf_counter(); "
        f"quantize_dynamic({str(GRAPHS['fp32'])!r}, {str(GRAPHS['per-channel MatMul int8'])!r}, "
        "weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=['MatMul']); "
        "peak = mb(proc_status_kb(os.getpid(), 'VmHWM')); "
        "print(json.dumps({'seconds': time.perf_counter() - t, 'peak_rss_mb': peak}))"
    )
    folder = PER_CHANNEL / "v3_ctc"
    made = folder / "quantization.json"  # the figures of the last quantization (it takes minutes)
    if made.is_file() and GRAPHS["per-channel MatMul int8"].is_file():
        cached: dict[str, float] = json.loads(made.read_text())
        return cached
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("v3_vocab.txt", "config.json", "v3_ctc.onnx"):
        if not (folder / name).exists():
            (folder / name).symlink_to((MODELS / "v3_ctc" / name).resolve())
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["size_mb"] = GRAPHS["per-channel MatMul int8"].stat().st_size / 2**20
    made.write_text(json.dumps(figures))
    return figures


def session(name: str, masks: bool = False) -> Any:
    """A session of graph `name`; `masks`: with the padding masks, added as the engine adds them (before
    onnxruntime's pre-optimisation, which fuses the convolutions the pass looks for)."""
    import onnx
    import onnxruntime as rt

    from app.engines.onnx_graph import GraphPasses, rewrite_graph

    options = rt.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 2
    if not masks:
        return rt.InferenceSession(str(GRAPHS[name]), options, providers=["CPUExecutionProvider"])
    source = GRAPHS["published int8"] if name == "rewritten int8" else GRAPHS[name]
    model = onnx.load(str(source))
    rewrite_graph(model, GraphPasses(cpu=name == "rewritten int8", padding_masks=True))
    return rt.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def ctc_tokens(log_probs: np.ndarray, blank: int) -> list[int]:
    best = log_probs.argmax(-1)
    return [int(t) for i, t in enumerate(best) if t != blank and (i == 0 or t != best[i - 1])]


def edit_distance(a: list[int], b: list[int]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def accuracy(minutes: float) -> list[str]:
    from onnx_asr.preprocessors.numpy_preprocessor import GigaamPreprocessorNumpy

    pre = GigaamPreprocessorNumpy("gigaam_v3")
    chunks = vad_like_chunks(minutes, seed=1)
    feats = [pre(c[None, :], np.array([c.size])) for c in chunks]
    blank = 33
    reference = session("fp32")
    ref = [reference.run(None, {"features": f, "feature_lengths": n})[0][0] for f, n in feats]
    del reference
    lines = [
        f"Accuracy against fp32: {len(chunks)} chunks ({sum(c.size for c in chunks) / SR / 60:.1f} min of speech), "
        "batch of one",
        "",
        "| graph | max abs logit diff | mean abs logit diff | argmax agreement | non-blank argmax agreement "
        "| token error rate vs fp32 |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("published int8", "rewritten int8", "per-channel MatMul int8"):
        run = session(name)
        outs = [run.run(None, {"features": f, "feature_lengths": n})[0][0] for f, n in feats]
        diffs = np.concatenate([np.abs(o - r).reshape(-1) for o, r in zip(outs, ref, strict=True)])
        agree = np.mean(np.concatenate([o.argmax(-1) == r.argmax(-1) for o, r in zip(outs, ref, strict=True)]))
        # the random head emits blank on almost every frame: which letter would win is the finer test
        letters = np.mean(
            np.concatenate([o[:, :blank].argmax(-1) == r[:, :blank].argmax(-1) for o, r in zip(outs, ref, strict=True)])
        )
        errors = sum(edit_distance(ctc_tokens(o, blank), ctc_tokens(r, blank)) for o, r in zip(outs, ref, strict=True))
        total = sum(len(ctc_tokens(r, blank)) for r in ref)
        lines.append(
            f"| {name} | {diffs.max():.3f} | {diffs.mean():.4f} | {agree:.4f} | {letters:.4f} | {errors / total:.4f} |"
        )
    lines += [
        "",
        "Batched vs alone (padding masks on; batches of 4 chunks of 15-22 s): argmax agreement of each chunk with "
        "itself alone",
        "",
        "| graph | argmax agreement | non-blank argmax agreement | max abs logit diff |",
        "|---|---|---|---|",
    ]
    for name in ("fp32", "rewritten int8", "per-channel MatMul int8"):
        run = session(name, masks=True)
        agreements, letter_agreements, worst = [], [], 0.0
        for start in range(0, len(feats) - 3, 4):
            group = feats[start : start + 4]
            lengths = np.array([n[0] for _, n in group])
            batch = np.zeros((4, 64, lengths.max()), dtype=np.float32)
            for i, (f, _) in enumerate(group):
                batch[i, :, : f.shape[-1]] = f[0]
            batched = run.run(None, {"features": batch, "feature_lengths": lengths})[0]
            for i, (f, n) in enumerate(group):
                alone = run.run(None, {"features": f, "feature_lengths": n})[0][0]
                row = batched[i, : alone.shape[0]]
                agreements.append(np.mean(alone.argmax(-1) == row.argmax(-1)))
                letter_agreements.append(np.mean(alone[:, :blank].argmax(-1) == row[:, :blank].argmax(-1)))
                worst = max(worst, float(np.abs(alone - row).max()))
        lines.append(
            f"| {name} | {np.mean(agreements):.4f} (min {min(agreements):.4f}) "
            f"| {np.mean(letter_agreements):.4f} (min {min(letter_agreements):.4f}) | {worst:.2e} |"
        )
    return lines


def child(variant: str, minutes: float) -> None:
    from app.engines.protocol import Decoding
    from app.engines.registry import MODELS as REGISTRY
    from app.engines.registry import prepare_model, speech_loader
    from app.settings import EngineSettings

    quantization, models_dir, optimize = {
        "fp32": ("none", MODELS, True),
        "published int8": ("int8", MODELS, False),
        "rewritten int8": ("int8", MODELS, True),
        "per-channel MatMul int8": ("int8", PER_CHANNEL, True),
    }[variant]
    engines = EngineSettings(
        models_dir=models_dir,
        quantization=quantization,  # type: ignore[arg-type]
        num_threads=2,
        device="cpu",
        optimize_graphs=optimize,
    )
    chunks = vad_like_chunks(minutes)
    entry = REGISTRY["v3_ctc"]
    engine = speech_loader(entry, 1)(prepare_model(entry, engines), engines)
    engine.transcribe(chunks[:1], Decoding(language="ru"))
    started = time.perf_counter()
    engine.transcribe(chunks, Decoding(language="ru"))
    seconds = time.perf_counter() - started
    audio_s = sum(c.size for c in chunks) / SR
    print(json.dumps({"rtf": seconds / audio_s, "peak_rss_mb": mb(proc_status_kb(os.getpid(), "VmHWM"))}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=OUT / "int8.md")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args.variant, args.minutes)
        return
    ensure_model("ctc", 2)
    made = quantize_per_channel()
    lines = [
        "# int8 against fp32, GigaAM v3 CTC full size (random weights)",
        "",
        f"- Command: `uv run python bench/int8_accuracy.py --minutes {args.minutes:g} --rounds {args.rounds}`",
        f"- Load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- Local per-channel quantization: {made['seconds']:.0f} s, peak RSS {made['peak_rss_mb']:.0f} MB, "
        f"file {made['size_mb']:.0f} MB (published int8 {GRAPHS['published int8'].stat().st_size / 2**20:.0f} MB, "
        f"fp32 {GRAPHS['fp32'].stat().st_size / 2**20:.0f} MB)",
        "",
        *accuracy(args.minutes),
    ]
    if args.rounds:
        variants = [
            ab.Variant(n, [sys.executable, __file__, "--variant", n, "--minutes", str(args.minutes)]) for n in GRAPHS
        ]
        results = ab.run(variants, args.rounds, cwd=ROOT)
        lines += ["", *ab.header("Speed and memory (engine, batch 1, 2 threads)", results)]
        lines += ["| graph | RTF | speed vs fp32 (paired) | peak RSS (MB) |", "|---|---|---|---|"]
        for name in GRAPHS:
            lines.append(
                f"| {name} | {ab.spread(results.values(name, 'rtf'), '{:.4f}')} "
                f"| {ab.spread(results.paired_ratios(name, 'fp32', 'rtf', invert=True), '{:.2f}x')} "
                f"| {ab.spread(results.values(name, 'peak_rss_mb'), '{:.0f}')} |"
            )
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
