"""Build a random-weight GigaAM CTC model of the real architecture and export it in the layout onnx-asr loads.

For tests (tiny, builds in about a second) and benchmarks (full, 220.7 M parameters for v3). The Conformer comes
from PyPI `gigaam` 0.1.0 (its `ConformerEncoder` and `CTCHead`), which is the **v2** architecture. The **v3** shape
differs only in a few settings taken from its published config, implemented here: a conv1d striding subsampling
(kernel 5) in place of the conv2d one, layer norm in place of batch norm in the convolution module, conv kernel 5.

    python -m tools.gigaam_build --size tiny --version v3 --out /tmp/v3_ctc [--int8]

writes `v3_ctc.onnx` (+ `v3_ctc.int8.onnx`), `v3_vocab.txt`, `config.json`: load it with
`onnx_asr.load_model("gigaam-v3-ctc", out)` or
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

# GigaAM's character vocabulary: word separator, 32 Russian letters (no "ё"), then the CTC blank.
VOCAB = ("▁", *"абвгдежзийклмнопрстуфхцчшщъыьэюя")
NUM_CLASSES = len(VOCAB) + 1  # + blank
FEATURES = 64

SIZES: dict[Size, dict[str, int]] = {
    "tiny": {"n_layers": 2, "d_model": 64, "n_heads": 4, "ff_expansion_factor": 2},
    "full": {"n_layers": 16, "d_model": 768, "n_heads": 16, "ff_expansion_factor": 4},
}
CONV_KERNEL: dict[Version, int] = {"v2": 31, "v3": 5}


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


def build_model(version: Version = "v3", size: Size = "tiny", *, seed: int = 0) -> GigaamCtc:
    """Construct a random-weight GigaAM CTC model (eval mode) of the given architecture version and size."""
    gigaam = import_gigaam()
    from gigaam.decoder import CTCHead
    from gigaam.encoder import ConformerEncoder

    torch.manual_seed(seed)
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
    head = CTCHead(feat_in=dims["d_model"], num_classes=NUM_CLASSES)
    # Default init gives near-uniform logits whose argmax is the same class on every frame (one token per chunk);
    # a unit-variance projection makes the random model emit varied "words", like a trained (peaky) CTC head.
    with torch.no_grad():
        head.decoder_layers[0].weight.normal_(0.0, 0.5)
        head.decoder_layers[0].bias[0] += 7.0  # word separator
        head.decoder_layers[0].bias[NUM_CLASSES - 1] += 9.0  # blank
    del gigaam
    return GigaamCtc(encoder, head).eval()


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


def export_onnx(model: GigaamCtc, path: Path) -> None:
    """Export with a dynamic batch and time axis (inputs `features`, `feature_lengths`; output `log_probs`)."""
    features = torch.randn(2, FEATURES, 400)
    lengths = torch.tensor([400, 300], dtype=torch.int64)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (features, lengths),
            str(path),
            input_names=["features", "feature_lengths"],
            output_names=["log_probs"],
            dynamic_axes={
                "features": {0: "batch_size", 2: "seq_len"},
                "feature_lengths": {0: "batch_size"},
                "log_probs": {0: "batch_size", 1: "seq_len"},
            },
            opset_version=17,
            dynamo=False,
        )


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the weights (what onnx-asr's published `*.int8.onnx` files are)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def write_model_dir(
    out: Path, *, version: Version = "v3", size: Size = "tiny", int8: bool = False, seed: int = 0
) -> Path:
    """Build, export and lay out `<version>_ctc.onnx` [+ `.int8.onnx`], `<version>_vocab.txt`, `config.json`."""
    out.mkdir(parents=True, exist_ok=True)
    model = build_model(version, size, seed=seed)
    onnx_path = out / f"{version}_ctc.onnx"
    export_onnx(model, onnx_path)
    del model
    if int8:
        quantize_int8(onnx_path, out / f"{version}_ctc.int8.onnx")
    vocab = [*VOCAB, "<blk>"]
    (out / f"{version}_vocab.txt").write_text("".join(f"{tok} {i}\n" for i, tok in enumerate(vocab)), "utf-8")
    config: dict[str, object] = {"version": version, "features_size": FEATURES, "subsampling_factor": 4}
    (out / "config.json").write_text(json.dumps(config), "utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--version", choices=["v2", "v3"], default="v3")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--int8", action="store_true", help="also write a dynamic int8 quantized copy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = write_model_dir(args.out, version=args.version, size=args.size, int8=args.int8, seed=args.seed)
    print(f"wrote {args.version} {args.size} CTC model to {out}")


if __name__ == "__main__":
    main()
