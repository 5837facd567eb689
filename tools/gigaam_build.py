"""Build a random-weight GigaAM model (CTC or RNN-T) of the real architecture, exported as the published ones are.

For tests (tiny, builds in about a second) and benchmarks (full: 220.7 M parameters for v3 and Multilingual CTC,
585.3 M for Multilingual large CTC). The Conformer comes from PyPI `gigaam` 0.1.0 (its `ConformerEncoder`, `CTCHead`
and `RNNTHead`), which is the **v2** architecture. The **v3** shape differs only in a few settings taken from its
published config, implemented here: a conv1d striding subsampling (two kernel-5 convolutions, no output projection)
in place of the conv2d one, layer norm in place of batch norm in the convolution module, conv kernel 5.

**Multilingual** (`ai-sage/GigaAM-Multilingual`, revisions `ctc` and `large_ctc`) is v3's Conformer with a
70-character vocabulary (71 classes): 16 x 768 for `ctc`, 24 x 1024 (16 heads) for `large_ctc`. The published large
fp32 graph's external data (2 343 837 696 bytes) is exactly this encoder's weights, the head's weight and the rotary
tables (2 x 5000 x 64), 585 959 424 floats (ADR 50).

The export follows gigaam's own `to_onnx` of the time each model was published: v2/v3 (December 2024 / November
2025) traced with a batch of one (no attention mask in the graph), log-probs out; Multilingual (June 2026) traced
as gigaam has since April 2026, with a batch of eight utterances of random lengths (so the graph holds the
attention mask: batched inference is exact) and the encoded lengths as a second output; the large fp32 graph keeps
its weights in one `.onnx.data` file next to it, as published. RNN-T: encoder, decoder and joint graphs with
gigaam's input/output names.

    python -m tools.gigaam_build --size tiny --version v3 --out /tmp/v3_ctc [--int8]
    python -m tools.gigaam_build --size full --version v3 --head rnnt --out /tmp/v3_rnnt --int8
    python -m tools.gigaam_build --size full --version multilingual --revision large_ctc --int8 --out /tmp/ml_large

writes `v3_ctc.onnx` (or `v3_rnnt_{encoder,decoder,joint}.onnx`, `multilingual_ctc.onnx`,
`multilingual_large_ctc.onnx` + `.onnx.data`), their `.int8.onnx` copies, the vocabulary (`v3_vocab.txt`,
`multilingual_vocab.txt`) and `config.json`: load it with `onnx_asr.load_model("gigaam-v3-ctc", out)` or
`app.engines.registry.load_engine("v3_ctc", EngineSettings(models_dir=out.parent))` (the folder named as the model).
Exporting the full v3 model peaks near 4 GB of RAM, the large Multilingual one near 10 GB: do it offline, never in
the server.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from tools import torchaudio_stub

Version = Literal["v2", "v3", "multilingual"]
Size = Literal["tiny", "full"]
Head = Literal["ctc", "rnnt"]
Revision = Literal["ctc", "large_ctc"]  # of ai-sage/GigaAM-Multilingual

# GigaAM's character vocabulary: word separator, 32 Russian letters (no "ё"), then the CTC blank.
VOCAB = ("▁", *"абвгдежзийклмнопрстуфхцчшщъыьэюя")
NUM_CLASSES = len(VOCAB) + 1  # + blank
# Multilingual's 70 characters: the separator first and the blank last (onnx-asr's `multilingual_vocab.txt`, 393
# bytes, holds exactly these: apostrophe, a-z, the Russian alphabet with "ё", nine Kazakh/Kyrgyz letters); the order
# in between is ours (it cannot be read offline, and random weights do not care).
MULTILINGUAL_VOCAB = ("▁", "'", *"abcdefghijklmnopqrstuvwxyz", *"абвгдежзийклмнопрстуфхцчшщъыьэюяё", *"әғқңөұүһі")
FEATURES = 64

SIZES: dict[Size, dict[str, int]] = {
    "tiny": {"n_layers": 2, "d_model": 64, "n_heads": 4, "ff_expansion_factor": 2},
    "full": {"n_layers": 16, "d_model": 768, "n_heads": 16, "ff_expansion_factor": 4},
}
LARGE = {"n_layers": 24, "d_model": 1024, "n_heads": 16, "ff_expansion_factor": 4}  # Multilingual `large_ctc`
CONV_KERNEL: dict[Version, int] = {"v2": 31, "v3": 5, "multilingual": 5}
PRED_HIDDEN = 320  # GigaAM's RNN-T prediction network and joint width (onnx-asr's GigaamV2Rnnt.PRED_HIDDEN)
BLANK = NUM_CLASSES - 1
TRACE_BATCH = 8  # gigaam's `ConformerEncoder.input_example()` since April 2026 (batch 1 before)


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
    """v3's striding subsampling: conv1d (kernel 5, stride 2) + ReLU, log2(factor) times; no output projection (gigaam
    has one for conv2d only: its conv1d channels are already d_model).

    `mask_padding`: zero the padded frames before each convolution and after it (gigaam PR #75, June 2026), so that
    a short utterance batched with longer ones sees the zeros it sees alone."""

    def __init__(self, subsampling_factor: int, feat_in: int, channels: int, *, mask_padding: bool = False) -> None:
        super().__init__()
        self._sampling_num = int(math.log(subsampling_factor, 2))
        self._stride = 2
        self._kernel_size = 5
        self._padding = (self._kernel_size - 1) // 2
        self._mask_padding = mask_padding
        layers: list[nn.Module] = []
        in_channels = feat_in
        for _ in range(self._sampling_num):
            layers.append(
                nn.Conv1d(in_channels, channels, self._kernel_size, stride=self._stride, padding=self._padding)
            )
            layers.append(nn.ReLU())
            in_channels = channels
        self.conv = nn.Sequential(*layers)

    def calc_output_length(self, lengths: Tensor, stages: int | None = None) -> Tensor:
        lengths = lengths.to(torch.float)
        add_pad = 2 * self._padding - self._kernel_size
        for _ in range(self._sampling_num if stages is None else stages):
            lengths = torch.floor(torch.div(lengths + add_pad, self._stride) + 1.0)
        return lengths.to(dtype=torch.int)

    @staticmethod
    def _zero_padding(x: Tensor, lengths: Tensor) -> Tensor:
        padded = torch.arange(x.size(2), device=x.device)[None, :] >= lengths[:, None]
        return x.masked_fill(padded[:, None], 0.0)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        # x: (batch, time, features), like 0.1.0's StridingSubsampling.
        x = x.transpose(1, 2)
        if not self._mask_padding:
            return self.conv(x).transpose(1, 2), self.calc_output_length(lengths)
        current = lengths
        x = self._zero_padding(x, current)
        for module in self.conv:
            x = module(x)
            if isinstance(module, nn.Conv1d):
                current = self.calc_output_length(current, 1)
                x = self._zero_padding(x, current)
        return x.transpose(1, 2), self.calc_output_length(lengths)


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channel axis of a (batch, channels, time) tensor (v3's `conv_norm_type="layer_norm"`)."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class GigaamCtc(nn.Module):
    """Encoder + CTC head: (features (B, 64, T), lengths (B,)) -> log_probs (B, T/4, classes) [, encoded lengths (B,)].
    The exported graph; `lengths_output` as gigaam's `forward_for_export` since April 2026."""

    def __init__(self, encoder: nn.Module, head: nn.Module, *, lengths_output: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.lengths_output = lengths_output

    def forward(self, features: Tensor, feature_lengths: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        encoded, encoded_lengths = self.encoder(features, feature_lengths)
        out: Tensor = self.head(encoded)
        return (out, encoded_lengths) if self.lengths_output else out


def dims_of(version: Version, size: Size, revision: Revision = "ctc") -> dict[str, int]:
    """The Conformer's layers, width, heads and feed-forward factor for this model at this size."""
    if size == "full" and version == "multilingual" and revision == "large_ctc":
        return LARGE
    return SIZES[size]


def vocabulary(version: Version) -> tuple[str, ...]:
    """The model's tokens without the blank (the blank is the last class)."""
    return MULTILINGUAL_VOCAB if version == "multilingual" else VOCAB


def build_encoder(
    version: Version, size: Size, *, revision: Revision = "ctc", mask_padding: bool | None = None
) -> nn.Module:
    """A random-weight GigaAM Conformer encoder: (features (B, 64, T), lengths (B,)) -> ((B, d, T/4), lengths).

    `mask_padding` (v3 shapes): see Conv1dSubsampling; by default on for Multilingual (ADR 50), off for v3."""
    gigaam = import_gigaam()
    from gigaam.encoder import ConformerEncoder

    dims = dims_of(version, size, revision)
    encoder = ConformerEncoder(
        feat_in=FEATURES,
        subsampling_factor=4,
        self_attention_model="rotary",
        conv_kernel_size=CONV_KERNEL[version],
        **dims,
    )
    if version != "v2":
        d_model = dims["d_model"]
        masked = version == "multilingual" if mask_padding is None else mask_padding
        encoder.pre_encode = Conv1dSubsampling(4, FEATURES, d_model, mask_padding=masked)
        for layer in encoder.layers:
            layer.conv.batch_norm = ChannelLayerNorm(d_model)
    # Fresh layer norms are all ones and zeros: the exporter would keep one copy of each (trained weights are all
    # distinct), so the graph would be smaller than the real one. A little noise keeps every tensor its own.
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight.normal_(1.0, 0.02)
                module.bias.normal_(0.0, 0.02)
    del gigaam
    return encoder


def build_model(
    version: Version = "v3",
    size: Size = "tiny",
    *,
    seed: int = 0,
    revision: Revision = "ctc",
    num_classes: int | None = None,
    mask_padding: bool | None = None,
    centre: bool | None = None,
) -> GigaamCtc:
    """Construct a random-weight GigaAM CTC model (eval mode) of the given architecture version and size.

    `num_classes`: tokens + blank (default: the version's character vocabulary + blank; an E2E model's SentencePiece
    vocabulary + 1). Token 0 is the word separator (`▁`), the last class the blank. `centre` (default: Multilingual):
    centre the head on real speech (`_centre_on_speech`), which a large vocabulary needs to emit more than a few
    classes."""
    import_gigaam()
    from gigaam.decoder import CTCHead

    torch.manual_seed(seed)
    classes = num_classes or len(vocabulary(version)) + 1
    encoder = build_encoder(version, size, revision=revision, mask_padding=mask_padding)
    head = CTCHead(feat_in=dims_of(version, size, revision)["d_model"], num_classes=classes)
    # Default init gives near-uniform logits whose argmax is the same class on every frame (one token per chunk);
    # a unit-variance projection makes the random model emit varied "words", like a trained (peaky) CTC head.
    with torch.no_grad():
        head.decoder_layers[0].weight.normal_(0.0, 0.5)
        if version == "multilingual" if centre is None else centre:
            _centre_on_speech(encoder.eval(), head.decoder_layers[0])
            head.decoder_layers[0].bias[0] += 3.0  # word separator
            head.decoder_layers[0].bias[classes - 1] += 5.0  # blank
        else:
            head.decoder_layers[0].bias[0] += 7.0  # word separator
            head.decoder_layers[0].bias[classes - 1] += 9.0  # blank
    return GigaamCtc(encoder, head, lengths_output=version == "multilingual").eval()


CALIBRATION_SPEECH = Path(__file__).resolve().parent.parent / "tests" / "data" / "two_cities.wav"  # 48 kHz, MIT


def _centre_on_speech(encoder: nn.Module, projection: nn.Conv1d) -> None:
    """Set the head's biases to minus each class's mean logit over 20 s of real speech.

    A random encoder maps every frame to nearly the same vector, so with 71 random classes one or two letters win
    every frame whatever the blank's bias; centred, the classes compete on how frames differ, and the blank and
    separator offsets added after this give a peaky output (mostly blank, some letters, words) on any speech."""
    import wave

    with wave.open(str(CALIBRATION_SPEECH)) as w:
        pcm = torch.frombuffer(bytearray(w.readframes(20 * w.getframerate())), dtype=torch.int16)
    audio = pcm.to(torch.float32)[::3] / 32768.0  # 48 kHz -> 16 kHz (speech band only: plain decimation will do)
    features = feature_extractor("v3")(audio[None])
    encoded, _ = encoder(features, torch.tensor([features.shape[-1]]))
    logits = nn.functional.conv1d(encoded, projection.weight)
    projection.bias.copy_(-logits.mean(dim=2)[0])


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
    v3 = version != "v2"  # Multilingual has v3's features
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


def _encoder_example(batch: int = 1) -> tuple[Tensor, Tensor]:
    """gigaam's `ConformerEncoder.input_example()`: one 2 s utterance of zeros until March 2026; since April 2026 eight
    of random features and random lengths (the first full), which puts the attention mask into the traced graph."""
    if batch == 1:
        return torch.zeros(1, FEATURES, 200), torch.full([1], 200)
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 201, (batch,), generator=generator)
    lengths[0] = 200
    return torch.randn(batch, FEATURES, 200, generator=generator), lengths


def export_onnx(model: GigaamCtc, path: Path, *, batch: int = 1, external_data: bool = False) -> None:
    """Export with a dynamic batch and time axis (inputs `features`, `feature_lengths`; outputs `log_probs` [and
    `encoded_lengths`]), traced with `batch` utterances. `external_data`: the weights go into `<name>.data` beside
    the graph, one file (how the published >2 GB graphs are laid out; torch writes one file per tensor)."""
    outputs = ["log_probs", "encoded_lengths"] if model.lengths_output else ["log_probs"]
    dynamic = {
        "features": {0: "batch_size", 2: "seq_len"},
        "feature_lengths": {0: "batch_size"},
        "log_probs": {0: "batch_size", 1: "seq_len"},
        **({"encoded_lengths": {0: "batch_size"}} if model.lengths_output else {}),
    }
    if not external_data:
        _export(model, _encoder_example(batch), path, (["features", "feature_lengths"], outputs), dynamic)
        return
    import onnx

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        exported = Path(tmp) / path.name
        _export(model, _encoder_example(batch), exported, (["features", "feature_lengths"], outputs), dynamic)
        graph = onnx.load(str(exported))  # with any external tensors torch wrote
        (path.parent / f"{path.name}.data").unlink(missing_ok=True)  # onnx would append to it
        onnx.save_model(
            graph,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{path.name}.data",
            size_threshold=1024,
            convert_attribute=True,  # the rotary tables are Constant nodes
        )
    (path.parent / f"{path.name}.data").chmod(path.stat().st_mode)  # onnx writes it 0600


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


def write_vocab(path: Path, tokens: tuple[str, ...] | list[str]) -> None:
    """onnx-asr's vocabulary file: `<token> <id>` per line, the blank `<blk>` last."""
    path.write_text("".join(f"{tok} {i}\n" for i, tok in enumerate([*tokens, "<blk>"])), "utf-8")


def multilingual_config(revision: Revision) -> str:
    """`config.json` of istupakov/gigaam-multilingual-{ctc,large-ctc}-onnx as published: v3's (135 bytes, known) with
    this model type, which makes the `ctc` one 152 bytes, the published size (ADR 49). `version` picks onnx-asr's
    `gigaam_v3` preprocessor; without it onnx-asr takes v2's, which is wrong for these models."""
    config = {
        "model_type": f"gigaam-multilingual-{revision.replace('_', '-')}",
        "version": "v3",
        "features_size": FEATURES,
        "subsampling_factor": 4,
        "max_tokens_per_step": 3,
    }
    return json.dumps(config, indent=4)


def write_model_dir(
    out: Path,
    *,
    version: Version = "v3",
    size: Size = "tiny",
    int8: bool = False,
    seed: int = 0,
    head: Head = "ctc",
    revision: Revision = "ctc",
) -> Path:
    """Build, export and lay out the graphs [+ `.int8.onnx` copies], the vocabulary and `config.json` under the
    published names. `revision` (Multilingual): `ctc` (220M) or `large_ctc` (600M at full size; external data)."""
    out.mkdir(parents=True, exist_ok=True)
    if version == "multilingual":
        if head != "ctc":
            raise ValueError("GigaAM Multilingual is CTC only")
        stem = f"multilingual_{revision}"
        graphs = [out / f"{stem}.onnx"]
        model = build_model(version, size, seed=seed, revision=revision)
        export_onnx(model, graphs[0], batch=TRACE_BATCH, external_data=revision == "large_ctc")
        write_vocab(out / "multilingual_vocab.txt", MULTILINGUAL_VOCAB)
        (out / "config.json").write_text(multilingual_config(revision), "utf-8")
    elif head == "ctc":
        model = build_model(version, size, seed=seed)
        graphs = [out / f"{version}_ctc.onnx"]
        export_onnx(model, graphs[0])
    else:
        rnnt = build_rnnt(version, size, seed=seed)
        graphs = export_rnnt(rnnt, out, f"{version}_rnnt")
    if int8:
        for graph in graphs:
            quantize_int8(graph, graph.with_suffix(".int8.onnx"))
    if version != "multilingual":
        write_vocab(out / f"{version}_vocab.txt", VOCAB)
        config: dict[str, object] = {"version": version, "features_size": FEATURES, "subsampling_factor": 4}
        (out / "config.json").write_text(json.dumps(config), "utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--version", choices=["v2", "v3", "multilingual"], default="v3")
    parser.add_argument("--head", choices=["ctc", "rnnt"], default="ctc")
    parser.add_argument("--revision", choices=["ctc", "large_ctc"], default="ctc", help="Multilingual: 220M or 600M")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--int8", action="store_true", help="also write a dynamic int8 quantized copy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = write_model_dir(
        args.out,
        version=args.version,
        size=args.size,
        int8=args.int8,
        seed=args.seed,
        head=args.head,
        revision=args.revision,
    )
    name = f"multilingual {args.revision}" if args.version == "multilingual" else f"{args.version} {args.head}"
    print(f"wrote {name} ({args.size}) to {out}")


if __name__ == "__main__":
    main()
