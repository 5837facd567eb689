"""uvicorn's two HTTP/1.1 parsers under this app: h11 (which caps the request head, what `python -m app` runs) and
httptools (uvicorn's default, no cap on headers).

    uv run python -m bench.http_bench --rounds 5 [--upload-mb 200]

Each round runs both, each in a fresh process (`bench/ab.py`): the app (no model loaded) under uvicorn with that
parser on 127.0.0.1, then from the same process (a client thread) an upload of `--upload-mb` MB as a multipart body
(random bytes: read in full and refused as undecodable, so the figure is the HTTP and form path alone), and 300
sequential `GET /health`. Figures: upload wall seconds (and MB/s), /health median latency in ms. Report:
bench/out/http.md (and stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARSERS = ("h11", "httptools")


def measure(parser: str, upload_mb: int) -> dict[str, float]:
    import httpx
    import uvicorn

    import app  # noqa: F401
    from app.__main__ import MAX_REQUEST_HEAD_BYTES
    from app.server import create_app
    from app.settings import load_settings
    from tests.server import free_port

    tmp = Path(tempfile.mkdtemp())
    tempfile.tempdir = str(tmp)
    env = {"MODEL": "tiny.en", "ALLOWED_MODELS": "tiny.en", "LOAD_MODEL_ON_STARTUP": "false"}
    settings = load_settings({**env, "MODELS_DIR": str(tmp / "models"), "MAX_UPLOAD_MB": "4096"}, dotenv=None)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        http=parser,
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
        log_level="error",
        log_config=None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    block = os.urandom(1 << 20)

    def body() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(upload_mb):
            yield block
        yield b"\r\n--b--\r\n"

    with httpx.Client(timeout=600) as client:
        started = time.monotonic()
        answer = client.post(
            f"{base}/v1/audio/transcriptions",
            content=body(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        upload_s = time.monotonic() - started
        assert answer.status_code == 400, answer.text  # read in full, then refused as not audio
        latencies = []
        for _ in range(300):
            started = time.monotonic()
            assert client.get(f"{base}/health").status_code == 200
            latencies.append(time.monotonic() - started)
    server.should_exit = True
    thread.join()
    return {
        "upload_s": round(upload_s, 3),
        "upload_mb_s": round(upload_mb / upload_s, 1),
        "health_ms": round(statistics.median(latencies) * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--upload-mb", type=int, default=200)
    parser.add_argument("--measure", choices=PARSERS, help=argparse.SUPPRESS)  # one variant's process
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure, args.upload_mb)))
        return
    from bench import ab

    command = [sys.executable, "-m", "bench.http_bench", "--upload-mb", str(args.upload_mb), "--measure"]
    results = ab.run([ab.Variant(name, [*command, name]) for name in PARSERS], args.rounds, cwd=ROOT)
    lines = ab.header(f"uvicorn's HTTP parsers: a {args.upload_mb} MB upload and GET /health", results)
    lines += ["| parser | upload s | upload MB/s | /health ms |", "|---|---|---|---|"]
    for name in PARSERS:
        lines.append(
            f"| {name} | {ab.spread(results.values(name, 'upload_s'), '{:.2f}')} "
            f"| {ab.spread(results.values(name, 'upload_mb_s'), '{:.0f}')} "
            f"| {ab.spread(results.values(name, 'health_ms'), '{:.2f}')} |"
        )
    for figure in ("upload_s", "health_ms"):
        ratios = results.paired_ratios("h11", "httptools", figure)
        lines.append(f"\nh11 / httptools, {figure}: {ab.spread(ratios, '{:.2f}')} (paired per round)")
    report = "\n".join(lines) + "\n"
    (ROOT / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "out" / "http.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
