"""The fp32 and int8 GEMM throughput onnxruntime reaches on this machine, at the shape of GigaAM's feed-forward layers.

    uv run python bench/gemm_peak.py [--threads 2]

One MatMul (T=500 frames x 768 -> 3072, a 20 s chunk through one feed-forward projection), fp32 and as
DynamicQuantizeMatMul (int8 weights), best of 5 x 20 runs: the roofline the engine's speed is bounded by.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as rt
from onnx import TensorProto, helper, numpy_helper

T, D, F = 500, 768, 3072


def session(int8: bool, threads: int) -> rt.InferenceSession:
    rng = np.random.default_rng(0)
    if int8:
        weights = [
            numpy_helper.from_array(rng.integers(-127, 127, (D, F), dtype=np.int8), "w"),
            numpy_helper.from_array(np.array([0.01], dtype=np.float32), "scale"),
            numpy_helper.from_array(np.array([0], dtype=np.int8), "zero"),
        ]
        node = helper.make_node("DynamicQuantizeMatMul", ["x", "w", "scale", "zero"], ["y"], domain="com.microsoft")
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    else:
        weights = [numpy_helper.from_array(rng.standard_normal((D, F), dtype=np.float32), "w")]
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        opsets = [helper.make_opsetid("", 17)]
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        weights,
    )
    options = rt.SessionOptions()
    options.intra_op_num_threads = threads
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    return rt.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    x = np.random.default_rng(1).standard_normal((1, T, D), dtype=np.float32)
    for int8 in (False, True):
        s = session(int8, args.threads)
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(20):
                s.run(None, {"x": x})
            best = min(best, (time.perf_counter() - started) / 20)
        kind = "int8 (DynamicQuantizeMatMul)" if int8 else "fp32 (MatMul)"
        print(f"{kind}: {2 * T * D * F / best / 1e9:.0f} GOP/s on {args.threads} threads")


if __name__ == "__main__":
    main()
