"""The page at `/` and the docs at `/docs`, driven in Debian's headless Chromium against the real server.

Run: `uv run pytest tests/browser/test_ui_browser.py -m browser -q` (needs `apt-get install -y chromium`).
Set UPDATE_SCREENSHOT=1 to refresh docs/screenshot.png from the transcription test.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; `make test` installs it (scripts/system_packages.sh)

from app.render import render_srt, render_vtt  # noqa: E402
from app.transcript import Segment, Transcript  # noqa: E402
from tests.render_strategies import transcripts  # noqa: E402
from tests.server import AUDIO  # noqa: E402

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
BECKETT = AUDIO / "beckett.wav"
TWO_CITIES = AUDIO / "two_cities.wav"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SUBTITLES = "/static/js/subtitles.js"  # the page's port of app/render/subtitles.py, imported as the page does
SRT_TIME = r"(\d{2}):(\d{2}):(\d{2}),(\d{3})"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(tmp: Path, **extra: str) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "MODEL": "tiny.en",
        "ALLOWED_MODELS": "tiny.en",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "MODELS_DIR": str(tmp / "models"),
        "NUM_THREADS": "2",
        "LOG_LEVEL": "WARNING",
        **extra,
    }
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode}: {(tmp / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer /health within 180 s")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start_server(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield b
    b.close()


def _open(
    browser: Browser, url: str, hosts: list[str], width: int = 1000, height: int = 900, errors: list[str] | None = None
) -> Page:
    page = browser.new_page(viewport={"width": width, "height": height}, accept_downloads=True)
    page.on("request", lambda r: hosts.append(r.url))
    if errors is not None:  # uncaught exceptions and console errors (a module that fails to load is one)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    return page


def _only_local(urls: list[str]) -> None:
    remote = [u for u in urls if urlparse(u).scheme not in ("blob", "data") and urlparse(u).hostname != "127.0.0.1"]
    assert remote == [], f"requests left this machine: {remote}"


def parse_srt(text: str) -> list[tuple[float, float, list[str]]]:
    """Strictly parse SRT: index, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, one or more text lines, blank line."""
    cues = []
    blocks = text.strip("\n").split("\n\n")
    for n, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        assert lines[0] == str(n), f"cue {n} has index {lines[0]!r}"
        m = re.fullmatch(f"{SRT_TIME} --> {SRT_TIME}", lines[1])
        assert m, f"bad timing line {lines[1]!r}"
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        assert len(lines) >= 3 and all(line.strip() for line in lines[2:]), f"cue {n} has no text"
        cues.append((start, end, lines[2:]))
    return cues


def _check_cue_limits(cues: list[tuple[float, float, list[str]]]) -> None:
    previous_start = 0.0
    for start, end, lines in cues:
        assert start <= end <= start + 7.0 + 1e-3
        assert start >= previous_start - 1e-3
        previous_start = start
        assert 1 <= len(lines) <= 2
        for line in lines:
            assert len(line) <= 42 or " " not in line, f"line too long: {line!r}"


def _cancellations(base: str) -> float | None:
    """Sum of /metrics samples about cancellation, or None when the server has no /metrics."""
    res = httpx.get(f"{base}/metrics", timeout=10)
    if res.status_code == 404:
        return None
    assert res.status_code == 200
    total = 0.0
    for line in res.text.splitlines():
        if line and not line.startswith("#") and "cancel" in line.lower():
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_transcribe_file_live_and_download_srt(server: str, browser: Browser, tmp_path: Path) -> None:
    urls: list[str] = []
    errors: list[str] = []
    page = _open(browser, f"{server}/", urls, errors=errors)
    page.wait_for_selector("#model option[value='tiny.en']", state="attached")
    page.set_input_files("#file", str(BECKETT))
    page.select_option("#format", "srt")
    page.click("#go")
    page.wait_for_selector("#result:not(.partial), #error:not([hidden])", timeout=120_000)
    assert page.is_hidden("#error"), page.text_content("#error")
    expect(page.locator("#transcript")).to_contain_text("fail better", ignore_case=True)
    assert "Done" in page.text_content("#status")
    assert page.is_hidden("#error")
    assert int(page.text_content("#segment-count")) >= 1

    with page.expect_download() as info:
        page.click("[data-download='srt']")
    download = info.value
    assert download.suggested_filename == "beckett.srt"
    cues = parse_srt(Path(download.path()).read_text(encoding="utf-8"))
    assert cues
    _check_cue_limits(cues)
    spoken = " ".join(" ".join(lines) for _, _, lines in cues).lower()
    assert "fail better" in spoken
    assert cues[-1][1] <= 10.5  # the file is 10 s long

    with page.expect_download() as info:
        page.click("[data-download='vtt']")
    vtt = Path(info.value.path()).read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT\n\n")
    assert re.search(r"\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}", vtt)

    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size < 300_000
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")
    assert errors == []
    _only_local(urls)
    page.close()


def _long_wav(path: Path, seconds: float) -> Path:
    with wave.open(str(TWO_CITIES)) as src:
        params = src.getparams()
        frames = src.readframes(params.nframes)
    repeats = int(seconds // (params.nframes / params.framerate)) + 1
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        for _ in range(repeats):
            out.writeframes(frames)
    return path


def test_cancel_stops_the_job_on_the_server(server: str, browser: Browser, tmp_path: Path) -> None:
    long_file = _long_wav(tmp_path / "long.wav", 180)
    before = _cancellations(server)
    urls: list[str] = []
    page = _open(browser, f"{server}/", urls, width=390, height=844)
    page.set_input_files("#file", str(long_file))
    page.click("#go")
    expect(page.locator("#transcript")).to_have_text(re.compile(r"\w"), timeout=120_000)
    assert page.is_visible("#cancel")
    page.click("#cancel")
    assert "Cancelled" in page.text_content("#status")
    assert page.is_hidden("#error")
    assert page.is_enabled("#go") and page.is_hidden("#cancel")

    # The worker frees itself: the queue drains (bounded wait, checked by state, not by time).
    for _ in range(300):
        queue = httpx.get(f"{server}/health", timeout=10).json()["queue"]
        if queue["running"] == 0 and queue["admitted"] == 0:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the server still holds the cancelled job: {queue}")

    # A following request is served, and the metrics count the cancellation.
    with BECKETT.open("rb") as f:
        res = httpx.post(
            f"{server}/v1/audio/transcriptions",
            files={"file": ("beckett.wav", f, "audio/wav")},
            data={"model": "tiny.en", "response_format": "json"},
            timeout=120,
        )
    assert res.status_code == 200, res.text
    assert "fail better" in res.json()["text"].lower()
    after = _cancellations(server)
    if before is not None and after is not None:
        assert after > before, "/metrics shows no cancellation"
    _only_local(urls)
    page.close()


def test_docs_load_from_this_server_only(server: str, browser: Browser) -> None:
    urls: list[str] = []
    page = _open(browser, f"{server}/docs", urls)
    page.wait_for_selector(".swagger-ui .info .title", timeout=60_000)
    expect(page.locator(".opblock-summary-path", has_text="/v1/audio/transcriptions").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    _only_local(urls)
    assert any(u.endswith("/static/vendor/swagger-ui/swagger-ui-bundle.js") for u in urls)
    page.close()


@pytest.fixture(scope="module")
def blank_page(server: str, browser: Browser) -> Iterator[Page]:
    page = browser.new_page()
    page.goto(f"{server}/")
    yield page
    page.close()


segment_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=5),  # gap before the segment
        st.floats(min_value=0.05, max_value=40),  # its length
        st.lists(st.text(alphabet="abcdefghij,.'é", min_size=1, max_size=50), min_size=1, max_size=60),
    ),
    min_size=1,
    max_size=8,
)


def _segments_from_spec(spec: list) -> list[dict]:
    segments = []
    t = 0.0
    for i, (gap, length, words) in enumerate(spec):
        start = t + gap
        segments.append({"id": i, "start": start, "end": start + length, "text": " " + " ".join(words)})
        t = start + length
    return segments


@settings(max_examples=60, deadline=None)
@given(spec=segment_strategy)
def test_client_side_cues_keep_the_subtitle_limits(blank_page: Page, spec: list) -> None:
    segments = _segments_from_spec(spec)
    cues = blank_page.evaluate(f"async (segs) => (await import('{SUBTITLES}')).buildCues(segs)", segments)
    previous_end = 0
    for c in cues:
        start, end, lines = c["start"], c["end"], c["lines"]
        assert isinstance(start, int) and isinstance(end, int)
        assert previous_end <= start < end, "cues overlap or go backwards"
        previous_end = end
        assert 1 <= len(lines) <= 2 and all(lines)
        single_word = len(lines) == 1 and " " not in lines[0]
        assert single_word or all(len(line) <= 42 for line in lines), lines
        assert single_word or end - start <= 7000, (start, end, lines)
    # No word is lost or reordered, and the cues stay within the speech (a short last cue may not outlast it).
    assert " ".join(" ".join(c["lines"]) for c in cues).split() == " ".join(s["text"] for s in segments).split()
    assert cues[0]["start"] >= round(segments[0]["start"] * 1000)
    assert cues[-1]["end"] <= round(segments[-1]["end"] * 1000) + 1
    srt = blank_page.evaluate(f"async (segs) => (await import('{SUBTITLES}')).toSrt(segs)", segments)
    assert len(parse_srt(srt)) == len(cues)


@settings(max_examples=60, deadline=None)
@given(transcript=transcripts())
def test_client_side_subtitles_equal_the_servers_for_segments_without_words(
    blank_page: Page, transcript: Transcript
) -> None:
    # The stream carries segments without words: the page must then build exactly what the server would.
    transcript = msgspec.structs.replace(
        transcript, segments=tuple(Segment(s.start, s.end, s.text) for s in transcript.segments)
    )
    segments = [
        {"id": i, "start": s.start, "end": s.end, "text": " " + s.text, "speaker": None}
        for i, s in enumerate(transcript.segments)
    ]
    srt, vtt = blank_page.evaluate(
        f"async ([segs, duration]) => {{ const s = await import('{SUBTITLES}'); "
        "return [s.toSrt(segs, duration), s.toVtt(segs, duration)]; }",
        [segments, transcript.duration],
    )
    assert srt == render_srt(transcript)
    assert vtt == render_vtt(transcript)


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start_server(
        tmp_path_factory.mktemp("locked"), API_KEY="s3cret-key", MAX_UPLOAD_MB="1", LOAD_MODEL_ON_STARTUP="false"
    )


def test_errors_are_told_in_words(locked_server: str, browser: Browser, tmp_path: Path) -> None:
    urls: list[str] = []
    page = _open(browser, f"{locked_server}/", urls)
    # /v1/models answered 401: the key field opens and says why.
    page.wait_for_selector("#key-box[open]")
    assert "API key" in page.text_content("#error")
    page.fill("#api-key", "s3cret-key")
    page.dispatch_event("#api-key", "change")
    page.wait_for_selector("#model option[value='tiny.en']", state="attached")
    assert page.evaluate("localStorage.getItem('stt.apiKey')") == "s3cret-key"

    # Too big (two_cities.wav is about 4 MB, the limit 1 MB).
    page.set_input_files("#file", str(TWO_CITIES))
    page.click("#go")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert "too large" in page.text_content("#error")
    assert page.is_enabled("#go")

    # Not audio: the server's own message is shown.
    junk = tmp_path / "notes.wav"
    junk.write_bytes(b"this is not audio at all\n" * 20)
    page.set_input_files("#file", str(junk))
    page.click("#go")
    # Refused before the stream starts (400) or reported inside it (an error event): either way, in words.
    expect(page.locator("#error")).to_have_text(re.compile("refused|failed"), timeout=60_000)
    assert page.is_enabled("#go")

    # A wrong key is named as such.
    page.fill("#api-key", "wrong")
    page.dispatch_event("#api-key", "change")
    page.set_input_files("#file", str(BECKETT))
    page.click("#go")
    expect(page.locator("#error")).to_contain_text("not accepted", timeout=60_000)
    _only_local(urls)
    page.close()


def test_dictation_from_a_fake_microphone_shows_words_live(server: str, playwright: Playwright, tmp_path: Path) -> None:
    """Chromium's fake microphone plays two_cities.wav; the page streams it over /v1/realtime and shows the words
    while the recording still plays, then keeps the text to copy and download."""
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={TWO_CITIES}",
    ]
    hosts: list[str] = []
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
    try:
        page = _open(browser, server + "/", hosts)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.click("#mic")
        expect(page.locator("#mic")).to_have_attribute("aria-pressed", "true")
        started = time.monotonic()
        # Live text while the person is still speaking (well before the 44 s recording ends).
        expect(page.locator("#transcript")).to_contain_text("best of times", timeout=30000)
        assert time.monotonic() - started < 30
        expect(page.locator("#transcript")).to_contain_text("worst of times", timeout=30000)
        page.click("#mic")  # stop
        expect(page.locator("#mic")).to_have_attribute("aria-pressed", "false", timeout=20000)
        expect(page.locator("#status")).to_contain_text("Dictation", timeout=5000)
        text = page.locator("#transcript").inner_text()
        assert "best of times" in text.lower() and "worst of times" in text.lower()
        assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
        with page.expect_download() as caught:
            page.click("[data-download=txt]")
        saved = tmp_path / "dictation.txt"
        caught.value.save_as(saved)
        assert caught.value.suggested_filename == "dictation.txt"
        assert "worst of times" in saved.read_text().lower()
        assert errors == []
        _only_local(hosts)
    finally:
        browser.close()


DOCS_KEY = "docs-browser-key"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start_server(tmp_path_factory.mktemp("keyed-server"), API_KEY=DOCS_KEY)


def test_docs_try_it_out_uploads_with_bearer_key(keyed_server: str, browser: Browser) -> None:
    """/docs with API_KEY set: Authorize with the key, "Try it out" on POST /v1/audio/transcriptions, pick
    beckett.wav, Execute, and the transcript is in the response body."""
    urls: list[str] = []
    page = _open(browser, f"{keyed_server}/docs", urls)
    page.wait_for_selector(".swagger-ui .info .title", timeout=60_000)
    page.locator(".btn.authorize").first.click()
    dialog = page.locator(".dialog-ux .modal-ux")
    expect(dialog).to_contain_text("bearerAuth")
    bearer = dialog.locator("form").filter(has_text="bearerAuth")  # basicAuth (the key as a password) is offered too
    bearer.locator("input").first.fill(DOCS_KEY)
    bearer.locator("button.authorize").click()
    dialog.locator("button.btn-done").first.click()
    operation = page.locator(
        ".opblock-post", has=page.locator(".opblock-summary-path[data-path='/v1/audio/transcriptions']")
    )
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator("tr[data-property-name='file'] input[type=file]").set_input_files(str(BECKETT))
    operation.locator(".execute").click()
    body = operation.locator(".live-responses-table .response-col_description .microlight, .live-responses-table pre")
    expect(body.first).to_contain_text("fail", ignore_case=True, timeout=120_000)
    status = operation.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("200")
    answer = msgspec.json.decode(body.first.inner_text())
    assert set(answer) == {"text", "usage"}, answer  # OpenAI's json, not Reflector's shape
    assert "fail better" in answer["text"].lower()
    _only_local(urls)
    page.close()
