"""One log format: library records (stdlib logging) and our structlog events come out through the same renderer."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from app.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_json_lines_for_ours_and_the_libraries(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("INFO", json=True)
    structlog.get_logger().info("ready", port=8000)
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
    logging.getLogger("onnx_asr").warning("something odd", extra={"model": "v3_ctc"})
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [r["event"] for r in records] == ["ready", "Started server process [42]", "something odd"]
    assert [r["level"] for r in records] == ["info", "info", "warning"]
    assert records[1]["logger"] == "uvicorn.error"
    assert records[2]["model"] == "v3_ctc"  # a library record's `extra` fields are rendered like ours
    assert all("timestamp" in r for r in records)


def test_human_lines_share_one_shape(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("INFO", json=False)
    structlog.get_logger().info("ready", port=8000)
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    for line in lines:  # 2026-12-01T13:18:38.735222Z [info     ] event ...
        assert line[:4].isdigit() and line[26:28] == "Z " and "[info     ]" in line


def test_request_urls_and_chunk_chatter_stay_out(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("INFO", json=True)
    logging.getLogger("httpx").info('HTTP Request: GET https://host/audio.wav?X-Amz-Signature=secret "200 OK"')
    logging.getLogger("faster_whisper").info("Processing audio with duration 00:20.000")
    assert capsys.readouterr().err == ""
