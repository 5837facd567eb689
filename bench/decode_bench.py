"""Decoding speed of `app.audio.decode` (file -> 16 kHz mono float32), one checkout against another.

    uv run python -m bench.decode_bench --baseline /tmp/main-checkout --rounds 5 [--minutes 10]

Each round decodes the same inputs with the baseline checkout's decoder and with this one's, each in a fresh process
(`bench/ab.py`): 16 kHz mono s16 WAV (no resampling), 48 kHz stereo s16 WAV and 44.1 kHz stereo MP3 (a downmix and
a resampling each), `--minutes` long, made once from tests/data into bench/out/inputs/. Figures: CPU seconds per
input (`decode_all`, whole file). Report: bench/out/decode.md (and stdout).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ROOT / "bench" / "out" / "inputs"
FORMATS = ("wav_16k_mono", "wav_48k_stereo", "mp3_44k_stereo")


def inputs(minutes: float) -> dict[str, Path]:
    """The three inputs (made once; reused while their length matches)."""
    sys.path.insert(0, str(ROOT))
    from app.audio.decode import decode_all
    from tests.audio_factory import tiled_wav
    from tests.audio_helpers import encode

    INPUTS.mkdir(parents=True, exist_ok=True)
    tag = f"{minutes:g}m"
    paths = {name: INPUTS / f"decode_{name}_{tag}.{'mp3' if 'mp3' in name else 'wav'}" for name in FORMATS}
    if not all(p.exists() for p in paths.values()):
        mono = tiled_wav(ROOT / "tests" / "data" / "beckett.wav", paths["wav_16k_mono"], minutes * 60)
        audio = decode_all(mono)
        encode(paths["wav_48k_stereo"], audio, codec="pcm_s16le", rate=48000, layout="stereo")
        encode(paths["mp3_44k_stereo"], audio, codec="libmp3lame", rate=44100, layout="stereo")
    return paths


def measure(checkout: Path, minutes: float) -> dict[str, float]:
    """CPU seconds to decode each input with the decoder of `checkout` (this process imports only that one)."""
    paths = {name: INPUTS / f"decode_{name}_{minutes:g}m.{'mp3' if 'mp3' in name else 'wav'}" for name in FORMATS}
    sys.path.insert(0, str(checkout))
    from app.audio.decode import decode_all

    figures = {}
    for name, path in paths.items():
        started = time.process_time()
        audio = decode_all(path)
        figures[f"{name}_cpu_s"] = round(time.process_time() - started, 3)
        assert abs(audio.size / 16000 - minutes * 60) < 1.0, (name, audio.size)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="the checkout to compare against (e.g. a worktree of main)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one variant's process
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.minutes)))
        return
    from bench import ab

    inputs(args.minutes)
    variants = [
        ab.Variant(
            name,
            [sys.executable, "-m", "bench.decode_bench", "--measure", str(checkout), "--minutes", str(args.minutes)],
        )
        for name, checkout in (("baseline", args.baseline.resolve()), ("this", ROOT))
    ]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    lines = ab.header(f"Decoding {args.minutes:g} min of audio: baseline ({args.baseline}) vs this checkout", results)
    lines += ["| input | baseline CPU s | this CPU s | this / baseline |", "|---|---|---|---|"]
    for name in FORMATS:
        figure = f"{name}_cpu_s"
        ratios = results.paired_ratios("this", "baseline", figure)
        lines.append(
            f"| {name} | {ab.spread(results.values('baseline', figure), '{:.2f}')} "
            f"| {ab.spread(results.values('this', figure), '{:.2f}')} | {ab.spread(ratios, '{:.2f}')} |"
        )
    report = "\n".join(lines) + "\n"
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "out" / "decode.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
