"""Machine translation of text on CTranslate2: OPUS-MT (Marian) per language pair, or NLLB-200 for any pair.

Models live in MODELS_DIR:
- `opus-mt-{src}-{tgt}/`: a CTranslate2 conversion of Helsinki-NLP/opus-mt-{src}-{tgt} (model.bin, config.json,
  shared_vocabulary.*, source.spm, target.spm). Make one with
  `ct2-transformers-converter --model Helsinki-NLP/opus-mt-en-ru --output_dir MODELS_DIR/opus-mt-en-ru
  --copy_files source.spm target.spm` (needs transformers + torch, once, anywhere).
- `nllb-200-distilled-600M/` (optional): a CTranslate2 conversion of facebook/nllb-200-distilled-600M with its
  `sentencepiece.bpe.model` (same converter, `--copy_files sentencepiece.bpe.model`). Used for pairs that have no
  OPUS-MT model on disk.
When a pair's model is missing, `hub_repo` (a template; by default TRANSLATION_HUB_REPO =
"gaudi/opus-mt-{src}-{tgt}-ctranslate2", public CTranslate2 conversions of OPUS-MT) names a hub repo holding such a
conversion and it is downloaded on first use; without one (or when the hub is unreachable) the error
names the model and how to make it.

`TranslationCatalog.resolve` picks (and if need be fetches) the model of a pair; `load_translation_model` loads
one (a resident model of kind `translation`); `translate_text` does the work. All block: run them in the worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from app.errors import InvalidInput, ModelUnavailable
from app.settings import HubSettings
from app.weights.hub import download_repo_files

LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")
SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")
MAX_BATCH = 16
MAX_DECODING = 256  # tokens; a sentence's translation is bounded by twice its length plus a margin
MAX_TEXT_CHARS = 100_000
NLLB_DIR = "nllb-200-distilled-600M"

# ISO 639-1 -> NLLB-200 (FLORES) codes for the languages this appliance cares about.
NLLB_CODES = {
    "en": "eng_Latn",
    "ru": "rus_Cyrl",
    "uk": "ukr_Cyrl",
    "de": "deu_Latn",
    "fr": "fra_Latn",
    "es": "spa_Latn",
    "it": "ita_Latn",
    "pt": "por_Latn",
    "nl": "nld_Latn",
    "pl": "pol_Latn",
    "tr": "tur_Latn",
    "zh": "zho_Hans",
    "ja": "jpn_Jpan",
    "ko": "kor_Hang",
    "ar": "arb_Arab",
    "hi": "hin_Deva",
}


class TranslationModel(msgspec.Struct, frozen=True):
    name: str  # directory name under MODELS_DIR
    kind: str  # "opus-mt" or "nllb"


def opus_mt_name(source: str, target: str) -> str:
    return f"opus-mt-{source}-{target}"


def split_sentences(text: str) -> list[list[str]]:
    """Lines of sentences: each non-empty line split after sentence-ending punctuation."""
    return [[s for s in SENTENCE_END.split(line.strip()) if s] for line in text.splitlines()]


Downloader = Callable[[str, Path], None]


OPUS_MT_FILES = ["model.bin", "config.json", "source.spm", "target.spm", "shared_vocabulary.*"]


def hub_downloader(hub: HubSettings) -> Downloader:
    """Fetching a CTranslate2 OPUS-MT conversion into a folder with the project's one downloader (resume, hash
    checks, atomic placement, fails fast when the hub is unreachable), from HF_ENDPOINT with HF_TOKEN."""

    def download(repo_id: str, dest: Path) -> None:
        endpoint, token = hub.hf_endpoint or None, hub.hf_token or None
        download_repo_files(repo_id, OPUS_MT_FILES, dest, endpoint=endpoint, token=token, progress=False)

    return download


hub_download = hub_downloader(HubSettings())  # huggingface.co, no token


class TranslationCatalog:
    """Which translation model serves a language pair, fetched into `models_dir` on first use when `hub_repo` is set."""

    def __init__(self, models_dir: Path, *, hub_repo: str | None = None, downloader: Downloader = hub_download) -> None:
        self.models_dir = models_dir
        self.hub_repo = hub_repo
        self.downloader = downloader

    def resolve(self, source: str, target: str) -> TranslationModel:
        """The model for a pair: OPUS-MT on disk, else NLLB on disk, else OPUS-MT from the hub, else an error."""
        for code, about in ((source, "source_language"), (target, "target_language")):
            if not LANGUAGE_CODE.match(code):
                raise InvalidInput(f"Invalid language code '{code}': use an ISO 639-1 code like 'en'", about=about)
        if source == target:
            raise InvalidInput("source_language and target_language are the same", about="target_language")
        opus = opus_mt_name(source, target)
        if (self.models_dir / opus / "model.bin").is_file():
            return TranslationModel(opus, "opus-mt")
        if (self.models_dir / NLLB_DIR / "model.bin").is_file():
            if source not in NLLB_CODES or target not in NLLB_CODES:
                raise InvalidInput(
                    f"Unsupported language pair {source}->{target}: no {opus} model in MODELS_DIR, and the NLLB model "
                    f"here knows only {', '.join(sorted(NLLB_CODES))}",
                    about="target_language",
                )
            return TranslationModel(NLLB_DIR, "nllb")
        if self.hub_repo:
            repo = self.hub_repo.format(src=source, tgt=target)
            try:
                self.downloader(repo, self.models_dir / opus)
            except Exception as exc:
                raise ModelUnavailable(
                    f"Translation model {opus} is not in MODELS_DIR and could not be downloaded from {repo} "
                    f"({type(exc).__name__}). {self._how_to(source, target)}"
                ) from None
            if (self.models_dir / opus / "model.bin").is_file():
                return TranslationModel(opus, "opus-mt")
        raise ModelUnavailable(f"Translation model {opus} is not in MODELS_DIR. {self._how_to(source, target)}")

    def _how_to(self, source: str, target: str) -> str:
        opus = opus_mt_name(source, target)
        return (
            f"Convert it once with `ct2-transformers-converter --model Helsinki-NLP/{opus} --output_dir "
            f"{self.models_dir / opus} --copy_files source.spm target.spm`, or put a CTranslate2 conversion of "
            f"facebook/nllb-200-distilled-600M in {self.models_dir / NLLB_DIR}"
        )


class LoadedTranslation:
    """A translation model in memory: CTranslate2 translator + SentencePiece tokenizers."""

    def __init__(self, model: TranslationModel, translator: Any, source_sp: Any, target_sp: Any) -> None:
        self.model = model
        self.translator = translator
        self.source_sp = source_sp
        self.target_sp = target_sp

    def translate_sentences(self, sentences: list[str], source: str, target: str) -> list[str]:
        # Both families were trained with </s> closing the source, as the Hugging Face tokenizers add it.
        tokens: list[list[str]] = [[*self.source_sp.encode(s, out_type=str), "</s>"] for s in sentences]
        prefix: list[list[str]] | None = None
        if self.model.kind == "nllb":
            tokens = [[NLLB_CODES[source], *t] for t in tokens]
            prefix = [[NLLB_CODES[target]] for _ in tokens]
        longest = max(len(t) for t in tokens)
        results = self.translator.translate_batch(
            tokens,
            target_prefix=prefix,
            max_batch_size=MAX_BATCH,
            beam_size=2,
            max_decoding_length=min(MAX_DECODING, 2 * longest + 16),
        )
        out: list[str] = []
        for result in results:
            hyp = list(result.hypotheses[0])
            if self.model.kind == "nllb" and hyp and hyp[0] == NLLB_CODES[target]:
                hyp = hyp[1:]
            out.append(str(self.target_sp.decode(hyp)).strip())
        return out


def load_translation_model(models_dir: Path, model: TranslationModel, *, num_threads: int) -> LoadedTranslation:
    import ctranslate2
    import sentencepiece as spm

    path = models_dir / model.name
    try:
        translator = ctranslate2.Translator(str(path), device="cpu", inter_threads=1, intra_threads=num_threads)
        if model.kind == "nllb":
            source_sp = target_sp = spm.SentencePieceProcessor(model_file=str(path / "sentencepiece.bpe.model"))
        else:
            source_sp = spm.SentencePieceProcessor(model_file=str(path / "source.spm"))
            target_sp = spm.SentencePieceProcessor(model_file=str(path / "target.spm"))
    except (RuntimeError, OSError, ValueError) as exc:
        raise ModelUnavailable(
            f"Translation model {model.name} in MODELS_DIR could not be loaded ({type(exc).__name__}); "
            "re-create it with ct2-transformers-converter"
        ) from None
    return LoadedTranslation(model, translator, source_sp, target_sp)


def translate_text(
    text: str,
    source: str,
    target: str,
    catalog: TranslationCatalog,
    get_model: Callable[[TranslationModel], LoadedTranslation],
) -> tuple[str, TranslationModel]:
    """`text` from `source` into `target` (ISO 639-1 codes), sentence by sentence, lines kept; and the model used.

    `get_model` gives the loaded model (the residency manager's, in the server).
    """
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"text is longer than {MAX_TEXT_CHARS} characters", about="text")
    model = catalog.resolve(source, target)
    if not text.strip():
        return text.strip(), model
    loaded = get_model(model)
    lines = split_sentences(text)
    sentences = [s for line in lines for s in line]
    translated = iter(loaded.translate_sentences(sentences, source, target))
    out_lines = [" ".join(next(translated) for _ in line) for line in lines]
    return "\n".join(out_lines).strip(), model
