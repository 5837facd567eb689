"""The one registry of speech models: one entry per model says what it is, what it can do, which files it needs and
how it loads. The weights table (`python -m app download`), `/v1/models`, the checks before loading and the loaders
all read it.

    entry = find_model("v3_ctc", settings.engines.models_dir)   # InvalidInput for a name nobody knows
    folder = prepare_model(entry, settings.engines, settings.hub)  # weights on disk (fetched if needed), once
    engine = entry.loader(folder, settings.engines)                # onnxruntime / CTranslate2 sessions

Besides the table, any folder in MODELS_DIR holding a CTranslate2 Whisper conversion (`model.bin`) is a model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec

from app.engines.onnx_asr import OnnxAsrLoader
from app.engines.protocol import Engine, ModelInfo
from app.engines.whisper import WhisperLoader, whisper_info
from app.errors import InvalidInput, ModelUnavailable
from app.settings import EngineSettings, HubSettings
from app.weights.specs import ModelSpec
from app.weights.store import bundled_path, ensure_model_files, missing_files, model_dir


class ModelEntry(msgspec.Struct, frozen=True, kw_only=True):
    info: ModelInfo  # name, family, languages, whether it translates
    loader: OnnxAsrLoader | WhisperLoader  # (folder, engine settings) -> a loaded Engine
    weights: ModelSpec | None = None  # None: a conversion an operator put into MODELS_DIR (nothing to fetch)

    @property
    def name(self) -> str:
        return self.info.name


GIGAAM_MAX_SYMBOLS_PER_STEP = 10  # gigaam's RNNTGreedyDecoding(max_symbols_per_step=10); the published configs say 3


def _gigaam(version: str, kind: str, vocab: str) -> ModelEntry:
    graphs = [f"{version}_{kind}{{q}}.onnx"]
    if kind.endswith("rnnt"):
        graphs = [f"{version}_{kind}_{part}{{q}}.onnx" for part in ("encoder", "decoder", "joint")]
    info = ModelInfo(
        name=f"{version}_{kind}", family="gigaam", languages=frozenset({"ru"}), owned_by="salute-developers"
    )
    weights = ModelSpec(repo=f"istupakov/gigaam-{version}-onnx", files=(*graphs, vocab, "config.json"))
    onnx_asr_name = f"gigaam-{version}-{kind.replace('_', '-')}"
    loader = OnnxAsrLoader(
        info=info,
        onnx_asr_name=onnx_asr_name,
        frame_seconds=0.04,  # encoder frame: 10 ms feature hop x subsampling 4
        weights=weights,
        preprocessor=f"gigaam_{version}",
        max_tokens_per_step=GIGAAM_MAX_SYMBOLS_PER_STEP if kind.endswith("rnnt") else None,
    )
    return ModelEntry(info=info, loader=loader, weights=weights)


# What the GigaAM Multilingual card documents quality for (ADR 49): best in class for Russian, Kazakh, Kyrgyz and
# Uzbek, moderate for English. It was pre-trained on 70+ languages, but claims nothing for the others.
MULTILINGUAL_LANGUAGES = frozenset({"ru", "kk", "ky", "uz", "en"})


def _gigaam_multilingual(revision: str) -> ModelEntry:
    """`ctc` (220M) or `large_ctc` (600M) of ai-sage/GigaAM-Multilingual, as onnx-asr runs them: one graph per
    folder (its glob `multilingual*_ctc.onnx` would match both), the large fp32 graph's weights in `.onnx.data`."""
    name = f"multilingual_{revision}"
    info = ModelInfo(name=name, family="gigaam", languages=MULTILINGUAL_LANGUAGES, owned_by="salute-developers")
    weights = ModelSpec(
        repo=f"istupakov/gigaam-multilingual-{revision.replace('_', '-')}-onnx",
        files=(f"{name}{{q}}.onnx", "multilingual_vocab.txt", "config.json"),
        fp32_only=(f"{name}.onnx.data",) if revision == "large_ctc" else (),
    )
    loader = OnnxAsrLoader(
        info=info,
        onnx_asr_name=f"gigaam-multilingual-{revision.replace('_', '-')}",
        frame_seconds=0.04,  # v3's 10 ms feature hop x subsampling 4
        weights=weights,
        preprocessor="gigaam_v3",
    )
    return ModelEntry(info=info, loader=loader, weights=weights)


def _parakeet() -> ModelEntry:
    info = ModelInfo(
        name="nvidia/parakeet-tdt-0.6b-v2", family="parakeet", languages=frozenset({"en"}), owned_by="nvidia"
    )
    weights = ModelSpec(
        repo="istupakov/parakeet-tdt-0.6b-v2-onnx",
        files=("encoder-model{q}.onnx", "decoder_joint-model{q}.onnx", "vocab.txt", "config.json"),
        fp32_only=("encoder-model.onnx.data",),
    )
    # encoder frame: 10 ms feature hop x subsampling 8
    loader = OnnxAsrLoader(
        info=info,
        onnx_asr_name="nemo-parakeet-tdt-0.6b-v2",
        frame_seconds=0.08,
        weights=weights,
        preprocessor="nemo128",
    )
    return ModelEntry(info=info, loader=loader, weights=weights)


