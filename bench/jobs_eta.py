"""How good a job's ETA is (issue 23, ADR 57): a long job polled every 0.1 s on a real server, and, from the same
trace, what three estimators would have said at every poll once a quarter was done.

    uv run python -m bench.jobs_eta [--rounds 3] [--minutes 10] [--model tiny.en]

Each round is a fresh server (`NUM_THREADS=2`) transcribing `two_cities.wav` tiled to `--minutes` as one job. The
trace is each progress report (seen by the first poll after it) and the server's `eta_seconds` at each poll. For the
polls after a quarter of the audio (and before the last tenth of the run), against the time that really remained:

- `server`: the server's own figure (a running job's recent pace, each earlier report weighing PACE_DECAY (0.75)
  of the next, counting down between reports);
- `decay_0.5`: the same with each earlier report weighing half the next (rebuilt from the trace);
- `whole_run`: the average pace since the job began (every report weighing the same), counting down the same way;
- `last_batch`: the pace of the last batch alone, counting down.

Figures per round: median and worst relative error of each, the share of polls within +-50%, the job's RTF and the
202's latency (submit to answer, upload included). The report (bench/out/jobs_eta.md and stdout) gives medians with
min-max over the rounds and the load average: on a shared machine, neighbours speeding up or slowing down the work
mid-run is exactly what moves the estimators apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402, F401  (privacy settings before onnxruntime)
from bench import ab  # noqa: E402
from tests.audio_factory import tiled  # noqa: E402
from tests.server import AUDIO, tiny_server  # noqa: E402

OUT = ROOT / "bench" / "out"
POLL_SECONDS = 0.1
ESTIMATORS = ("server", "decay_0.5", "whole_run", "last_batch")
OTHER_DECAY = 0.5


def trace(model: str, minutes: float) -> tuple[list[tuple[float, float, float | None]], float, float, float]:
    """(time, progress, server eta) per poll while running, the run's start and end, and the 202's latency."""
    env = {"MODEL": model, "ALLOWED_MODELS": model, "MAX_AUDIO_SECONDS": "0", "NUM_THREADS": "2"}
    with tempfile.TemporaryDirectory() as tmp, tiny_server(Path(tmp), **env) as server:
        path = tiled(AUDIO / "two_cities.wav", minutes * 60, Path(tmp) / "long.wav")
        posted = time.monotonic()
        with path.open("rb") as f:
            res = httpx.post(f"{server.url}/v1/jobs", files={"file": ("long.wav", f)}, timeout=600)
        accepted = time.monotonic() - posted
        res.raise_for_status()
        url = f"{server.url}{res.headers['location']}"
        polls: list[tuple[float, float, float | None]] = []
        started = None
        while True:
            job = httpx.get(url).json()
            now = time.monotonic()
            if job["status"] == "running":
                started = started or now
                polls.append((now, job["progress"], job["eta_seconds"]))
            elif job["status"] != "queued":
                return polls, started or now, now, accepted
            time.sleep(POLL_SECONDS)


def estimates(polls: list[tuple[float, float, float | None]], started: float) -> dict[str, list[float | None]]:
    """What each estimator says at each poll, from the reports seen up to it (a report: progress moved)."""
    out: dict[str, list[float | None]] = {name: [] for name in ESTIMATORS}
    reports: list[tuple[float, float]] = [(started, 0.0)]
    decayed = [0.0, 0.0]  # worker seconds and progress, each earlier report weighing OTHER_DECAY of the next
    for at, progress, server_eta in polls:
        if progress > reports[-1][1]:
            last_at, last_progress = reports[-1]
            d = OTHER_DECAY
            decayed = [d * decayed[0] + at - last_at, d * decayed[1] + progress - last_progress]
            reports.append((at, progress))
        out["server"].append(server_eta)
        (t0, p0), (t1, p1) = reports[-2] if len(reports) > 1 else reports[0], reports[-1]
        left, since = 1.0 - p1, at - t1
        out["decay_0.5"].append(None if decayed[1] <= 0 else max(left * decayed[0] / decayed[1] - since, 0.0))
        out["whole_run"].append(None if p1 <= 0 else max(left * (t1 - started) / p1 - since, 0.0))
        out["last_batch"].append(None if p1 <= p0 else max(left * (t1 - t0) / (p1 - p0) - since, 0.0))
    return out


def one(model: str, minutes: float) -> dict[str, float]:
    polls, started, done, accepted = trace(model, minutes)
    run = done - started
    said = estimates(polls, started)
    kept = [i for i, (at, progress, _) in enumerate(polls) if progress >= 0.25 and done - at >= run / 10]
    figures: dict[str, float] = {"rtf": run / (minutes * 60), "accepted_s": accepted, "polls": float(len(kept))}
    for name in ESTIMATORS:
        errors = []
        for i in kept:
            real = done - polls[i][0]
            eta = said[name][i]
            errors.append(float("inf") if eta is None else abs(eta - real) / real)
        figures[f"{name}_median_error"] = statistics.median(errors)
        figures[f"{name}_worst_error"] = max(errors)
        figures[f"{name}_within_50"] = sum(e <= 0.5 for e in errors) / len(errors)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a round, in its own process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.model, args.minutes)))
        return
    command = [sys.executable, "-m", "bench.jobs_eta", "--one", "--minutes", str(args.minutes), "--model", args.model]
    results = ab.run([ab.Variant("job", command)], rounds=args.rounds, cwd=ROOT)
    lines = ab.header(f"Job ETA: {args.minutes:g} min of speech, {args.model}", results)
    lines += [
        f"RTF {ab.spread(results.values('job', 'rtf'))}; 202 after {ab.spread(results.values('job', 'accepted_s'))} s "
        f"(upload included); polls judged per round {ab.spread(results.values('job', 'polls'), '{:.0f}')}",
        "",
        "| estimator | median relative error | worst relative error | share of polls within +-50% |",
        "|---|---|---|---|",
    ]
    for name in ESTIMATORS:
        cells = [ab.spread(results.values("job", f"{name}_{kind}")) for kind in ("median_error", "worst_error")]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {ab.spread(results.values('job', f'{name}_within_50'))} |")
    report = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "jobs_eta.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
