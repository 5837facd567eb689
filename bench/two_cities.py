"""Issue 2's figures: two_cities.wav through the server vs the same engine called directly in this process, and the
server's idle RSS with the model loaded. Alternates the two paths so both see the same machine state.

    uv run python -m bench.two_cities [--model tiny.en] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.engines.registry import load_engine
from app.settings import load_settings
from app.worker.cancel import CancelToken
from app.worker.threads import configure_threads
from tests.server import AUDIO, ServerProcess

AUDIO_FILE = AUDIO / "two_cities.wav"
DURATION = 44.374


def vm(pid: int | str, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = {"MODEL": args.model, "ALLOWED_MODELS": args.model, "NUM_THREADS": "2"}
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess({**env, "MODELS_DIR": str(Path(tmp) / "models")}, log_path=Path(tmp) / "server.log")
        try:
            time.sleep(2)
            idle_rss = vm(server.proc.pid, "VmRSS")
            settings = load_settings({**env, "MODELS_DIR": str(Path(tmp) / "models")}, None)
            configure_threads(settings.engines.num_threads)
            engine = load_engine(args.model, settings.engines, settings.hub)
            from app.engines.protocol import Decoding
            from app.transcription.pipeline import TranscriptionRun

            payload = AUDIO_FILE.read_bytes()
            server_times: list[float] = []
            direct_times: list[float] = []
            for _ in range(args.rounds + 1):  # the first round warms both paths up and is dropped
                started = time.perf_counter()
                response = httpx.post(
                    f"{server.url}/v1/audio/transcriptions",
                    files={"file": ("two_cities.wav", payload, "audio/wav")},
                    timeout=300,
                )
                response.raise_for_status()
                server_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                run = TranscriptionRun(
                    AUDIO_FILE,
                    engine,
                    Decoding(language="en"),
                    audio=settings.audio,
                    cancel=CancelToken(),
                )
                list(run.segments())
                direct_times.append(time.perf_counter() - started)
            server_rtf = statistics.median(server_times[1:]) / DURATION
            direct_rtf = statistics.median(direct_times[1:]) / DURATION
            print(f"model {args.model}, {args.rounds} rounds, median")
            print(f"server RTF {server_rtf:.4f}, direct RTF {direct_rtf:.4f}, ratio {server_rtf / direct_rtf:.3f}")
            print(f"server idle RSS with the model loaded: {idle_rss:.0f} MB")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
