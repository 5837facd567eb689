"""One log format for the whole process: structlog renders our events and every library's records alike.

Human-readable lines or JSON (LOG_JSON). Records from the standard `logging` module (uvicorn, httpx, faster-whisper,
onnx-asr, ...) go through the same processors and renderer as ours, so a log collector sees one shape. Nothing here
ever logs transcript text or audio; library loggers that could print request details are held back.
"""

from __future__ import annotations

import logging
import sys

import structlog

# Library loggers capped at WARNING: httpx/httpcore log every request URL at INFO (an audio_file_url names a file and
# may carry a signed token); faster-whisper logs each chunk ("Processing audio with duration ...") at INFO.
QUIET_LIBRARIES = ("httpx", "httpcore", "faster_whisper")


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name, structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own handlers would print a second format
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # uvicorn's access log would duplicate our one line per request (and print query strings).
    logging.getLogger("uvicorn.access").disabled = True
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
