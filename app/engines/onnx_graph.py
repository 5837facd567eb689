"""Graphs rewritten once for how we run them, cached beside the weights: faster int8 on the CPU, exact batches.

Two passes, each chosen by the loader (`GraphPasses`):
- `cpu` (int8 on the CPU, OPTIMIZE_GRAPHS): dynamic int8 quantization (`quantize_dynamic`, how the published
  `*.int8.onnx` GigaAM and NeMo files were made) turns every Conv into ConvInteger, for which onnxruntime has no fast
  CPU kernel: on the full-size v3 CTC it took 40 % of the time, more than all fp32 convolutions together (onnx-asr's
  own benchmark shows v3 int8 slower than fp32). A pointwise (kernel 1) ConvInteger becomes
  `Transpose -> DynamicQuantizeMatMul -> Transpose` (the same int8 weights and per-tensor activation quantization, on
  the VNNI/AVX2 int8 GEMM); any other ConvInteger (subsampling, depthwise) becomes an fp32 Conv over its dequantized
  weights (small; more exact than before). The result is then pre-optimised by onnxruntime (extended level) and saved,
  so neither the rewrite nor those passes run again at the next start.
- `padding_masks` (BATCH_SIZE above one): `app.engines.onnx_masks` adds the attention and subsampling masks that
  graphs traced with a batch of one lack, so a chunk's output does not depend on its batch-mates.

A graph neither pass changes is linked, not copied. The cache is `MODELS_DIR/.optimized/<model>.<variant>/` (the
variant names the quantization and the passes, e.g. `int8+cpu`, `fp32+masks`): the rewritten graphs, links to the other
files, and a stamp naming the source folder and files (size, mtime), the passes, the onnxruntime version and
`REWRITE_VERSION` (any change rebuilds it). The rewrite runs in a child process
(`python -m app.engines.onnx_graph SRC DST [--cpu] [--masks]`), so its peak memory (the whole graph as protobuf) is
never the server's. The `cpu` pass is for the CPU only: DynamicQuantizeMatMul is a CPU kernel, and GPU providers
fuse their own way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import onnxruntime as rt

from app.engines.onnx_masks import PaddingMasks, add_padding_masks

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

REWRITE_VERSION = 2
CACHE_DIR = ".optimized"
STAMP = "stamp.json"
APP_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `app` package
MAX_PROTO_BYTES = 1_900_000_000  # protobuf's 2 GB limit: larger graphs keep their weights in .data files; left as is


class RewriteFailed(Exception):
    """The child process could not rewrite a graph (the original is used)."""


class GraphPasses(msgspec.Struct, frozen=True, kw_only=True):
    """Which rewrites a model's graphs get before loading."""

    cpu: bool = False  # int8 ConvInteger -> DynamicQuantizeMatMul / fp32 Conv, pre-optimised for the CPU
    padding_masks: bool = False  # attention and subsampling masks, so batches are exact

    def any(self) -> bool:
        return self.cpu or self.padding_masks

    def variant(self, quantization: str | None) -> str:
        """The cache folder's suffix: the quantization and the passes, e.g. `int8+cpu`, `fp32+masks`."""
        passes = [name for name, on in (("cpu", self.cpu), ("masks", self.padding_masks)) if on]
        return "+".join([quantization or "fp32", *passes])

    def flags(self) -> list[str]:
        return [flag for flag, on in (("--cpu", self.cpu), ("--masks", self.padding_masks)) if on]


class Rewritten(msgspec.Struct, frozen=True):
    """What the passes changed in one graph (or in all of a model's)."""

    conv_integer: int = 0
    masks: PaddingMasks = msgspec.field(default_factory=PaddingMasks)

    @property
    def changed(self) -> bool:
        return bool(self.conv_integer or self.masks.added)

    def __add__(self, other: Rewritten) -> Rewritten:
        a, b = self.masks, other.masks
        masks = PaddingMasks(a.frames + b.frames, a.attention + b.attention, a.already_masked + b.already_masked)
        return Rewritten(self.conv_integer + other.conv_integer, masks)


def rewrite_graph(model: onnx.ModelProto, passes: GraphPasses) -> Rewritten:
    """Rewrite `model` in place with `passes`; says what changed."""
    replaced = _replace_conv_integer(model) if passes.cpu else 0
    if replaced:
        _prune_initializers(model.graph)
    masks = add_padding_masks(model) if passes.padding_masks else PaddingMasks()
    return Rewritten(replaced, masks)


def _index(graph: onnx.GraphProto) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[Any]]]:
    initializers = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return initializers, producers, consumers


def _only_consumer(consumers: dict[str, list[Any]], name: str, op_type: str) -> Any | None:
    users = consumers.get(name, [])
    return users[0] if len(users) == 1 and users[0].op_type == op_type else None


