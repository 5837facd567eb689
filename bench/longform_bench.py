"""Chunking's cost in words (issue 25): WER through the server against the engine's own long-form decoding.

    uv run python -m bench.longform_bench                      # tiny.en, synthetic-1..3 and real-1
    uv run python -m bench.longform_bench --sets synthetic-1 --variants server
    VAD_NEW_CHUNK_THRESHOLD=0.2 uv run python -m bench.longform_bench   # the server's settings come from the env

For each long-form set (`bench/longform_sets.py`: espeak-ng reading the CC0 legal code with pauses of 0.2-2.5 s and
two passages of more than 30 s without a pause; tests/data's recordings with pauses; each about 10 minutes):

- `server`: a real server (`python -m app`, MODEL=tiny.en, this environment's settings) transcribes the file
  (`response_format=json`); its WER against the reference, and where its errors lie: within 2 s after a chunk's
  start or before its end (the chunks are those the server's pipeline makes, recomputed here with its settings);
- `engine`: faster-whisper alone on the whole file with its own long-form loop (30 s windows, previous text as
  prompt, temperature fallback), the same model and greedy decoding, no VAD: the reference for what chunking costs.

Both decode greedily, but faster-whisper falls back to sampling at higher temperatures where a window's output looks
like a loop or is too improbable (its long-form loop does so more often than the server's short chunks), so a text
can change from run to run: each variant runs `--rounds` times per set and the WERs are medians (min-max). Report:
`bench/out/longform.md` (and stdout).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

import app  # noqa: F401  (telemetry off before onnxruntime loads)
from bench import ab
from bench.longform_sets import LongformSet, load
from tests.server import ServerProcess
from tools.textmetrics import normalize_words, word_error_rate

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
EDGE_SECONDS = 2.0


def server_text(corpus: LongformSet, model: str, models_dir: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"MODEL": model, "ALLOWED_MODELS": model, "MODELS_DIR": str(models_dir), "MAX_AUDIO_SECONDS": "0"}
        server = ServerProcess(env, log_path=Path(tmp) / "server.log")
        try:
            response = httpx.post(
                f"{server.url}/v1/audio/transcriptions",
                files={"file": (corpus.wav.name, corpus.wav.read_bytes(), "audio/wav")},
                data={"model": model, "response_format": "json"},
                timeout=3600,
            )
            response.raise_for_status()
            return str(response.json()["text"])
        finally:
            server.stop()


def engine_text(corpus: LongformSet, model: str, models_dir: Path) -> str:
    """faster-whisper's own long-form decoding of the whole file, with the model the server loads."""
    from app.audio.decode import decode_all
    from app.engines.registry import load_engine
    from app.engines.whisper import WhisperEngine
    from app.settings import load_settings
    from app.worker.threads import configure_threads

    settings = load_settings({"MODEL": model, "MODELS_DIR": str(models_dir), "NUM_THREADS": "2"})  # as the server
    configure_threads(settings.engines.num_threads)
    engine = load_engine(model, settings.engines, settings.hub)
    if not isinstance(engine, WhisperEngine):
        raise SystemExit(f"{model}: the engine-alone variant is Whisper's long-form loop")
    language = "en" if engine.english_only else None
    segments, _ = engine.model.transcribe(
        decode_all(corpus.wav), language=language, beam_size=engine.beam_size, vad_filter=False
    )
    return " ".join(segment.text.strip() for segment in segments)


def chunk_bounds(corpus: LongformSet) -> tuple[list[float], list[float]]:
    """Starts and ends (seconds) of the chunks the server's pipeline cuts this file into (its settings)."""
    from app.engines.protocol import Decoding
    from app.settings import load_settings
    from app.transcription.pipeline import TranscriptionRun
    from app.worker.cancel import CancelToken

    settings = load_settings()
    run = TranscriptionRun(corpus.wav, None, Decoding(), audio=settings.audio, cancel=CancelToken())  # type: ignore[arg-type]
    chunks = [chunk for chunk, _ in run.chunk_stream()]
    return [c.start / 16000 for c in chunks[1:]], [c.end / 16000 for c in chunks[:-1]]


