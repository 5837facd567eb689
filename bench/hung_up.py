"""A new 10-second request beside two hung-up 10-minute ones (issue 23: "answered in under 15 s, tiny.en, 2 threads").

    uv run python -m bench.hung_up [--rounds 5] [--model tiny.en]

Each variant is a fresh server (`NUM_THREADS=2`, `RESUME_GRACE_SECONDS=600`: a hung-up request's work would wait 10
minutes for its retry if nothing else needed the worker), warmed by one short request so no variant pays the model's
loading. Then, timed from the moment the 10-second request (`beckett.wav`, 9.96 s) is sent to its answer:

- `alone`: on the idle server (the reference);
- `sync_beside_hung_up`: two 10-minute requests (`two_cities.wav` tiled to 600 s and 601 s: the same file twice
  would be a retry) are sent and hung up (the client stops reading after 1 s), the second once the first runs;
  then the 10-second request to POST /v1/audio/transcriptions;
- `job_beside_hung_up`: the same, then the 10-second file as a job (POST /v1/jobs, polled every 0.1 s until it has
  succeeded).

Figures: `latency_s`, and `cancelled` (stt_cancelled_total after the answer: both hung-up requests gave way).
Report: bench/out/hung_up.md and stdout, medians (min-max) over the rounds and paired ratios against `alone`.
"""

from __future__ import annotations

import argparse
import json
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
from tests.server import AUDIO, ServerProcess, tiny_server  # noqa: E402

OUT = ROOT / "bench" / "out"
SHORT = AUDIO / "beckett.wav"
VARIANTS = ("alone", "sync_beside_hung_up", "job_beside_hung_up")


def transcribe(server: ServerProcess, path: Path, timeout: float | httpx.Timeout = 600) -> httpx.Response:
    with path.open("rb") as f:
        url = f"{server.url}/v1/audio/transcriptions"
        return httpx.post(url, files={"file": (path.name, f)}, timeout=timeout)


def hang_up(server: ServerProcess, path: Path) -> None:
    """A long request whose client stops waiting for the answer after 1 s."""
    try:
        transcribe(server, path, timeout=httpx.Timeout(120, read=1))
    except httpx.ReadTimeout:
        return
    raise RuntimeError("the long request was answered within 1 s")


def running(server: ServerProcess) -> int:
    return int(httpx.get(f"{server.url}/health").json()["queue"]["running"])


def cancelled(server: ServerProcess) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith("stt_cancelled_total "):
            return float(line.split()[1])
    raise RuntimeError("no stt_cancelled_total")


def job(server: ServerProcess, path: Path) -> None:
    with path.open("rb") as f:
        res = httpx.post(f"{server.url}/v1/jobs", files={"file": (path.name, f)}, timeout=600)
    res.raise_for_status()
    url = f"{server.url}{res.headers['location']}"
    while (status := httpx.get(url).json()["status"]) in ("queued", "running"):
        time.sleep(0.1)
    if status != "succeeded":
        raise RuntimeError(f"the job {status}")


def one(variant: str, model: str) -> dict[str, float]:
    env = {"MODEL": model, "ALLOWED_MODELS": model, "NUM_THREADS": "2", "RESUME_GRACE_SECONDS": "600"}
    with tempfile.TemporaryDirectory() as tmp, tiny_server(Path(tmp), **env) as server:
        transcribe(server, SHORT).raise_for_status()  # the model is loaded
        if variant != "alone":
            first, second = (tiled(AUDIO / "two_cities.wav", s, Path(tmp) / f"long{s}.wav") for s in (600, 601))
            hang_up(server, first)
            while running(server) == 0:
                time.sleep(0.05)
            hang_up(server, second)
        sent = time.monotonic()
        if variant == "job_beside_hung_up":
            job(server, SHORT)
        else:
            transcribe(server, SHORT).raise_for_status()
        return {"latency_s": time.monotonic() - sent, "cancelled": cancelled(server)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # a round, in its own process
    args = parser.parse_args()
    if args.variant is not None:
        print(json.dumps(one(args.variant, args.model)))
        return
    command = [sys.executable, "-m", "bench.hung_up", "--model", args.model, "--variant"]
    results = ab.run([ab.Variant(v, [*command, v]) for v in VARIANTS], rounds=args.rounds, cwd=ROOT)
    lines = ab.header(f"A 10-second request beside two hung-up 10-minute ones, {args.model}, 2 threads", results)
    lines += ["| variant | latency (s) | vs alone (paired) | hung-up requests cancelled |", "|---|---|---|---|"]
    for variant in VARIANTS:
        ratio = ab.spread(results.paired_ratios(variant, "alone", "latency_s"), "{:.2f}")
        latency = ab.spread(results.values(variant, "latency_s"), "{:.2f}")
        counts = ab.spread(results.values(variant, "cancelled"), "{:.0f}")
        lines.append(f"| {variant} | {latency} | {ratio} | {counts} |")
    report = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "hung_up.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