# faster-whisper's `download_model` fetches these (faster_whisper/utils.py: allow_patterns). CTranslate2 needs
# model.bin, config.json and vocabulary.{json,txt}; without tokenizer.json faster-whisper fetches one from the hub;
# without preprocessor_config.json it assumes 80 mel bins, which breaks the 128-bin large-v3 family.
_WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.*")
_MEL128 = ("large-v3", "large-v3-turbo", "turbo", "distil-large-v3")
# Name -> repository, as faster_whisper.utils._MODELS maps them (a test keeps the two in step).
WHISPER_REPOS: dict[str, str] = {
    **{
        size: f"Systran/faster-whisper-{size}"
        for size in ("tiny.en", "tiny", "base.en", "base", "small.en", "small", "medium.en", "medium")
    },
    **{size: f"Systran/faster-whisper-{size}" for size in ("large-v1", "large-v2", "large-v3")},
    "large-v3-turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    "turbo": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
    **{
        f"distil-{size}": f"Systran/faster-distil-whisper-{size}"
        for size in ("small.en", "medium.en", "large-v2", "large-v3")
    },
}


def whisper_entry(name: str, repo: str | None) -> ModelEntry:
    if repo is None:
        weights = None
    elif name in _MEL128:
        weights = ModelSpec(repo=repo, files=(*_WHISPER_FILES, "preprocessor_config.json"))
    else:
        weights = ModelSpec(
            repo=repo, files=_WHISPER_FILES, optional=("preprocessor_config.json",), bundled=name == "tiny.en"
        )
    return ModelEntry(info=whisper_info(name), loader=WhisperLoader(name=name), weights=weights)


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        _gigaam("v3", "ctc", "v3_vocab.txt"),
        _gigaam("v3", "rnnt", "v3_vocab.txt"),
        _gigaam("v3", "e2e_ctc", "v3_e2e_ctc_vocab.txt"),
        _gigaam("v3", "e2e_rnnt", "v3_e2e_rnnt_vocab.txt"),
        _gigaam("v2", "ctc", "v2_vocab.txt"),
        _gigaam("v2", "rnnt", "v2_vocab.txt"),
        _gigaam_multilingual("ctc"),
        _gigaam_multilingual("large_ctc"),
        _parakeet(),
        *(whisper_entry(name, repo) for name, repo in WHISPER_REPOS.items()),
    )
}


def speech_loader(
    entry: ModelEntry, batch_size: int, on_batch: Callable[[int], None] | None = None
) -> OnnxAsrLoader | WhisperLoader:
    """`entry`'s loader as the server runs it: fp32 onnx-asr engines recognise up to BATCH_SIZE chunks per
    onnxruntime run (ADR 58; `on_batch` is told each run's size), int8 ones one at a time; Whisper decodes chunk by
    chunk (ADR 15), BATCH_SIZE does not apply to it."""
    if isinstance(entry.loader, OnnxAsrLoader):
        return msgspec.structs.replace(entry.loader, batch_size=batch_size, on_batch=on_batch)
    return entry.loader


def find_model(name: str, models_dir: Path) -> ModelEntry:
    """The entry of `name`: from the table, or a CTranslate2 Whisper conversion in MODELS_DIR/<name>."""
    entry = MODELS.get(name)
    if entry is not None:
        return entry
    if (model_dir(name, models_dir) / "model.bin").is_file():
        return whisper_entry(name, None)
    raise InvalidInput(f"Unknown model '{name}'", about="model", code="model_not_found")


def prepare_model(entry: ModelEntry, engines: EngineSettings, hub: HubSettings | None = None) -> Path:
    """The folder holding `entry`'s weights, fetched first if files are missing (the one check before loading).

    Raises ModelUnavailable when they cannot be had, so the caller learns it before evicting a resident model.
    """
    if entry.weights is not None:
        return ensure_model_files(
            entry.name, entry.weights, engines.models_dir, quantization=engines.onnx_quantization, hub=hub
        )
    folder = model_dir(entry.name, engines.models_dir)
    if not (folder / "model.bin").is_file():
        raise ModelUnavailable(
            f"Whisper model {entry.name!r} is unknown and {folder} holds no CTranslate2 conversion of it: put "
            "model.bin, config.json, tokenizer.json and vocabulary.* there"
        )
    return folder


def weights_present(entry: ModelEntry, engines: EngineSettings) -> bool:
    """Whether `entry` can load without fetching anything (its files are in MODELS_DIR, or it is bundled)."""
    if entry.weights is None:
        return (model_dir(entry.name, engines.models_dir) / "model.bin").is_file()
    if not missing_files(entry.name, entry.weights, engines.models_dir, engines.onnx_quantization):
        return True
    return bundled_path(entry.weights) is not None and not model_dir(entry.name, engines.models_dir).exists()


def load_engine(name: str, engines: EngineSettings, hub: HubSettings | None = None) -> Engine:
    """Find, prepare and load `name` in one call (tests, benchmarks; the server goes through the residency)."""
    entry = find_model(name, engines.models_dir)
    return entry.loader(prepare_model(entry, engines, hub), engines)
