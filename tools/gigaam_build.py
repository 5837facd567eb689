"""Build a random-weight GigaAM model (CTC or RNN-T) of the real architecture, exported as the published ones are.

For tests (tiny, builds in about a second) and benchmarks (full, 220.7 M parameters for v3). The Conformer comes
from PyPI `gigaam` 0.1.0 (its `ConformerEncoder`, `CTCHead` and `RNNTHead`), which is the **v2** architecture. The
**v3** shape differs only in a few settings taken from its published config, implemented here: a conv1d striding
subsampling (kernel 5) in place of the conv2d one, layer norm in place of batch norm in the convolution module,
conv kernel 5. The export follows gigaam's own `to_onnx`: traced with a batch of one (so, like the published graphs,
no attention mask), CTC as one graph, RNN-T as encoder, decoder and joint graphs with gigaam's input/output names.

    python -m tools.gigaam_build --size tiny --version v3 --out /tmp/v3_ctc [--int8]
    python -m tools.gigaam_build --size full --version v3 --head rnnt --out /tmp/v3_rnnt --int8

writes `v3_ctc.onnx` (or `v3_rnnt_{encoder,decoder,joint}.onnx`), their `.int8.onnx` copies, `v3_vocab.txt`,
`config.json`: load it with `onnx_asr.load_model("gigaam-v3-ctc", out)` or
`app.engines.registry.load_engine("v3_ctc", EngineSettings(models_dir=out.parent))`.
Exporting the full model peaks near 4 GB of RAM: do it offline, never in the server.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from tools import torchaudio_stub

Version = Literal["v2", "v3"]
Size = Literal["tiny", "full"]
Head = Literal["ctc", "rnnt"]

# GigaAM's character vocabulary: word separator, 32 Russian letters (no "ё"), then the CTC blank.
VOCAB = ("▁", *"абвгдежзийклмнопрстуфхцчшщъыьэюя")
NUM_CLASSES = len(VOCAB) + 1  # + blank
FEATURES = 64

SIZES: dict[Size, dict[str, int]] = {
    "tiny": {"n_layers": 2, "d_model": 64, "n_heads": 4, "ff_expansion_factor": 2},
    "full": {"n_layers": 16, "d_model": 768, "n_heads": 16, "ff_expansion_factor": 4},
}
CONV_KERNEL: dict[Version, int] = {"v2": 31, "v3": 5}
PRED_HIDDEN = 320  # GigaAM's RNN-T prediction network and joint width (onnx-asr's GigaamV2Rnnt.PRED_HIDDEN)
BLANK = NUM_CLASSES - 1


def import_gigaam() -> Any:
    """Import PyPI gigaam with the pure-torch torchaudio stand-in in place (only while it imports)."""
    installed = torchaudio_stub.install()
    try:
        import gigaam
    finally:
        if installed:
            torchaudio_stub.uninstall()
    return gigaam


class Conv1dSubsampling(nn.Module):
    """v3's striding subsampling: conv1d (kernel 5, stride 2) + ReLU, log2(factor) times, then a linear layer."""

    def __init__(self, subsampling_factor: int, feat_in: int, feat_out: int, conv_channels: int) -> None:
        super().__init__()
        self._sampling_num = int(math.log(subsampling_factor, 2))
        self._stride = 2
        self._kernel_size = 5
        self._padding = (self._kernel_size - 1) // 2
        layers: list[nn.Module] = []
        in_channels = feat_in
        for _ in range(self._sampling_num):
            layers.append(
                nn.Conv1d(in_channels, conv_channels, self._kernel_size, stride=self._stride, padding=self._padding)
            )
            layers.append(nn.ReLU())
            in_channels = conv_channels
        self.conv = nn.Sequential(*layers)
        self.out = nn.Linear(conv_channels, feat_out)

    def calc_output_length(self, lengths: Tensor) -> Tensor:
        lengths = lengths.to(torch.float)
        add_pad = 2 * self._padding - self._kernel_size
        for _ in range(self._sampling_num):
            lengths = torch.floor(torch.div(lengths + add_pad, self._stride) + 1.0)
        return lengths.to(dtype=torch.int)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        # x: (batch, time, features), like 0.1.0's StridingSubsampling.
        x = self.conv(x.transpose(1, 2)).transpose(1, 2)
        return self.out(x), self.calc_output_length(lengths)


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channel axis of a (batch, channels, time) tensor (v3's `conv_norm_type="layer_norm"`)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class GigaamCtc(nn.Module):
    """Encoder + CTC head: (features (B, 64, T), lengths (B,)) -> log_probs (B, T/4, 34). The exported graph."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, features: Tensor, feature_lengths: Tensor) -> Tensor:
        encoded, _ = self.encoder(features, feature_lengths)
        out: Tensor = self.head(encoded)
        return out


def build_encoder(version: Version, size: Size) -> nn.Module:
    """A random-weight GigaAM Conformer encoder: (features (B, 64, T), lengths (B,)) -> ((B, d, T/4), lengths)."""
    gigaam = import_gigaam()
    from gigaam.encoder import ConformerEncoder

    dims = SIZES[size]
    encoder = ConformerEncoder(
        feat_in=FEATURES,
        subsampling_factor=4,
        self_attention_model="rotary",
        conv_kernel_size=CONV_KERNEL[version],
        **dims,
    )
    if version == "v3":
        d_model = dims["d_model"]
        encoder.pre_encode = Conv1dSubsampling(4, FEATURES, d_model, d_model)
        for layer in encoder.layers:
            layer.conv.batch_norm = ChannelLayerNorm(d_model)
    del gigaam
    return encoder


def build_model(version: Version = "v3", size: Size = "tiny", *, seed: int = 0) -> GigaamCtc:
    """Construct a random-weight GigaAM CTC model (eval mode) of the given architecture version and size."""
    import_gigaam()
    from gigaam.decoder import CTCHead

    torch.manual_seed(seed)
    encoder = build_encoder(version, size)
    head = CTCHead(feat_in=SIZES[size]["d_model"], num_classes=NUM_CLASSES)
    # Default init gives near-uniform logits whose argmax is the same class on every frame (one token per chunk);
    # a unit-variance projection makes the random model emit varied "words", like a trained (peaky) CTC head.
    with torch.no_grad():
        head.decoder_layers[0].weight.normal_(0.0, 0.5)
        head.decoder_layers[0].bias[0] += 7.0  # word separator
        head.decoder_layers[0].bias[NUM_CLASSES - 1] += 9.0  # blank
    return GigaamCtc(encoder, head).eval()


class GigaamRnnt(nn.Module):
    """Encoder + RNN-T head (gigaam's `RNNTHead`: an LSTM prediction network and a joint network)."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head


def build_rnnt(version: Version = "v3", size: Size = "tiny", *, seed: int = 0) -> GigaamRnnt:
    """Construct a random-weight GigaAM RNN-T model (eval mode): the CTC model's encoder, GigaAM's RNN-T head."""
    import_gigaam()
    from gigaam.decoder import RNNTHead

    torch.manual_seed(seed)
    encoder = build_encoder(version, size)
    d_model = SIZES[size]["d_model"]
    head = RNNTHead(
        decoder={"pred_hidden": PRED_HIDDEN, "pred_rnn_layers": 1, "num_classes": NUM_CLASSES},
        joint={
            "enc_hidden": d_model,
            "pred_hidden": PRED_HIDDEN,
            "joint_hidden": PRED_HIDDEN,
            "num_classes": NUM_CLASSES,
        },
    )
    # Like the CTC head: a trained joint emits blank on most frames and a letter or a word separator on some; the
    # greedy decoder's work (one prediction-network step per emitted token) follows that rate.
    with torch.no_grad():
        last = head.joint.joint_net[-1]
        last.weight.normal_(0.0, 0.5)
        last.bias[0] += 4.5  # word separator
        last.bias[BLANK] += 6.25
    return GigaamRnnt(encoder, head).eval()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def feature_extractor(version: Version) -> nn.Module:
    """The log-mel features each version was trained on: (B, samples) -> (B, 64, frames)."""
    v3 = version == "v3"
    n_fft = 320 if v3 else 400
    mel = torchaudio_stub.MelSpectrogram(
        sample_rate=16000, n_fft=n_fft, win_length=n_fft, hop_length=160, n_mels=FEATURES, center=not v3
    )
    return _LogMel(mel)


class _LogMel(nn.Module):
    def __init__(self, mel: nn.Module) -> None:
        super().__init__()
        self.mel = mel

    def forward(self, audio: Tensor) -> Tensor:
        out: Tensor = self.mel(audio)
        return torch.log(out.clamp(1e-9, 1e9))


def _export(
    module: nn.Module,
    inputs: tuple[Tensor, ...],
    path: Path,
    names: tuple[list[str], list[str]],
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> None:
    """torch.onnx.export as gigaam's `onnx_converter` calls it (TorchScript exporter, opset 17)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            inputs,
            str(path),
            input_names=names[0],
            output_names=names[1],
            dynamic_axes=dynamic_axes,
            opset_version=17,
            dynamo=False,
        )


def _encoder_example() -> tuple[Tensor, Tensor]:
    """gigaam's `ConformerEncoder.input_example()`: one 2 s utterance of zeros."""
    return torch.zeros(1, FEATURES, 200), torch.full([1], 200)


def export_onnx(model: GigaamCtc, path: Path) -> None:
    """Export with a dynamic batch and time axis (inputs `features`, `feature_lengths`; output `log_probs`)."""
    dynamic = {
        "features": {0: "batch_size", 2: "seq_len"},
        "feature_lengths": {0: "batch_size"},
        "log_probs": {0: "batch_size", 1: "seq_len"},
    }
    _export(model, _encoder_example(), path, (["features", "feature_lengths"], ["log_probs"]), dynamic)


class _RnntEncoder(nn.Module):
    """The encoder as gigaam exports it for RNN-T: lengths out as int32 (onnx-asr checks the type)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, audio_signal: Tensor, length: Tensor) -> tuple[Tensor, Tensor]:
        encoded, encoded_len = self.encoder(audio_signal, length)
        return encoded, encoded_len.to(torch.int32)


def export_rnnt(model: GigaamRnnt, out: Path, prefix: str) -> list[Path]:
    """Write `<prefix>_encoder.onnx`, `<prefix>_decoder.onnx`, `<prefix>_joint.onnx` as gigaam's `to_onnx` does."""
    paths = [out / f"{prefix}_{part}.onnx" for part in ("encoder", "decoder", "joint")]
    dynamic = {
        "audio_signal": {0: "batch_size", 2: "seq_len"},
        "length": {0: "batch_size"},
        "encoded": {0: "batch_size", 1: "seq_len"},
        "encoded_len": {0: "batch_size"},
    }
    _export(
        _RnntEncoder(model.encoder),
        _encoder_example(),
        paths[0],
        (["audio_signal", "length"], ["encoded", "encoded_len"]),
        dynamic,
    )
    decoder, joint = model.head.decoder, model.head.joint
    # Input and output state share a name in gigaam (`h`, `c`); the exporter renames the inputs `h.1`, `c.1`.
    _export(decoder, decoder.input_example(), paths[1], (["x", "h.1", "c.1"], ["dec", "h", "c"]))
    _export(joint, joint.input_example(), paths[2], (["enc", "dec"], ["joint"]))
    return paths


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the weights (what onnx-asr's published `*.int8.onnx` files are)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def write_model_dir(
    out: Path, *, version: Version = "v3", size: Size = "tiny", int8: bool = False, seed: int = 0, head: Head = "ctc"
) -> Path:
    """Build, export and lay out the graphs [+ `.int8.onnx` copies], `<version>_vocab.txt`, `config.json`."""
    out.mkdir(parents=True, exist_ok=True)
    if head == "ctc":
        model = build_model(version, size, seed=seed)
        graphs = [out / f"{version}_ctc.onnx"]
        export_onnx(model, graphs[0])
    else:
        rnnt = build_rnnt(version, size, seed=seed)
        graphs = export_rnnt(rnnt, out, f"{version}_rnnt")
    if int8:
        for graph in graphs:
            quantize_int8(graph, graph.with_suffix(".int8.onnx"))
    vocab = [*VOCAB, "<blk>"]
    (out / f"{version}_vocab.txt").write_text("".join(f"{tok} {i}\n" for i, tok in enumerate(vocab)), "utf-8")
    config: dict[str, object] = {"version": version, "features_size": FEATURES, "subsampling_factor": 4}
    (out / "config.json").write_text(json.dumps(config), "utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--version", choices=["v2", "v3"], default="v3")
    parser.add_argument("--head", choices=["ctc", "rnnt"], default="ctc")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--int8", action="store_true", help="also write a dynamic int8 quantized copy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = write_model_dir(
        args.out, version=args.version, size=args.size, int8=args.int8, seed=args.seed, head=args.head
    )
    print(f"wrote {args.version} {args.size} {args.head.upper()} model to {out}")


if __name__ == "__main__":
    main()
