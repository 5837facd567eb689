"""The page's jobs in Debian's headless Chromium against the real server (tiny.en): a dropped file becomes a job, a
reload finds it again (its id in localStorage, its audio in IndexedDB), and the finished transcript opens as a
reader: speakers coloured and named, the third segment's time seeks the player there. The server's log of the whole
test holds no job id in full and none of the words spoken.

Run: `uv run pytest tests/browser/test_jobs_browser.py -m browser -q`. The reader's screenshot goes to the test's
tmp_path (`jobs-reader.png`; keep it with `--basetemp DIR`).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.server import AUDIO, ServerProcess, tiny_server

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; `make test` installs it (scripts/system_packages.sh)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
DIALOGUE = AUDIO / "endgame_nagg_nell.wav"  # two voices, short turns (tests/data/README.md)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with tiny_server(tmp_path_factory.mktemp("jobs-browser")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def until(page: Page, expression: str, timeout: float = 60.0) -> None:
    """Poll `expression` in the page (wait_for_function would evaluate it with eval, which the page's CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false: {expression}"
        time.sleep(0.1)


def test_a_dropped_file_is_a_job_that_survives_a_reload_and_opens_as_a_reader(
    server: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    urls: list[str] = []
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1000, "height": 1100})
    page.on("request", lambda r: urls.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server.url}/")
    page.wait_for_selector("#model option[value='tiny.en']", state="attached")
    page.check("#speakers")

    # Drop the file on the drop zone, as a person drags it from their files.
    dropped = page.evaluate_handle(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "audio/wav" }));
            return transfer;
        }""",
        [base64.b64encode(DIALOGUE.read_bytes()).decode(), "dialogue.wav"],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    until(page, "JSON.parse(localStorage.getItem('stt.jobs') || '[]').length === 1")  # 202: its id is kept
    (kept,) = json.loads(page.evaluate("localStorage.getItem('stt.jobs')"))
    job_id = kept["id"]
    expect(page.locator("#job-list .job-name")).to_have_text("dialogue.wav")

    page.reload()  # the job goes on without the page; the page finds it again
    job = page.locator("#job-list .job")
    expect(job.locator(".job-name")).to_have_text("dialogue.wav", timeout=30_000)
    expect(page.locator("#reader")).to_be_visible(timeout=180_000)  # it opens once done
    assert job.get_attribute("data-status") == "succeeded"

    segments = page.locator("#reader .seg")
    assert segments.count() >= 4
    expect(page.locator("#reader-title")).to_have_text("dialogue.wav")
    names = set(page.locator("#reader .speaker").all_inner_texts())
    assert {"Speaker A", "Speaker B"} <= names  # each speaker named ...
    colours = {segments.nth(i).evaluate("n => getComputedStyle(n).borderLeftColor") for i in range(segments.count())}
    assert len(colours) >= 2  # ... and coloured
    until(page, "document.getElementById('player').readyState >= 1")  # the browser's own copy of the audio plays

    third = segments.nth(2)
    start = float(third.get_attribute("data-start") or "nan")
    assert start > 0
    third.locator(".seg-time").click()
    position = page.evaluate("document.getElementById('player').currentTime")
    assert position == pytest.approx(start, abs=0.01)
    expect(third).to_have_class(re.compile(r"\bspeaking\b"))  # the segment at the player's time is highlighted
    first_word = segments.nth(3).locator(".word").first
    word_start = float(first_word.get_attribute("data-start") or "nan")
    first_word.click()  # a word seeks to its own start
    assert page.evaluate("document.getElementById('player').currentTime") == pytest.approx(word_start, abs=0.01)
    expect(first_word).to_have_class(re.compile(r"\bspoken\b"))

    page.screenshot(path=str(tmp_path / "jobs-reader.png"), full_page=True)
    assert errors == []
    remote = [u for u in urls if urlparse(u).scheme not in ("blob", "data") and urlparse(u).hostname != "127.0.0.1"]
    assert remote == []

    spoken = page.locator("#reader-text").inner_text().lower()
    log = server.log()
    assert job_id not in log and job_id[:10] in log  # the log names the job by its short id only
    words = [w.strip(".,?!") for w in spoken.split() if len(w.strip(".,?!")) >= 6]
    assert words and not [w for w in words if w in log.lower()]  # and none of the words spoken
    page.close()
