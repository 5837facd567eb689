"""Build a tiny random-weight OPUS-MT-shaped (Marian) model in CTranslate2 form, laid out like a real one.

`python -m tools.marian_build OUT_DIR` writes OUT_DIR/model.bin, config.json, shared_vocabulary.*,
source.spm and target.spm: the layout `app.translation.translator` loads from MODELS_DIR/opus-mt-{src}-{tgt}/.
It goes through the same converter users run on real OPUS-MT checkpoints (`ctranslate2.converters.
TransformersConverter`, i.e. `ct2-transformers-converter --model Helsinki-NLP/opus-mt-en-ru --output_dir ...
--copy_files source.spm target.spm`). Output is gibberish, but deterministic: tests use it to exercise the real
loading and translating code. Needs transformers + torch (dev dependencies).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

SENTENCES = [
    "Hello world, this is a small test of machine translation.",
    "The meeting starts at nine in the morning.",
    "We will discuss the budget and the schedule.",
    "Please send me the notes after the call.",
    "Thank you for your time, see you tomorrow.",
    "Привет мир, это небольшая проверка машинного перевода.",
    "Встреча начинается в девять утра.",
    "Мы обсудим бюджет и расписание.",
]


def build(out_dir: Path, *, seed: int = 0, vocab_size: int = 96) -> Path:
    import ctranslate2
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="marian-build-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "corpus.txt"
        corpus.write_text("\n".join(SENTENCES * 4) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(tmp / "spm"),
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=1.0,
            pad_id=-1,
            bos_id=-1,
            eos_id=1,
            unk_id=0,
            unk_piece="<unk>",
            eos_piece="</s>",
            minloglevel=2,
        )
        processor = spm.SentencePieceProcessor(model_file=str(tmp / "spm.model"))
        pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
        vocab = {piece: i for i, piece in enumerate(pieces)}
        vocab["<pad>"] = len(vocab)
        hf = tmp / "hf"
        hf.mkdir()
        for name in ("source.spm", "target.spm"):
            shutil.copy(tmp / "spm.model", hf / name)
        (hf / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        tokenizer = MarianTokenizer(str(hf / "source.spm"), str(hf / "target.spm"), str(hf / "vocab.json"))
        tokenizer.save_pretrained(str(hf))

        torch.manual_seed(seed)
        config = MarianConfig(
            vocab_size=len(vocab),
            decoder_vocab_size=len(vocab),
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=256,
            pad_token_id=vocab["<pad>"],
            eos_token_id=vocab["</s>"],
            decoder_start_token_id=vocab["<pad>"],
            scale_embedding=True,
            share_encoder_decoder_embeddings=True,
        )
        model = MarianMTModel(config)
        model.eval()  # type: ignore[no-untyped-call]
        model.save_pretrained(str(hf))

        converter = ctranslate2.converters.TransformersConverter(str(hf), copy_files=["source.spm", "target.spm"])
        converter.convert(str(out_dir), force=True)
    return out_dir


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tools.marian_build OUT_DIR", file=sys.stderr)
        return 2
    print(build(Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