def _replace_conv_integer(model: onnx.ModelProto) -> int:
    """DynamicQuantizeLinear(x) -> ConvInteger -> Cast -> Mul(x_scale * w_scale), as quantize_dynamic writes it.

    The replacement takes the ConvInteger's place in the node list: it reads x (made before the quantizer) and writes
    the Mul's output (read after the Mul), so the graph stays in topological order."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers, producers, consumers = _index(graph)
    removed: set[int] = set()
    replacements: dict[int, list[Any]] = {}  # id of a ConvInteger -> the nodes in its place
    new_initializers: list[Any] = []
    for node in graph.node:
        if node.op_type != "ConvInteger" or len(node.input) < 4:
            continue
        quantize = producers.get(node.input[0])
        weight, weight_zero = initializers.get(node.input[1]), initializers.get(node.input[3])
        cast = _only_consumer(consumers, node.output[0], "Cast")
        scale = _only_consumer(consumers, cast.output[0], "Mul") if cast is not None else None
        scales = producers.get(scale.input[1]) if scale is not None else None
        weight_scale = (
            next((initializers[n] for n in scales.input if n in initializers), None)
            if scales is not None and scales.op_type == "Mul"
            else None
        )
        if quantize is None or quantize.op_type != "DynamicQuantizeLinear" or weight is None or weight_zero is None:
            continue
        if cast is None or scale is None or scales is None or weight_scale is None:
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        w = numpy_helper.to_array(weight)
        w_zero = numpy_helper.to_array(weight_zero)
        w_scale = numpy_helper.to_array(weight_scale).astype(np.float32)
        x, out, base = quantize.input[0], scale.output[0], node.name or scale.output[0]
        pointwise = (
            w.ndim == 3
            and w.shape[2] == 1
            and attributes.get("group", 1) == 1
            and list(attributes.get("strides", [1])) == [1]
            and list(attributes.get("dilations", [1])) == [1]
            and not any(attributes.get("pads", [0]))
        )
        if pointwise and w_zero.size == 1:
            # (B, Cin, T) -> (B, T, Cin) @ (Cin, Cout) -> (B, Cout, T); per-tensor or per-output-channel scales.
            new_initializers += [
                numpy_helper.from_array(np.ascontiguousarray(w[:, :, 0].T), f"{base}/B"),
                numpy_helper.from_array(w_scale.reshape(-1), f"{base}/B_scale"),
                numpy_helper.from_array(w_zero.reshape(-1), f"{base}/B_zero_point"),
            ]
            replacements[id(node)] = [
                helper.make_node("Transpose", [x], [f"{base}/x_t"], perm=[0, 2, 1], name=f"{base}/in"),
                helper.make_node(
                    "DynamicQuantizeMatMul",
                    [f"{base}/x_t", f"{base}/B", f"{base}/B_scale", f"{base}/B_zero_point"],
                    [f"{base}/y_t"],
                    domain="com.microsoft",
                    name=f"{base}/matmul",
                ),
                helper.make_node("Transpose", [f"{base}/y_t"], [out], perm=[0, 2, 1], name=f"{base}/out"),
            ]
        else:
            per_channel = w_scale.reshape((-1,) + (1,) * (w.ndim - 1)) if w_scale.size > 1 else w_scale
            zero = w_zero.reshape((-1,) + (1,) * (w.ndim - 1)) if w_zero.size > 1 else w_zero
            dequantized = ((w.astype(np.int32) - zero.astype(np.int32)) * per_channel).astype(np.float32)
            new_initializers.append(numpy_helper.from_array(dequantized, f"{base}/W"))
            replacements[id(node)] = [
                helper.make_node("Conv", [x, f"{base}/W"], [out], name=f"{base}/fp32", **attributes)
            ]
        removed |= {id(node), id(cast), id(scale)}
        if len(consumers.get(quantize.output[0], [])) == 1:  # the quantized x fed this ConvInteger only
            removed.add(id(quantize))
        if len(consumers.get(scales.output[0], [])) == 1:
            removed.add(id(scales))
    if not replacements:
        return 0
    rebuilt = [new for n in graph.node for new in replacements.get(id(n), [] if id(n) in removed else [n])]
    del graph.node[:]
    graph.node.extend(rebuilt)
    graph.initializer.extend(new_initializers)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(replacements)


def _prune_initializers(graph: onnx.GraphProto) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def rewrite_file(source: Path, target: Path, passes: GraphPasses) -> Rewritten:
    """Rewrite one graph file and save it at `target` (pre-optimised by onnxruntime for the `cpu` pass); nothing is
    written if the passes change nothing."""
    import onnx

    model = onnx.load(str(source))
    rewritten_model = rewrite_graph(model, passes)
    if not rewritten_model.changed:
        return rewritten_model
    if not passes.cpu:
        onnx.save(model, str(target))
        return rewritten_model
    rewritten = target.with_name(target.name + ".rewritten")
    try:
        onnx.save(model, str(rewritten))
        del model
        options = rt.SessionOptions()
        options.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(target)
        options.log_severity_level = 3
        rt.InferenceSession(str(rewritten), options, providers=["CPUExecutionProvider"])
    finally:
        rewritten.unlink(missing_ok=True)
    return rewritten_model


def _stamp(folder: Path, graphs: Sequence[str], passes: GraphPasses) -> dict[str, object]:
    sources = {}
    for name in graphs:
        info = (folder / name).stat()
        sources[name] = [info.st_size, info.st_mtime_ns]
    return {
        "rewrite_version": REWRITE_VERSION,
        "passes": msgspec.to_builtins(passes),
        "onnxruntime": rt.__version__,
        "folder": str(folder.resolve()),  # the links point there: a moved MODELS_DIR rebuilds
        "sources": sources,
    }


def rewritable_graphs(folder: Path, files: Sequence[str]) -> list[str]:
    """The graphs among `files` the rewrite can take: single-file ONNX graphs under protobuf's limit."""
    return [
        name
        for name in files
        if name.endswith(".onnx")
        and (folder / name).is_file()
        and not (folder / f"{name}.data").exists()
        and (folder / name).stat().st_size < MAX_PROTO_BYTES
    ]


