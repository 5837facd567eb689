"""GigaAM v3 CTC speed and memory: torch vs our onnx-asr engine (fp32, int8), on a full-size random-weight model.

    uv run python bench/gigaam_bench.py            # builds bench/out/models/v3_ctc once (~4 GB RAM), then measures
    uv run python bench/gigaam_bench.py --threads 4 --minutes 10

Each variant runs in its own subprocess (so peak RSS is its own) on the same 10 min of real speech (the files in
tests/data tiled) cut into fixed 20 s chunks, after one warm-up chunk. RTF = processing seconds / audio
seconds. Variants alternate over --rounds rounds (bench/ab.py): medians with min-max, ratios paired per round.
Writes bench/out/gigaam.md. Random weights: text is gibberish, compute is the real model's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import ab  # noqa: E402
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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_torch(chunks: list[np.ndarray], threads: int) -> dict[str, float]:
    import torch

    torch.set_num_threads(threads)
    from tools.gigaam_build import build_model, feature_extractor

    started = time.perf_counter()
    model = build_model("v3", "full")  # same seed as the exported model: same weights
    features = feature_extractor("v3").eval()
    load_s = time.perf_counter() - started

    def recognise(chunk: np.ndarray) -> int:
        with torch.inference_mode():
            feats = features(torch.from_numpy(chunk)[None])
            log_probs = model(feats, torch.tensor([feats.shape[-1]]))
            labels = log_probs.argmax(-1)[0]
            keep = (labels != 33) & torch.cat([torch.tensor([True]), labels[1:] != labels[:-1]])
            return int(keep.sum())

    recognise(chunks[0])
    started = time.perf_counter()
    for chunk in chunks:
        recognise(chunk)
    return {"load_s": load_s, "seconds": time.perf_counter() - started}


def run_engine(chunks: list[np.ndarray], threads: int, quantization: str | None, batch: int) -> dict[str, float]:
    from app.engines.registry import MODELS as REGISTRY
    from app.engines.registry import prepare_model
    from app.settings import EngineSettings

    started = time.perf_counter()
    engines = EngineSettings(models_dir=MODELS, quantization=quantization or "none", num_threads=threads, device="cpu")  # type: ignore[arg-type]
    entry = REGISTRY["v3_ctc"]
    engine = entry.loader(entry, prepare_model(entry, engines), engines, batch_size=batch)
    load_s = time.perf_counter() - started
    engine.transcribe(chunks[:1], language="ru")
    started = time.perf_counter()
    engine.transcribe(chunks, language="ru")
    return {"load_s": load_s, "seconds": time.perf_counter() - started}


VARIANTS: dict[str, tuple[str, str | None, int]] = {
    "torch fp32 (gigaam 0.1.0 Conformer, v3 shape)": ("torch", None, 1),
    "engine fp32": ("engine", None, 1),
    "engine fp32, batch 4 (bucketed)": ("engine", None, 4),
    "engine int8": ("engine", "int8", 1),
}


def child(args: argparse.Namespace) -> None:
    chunks = speech_chunks(args.minutes)
    kind, quantization, batch = VARIANTS[args.variant]
    if kind == "torch":
        result = run_torch(chunks, args.threads)
    else:
        result = run_engine(chunks, args.threads, quantization, batch)
    audio_s = sum(c.size for c in chunks) / SR
    result |= {"rtf": result["seconds"] / audio_s, "peak_rss_mb": peak_rss_mb(), "audio_s": audio_s}
    print(json.dumps(result))


def ensure_model() -> None:
    folder = MODELS / "v3_ctc"
    if (folder / "v3_ctc.onnx").is_file() and (folder / "v3_ctc.int8.onnx").is_file():
        return
    print("building the full-size random-weight v3 CTC model (a few minutes, ~4 GB RAM)...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.gigaam_build",
            "--size",
            "full",
            "--version",
            "v3",
            "--int8",
            "--out",
            str(folder),
        ],
        check=True,
        cwd=ROOT,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (A B C, A B C, ...)")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="*", default=None, help="run only variants whose name contains this")
    args = parser.parse_args()
    if args.variant:
        child(args)
        return
    ensure_model()
    names = [n for n in VARIANTS if not args.only or any(o in n for o in args.only)]
    variants = [
        ab.Variant(
            n,
            [sys.executable, __file__, "--variant", n, "--threads", str(args.threads), "--minutes", str(args.minutes)],
        )
        for n in names
    ]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    base = next((n for n in names if n.startswith("torch")), None)
    lines = ab.header(
        f"GigaAM v3 CTC, full size (220.7 M params, random weights): {args.minutes:g} min of speech in "
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
    (OUT / "gigaam.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
