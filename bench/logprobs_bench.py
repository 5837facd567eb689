"""What `include[]=logprobs` costs: the json pipeline on two_cities.wav (44 s, two chunks) with and without the
tokens' log probabilities, for Whisper tiny.en (CTranslate2's `align`: one more encoder pass per chunk) and the
tiny random-weight GigaAM v3 CTC (onnx-asr scores every token anyway).

    uv run python -m bench.logprobs_bench [--rounds 5]

Variants (interleaved by bench/ab.py, each a fresh process, NUM_THREADS=2, the model loaded before timing):
whisper, whisper+logprobs, gigaam, gigaam+logprobs. Figure: seconds to transcribe the file, after a warm-up run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import app  # noqa: F401  (telemetry off before onnxruntime loads)
from bench import ab

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
AUDIO = ROOT / "tests" / "data" / "two_cities.wav"
VARIANTS = ("whisper", "whisper+logprobs", "gigaam", "gigaam+logprobs")


def child(variant: str) -> None:
    from app.engines.protocol import Decoding
    from app.settings import AudioSettings
    from app.transcription.pipeline import TranscriptionRun
    from app.worker.cancel import CancelToken
    from app.worker.threads import configure_threads
    from tests.audio_helpers import load

    configure_threads(2)
    if variant.startswith("whisper"):
        engine, language = load("tiny.en", Path("/nonexistent-models"), num_threads=2), "en"
    else:
        models = OUT / "models" / "tiny_v3_ctc"
        if not (models / "v3_ctc").is_dir():
            from tools.gigaam_build import write_model_dir

            write_model_dir(models / "v3_ctc", version="v3", size="tiny", int8=False)
        engine, language = load("v3_ctc", models, num_threads=2), "ru"

    def transcribe() -> int:
        decoding = Decoding(language=language, words=False, logprobs=variant.endswith("+logprobs"))
        run = TranscriptionRun(AUDIO, engine, decoding, audio=AudioSettings(), cancel=CancelToken())
        return sum(len(s.logprobs) for s in run.segments())

    transcribe()  # warm-up
    started = time.perf_counter()
    tokens = transcribe()
    print(json.dumps({"seconds": time.perf_counter() - started, "tokens": tokens}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", choices=VARIANTS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    variants = [ab.Variant(n, [sys.executable, "-m", "bench.logprobs_bench", "--child", n]) for n in VARIANTS]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    lines = ab.header("include[]=logprobs: json on two_cities.wav (44 s), NUM_THREADS=2, models warm", results)
    lines += ["| variant | seconds | vs without (paired) | tokens scored |", "|---|---|---|---|"]
    for name in VARIANTS:
        base = name.removesuffix("+logprobs")
        ratio = ab.spread(results.paired_ratios(name, base, "seconds"), "{:.2f}x") if name != base else "-"
        tokens = ab.spread(results.values(name, "tokens"), "{:.0f}")
        lines.append(f"| {name} | {ab.spread(results.values(name, 'seconds'))} | {ratio} | {tokens} |")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "logprobs.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
