"""Every answer's Content-Type is one a strict client parses (issue 22): one charset on text, no parameter twice.

Go's `mime.ParseMediaType` failed on `text/plain; charset=utf-8; charset=utf-8` (our media type carried the charset
and Litestar appended its own). `tests/media_types.py` parses as strictly; here it reads the header of every kind
of answer the real server gives: the page and its files, the docs, health, metrics, models, each response format,
a stream, Reflector's shape and errors.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.media_types import TOKEN, parse_media_type
from tests.server import AUDIO, ServerProcess

TIMEOUT = 120.0


def beckett() -> dict[str, tuple[str, bytes, str]]:
    return {"file": ("beckett.wav", (AUDIO / "beckett.wav").read_bytes(), "audio/wav")}


def transcribe(fmt: str, **extra: str) -> Callable[[str], httpx.Response]:
    def call(url: str) -> httpx.Response:
        data = {"model": "whisper-1", "response_format": fmt, **extra}
        return httpx.post(f"{url}/v1/audio/transcriptions", data=data, files=beckett(), timeout=TIMEOUT)

    return call


def get(path: str) -> Callable[[str], httpx.Response]:
    return lambda url: httpx.get(f"{url}{path}", timeout=TIMEOUT)


ANSWERS: dict[str, tuple[Callable[[str], httpx.Response], str]] = {
    "page": (get("/"), "text/html"),
    "page script": (get("/static/js/main.js"), "text/javascript"),
    "page style": (get("/static/style.css"), "text/css"),
    "docs": (get("/docs"), "text/html"),
    "contract": (get("/docs/openapi.json"), "application/vnd.oai.openapi+json"),
    "health": (get("/health"), "application/json"),
    "metrics": (get("/metrics"), "text/plain"),
    "models": (get("/v1/models"), "application/json"),
    "json": (transcribe("json"), "application/json"),
    "text": (transcribe("text"), "text/plain"),
    "verbose_json": (transcribe("verbose_json"), "application/json"),
    "srt": (transcribe("srt"), "text/plain"),
    "vtt": (transcribe("vtt"), "text/vtt"),
    "diarized_json": (transcribe("diarized_json"), "application/json"),
    "stream": (transcribe("json", stream="true"), "text/event-stream"),
    "reflector": (
        lambda url: httpx.post(
            f"{url}/v1/audio/transcriptions", files={"files[]": beckett()["file"]}, data={"batch": "true"}, timeout=60
        ),
        "application/json",
    ),
    "whisper-asr-webservice": (
        lambda url: httpx.post(
            f"{url}/asr", params={"output": "srt"}, files={"audio_file": beckett()["file"]}, timeout=TIMEOUT
        ),
        "text/plain",
    ),
    "bad request": (transcribe("xml"), "application/json"),
    "not found": (get("/v1/nothing-here"), "application/json"),
    "translation refused": (
        lambda url: httpx.post(f"{url}/v1/audio/translations", files=beckett(), timeout=TIMEOUT),
        "application/json",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("answer", list(ANSWERS))
def test_every_answer_has_a_strict_content_type(whisper_server: ServerProcess, answer: str) -> None:
    call, expected = ANSWERS[answer]
    response = call(whisper_server.url)
    assert response.status_code < 500, response.text
    header = response.headers.get_list("content-type")
    assert len(header) == 1, header  # one Content-Type header
    media_type, params = parse_media_type(header[0])
    assert media_type == expected, header
    if media_type.startswith("text/"):
        assert params.get("charset", "").lower() == "utf-8", header  # text says its charset, once


@pytest.mark.parametrize(
    "value",
    [
        "text/plain; charset=utf-8; charset=utf-8",
        "text/plain; charset=utf-8; CHARSET=utf-8",
        "text/plain;charset",
        "text/plain; charset=",
        "text",
        "text/plain; charset=utf 8",
        'text/plain; name="unterminated',
    ],
)
def test_the_parser_refuses_what_strict_clients_refuse(value: str) -> None:
    with pytest.raises(ValueError):
        parse_media_type(value)


def quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


TOKENS = st.from_regex(rf"\A{TOKEN}\Z", fullmatch=True)


@given(TOKENS, TOKENS, st.dictionaries(TOKENS, st.text(st.characters(min_codepoint=32, max_codepoint=126)), max_size=4))
def test_the_parser_reads_back_what_rfc_9110_allows(main: str, sub: str, params: dict[str, str]) -> None:
    unique = {name.lower(): value for name, value in params.items()}  # a name once, whatever its case
    quoted = "".join(f'; {name}="{quote(value)}"' for name, value in unique.items())
    assert parse_media_type(f"{main}/{sub}{quoted}") == (f"{main}/{sub}".lower(), unique)