def _build(folder: Path, graphs: Sequence[str], target: Path, passes: GraphPasses) -> Rewritten:
    """Fill `target` with the rewritten graphs and links to every other file of `folder`."""
    total = Rewritten()
    target.mkdir(parents=True, exist_ok=True)
    for name in graphs:
        result = subprocess.run(
            [sys.executable, "-m", "app.engines.onnx_graph", str(folder / name), str(target / name), *passes.flags()],
            capture_output=True,
            text=True,
            check=False,
            cwd=APP_ROOT,  # `-m app...` must resolve whatever the server's working directory is
        )
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise RewriteFailed(f"{name}: {tail}")
        total += msgspec.json.decode(result.stdout.strip().splitlines()[-1], type=Rewritten)
    for entry in folder.iterdir():
        if entry.is_file() and not (target / entry.name).exists():
            (target / entry.name).symlink_to(entry.resolve())
    return total


class GraphFolder(msgspec.Struct, frozen=True):
    """Where to load a model from, and whether every graph of it went through the passes asked for."""

    path: Path
    rewritten: bool  # False: some graph is as published (too large to rewrite, or the rewrite failed)


@contextmanager
def optimized_folder(
    folder: Path, files: Sequence[str], quantization: str | None, passes: GraphPasses
) -> Iterator[GraphFolder]:
    """The folder to load the model in `folder` from: its cached rewrite (built now if missing or stale).

    `files` are the model's files for this `quantization` (None: fp32); each variant (quantization and passes) is
    cached apart.

    Falls back to a temporary copy (removed when the block ends) where MODELS_DIR is read-only, and to `folder`
    itself when there is no graph the passes can read or the rewrite fails (logged; the model still loads, as
    published: slower, and batches not known to be exact).
    """
    onnx_files = [name for name in files if name.endswith(".onnx")]
    graphs = rewritable_graphs(folder, files)
    complete = len(graphs) == len(onnx_files)  # a graph left out (external data, over 2 GB) stays as published
    if not graphs:
        yield GraphFolder(folder, rewritten=False)
        return
    stamp = _stamp(folder, graphs, passes)
    cache = folder.parent / CACHE_DIR / f"{folder.name}.{passes.variant(quantization)}"
    if _read_stamp(cache) == stamp:
        yield GraphFolder(cache, rewritten=complete)
        return
    temporary: Path | None = None
    staging = _fresh_target(cache)
    try:
        if staging is None:
            temporary = Path(tempfile.mkdtemp(prefix="stt-graph-"))
        target = staging if staging is not None else Path(temporary or "") / folder.name
        started = time.perf_counter()
        done = _build(folder, graphs, target, passes)
        (target / STAMP).write_text(json.dumps(stamp), encoding="utf-8")
        if temporary is None:
            shutil.rmtree(cache, ignore_errors=True)
            os.replace(target, cache)
            target = cache
        log.info(
            "model graph rewritten",
            extra={
                "folder": folder.name,
                "variant": passes.variant(quantization),
                "conv_integer": done.conv_integer,
                "frame_masks": done.masks.frames,
                "attention_masks": done.masks.attention,
                "already_masked": done.masks.already_masked,
                "seconds": round(time.perf_counter() - started, 1),
            },
        )
    except (OSError, RewriteFailed, ValueError) as exc:
        log.warning("model graph left as published", extra={"folder": folder.name, "reason": str(exc)[:300]})
        for leftover in (staging, temporary):
            if leftover is not None:
                shutil.rmtree(leftover, ignore_errors=True)
        yield GraphFolder(folder, rewritten=False)
        return
    try:
        yield GraphFolder(target, rewritten=complete)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def _read_stamp(cache: Path) -> object:
    try:
        return json.loads((cache / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _fresh_target(cache: Path) -> Path | None:
    """A new staging folder next to `cache`, or None when MODELS_DIR cannot be written."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}.", dir=cache.parent))
        staging.chmod(0o755)
        return staging
    except OSError:
        return None


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m app.engines.onnx_graph SRC DST [--cpu] [--masks]`: rewrite one graph; prints what changed (JSON)."""
    args = list(argv if argv is not None else sys.argv[1:])
    passes = GraphPasses(cpu="--cpu" in args, padding_masks="--masks" in args)
    source, target = (Path(a) for a in args if not a.startswith("--"))
    print(msgspec.json.encode(rewrite_file(source, target, passes)).decode())


if __name__ == "__main__":
    main()
