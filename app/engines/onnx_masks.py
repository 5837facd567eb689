"""Padding masks for Conformer graphs exported with a batch of one, so that batching them is exact.

GigaAM's `to_onnx` traces the encoder with one utterance, and its Conformer builds the attention mask only when the
batch is larger (`if audio_signal.shape[0] > 1`): the published graphs have no attention mask, so in a padded batch
every frame attends to its batch-mates' padding. Its striding subsampling has no mask either: the padded feature
frames (log-mel of zeros, about -20.7) and, after the first convolution, ReLU(bias) frames reach the last real frames
through the next convolution's kernel. Measured on a random-weight v3 CTC (tools/gigaam_build.py): logits off by
up to 8 for a chunk batched with a longer one, argmax agreement 0.97.

`add_padding_masks` rewrites such a graph in place, computing every mask from the graph's lengths input:
- each convolution of the subsampling (a Conv or ConvInteger reached from the features input through
  element-wise ops, Transpose and Unsqueeze, with a kernel longer than one frame) reads its padded frames as zeros:
  `Where(frame < length, x, 0)`, with `length` carried through each convolution as its output-length formula says
  (`(L + pads - dilation * (kernel - 1) - 1) // stride + 1`, the formula the encoder itself uses);
- each self-attention Softmax sees the padded keys at -10000, as gigaam's own masked path does
  (`scores.masked_fill(mask, -10000)`): `Where(key < encoded length, scores, -10000)`.

A real frame then depends on real frames only: the Conformer's depthwise convolutions already zero padded frames
(their `pad_mask` is traced whatever the batch), the rest works frame by frame. Batch-of-one results are unchanged
(every mask is all true). A site that is already masked (its input made by a Where, Mul or Add whose other operand
comes from the lengths input, not from the audio: graphs exported with a batch above one, or NeMo's) is left alone,
and a graph without a (features, lengths) input pair (an RNN-T decoder or joint) is not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    import onnx

MASKED_SCORE = -10000.0  # what gigaam's masked attention fills in (softmax gives those keys exactly zero weight)
_ELEMENTWISE = frozenset({"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Identity", "Cast", "Abs", "Neg", "Erf"})
_WITH_CONSTANT = frozenset({"Add", "Sub", "Mul", "Div"})  # element-wise with a constant operand (a bias)
_CONVOLUTIONS = frozenset({"Conv", "ConvInteger"})
_MASKING = frozenset({"Where", "Mul", "Add"})


class PaddingMasks(msgspec.Struct, frozen=True):
    """What `add_padding_masks` added to one graph."""

    frames: int = 0  # convolution inputs whose padded frames now read as zeros
    attention: int = 0  # Softmax inputs whose padded keys are now masked
    already_masked: int = 0  # sites that had a mask from the lengths input (left alone)

    @property
    def added(self) -> int:
        return self.frames + self.attention


class _Track(msgspec.Struct, frozen=True):
    """A tensor on the path from the features: which axis is time, its rank, and the tensor of its frame counts."""

    name: str
    time_axis: int
    rank: int
    lengths: str


class _Builder:
    """New nodes and constants, named under one prefix."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.count = 0
        self.initializers: list[Any] = []

    def name(self, what: str) -> str:
        self.count += 1
        return f"padding_mask/{what}_{self.count}"

    def constant(self, value: Any, dtype: Any) -> str:
        import numpy as np
        from onnx import numpy_helper

        name = self.name("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: list[str], out: list[Any], **attributes: Any) -> tuple[Any, str]:
        from onnx import helper

        output = self.name(op.lower())
        node = helper.make_node(op, inputs, [output], name=output, **attributes)
        out.append(node)
        return node, output


def add_padding_masks(model: onnx.ModelProto) -> PaddingMasks:
    """Mask padded frames at the subsampling convolutions and padded keys at every self-attention, in place."""
    import numpy as np
    from onnx import TensorProto

    graph = model.graph
    inputs = _length_inputs(graph)
    if inputs is None:
        return PaddingMasks()
    features, lengths_input = inputs
    initializers = {i.name: i for i in graph.initializer}
    constant_nodes = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    from_inputs = _reachable(graph, [i.name for i in graph.input], stop_at=set())
    constants = {name for node in graph.node for name in node.output if name not in from_inputs} | set(initializers)

    def value(name: str) -> Any | None:
        """The value of a constant tensor (an initializer or a Constant node's), or None."""
        from onnx import helper, numpy_helper

        if name in initializers:
            return numpy_helper.to_array(initializers[name])
        node = constant_nodes.get(name)
        if node is None:
            return None
        attribute = next((a for a in node.attribute if a.name == "value"), None)
        return None if attribute is None else numpy_helper.to_array(helper.get_attribute_value(attribute))

    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    from_audio = _reachable(graph, [features], stop_at={"Shape", "Size"})
    from_lengths = _reachable(graph, [lengths_input], stop_at=set())

    def masked_by(tensor: str) -> bool:
        """`tensor` is already masked: made by a Where/Mul/Add with an operand from the lengths, not the audio."""
        node = producers.get(tensor)
        if node is None or node.op_type not in _MASKING:
            return False
        return any(i in from_lengths and i not in from_audio for i in node.input)

    build = _Builder(graph)
    before: dict[int, list[Any]] = {}  # id of a node -> new nodes to insert right before it
    head: list[Any] = []  # new nodes reading only the lengths input: at the start of the graph
    lengths = build.node("Cast", [lengths_input], head, to=TensorProto.INT64)[1]
    frames = attention = already = 0

    # Walk from the features through the ops that keep frames apart, to every convolution that mixes frames.
    encoded_lengths: str | None = None
    frontier = [_Track(features, 2, 3, lengths)]
    seen: set[str] = set()
    while frontier:
        track = frontier.pop()
        if track.name in seen:
            continue
        seen.add(track.name)
        for node in consumers.get(track.name, []):
            if node.input[0] != track.name and node.op_type not in _WITH_CONSTANT and node.op_type != "Where":
                continue
            following = _follow(node, track, value, constants)
            if following is None and node.op_type in _MASKING and masked_by(node.output[0]):
                following = _Track(node.output[0], track.time_axis, track.rank, track.lengths)
            if following is not None:
                frontier.append(following)
                continue
            if node.op_type not in _CONVOLUTIONS or node.input[0] != track.name:
                continue
            kernel, stride, pads, dilation = _conv_geometry(node, initializers, track.time_axis)
            if kernel > 1:
                masked_input = track.name
                quantizer = producers.get(track.name)
                if node.op_type == "ConvInteger" and quantizer is not None:
                    masked_input = quantizer.input[0]  # zero the float frames before DynamicQuantizeLinear
                if masked_by(masked_input):
                    already += 1
                else:
                    site = quantizer if node.op_type == "ConvInteger" and quantizer is not None else node
                    new = before.setdefault(id(site), [])
                    valid = _valid_frames(build, new, masked_input, track.time_axis, track.rank, track.lengths)
                    zero = build.constant(0.0, np.float32)
                    masked = build.node("Where", [valid, masked_input, zero], new)[1]
                    site.input[0] = masked
                    frames += 1
            numerator = build.constant(pads - dilation * (kernel - 1) - 1, np.int64)
            shifted = build.node("Add", [track.lengths, numerator], head)[1]
            divided = build.node("Div", [shifted, build.constant(stride, np.int64)], head)[1]
            out_lengths = build.node("Add", [divided, build.constant(1, np.int64)], head)[1]
            encoded_lengths = out_lengths
            frontier.append(_Track(node.output[0], track.time_axis, track.rank, out_lengths))

    for node in graph.node:
        if node.op_type != "Softmax":
            continue
        scores = node.input[0]
        if masked_by(scores):
            already += 1
            continue
        if encoded_lengths is None or _softmax_axis(node) not in (-1, 3):
            raise ValueError(f"{node.name}: no subsampling convolution found to tell the attention's key lengths")
        new = before.setdefault(id(node), [])
        valid = _valid_frames(build, new, scores, 3, 4, encoded_lengths)  # keys: the last axis of (B, H, T, T)
        filled = build.constant(MASKED_SCORE, np.float32)
        node.input[0] = build.node("Where", [valid, scores, filled], new)[1]
        attention += 1

    if frames or attention:
        rebuilt = head + [new for n in graph.node for new in (*before.get(id(n), []), n)]
        del graph.node[:]
        graph.node.extend(rebuilt)
        graph.initializer.extend(build.initializers)
    return PaddingMasks(frames=frames, attention=attention, already_masked=already)


def _length_inputs(graph: onnx.GraphProto) -> tuple[str, str] | None:
    """The (features (B, F, T) float, lengths (B,) integer) inputs of an encoder graph, or None."""
    from onnx import TensorProto

    features = lengths = None
    for value in graph.input:
        tensor = value.type.tensor_type
        rank = len(tensor.shape.dim)
        if tensor.elem_type == TensorProto.FLOAT and rank == 3:
            features = value.name if features is None else ""
        elif tensor.elem_type in (TensorProto.INT64, TensorProto.INT32) and rank == 1:
            lengths = value.name if lengths is None else ""
    return (features, lengths) if features and lengths else None


def _reachable(graph: onnx.GraphProto, sources: Iterable[str], stop_at: set[str]) -> set[str]:
    """Every tensor computed from `sources` (the graph is in topological order), not through `stop_at` ops."""
    reached = set(sources)
    for node in graph.node:
        if node.op_type not in stop_at and any(i in reached for i in node.input):
            reached.update(node.output)
    return reached


def _follow(node: Any, track: _Track, value: Callable[[str], Any], constants: set[str]) -> _Track | None:
    """Where `track`'s frames are in `node`'s output, for ops that keep each frame apart; None for any other op."""
    from onnx import helper

    op = node.op_type
    if op in _ELEMENTWISE or op == "DynamicQuantizeLinear":
        return _Track(node.output[0], track.time_axis, track.rank, track.lengths)
    if op in _WITH_CONSTANT:
        others = [i for i in node.input if i != track.name]
        if len(others) == 1 and others[0] in constants:
            return _Track(node.output[0], track.time_axis, track.rank, track.lengths)
        return None
    if op == "Transpose":
        perm = next((list(helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm"), None)
        if perm is None:
            return None
        return _Track(node.output[0], perm.index(track.time_axis), track.rank, track.lengths)
    axes_value = value(node.input[1]) if op == "Unsqueeze" and len(node.input) > 1 else None
    if axes_value is not None:
        rank = track.rank + int(axes_value.size)
        axes = sorted(int(a) % rank for a in axes_value.reshape(-1))
        axis = track.time_axis
        for inserted in axes:
            if inserted <= axis:
                axis += 1
        return _Track(node.output[0], axis, rank, track.lengths)
    return None


def _conv_geometry(node: Any, initializers: dict[str, Any], time_axis: int) -> tuple[int, int, int, int]:
    """(kernel, stride, begin + end padding, dilation) of a Conv/ConvInteger along the time axis of its input."""
    from onnx import helper

    spatial = time_axis - 2
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    weight = initializers.get(node.input[1])
    shape = list(weight.dims) if weight is not None else list(attributes.get("kernel_shape", []))
    kernel = int(shape[2 + spatial] if weight is not None else shape[spatial])
    rank = len(shape) - 2 if weight is not None else len(shape)
    strides = list(attributes.get("strides", [1] * rank))
    dilations = list(attributes.get("dilations", [1] * rank))
    pads = list(attributes.get("pads", [0] * (2 * rank)))
    if attributes.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError(f"{node.name}: auto_pad is not supported")
    return kernel, int(strides[spatial]), int(pads[spatial] + pads[spatial + rank]), int(dilations[spatial])


def _softmax_axis(node: Any) -> int:
    from onnx import helper

    return next((int(helper.get_attribute_value(a)) for a in node.attribute if a.name == "axis"), -1)


def _valid_frames(build: _Builder, out: list[Any], tensor: str, axis: int, rank: int, lengths: str) -> str:
    """A boolean tensor broadcasting against `tensor`: true where the index along `axis` is below the row's length."""
    import numpy as np

    shape = build.node("Shape", [tensor], out, start=axis, end=axis + 1)[1]
    count = build.node("Squeeze", [shape, build.constant([0], np.int64)], out)[1]
    frames = build.node("Range", [build.constant(0, np.int64), count, build.constant(1, np.int64)], out)[1]
    row_lengths = build.node("Unsqueeze", [lengths, build.constant([1], np.int64)], out)[1]
    valid = build.node("Less", [frames, row_lengths], out)[1]  # (B, T)
    spread = [d for d in range(1, rank) if d != axis]  # (B, T) -> rank dims with T at `axis`, ones elsewhere
    if spread:
        valid = build.node("Unsqueeze", [valid, build.constant(spread, np.int64)], out)[1]
    return valid
