"""How far the int8 graph rewrite (app/engines/onnx_graph.py) moves a random-weight GigaAM v3 CTC's output, against
int8's own error, on this CPU's kernels or another's: the figures behind tests/unit/test_onnx_graph.py's thresholds.

    python -m tools.int8_agreement prepare OUT [--seed N]   # natively (needs torch): fp32, int8, rewritten + features
    python -m tools.int8_agreement check OUT                # onnxruntime only; under an emulated CPU, e.g.
    qemu-x86_64 -cpu Haswell .venv/bin/python -m tools.int8_agreement check OUT   # AVX2, no AVX-512/VNNI

`check` prints one JSON line: argmax agreement rewritten~published and published~fp32, and the test's two figures
(the largest ratio of a changed token's margin to that frame's int8 noise, which must stay below 1; and the
rewritten graph's logit RMS error against fp32 over the published graph's, which must stay at most 2).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

import app  # noqa: F401  (telemetry off before onnxruntime loads)


def prepare(out: Path, seed: int) -> None:
    from app.engines.onnx_graph import GraphPasses, optimized_folder
    from tests.unit.test_onnx_graph import speech_features
    from tools.gigaam_build import write_model_dir

    out.mkdir(parents=True, exist_ok=True)
    write_model_dir(out / "model", size="tiny", int8=True, seed=seed)
    files = ["v3_ctc.int8.onnx", "v3_vocab.txt", "config.json"]
    with optimized_folder(out / "model", files, "int8", GraphPasses(cpu=True)) as folder:
        shutil.copy(folder.path / "v3_ctc.int8.onnx", out / "rewritten.int8.onnx")
    features, lengths = speech_features()
    np.savez(out / "features.npz", features=features, lengths=lengths)


def check(out: Path) -> dict[str, float]:
    import onnxruntime as rt

    data = np.load(out / "features.npz")
    feeds = {"features": data["features"], "feature_lengths": data["lengths"]}

    def run(path: Path) -> np.ndarray:
        options = rt.SessionOptions()
        options.log_severity_level = 3
        return rt.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, feeds)[0]

    exact, before = run(out / "model" / "v3_ctc.onnx"), run(out / "model" / "v3_ctc.int8.onnx")
    after = run(out / "rewritten.int8.onnx")
    changed = after.argmax(-1) != before.argmax(-1)
    noise = np.abs(before - exact).max(-1)
    top = np.take_along_axis(before, before.argmax(-1)[..., None], -1)[..., 0]
    chosen = np.take_along_axis(before, after.argmax(-1)[..., None], -1)[..., 0]
    ratios = (top - chosen)[changed] / noise[changed]

    def rms(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.sqrt(np.mean((a - b) ** 2)))

    return {
        "agreement_rewritten_published": round(float((~changed).mean()), 4),
        "agreement_published_fp32": round(float((before.argmax(-1) == exact.argmax(-1)).mean()), 4),
        "changed_tokens": int(changed.sum()),
        "max_margin_over_int8_noise": round(float(ratios.max()), 3) if ratios.size else 0.0,
        "rms_error_ratio": round(rms(after, exact) / rms(before, exact), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["prepare", "check"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.action == "prepare":
        prepare(args.out, args.seed)
    else:
        print(json.dumps(check(args.out)))


if __name__ == "__main__":
    main()
