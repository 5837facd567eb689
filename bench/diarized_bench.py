"""The cost of who-said-what: response_format=diarized_json vs json with the same model, and memory in audio length.

    uv run python bench/diarized_bench.py                      # tiny.en, 10 min, 3 rounds, + one 1 h diarized run
    uv run python bench/diarized_bench.py --model v3_ctc --models-dir bench/out/models --rounds 5 --long-minutes 0

Each variant runs in a fresh process (bench/ab.py; interleaved rounds, so drift hits both alike) on the same audio:
the test recordings (tests/data) tiled to --minutes of speech, written once as a 16 kHz WAV in bench/out/. A
variant does what the route does for its format, through the same services (`Transcriber`, `Diarizer` on the
Runner), after loading the models (load time is not counted):
- json: the transcription without word timings (ADR 21);
- diarized_json: the transcription with word timings, the speaker turns (`Diarizer.who_spoke`), and the split of
  segments by speaker (`split_by_speaker`).
Seconds are wall time of that work, CPU seconds the process's CPU time over it (all threads; less moved by
neighbours on a shared machine); ratios diarized_json / json are paired per round. Peak RSS is the process's
(`ru_maxrss`), measured for diarized_json at --minutes and at --long-minutes (one run) to show whether memory grows
with the length of the audio. Writes bench/out/diarized.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import app  # noqa: E402, F401  (first: telemetry off before onnxruntime loads)
from bench import ab  # noqa: E402
from tests.server import AUDIO  # noqa: E402

OUT = ROOT / "bench" / "out"
SOURCES = ("two_cities.wav", "endgame_nagg_nell.wav", "beckett.wav")


def speech_file(minutes: float) -> Path:
    """The test recordings tiled to `minutes`, as a 16 kHz mono 16-bit WAV (made once)."""
    import av

    from app.audio.decode import decode_all

    path = OUT / f"speech_{minutes:g}min.wav"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    one = np.concatenate([decode_all(AUDIO / name) for name in SOURCES])
    total = round(minutes * 60 * 16000)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        written = 0
        while written < total:
            piece = one[: total - written]
            for i in range(0, piece.size, 16000 * 10):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(piece[None, i : i + 16000 * 10]), format="flt", layout="mono"
                )
                frame.rate = 16000
                for packet in stream.encode(frame):
                    out.mux(packet)
            written += piece.size
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def cpu_seconds() -> float:
    """CPU time of this process, all threads (less sensitive than wall time to neighbours on a shared machine)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(fmt: str, path: Path, model: str, models_dir: str, threads: int) -> dict[str, float]:
    from app.api.deps import Services
    from app.diarization.speakers import split_by_speaker
    from app.settings import load_settings
    from app.transcription.request import TranscriptionRequest
    from app.worker.cancel import CancelToken

    env = {"MODEL": model, "ALLOWED_MODELS": model, "NUM_THREADS": str(threads), "LOG_LEVEL": "WARNING"}
    if models_dir:
        env["MODELS_DIR"] = models_dir
    services = Services(load_settings(env, dotenv=None))

    async def main() -> dict[str, float]:
        cancel = CancelToken()
        await services.runner.run(lambda: services.transcriber.engine(model), cancel)  # load, not timed
        await services.runner.run(services.diarizer.encoder, cancel)
        plan = services.transcriber.plan(TranscriptionRequest(model=model, words=fmt != "json"))
        started, cpu_started = time.monotonic(), cpu_seconds()
        transcript = (await services.transcriber.transcribe(path, plan, cancel)).transcript
        if fmt == "json":
            segments = len(transcript.segments)
        else:
            turns = await services.diarizer.who_spoke(path, [], cancel=cancel)
            segments = len(split_by_speaker(transcript.segments, turns.segments, turns.names))
        seconds = time.monotonic() - started
        return {
            "seconds": seconds,
            "cpu_seconds": cpu_seconds() - cpu_started,
            "rtf": seconds / transcript.duration,
            "segments": float(segments),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }

    try:
        return asyncio.run(main())
    finally:
        services.runner.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--models-dir", default="", help="MODELS_DIR (tiny.en needs none: it is bundled)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--long-minutes", type=float, default=60.0, help="0: skip the memory run on long audio")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=("json", "diarized_json"), help=argparse.SUPPRESS)
    parser.add_argument("--audio", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.audio), args.model, args.models_dir, args.threads)))
        return 0

    def command(fmt: str, audio: Path) -> list[str]:
        return [
            sys.executable, str(Path(__file__).resolve()), "--child", fmt, "--audio", str(audio), "--model",
            args.model, "--models-dir", args.models_dir, "--threads", str(args.threads),
        ]  # fmt: skip

    audio = speech_file(args.minutes)
    variants = [ab.Variant(fmt, command(fmt, audio)) for fmt in ("json", "diarized_json")]
    results = ab.run(variants, args.rounds, cwd=ROOT)
    long: dict[str, float] | None = None
    if args.long_minutes > 0:
        long_audio = speech_file(args.long_minutes)
        done = subprocess.run(command("diarized_json", long_audio), cwd=ROOT, check=True, capture_output=True)
        long = json.loads(done.stdout.decode().strip().splitlines()[-1])
    lines = ab.header(f"diarized_json vs json: {args.model}, {args.minutes:g} min of speech", results)
    lines += [
        "| format | seconds | CPU seconds | RTF | peak RSS MB |",
        "|---|---|---|---|---|",
    ]
    for name in results.variants:
        lines.append(
            f"| {name} | {ab.spread(results.values(name, 'seconds'), '{:.1f}')} | "
            f"{ab.spread(results.values(name, 'cpu_seconds'), '{:.1f}')} | "
            f"{ab.spread(results.values(name, 'rtf'))} | {ab.spread(results.values(name, 'peak_rss_mb'), '{:.0f}')} |"
        )
    ratio = results.paired_ratios("diarized_json", "json", "seconds")
    cpu_ratio = results.paired_ratios("diarized_json", "json", "cpu_seconds")
    lines += [
        "",
        f"- Time ratio diarized_json / json (paired per round): {ab.spread(ratio)}",
        f"- CPU-time ratio diarized_json / json (paired per round): {ab.spread(cpu_ratio)}",
    ]
    if long is not None:
        short_rss = results.values("diarized_json", "peak_rss_mb")
        lines.append(
            f"- Peak RSS of diarized_json: {ab.spread(short_rss, '{:.0f}')} MB at {args.minutes:g} min, "
            f"{long['peak_rss_mb']:.0f} MB at {args.long_minutes:g} min (one run: {long['seconds']:.0f} s, "
            f"RTF {long['rtf']:.3f})"
        )
    report = "\n".join(lines) + "\n"
    (OUT / "diarized.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