def alignment(reference: list[str], hypothesis: list[str]) -> list[tuple[str, int]]:
    """Levenshtein alignment: (operation, reference index) for each edit ('=', 'S', 'D', 'I')."""
    n, m = len(reference), len(hypothesis)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            same = reference[i - 1] == hypothesis[j - 1]
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (not same))
    ops: list[tuple[str, int]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            ops.append(("=" if reference[i - 1] == hypothesis[j - 1] else "S", i - 1))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            ops.append(("D", i - 1))
            i -= 1
        else:
            ops.append(("I", max(i - 1, 0)))
            j -= 1
    return ops[::-1]


def word_times(corpus: LongformSet) -> list[float]:
    """Each reference word's time, spread evenly over its sentence (espeak-ng and the readers keep a steady rate)."""
    times = []
    for sentence in corpus.sentences:
        words = normalize_words(sentence.text)
        times += [sentence.start + (sentence.end - sentence.start) * (k + 0.5) / len(words) for k in range(len(words))]
    return times


def edge_errors(corpus: LongformSet, hypothesis: str, starts: list[float], ends: list[float]) -> dict[str, int]:
    """Errors (and reference words) within EDGE_SECONDS after a chunk start / before a chunk end, and elsewhere."""
    times = word_times(corpus)

    def place(t: float) -> str:
        if any(0 <= e - t < EDGE_SECONDS for e in ends):
            return "end"
        if any(0 <= t - s < EDGE_SECONDS for s in starts):
            return "start"
        return "inside"

    counts = {f"{kind}_{where}": 0 for kind in ("errors", "words") for where in ("start", "end", "inside")}
    for t in times:
        counts[f"words_{place(t)}"] += 1
    for op, index in alignment(normalize_words(corpus.reference), normalize_words(hypothesis)):
        if op != "=":
            counts[f"errors_{place(times[min(index, len(times) - 1)])}"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="synthetic-1,synthetic-2,synthetic-3,real-1")
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--models-dir", type=Path, default=Path(os.environ.get("MODELS_DIR", OUT / "models")))
    parser.add_argument("--variants", default="server,engine")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT / "longform.md")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    load_before = os.getloadavg()
    rows = []
    for name in args.sets.split(","):
        corpus = load(name)
        row: dict[str, object] = {"set": name, "minutes": corpus.seconds / 60, "words": len(corpus.reference.split())}
        for _ in range(args.rounds):
            if "server" in variants:
                text = server_text(corpus, args.model, args.models_dir)
                row.setdefault("server", []).append(word_error_rate(corpus.reference, text))  # type: ignore[union-attr]
                if "errors_start" not in row:  # where the first run's errors lie
                    row.update(edge_errors(corpus, text, *chunk_bounds(corpus)))
            if "engine" in variants:
                wer = word_error_rate(corpus.reference, engine_text(corpus, args.model, args.models_dir))
                row.setdefault("engine", []).append(wer)  # type: ignore[union-attr]
        print(row, file=sys.stderr, flush=True)
        rows.append(row)
    lines = report(rows, args.model, load_before, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def report(
    rows: list[dict[str, object]], model: str, load_before: tuple[float, float, float], rounds: int
) -> list[str]:
    def fmt(values: object) -> str:
        return ab.spread(values, "{:.4f}") if isinstance(values, list) else "-"

    def median(values: object) -> float | None:
        return statistics.median(values) if isinstance(values, list) and values else None

    def share(row: dict[str, object], where: str) -> str:
        errors, words = row.get(f"errors_{where}"), row.get(f"words_{where}")
        if not isinstance(errors, int) or not isinstance(words, int) or not words:
            return "-"
        return f"{errors}/{words} ({errors / words:.2f})"

    settings = " ".join(f"{k}={os.environ[k]}" for k in sorted(os.environ) if k.startswith(("VAD_", "BATCH_SIZE")))
    la = os.getloadavg()
    lines = [
        f"# Long-form WER: the server vs {model}'s own long-form decoding",
        "",
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: {ab.machine()}",
        f"- Command: `{shlex.join([*(settings.split() if settings else []), 'uv', 'run', 'python', *sys.argv])}`",
        f"- Load average before: {' '.join(f'{x:.2f}' for x in load_before)}; after: {' '.join(f'{x:.2f}' for x in la)}"
        " (WER does not depend on load)",
        f"- Rounds: {rounds} per variant and set; WER median (min-max)",
        f"- Error placement: errors per reference word within {EDGE_SECONDS:.0f} s after a chunk start, within "
        f"{EDGE_SECONDS:.0f} s before a chunk end, and elsewhere (word times spread evenly over their sentence)",
        "",
        "| set | minutes | words | server WER | engine alone WER | server - engine | errors after a start |"
        " errors before an end | errors elsewhere |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        server, engine = median(row.get("server")), median(row.get("engine"))
        gap = f"{server - engine:+.4f}" if server is not None and engine is not None else "-"
        lines.append(
            f"| {row['set']} | {row['minutes']:.1f} | {row['words']} | {fmt(row.get('server'))} | "
            f"{fmt(row.get('engine'))} | {gap} | "
            f"{share(row, 'start')} | {share(row, 'end')} | {share(row, 'inside')} |"
        )
    servers = [m for r in rows if (m := median(r.get("server"))) is not None]
    engines = [m for r in rows if (m := median(r.get("engine"))) is not None]
    if servers and engines and len(servers) == len(engines) == len(rows):
        mean_server, mean_engine = statistics.mean(servers), statistics.mean(engines)
        gap = mean_server - mean_engine
        lines.append(f"| mean of the medians | | | {mean_server:.4f} | {mean_engine:.4f} | {gap:+.4f} | | | |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
