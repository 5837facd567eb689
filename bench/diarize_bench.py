"""diarize() on long inputs: real-time factor and peak RSS (issue 10, item 6). A script, never a timed test.

    uv run python -m bench.diarize_bench                         # 10 min and 1 h, 3 rounds, 2 threads
    uv run python -m bench.diarize_bench --sizes 10m --rounds 5
    uv run python -m bench.diarize_bench --sizes 10m --step-frames 80,160   # compare window steps, alternated
    uv run python -m bench.diarize_bench --sizes 10m --transcribe tiny.en   # and plain transcription, alternated

The inputs are `bench/server_bench.py`'s (`bench/out/inputs/speech_<size>.wav`: the three recordings of
`tests/data` in turn with 0.7 s pauses and a 20 s near-silence every 3 min; built once, reused). Every run is a fresh
subprocess: it loads the VAD and the speaker encoder, warms them up on 2 s of audio, reads its RSS, then times one
`diarize(path, encoder)` over the file (decoded incrementally, as the server does) and reads its peak RSS
(`VmHWM`). Variants (window steps) are alternated within each round so they see the same machine state; the
report gives medians with min-max. The first lines say the command, the CPU and the load average before and after.

With `--transcribe MODEL`, each round also runs `bench/server_bench.py`'s direct transcription (the server's pipeline
without HTTP, plain json: no word timings) on the same file in a fresh subprocess, and the report adds
(transcription + diarization) / transcription: what `diarized_json` would cost over `json` if it ran diarize() after
the transcription (issue 10, item 6 asks for at most 1.3).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.server_bench import NUM_THREADS as TRANSCRIBE_THREADS
from bench.server_bench import (
    build_input,
    cpu_model,
    load_average,
    parse_size,
    proc_status_kb,
    run_direct,
    wav_seconds,
)


def child(path: Path, threads: int, step_frames: int | None) -> None:
    """Run one diarization and print its figures as one JSON line."""
    import numpy as np

    import app.diarization.diarize as diarization
    from app.diarization.speaker_encoder import SpeakerEncoder
    from app.worker.threads import configure_threads

    configure_threads(threads)
    encoder = SpeakerEncoder.load(num_threads=threads)
    if step_frames is not None:
        diarization.STEP_FRAMES = step_frames
    warm = np.random.default_rng(0).standard_normal(32_000).astype(np.float32) * 0.1
    diarization.diarize(warm, encoder)
    rss_ready = proc_status_kb(os.getpid(), "VmRSS")
    started = time.perf_counter()
    segments = diarization.diarize(path, encoder)
    seconds = time.perf_counter() - started
    audio = wav_seconds(path)
    print(
        json.dumps(
            {
                "audio": audio,
                "seconds": seconds,
                "rtf": seconds / audio,
                "rss_ready_mb": rss_ready / 1024,
                "peak_mb": proc_status_kb(os.getpid(), "VmHWM") / 1024,
                "speakers": len({s.speaker for s in segments}),
                "turns": len(segments),
            }
        )
    )


def run_child(path: Path, threads: int, step_frames: int | None) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.diarize_bench", "--child", str(path), "--threads", str(threads)]
    if step_frames is not None:
        command += ["--step-frames", str(step_frames)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spread(values: list[float], spec: str) -> str:
    return f"{statistics.median(values):{spec}} ({min(values):{spec}}-{max(values):{spec}})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.diarize_bench")
    parser.add_argument("--sizes", default="10m,1h", help="comma-separated <n>s|m|h (default 10m,1h)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--step-frames", default="", help="window steps to compare (default: the app's own)")
    parser.add_argument("--transcribe", metavar="MODEL", help="also time plain transcription with MODEL (tiny.en)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    steps: list[int | None] = [int(s) for s in args.step_frames.split(",") if s] or [None]
    if args.child is not None:
        child(args.child, args.threads, steps[0])
        return 0
    print("command:", " ".join(["python -m bench.diarize_bench", *(argv if argv is not None else sys.argv[1:])]))
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs visible, {args.threads} threads")
    print("load average before:", load_average())
    sizes = [(text, parse_size(text)) for text in args.sizes.split(",") if text]
    inputs = {text: build_input(seconds, text) for text, seconds in sizes}
    results: dict[tuple[str, int | None], list[dict[str, float]]] = {}
    transcribed: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for text, _seconds in sizes:
            if args.transcribe:
                direct = run_direct(inputs[text], args.transcribe, None)
                transcribed.setdefault(text, []).append(direct.wall_seconds)
            for step in steps:
                results.setdefault((text, step), []).append(run_child(inputs[text], args.threads, step))
    print("load average after:", load_average())
    print()
    print("| input | step (frames) | audio s | diarize s | RTF | RSS ready MB | peak RSS MB | speakers |")
    print("|---|---|---|---|---|---|---|---|")
    for (text, step), runs in results.items():
        print(
            f"| {text} | {step or 'default'} | {runs[0]['audio']:.0f} | {spread([r['seconds'] for r in runs], '.2f')} "
            f"| {spread([r['rtf'] for r in runs], '.4f')} | {spread([r['rss_ready_mb'] for r in runs], '.0f')} "
            f"| {spread([r['peak_mb'] for r in runs], '.0f')} | {sorted({int(r['speakers']) for r in runs})} |"
        )
    for text, times in transcribed.items():
        per_round = [
            (t + r["seconds"]) / t for t, r in zip(times, results[(text, steps[0])], strict=True)
        ]  # one run's ratio: the transcription and the diarization of the same round
        audio = results[(text, steps[0])][0]["audio"]
        print(
            f"\n{text}: plain transcription ({args.transcribe}, {TRANSCRIBE_THREADS} threads) "
            f"{spread(times, '.2f')} s, RTF {spread([t / audio for t in times], '.4f')}; "
            f"(transcription + diarization) / transcription {spread(per_round, '.3f')}"
        )
    print(f"\n{args.rounds} rounds; medians with (min-max).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
