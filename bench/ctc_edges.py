"""What a chunk edge costs GigaAM's CTC output (issue 25), on the full-size random-weight v3 CTC.

    uv run python -m bench.ctc_edges [--sets real-1,synthetic-1] [--minutes 5]

Random weights say nothing about WER, but they do say how far the encoder's output at a frame depends on audio that
chunking takes away. For every chunk the server's pipeline cuts (`bench/longform_sets.py`, its VAD and chunker
settings), the fp32 graph runs twice: on the chunk alone (as the server does) and on the chunk with 5.12 s of the
file's audio on each side (whole 40 ms frames, so the frames line up); the chunk's frames of both are compared,
binned by their distance to the nearer chunk edge, apart for padded edges (the chunk has a full padding of pause
there) and edges shared with the neighbouring chunk (a pause shorter than two paddings, or a cut inside speech:
speech lies closer to the edge than the padding). Figures: mean and max |log-prob difference|, agreement of
the frame's best letter (blank left out: the random head emits blank almost everywhere) and of its best class.
Report: `bench/out/ctc_edges.md`.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys

import numpy as np

import app  # noqa: F401  (telemetry off before onnxruntime loads)
from bench import ab
from bench.gigaam_bench import MODELS, OUT, SR, ensure_model
from bench.longform_sets import load

FRAME = 640  # samples per encoder frame (10 ms hop, subsampling 4)
CONTEXT = 128 * FRAME  # 5.12 s
BINS = (0.0, 0.2, 0.5, 1.0, 2.0, float("inf"))
BLANK = 33


def log_probs(session: object, pre: object, audio: np.ndarray) -> np.ndarray:
    features, lengths = pre(audio[None, :], np.array([audio.size]))  # type: ignore[operator]
    out = session.run(None, {"features": features, "feature_lengths": lengths})[0][0]  # type: ignore[attr-defined]
    return np.asarray(out)


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as rt
    from onnx_asr.preprocessors.numpy_preprocessor import GigaamPreprocessorNumpy

    from app.audio.chunking import CHUNK_PADDING
    from app.audio.decode import decode_all
    from app.engines.protocol import Decoding
    from app.settings import load_settings
    from app.transcription.pipeline import TranscriptionRun
    from app.worker.cancel import CancelToken

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="real-1,synthetic-1")
    parser.add_argument("--minutes", type=float, default=5.0, help="the first minutes of each set")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    ensure_model("ctc", args.threads)
    options = rt.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = args.threads
    session = rt.InferenceSession(str(MODELS / "v3_ctc" / "v3_ctc.onnx"), options, providers=["CPUExecutionProvider"])
    pre = GigaamPreprocessorNumpy("gigaam_v3")
    settings = load_settings()
    load_before = os.getloadavg()
    # per (edge kind, bin): |diff| sums, max, letter agreements, class agreements, frames
    stats: dict[tuple[str, int], list[float]] = {}
    edges_seen = {"pause": 0, "short": 0}
    for name in args.sets.split(","):
        corpus = load(name)
        audio = decode_all(corpus.wav)
        limit = int(args.minutes * 60 * SR)
        run = TranscriptionRun(corpus.wav, None, Decoding(), audio=settings.audio, cancel=CancelToken())  # type: ignore[arg-type]
        chunks = [c for c, _ in run.chunk_stream() if c.end <= limit]
        starts, ends = {c.start for c in chunks}, {c.end for c in chunks}
        for chunk in chunks:
            before = min(CONTEXT, chunk.start // FRAME * FRAME)
            after = min(CONTEXT, audio.size - chunk.end)
            alone = log_probs(session, pre, audio[chunk.start : chunk.end])
            wide = log_probs(session, pre, audio[chunk.start - before : chunk.end + after])
            offset = before // FRAME
            frames = min(alone.shape[0], wide.shape[0] - offset)
            alone, wide = alone[:frames], wide[offset : offset + frames]
            # an edge shared with the neighbouring chunk: the pause there was shorter than two paddings
            kinds = ["short" if chunk.start in ends else "pause", "short" if chunk.end in starts else "pause"]
            for side, kind in zip(("start", "end"), kinds, strict=True):
                if (side == "start" and before) or (side == "end" and after):
                    edges_seen[kind] += 1
            times = (np.arange(frames) + 0.5) * FRAME / SR
            to_start, to_end = times, chunk.duration - times
            diff = np.abs(alone - wide).max(-1)
            letters = alone[:, :BLANK].argmax(-1) == wide[:, :BLANK].argmax(-1)
            classes = alone.argmax(-1) == wide.argmax(-1)
            for i in range(frames):
                # the nearer edge that has context to lose (the file's first start and last end have none)
                candidates = []
                if before:
                    candidates.append((to_start[i], kinds[0]))
                if after:
                    candidates.append((to_end[i], kinds[1]))
                if not candidates:
                    continue
                distance, kind = min(candidates)
                b = int(np.searchsorted(BINS, distance, side="right")) - 1
                s = stats.setdefault((kind, b), [0.0, 0.0, 0.0, 0.0, 0.0])
                s[0] += float(diff[i])
                s[1] = max(s[1], float(diff[i]))
                s[2] += float(letters[i])
                s[3] += float(classes[i])
                s[4] += 1
        print(f"{name}: {len(chunks)} chunks", file=sys.stderr, flush=True)
    la = os.getloadavg()
    lines = [
        "# GigaAM v3 CTC (full-size, random weights, fp32): a chunk's frames alone vs with 5.12 s of context",
        "",
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; machine: {ab.machine()}",
        f"- Command: `{shlex.join(['uv', 'run', 'python', *sys.argv])}`",
        f"- Load average before: {' '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{' '.join(f'{x:.2f}' for x in la)} (the figures do not depend on it)",
        f"- Edges with audio beyond them: {edges_seen['pause']} padded by a full {CHUNK_PADDING} s"
        f" of pause, {edges_seen['short']} shared with the next chunk (a pause shorter than two paddings, or"
        " a cut inside speech)",
        "",
        "| edge | distance to it | frames | mean max-abs log-prob diff | max | best-letter agreement | best-class "
        "agreement |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ("pause", "short"):
        for b in range(len(BINS) - 1):
            if (kind, b) not in stats:
                continue
            total, peak, letters, classes, n = stats[(kind, b)]
            upper = "" if BINS[b + 1] == float("inf") else f"{BINS[b + 1]:g}"
            lines.append(
                f"| {'padded' if kind == 'pause' else 'shared'} | {BINS[b]:g}-{upper} s | {int(n)} | "
                f"{total / n:.4f} | {peak:.3f} | {letters / n:.4f} | {classes / n:.4f} |"
            )
    report = "\n".join(lines) + "\n"
    (OUT / "ctc_edges.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
