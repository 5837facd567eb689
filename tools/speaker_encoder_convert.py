"""Convert Resemblyzer's speaker encoder (`pretrained.pt`, Apache-2.0) once into the ONNX file the app ships.

    python -m tools.speaker_encoder_convert [OUT]     (default OUT: app/diarization/data/speaker_encoder.onnx)

The network is Resemblyzer's `VoiceEncoder`: a 3-layer LSTM (40 mel bands -> 256), the last layer's hidden state at
the last frame -> Linear 256 -> 256 -> ReLU -> L2 normalisation. `ReferenceEncoder` rebuilds it in torch on the
weights of the installed `resemblyzer` package, which is found with `importlib.util.find_spec` and never imported
(its import needs `pkg_resources`, gone from current setuptools). torch and resemblyzer are needed only here and in
the test that checks the converted file against this reference (`tests/unit/test_speaker_encoder.py`).

The export is deterministic: float32 weights as in the checkpoint, TorchScript exporter, fixed opset; re-running it
writes the same bytes. The licence notice shipped beside the file is `app/diarization/data/SPEAKER_ENCODER_LICENSE`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "app" / "diarization" / "data" / "speaker_encoder.onnx"
MEL_BANDS = 40
HIDDEN = 256
LAYERS = 3
OPSET = 17


def pretrained_path() -> Path:
    """`pretrained.pt` inside the installed `resemblyzer` package (located without importing it)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the `resemblyzer` package is not installed (it holds pretrained.pt)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
    if not path.is_file():
        raise FileNotFoundError(f"speaker encoder weights not found at {path}")
    return path


class ReferenceEncoder(nn.Module):
    """Resemblyzer's VoiceEncoder network: (batch, frames, 40) power mel frames -> (batch, 256) unit embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(MEL_BANDS, HIDDEN, LAYERS, batch_first=True)
        self.linear = nn.Linear(HIDDEN, HIDDEN)
        self.relu = nn.ReLU()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = self.relu(self.linear(hidden[-1]))
        normed: torch.Tensor = raw / torch.norm(raw, dim=1, keepdim=True).clamp_min(1e-9)
        return normed


def load_reference(path: Path | None = None) -> ReferenceEncoder:
    """The reference network with Resemblyzer's weights (its `similarity_*` training parameters are dropped)."""
    checkpoint = torch.load(path or pretrained_path(), map_location="cpu", weights_only=True)
    state = {k: v for k, v in checkpoint["model_state"].items() if not k.startswith("similarity_")}
    model = ReferenceEncoder()
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def export_onnx(model: ReferenceEncoder, out: Path) -> None:
    """ONNX with input `mels` (batch, frames, 40) and output `embeddings` (batch, 256); batch and frames dynamic."""
    out.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 160, MEL_BANDS)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and batch_first LSTM notes
        torch.onnx.export(
            model,
            (example,),
            str(out),
            input_names=["mels"],
            output_names=["embeddings"],
            dynamic_axes={"mels": {0: "batch", 1: "frames"}, "embeddings": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    source = pretrained_path()
    export_onnx(load_reference(source), out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{source} -> {out} ({out.stat().st_size} bytes, sha256 {digest})")


if __name__ == "__main__":
    main(sys.argv[1:])
