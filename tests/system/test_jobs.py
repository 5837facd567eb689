"""Jobs you can leave (issue 23), against the real server.

Most tests run a random-weight GigaAM v3 CTC (`tests/gigaam_fixture.py`: the real architecture and pipeline,
gibberish text), so a 10-minute file costs seconds: it is polled from queued to succeeded with its ETA checked
against the time that really remained, and its srt/vtt/verbose_json equal the synchronous route's; three jobs run in
FIFO order and the running one is cancelled; a stream is told its place in the queue; two hung-up 10-minute
requests give way to a new job; refusals are in OpenAI's shape. A tiny.en server (JOBS_TTL_SECONDS=5, MAX_JOBS=2)
shows a result's time to live, MAX_JOBS, and a Whisper job's formats equal to the synchronous answers (words change
Whisper's decoding, ADR 55). Every test ends by reading the server's log: no job id in full, nothing transcribed.

Timings are compared only with references measured in the same test (the job's own run, the time it finished);
the TTL test's 2 s / 8 s are the setting's own promise (JOBS_TTL_SECONDS=5). The issue's "a new 10-second request
answered in under 15 s beside two hung-up 10-minute ones" is a figure of tiny.en on this machine: `bench/hung_up.py`.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.audio_factory import tiled, tiled_wav
from tests.server import AUDIO, ServerProcess, tiny_server

BECKETT = AUDIO / "beckett.wav"  # 10 s
TWO_CITIES = AUDIO / "two_cities.wav"  # 44 s
DIALOGUE = AUDIO / "endgame_nagg_nell.wav"  # two voices
POLL_SECONDS = 0.1
BATCH_SIZE = 4  # chunks per engine call (a report of progress and a boundary where work may stop)
CHUNK_LIMIT_SECONDS = 30.0  # VAD_STRICT_LIMIT: the longest chunk
WORDS_AND_SEGMENTS = {"timestamp_granularities[]": ["word", "segment"]}


@pytest.fixture(scope="module")
def server(tiny_gigaam_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("jobs-server")
    (tmp / "tmp").mkdir()
    env = {
        "MODEL": "v3_ctc",
        "ALLOWED_MODELS": "v3_ctc",
        "MODELS_DIR": str(tiny_gigaam_models_dir),
        "TMPDIR": str(tmp / "tmp"),
        "RESUME_GRACE_SECONDS": "600",  # a hung-up request waits 10 minutes for its retry, unless work is waiting
        "BATCH_SIZE": str(BATCH_SIZE),
    }
    server = ServerProcess(env, log_path=tmp / "server.log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("jobs-audio")


@pytest.fixture(scope="module")
def ten_minutes(audio: Path) -> Path:
    return tiled(TWO_CITIES, 600, audio / "ten.wav")


class Upload:
    """A multipart body streamed from disk; `sent_at`: when its last byte was handed over (the upload is read)."""

    def __init__(self, path: Path, fields: dict[str, str]) -> None:
        self.path = path
        self.boundary = uuid.uuid4().hex
        part = f"--{self.boundary}\r\nContent-Disposition: form-data; name="
        parts = [f'{part}"{key}"\r\n\r\n{value}\r\n' for key, value in fields.items()]
        parts.append(f'{part}"file"; filename="{path.name}"\r\n\r\n')
        self.head = "".join(parts).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.sent_at: float | None = None

    @property
    def headers(self) -> dict[str, str]:
        length = len(self.head) + self.path.stat().st_size + len(self.tail)
        return {"Content-Type": f"multipart/form-data; boundary={self.boundary}", "Content-Length": str(length)}

    def body(self) -> Iterator[bytes]:
        yield self.head
        with self.path.open("rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk
        yield self.tail
        self.sent_at = time.monotonic()  # the transport asked for more: the last byte is gone


def submit(server: ServerProcess, path: Path, **fields: str | list[str]) -> httpx.Response:
    with path.open("rb") as f:
        return httpx.post(f"{server.url}/v1/jobs", files={"file": (path.name, f)}, data=fields, timeout=120)


def submit_timed(server: ServerProcess, path: Path, **fields: str) -> tuple[httpx.Response, float]:
    """The answer to a job's submission, and how long after its upload's last byte it came."""
    upload = Upload(path, fields)
    res = httpx.post(f"{server.url}/v1/jobs", content=upload.body(), headers=upload.headers, timeout=120)
    answered = time.monotonic()
    assert upload.sent_at is not None
    return res, answered - upload.sent_at


def job_of(server: ServerProcess, job_id: str) -> dict[str, Any]:
    res = httpx.get(f"{server.url}/v1/jobs/{job_id}", timeout=30)
    assert res.status_code == 200, res.text
    return dict(res.json())


def wait_for(server: ServerProcess, job_id: str, statuses: tuple[str, ...], timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = job_of(server, job_id)
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}"
        time.sleep(POLL_SECONDS)


def result(server: ServerProcess, job_id: str, **params: str | list[str]) -> httpx.Response:
    return httpx.get(f"{server.url}/v1/jobs/{job_id}/result", params=params, timeout=30)


def transcribe(
    server: ServerProcess, path: Path, timeout: float | httpx.Timeout = 300, **fields: str | list[str]
) -> httpx.Response:
    with path.open("rb") as f:
        url = f"{server.url}/v1/audio/transcriptions"
        return httpx.post(url, files={"file": (path.name, f)}, data=fields, timeout=timeout)


def health(server: ServerProcess) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/health").json())


def metric(server: ServerProcess, name: str) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def short(job_id: str) -> str:
    """The id as the queue (and the log) shows it."""
    return job_id[: len("job_") + 6]


def assert_private(server: ServerProcess, job_ids: list[str], transcripts: list[str]) -> None:
    """The log names jobs by their short ids only and holds no two words of what was transcribed."""
    log = server.log()
    for job_id in job_ids:
        assert job_id not in log
        assert short(job_id) in log  # the short id is there, so the lines are about these jobs
    pairs = {" ".join(pair) for text in transcripts for pair in itertools.pairwise(text.lower().split())}
    assert pairs, "nothing was transcribed"
    lowered = log.lower()
    assert not [pair for pair in pairs if pair in lowered]


# --- a 10-minute job ------------------------------------------------------------------------------------------------


@pytest.mark.timeout(600)  # ~10 s of work on a quiet machine; a minute at load 8 on 2 shared cores
def test_a_ten_minute_job_goes_queued_running_succeeded_with_an_eta_that_holds(
    server: ServerProcess, ten_minutes: Path
) -> None:
    server.wait_until_idle()
    sync: list[httpx.Response] = []
    # The same file asked for synchronously first (every segment and word, as verbose_json shows them): the job
    # waits behind it in the one queue, and its result is compared with that answer.
    fields: dict[str, Any] = {"response_format": "verbose_json", **WORDS_AND_SEGMENTS}
    ahead = threading.Thread(target=lambda: sync.append(transcribe(server, ten_minutes, **fields)))
    ahead.start()
    while health(server)["queue"]["running"] == 0:
        time.sleep(0.05)

    res, answered = submit_timed(server, ten_minutes, response_format="srt")
    assert res.status_code == 202, res.text
    job = res.json()
    assert res.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["position"] == 1 and job["progress"] == 0.0
    assert job["duration"] == pytest.approx(600, abs=0.1) and job["expires_at"] is None

    polls: list[tuple[float, dict[str, Any]]] = []
    while job["status"] in ("queued", "running"):
        time.sleep(POLL_SECONDS)
        job = job_of(server, job["id"])
        polls.append((time.monotonic(), job))
    done_at = polls[-1][0]
    assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["error"] is None

    statuses = [p["status"] for _, p in polls]
    assert list(dict.fromkeys(statuses)) == ["queued", "running", "succeeded"]
    progress = [p["progress"] for _, p in polls]
    assert progress == sorted(progress), "progress went back"
    running = [(t, p) for t, p in polls if p["status"] == "running"]
    run_seconds = done_at - running[0][0]
    assert answered < run_seconds / 10, (answered, run_seconds)  # the 202 came at once, not after the work
    # Once a quarter is done, the ETA is within +-50% of the time that really remained (not in the last tenth of
    # the run, where both are a fraction of a batch and their ratio means nothing). Neighbours on a shared machine
    # speed the work up or slow it down mid-run, which no estimate foresees: 3 polls in 4 must hold (bench/jobs_eta.py
    # --tiny-gigaam, BATCH_SIZE=4 at load 5-7: every poll held in 7 of 8 runs, and never fewer than 83%).
    checked = [(done_at - t, p["eta_seconds"], p["progress"]) for t, p in running if p["progress"] >= 0.25]
    checked = [(real, eta, done) for real, eta, done in checked if real >= run_seconds / 10]
    assert len(checked) >= 5, (checked, run_seconds)
    off = [(round(real, 1), eta, done) for real, eta, done in checked if not (eta and 0.5 * real <= eta <= 1.5 * real)]
    assert len(off) <= len(checked) / 4, (off, len(checked), run_seconds)

    ahead.join()
    fetched = result(server, job["id"], response_format="verbose_json", **WORDS_AND_SEGMENTS)
    assert fetched.status_code == sync[0].status_code == 200, fetched.text
    assert fetched.content == sync[0].content  # every segment and word, as the synchronous route found them
    verbose = fetched.json()
    assert verbose["duration"] == pytest.approx(600, abs=0.1) and verbose["segments"][-1]["end"] > 540
    assert len(verbose["words"]) > len(verbose["segments"]) > 20
    subtitles = result(server, job["id"])  # the job's own format (srt) when the fetch names none
    assert subtitles.headers["content-type"].startswith("text/plain") and "\n00:09:" in subtitles.text
    server.wait_until_idle()
    assert server.temp_entries() == []
    assert_private(server, [job["id"]], [verbose["text"]])


def test_a_job_renders_every_format_from_its_one_transcript(server: ServerProcess) -> None:
    res = submit(server, TWO_CITIES, response_format="srt")
    assert res.status_code == 202, res.text
    job = wait_for(server, res.json()["id"], ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    for fmt, extra in (("srt", {}), ("vtt", {}), ("verbose_json", WORDS_AND_SEGMENTS)):
        sync = transcribe(server, TWO_CITIES, response_format=fmt, **extra)
        fetched = result(server, job["id"], response_format=fmt, **extra)
        assert fetched.status_code == sync.status_code == 200, fetched.text
        assert fetched.headers["content-type"] == sync.headers["content-type"]
        assert fetched.content == sync.content, fmt
    default = result(server, job["id"])  # the job's own format when the fetch names none
    assert default.headers["x-model"] == "v3_ctc"
    assert default.content == result(server, job["id"], response_format="srt").content
    verbose = result(server, job["id"], response_format="verbose_json", **WORDS_AND_SEGMENTS).json()
    assert verbose["words"] and verbose["segments"]
    assert result(server, job["id"], response_format="json").json()["text"] == verbose["text"]
    assert result(server, job["id"], response_format="text").text == verbose["text"] + "\n"
    refused = result(server, job["id"], response_format="diarized_json")  # it did not look for speakers
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "response_format"

    res = submit(server, DIALOGUE, response_format="diarized_json")  # who said what, found once, for every fetch
    diarized = wait_for(server, res.json()["id"], ("succeeded", "failed"))
    assert diarized["status"] == "succeeded", diarized
    sync = transcribe(server, DIALOGUE, response_format="diarized_json")
    fetched = result(server, diarized["id"])
    assert fetched.content == sync.content
    assert {s["speaker"] for s in fetched.json()["segments"]} >= {"A", "B"}
    assert result(server, diarized["id"], response_format="srt").status_code == 200
    assert_private(server, [job["id"], diarized["id"]], [verbose["text"]])


# --- the one queue --------------------------------------------------------------------------------------------------


def test_three_jobs_run_in_order_and_cancelling_the_running_one_starts_the_next(
    server: ServerProcess, ten_minutes: Path, audio: Path
) -> None:
    server.wait_until_idle()
    files = [
        ten_minutes,
        tiled_wav(BECKETT, audio / "three.wav", 180),
        BECKETT,  # the shortest last: completion in submission order is FIFO, not shortest first
    ]
    submitted = [submit(server, path) for path in files]
    assert [r.status_code for r in submitted] == [202, 202, 202]
    first, second, third = (r.json()["id"] for r in submitted)
    assert [r.json()["position"] for r in submitted] == [0, 1, 2]
    listed = httpx.get(f"{server.url}/v1/jobs").json()["data"]  # the queue, as everyone sees it: no whole ids
    assert [j["short_id"] for j in listed][:3] == [short(third), short(second), short(first)]  # newest first
    assert not [j for j in listed if "id" in j] and [j["position"] for j in listed][:3] == [2, 1, 0]
    state = health(server)
    assert state["jobs"]["queued"] + state["jobs"]["running"] == 3 and state["queue"]["waiting"] >= 1
    assert 'stt_jobs{status="queued"}' in httpx.get(f"{server.url}/metrics").text

    while job_of(server, first)["progress"] == 0:  # its first batch is done
        time.sleep(POLL_SECONDS)
    assert len(server.temp_entries()) == 3
    res = httpx.delete(f"{server.url}/v1/jobs/{first}")
    assert res.status_code == 200 and res.json()["status"] == "cancelled"
    at_cancel = res.json()["progress"]
    assert len(server.temp_entries()) == 2  # its audio went at once

    seen: list[tuple[str, str]] = []
    while True:  # one snapshot of both (the list), so that no state change falls between two requests
        held = {j["short_id"]: j for j in httpx.get(f"{server.url}/v1/jobs").json()["data"]}
        states = (held[short(second)], held[short(third)])
        seen.append((states[0]["status"], states[1]["status"]))
        if states[1]["status"] == "succeeded":
            break
        time.sleep(POLL_SECONDS)
    assert ("running", "queued") in seen and all(b == "queued" for a, b in seen if a in ("queued", "running")), seen
    assert states[1]["position"] is None and states[0]["status"] == "succeeded"
    stopped = job_of(server, first)
    # It stopped at its next batch boundary (and the next job started): at most one batch more of its audio.
    assert stopped["status"] == "cancelled" and stopped["progress"] < 1.0
    assert stopped["progress"] - at_cancel <= BATCH_SIZE * CHUNK_LIMIT_SECONDS / 600 + 1e-6
    cancelled = result(server, first)
    assert cancelled.status_code == 409 and cancelled.json()["error"]["code"] == "job_cancelled"
    gone = httpx.delete(f"{server.url}/v1/jobs/{first}")  # a finished job is forgotten
    assert gone.json() == {"id": first, "object": "job.deleted", "deleted": True}
    assert httpx.get(f"{server.url}/v1/jobs/{first}").status_code == 404
    server.wait_until_idle()
    assert server.temp_entries() == []
    assert_private(server, [first, second, third], [result(server, third, response_format="text").text])


def test_a_stream_waiting_its_turn_is_told_its_place(server: ServerProcess, ten_minutes: Path) -> None:
    server.wait_until_idle()
    long = submit(server, ten_minutes).json()["id"]
    wait_for(server, long, ("running",))
    comments: list[str] = []
    data: list[str] = []
    with (
        BECKETT.open("rb") as f,
        httpx.stream(
            "POST",
            f"{server.url}/v1/audio/transcriptions",
            files={"file": ("beckett.wav", f)},
            data={"stream": "true"},
            timeout=120,
        ) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith(":"):
                comments.append(line)
                if len(comments) == 1:
                    assert not data
                    assert job_of(server, long)["status"] == "running"
                    httpx.delete(f"{server.url}/v1/jobs/{long}")  # let the stream have its turn
            elif line.startswith("data:"):
                data.append(line)
    assert re.fullmatch(r": queued position=1( eta=\d+s)?", comments[0]), comments
    assert data[-1] == "data: [DONE]"
    (done,) = [json.loads(d.removeprefix("data: ")) for d in data[:-1] if "transcript.text.done" in d]
    server.wait_until_idle()
    assert server.temp_entries() == []
    assert_private(server, [long], [done["text"]])


@pytest.mark.timeout(300)
def test_two_hung_up_ten_minute_requests_give_way_to_a_new_job(
    server: ServerProcess, ten_minutes: Path, audio: Path
) -> None:
    server.wait_until_idle()
    other = tiled(BECKETT, 601, audio / "other.wav")  # another file: the same one again would be a retry
    cancelled = metric(server, "stt_cancelled_total")

    def hang_up(path: Path) -> None:  # a long request whose client gives up; its work may wait 600 s for a retry
        with pytest.raises(httpx.ReadTimeout):
            transcribe(server, path, timeout=httpx.Timeout(60, read=0.5))

    hang_up(ten_minutes)
    while health(server)["queue"]["running"] == 0:
        time.sleep(0.05)
    assert metric(server, "stt_cancelled_total") == cancelled  # alone, it keeps its grace
    hang_up(other)  # admitted: the first one stops at its next batch boundary ...
    assert metric(server, "stt_cancelled_total") == cancelled + 1
    res = submit(server, BECKETT)  # ... and a new job, admitted, stops the second
    assert res.status_code == 202, res.text
    assert metric(server, "stt_cancelled_total") == cancelled + 2
    job = wait_for(server, res.json()["id"], ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    server.wait_until_idle()
    assert server.temp_entries() == []
    assert_private(server, [job["id"]], [result(server, job["id"], response_format="text").text])


def test_refusals_are_in_openai_shape_and_hold_nothing(server: ServerProcess, ten_minutes: Path, audio: Path) -> None:
    def refused(res: httpx.Response, status: int, param: str | None, code: str | None = None) -> str:
        assert res.status_code == status, res.text
        error = res.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
        assert code is None or error["code"] == code
        return str(error["message"])

    message = refused(httpx.get(f"{server.url}/v1/jobs/job_{'x' * 22}"), 404, "job_id", "job_not_found")
    assert "restarted" in message and "expired" in message
    refused(httpx.get(f"{server.url}/v1/jobs/job_nope/result"), 404, "job_id")
    refused(submit(server, BECKETT, stream="true"), 400, "stream")
    refused(submit(server, BECKETT, task="summarise"), 400, "task")
    refused(submit(server, BECKETT, response_format="diarized_json", task="translate"), 400, "response_format")
    junk = audio / "junk.wav"
    junk.write_bytes(b"not audio at all\n" * 50)
    refused(submit(server, junk), 400, "file")
    held = {j["short_id"] for j in httpx.get(f"{server.url}/v1/jobs").json()["data"]}
    long = submit(server, ten_minutes).json()["id"]
    waiting = submit(server, BECKETT).json()["id"]
    refused(result(server, waiting), 409, "job_id", "job_not_finished")
    for job_id in (waiting, long):
        httpx.delete(f"{server.url}/v1/jobs/{job_id}")
    assert {j["short_id"] for j in httpx.get(f"{server.url}/v1/jobs").json()["data"]} == held | {
        short(long),
        short(waiting),
    }
    server.wait_until_idle()
    assert server.temp_entries() == []


# --- tiny.en: a result's time to live, MAX_JOBS, Whisper's formats ------------------------------------------------


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with tiny_server(tmp_path_factory.mktemp("short-lived-jobs"), JOBS_TTL_SECONDS="5", MAX_JOBS="2") as server:
        yield server


def test_a_whisper_job_equals_the_synchronous_answer(short_lived: ServerProcess) -> None:
    server = short_lived
    res = submit(server, BECKETT, response_format="srt")
    assert res.status_code == 202, res.text
    job_id = res.json()["id"]
    assert wait_for(server, job_id, ("succeeded", "failed"))["status"] == "succeeded"
    sync = transcribe(server, BECKETT, response_format="verbose_json", **WORDS_AND_SEGMENTS)
    fetched = result(server, job_id, response_format="verbose_json", **WORDS_AND_SEGMENTS)
    assert fetched.status_code == sync.status_code == 200
    assert fetched.content == sync.content  # decoded with words, as every timed format is (ADR 21, ADR 55)
    assert result(server, job_id).text.startswith("1\n00:00:")  # its own format: srt
    text = result(server, job_id, response_format="text").text
    assert "fail better" in text.lower()
    httpx.delete(f"{server.url}/v1/jobs/{job_id}")  # forgotten: MAX_JOBS has its places back
    assert httpx.get(f"{server.url}/v1/jobs/{job_id}").status_code == 404
    assert_private(server, [job_id], [text])


def test_a_result_lives_its_ttl_and_nothing_is_left_on_disk(short_lived: ServerProcess) -> None:
    server = short_lived
    res = submit(server, BECKETT, response_format="text")
    assert res.status_code == 202
    job_id = res.json()["id"]
    while (job := job_of(server, job_id))["status"] in ("queued", "running"):
        assert job["expires_at"] is None
        time.sleep(0.05)
    finished = time.monotonic()
    assert job["status"] == "succeeded" and server.temp_entries() == []  # its audio went before it said so
    assert job["expires_at"] - job["finished_at"] in (4, 5, 6)  # whole seconds of JOBS_TTL_SECONDS=5
    time.sleep(max(0.0, finished + 2 - time.monotonic()))
    at_two = result(server, job_id)
    assert at_two.status_code == 200 and "fail better" in at_two.text.lower()  # and its life starts again: 7 s
    assert server.temp_entries() == []
    time.sleep(max(0.0, finished + 8 - time.monotonic()))
    gone = result(server, job_id)
    assert gone.status_code == 404 and "JOBS_TTL_SECONDS" in gone.json()["error"]["message"]
    assert server.temp_entries() == []
    assert health(server)["jobs"]["held"] == 0
    assert_private(server, [job_id], [at_two.text])


def test_max_jobs_refuses_the_third_with_retry_after(short_lived: ServerProcess) -> None:
    server = short_lived
    first, second = (submit(server, BECKETT).json()["id"] for _ in range(2))
    third = submit(server, BECKETT)
    assert third.status_code == 503 and third.json()["error"]["code"] == "too_many_jobs"
    assert 1 <= int(third.headers["retry-after"]) <= 5
    for job_id in (first, second):
        wait_for(server, job_id, ("succeeded",))
        httpx.delete(f"{server.url}/v1/jobs/{job_id}")
    assert server.temp_entries() == [] and health(server)["jobs"]["held"] == 0
