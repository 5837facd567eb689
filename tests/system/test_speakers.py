"""Who said what (response_format=diarized_json), driven the way users drive it: the real `openai` SDK against
`python -m app` with Whisper tiny.en, on a conversation of three voices with known turns (tests/conversations.py);
plus the invariant of splitting segments by speaker."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import OpenAI
from openai.types.audio import TranscriptionDiarized

from app.diarization.diarize import DiarizationSegment
from app.diarization.speakers import anonymous_label, match_voices, split_by_speaker
from app.transcript import DiarizedSegment, Segment, Word, join_segments
from tests.conversations import NAMES, Conversation, three_voices
from tests.server import ServerProcess, tiny_server
from tools.diar_eval import Turn, diarization_error_rate

# --- the invariant -------------------------------------------------------------------------------------------------


@st.composite
def transcripts(draw: st.DrawFn) -> tuple[list[Segment], list[DiarizationSegment]]:
    """Ordered segments of timed words (some without words) and ordered speaker turns over the same time span."""
    segments: list[Segment] = []
    t = 0.0
    for _ in range(draw(st.integers(0, 6))):
        t += draw(st.floats(0.0, 2.0))
        start = t
        words = []
        for _ in range(draw(st.integers(0, 6))):
            w_start = t + draw(st.floats(0.0, 0.3))
            t = w_start + draw(st.floats(0.01, 1.0))
            words.append(Word(draw(st.sampled_from(["a", "b,", "see.", "dee"])), round(w_start, 3), round(t, 3)))
        t += draw(st.floats(0.0, 0.5))
        text = " ".join(w.word for w in words) if words else draw(st.sampled_from(["", "x y"]))
        segments.append(Segment(round(start, 3), round(t, 3), text, tuple(words)))
    turns: list[DiarizationSegment] = []
    u = 0.0
    while u < t + 1:
        length = draw(st.floats(0.2, 4.0))
        turns.append(DiarizationSegment(round(u, 3), round(u + length, 3), draw(st.integers(0, 3))))
        u += length + draw(st.floats(0.0, 1.0))
    return segments, draw(st.sampled_from([turns, []]))


@settings(max_examples=200, deadline=None)
@given(transcripts(), st.dictionaries(st.integers(0, 3), st.sampled_from(["ann", "bob"]), max_size=1))
def test_split_segments_never_span_two_speakers(
    case: tuple[list[Segment], list[DiarizationSegment]], names: dict[int, str]
) -> None:
    segments, turns = case
    diarized = split_by_speaker(segments, turns, names)
    # ordered and never overlapping
    for a, b in itertools.pairwise(diarized):
        assert a.end <= b.start
    assert all(s.start <= s.end and s.text for s in diarized)
    # the text joins to the transcript's text
    assert join_segments([s.text for s in diarized]) == join_segments([s.text for s in segments])
    # anonymous speakers are A, B, ... by first appearance; known ones keep their names
    anonymous = [s.speaker for s in diarized if s.speaker not in names.values()]
    first_seen = list(dict.fromkeys(anonymous))
    assert first_seen == [anonymous_label(i) for i in range(len(first_seen))]
    # never two speakers in one segment: each timed word sits in a segment labelled as its own speaker is (the turn
    # overlapping it most, else the nearest), and one speaker has one label
    label_of: dict[int, str] = {}
    for word in (w for segment in segments for w in segment.words):
        speaker = speaker_of(word, turns)
        if speaker is None:
            continue
        holders = [p for p in diarized if p.start <= word.start and word.end <= p.end]
        assert holders
        label = label_of.setdefault(speaker, holders[0].speaker)
        assert label in {p.speaker for p in holders}
    assert len(set(label_of.values())) == len(label_of)


def speaker_of(word: Word, turns: list[DiarizationSegment]) -> int | None:
    """The speaker a word belongs to, worked out by brute force; None when there are no turns or a tie."""
    if not turns:
        return None
    overlap: dict[int, float] = {}
    for t in turns:
        shared = min(word.end, t.end) - max(word.start, t.start)
        if shared > 0:
            overlap[t.speaker] = overlap.get(t.speaker, 0.0) + shared
    if not overlap:
        middle = (word.start + word.end) / 2
        gaps = sorted((max(t.start - middle, middle - t.end, 0.0), t.speaker) for t in turns)
        tied = len(gaps) > 1 and gaps[0][0] == gaps[1][0] and gaps[0][1] != gaps[1][1]
        return None if tied else gaps[0][1]
    best = sorted(overlap.values(), reverse=True)
    return None if len(best) > 1 and best[0] - best[1] < 1e-9 else max(overlap, key=lambda k: overlap[k])


def test_labels_and_matching() -> None:
    assert [anonymous_label(i) for i in (0, 1, 25, 26, 27)] == ["A", "B", "Z", "AA", "AB"]
    import numpy as np

    e = np.eye(3, dtype=np.float32)
    # found speaker 0 is voice "x"; speaker 1 is like nobody enrolled; one name is never used twice
    found = {0: e[0], 1: e[1]}
    assert match_voices(found, {"x": e[0], "y": e[2]}) == {0: "x"}
    assert match_voices({0: e[0], 1: e[0]}, {"x": e[0]}) == {0: "x"}


# --- through the server and the SDK ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conversation(tmp_path_factory: pytest.TempPathFactory) -> Conversation:
    return three_voices(tmp_path_factory.mktemp("conversation"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, conversation: Conversation) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("speakers-server")
    voices = tmp / "voices"
    voices.mkdir()
    for name in NAMES[:2]:  # saved voices: the two synthetic ones
        shutil.copy(conversation.references[name], voices / f"{name}.wav")
    with tiny_server(tmp, SPEAKERS_DIR=str(voices), KEEPALIVE_SECONDS="0.2") as running:
        yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def data_url(path: Path) -> str:
    mime = {".wav": "audio/wav", ".mp3": "audio/mpeg"}[path.suffix]
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def der(segments: Sequence[DiarizedSegment], reference: list[Turn]) -> float:
    ids = {name: i for i, name in enumerate(dict.fromkeys(s.speaker for s in segments))}
    hypothesis = [Turn(s.start, s.end, ids[s.speaker]) for s in segments]
    return diarization_error_rate(reference, hypothesis).der


def named_share(segments: Sequence[DiarizedSegment], reference: list[Turn]) -> float:
    """The share of the reference speech inside the answer's segments whose segment carries the speaker's name.

    (Segments span the words, so a little of each turn's edges lies outside every segment: `coverage` checks that.)
    """
    right = sum(overlap(t, s) for t in reference for s in segments if s.speaker == NAMES[t.speaker])
    return right / sum(overlap(t, s) for t in reference for s in segments)


def coverage(segments: Sequence[DiarizedSegment], reference: list[Turn]) -> float:
    """The share of the reference speech inside the answer's segments."""
    return sum(overlap(t, s) for t in reference for s in segments) / sum(t.end - t.start for t in reference)


def overlap(turn: Turn, segment: DiarizedSegment) -> float:
    return max(0.0, min(turn.end, segment.end) - max(turn.start, segment.start))


def domain(result: TranscriptionDiarized) -> list[DiarizedSegment]:
    return [DiarizedSegment(s.start, s.end, s.text, s.speaker) for s in result.segments]


def test_diarized_json_finds_three_voices(client: OpenAI, conversation: Conversation) -> None:
    with open(conversation.path, "rb") as f:
        result = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="diarized_json", chunking_strategy="auto"
        )
    assert isinstance(result, TranscriptionDiarized)
    assert result.task == "transcribe" and result.duration == pytest.approx(36.66, abs=0.1)
    assert result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 37
    assert all(s.type == "transcript.text.segment" for s in result.segments)
    assert [s.id for s in result.segments] == [str(i) for i in range(len(result.segments))]
    speakers = list(dict.fromkeys(s.speaker for s in result.segments))
    assert speakers == ["A", "B", "C"]
    assert result.text == " ".join(s.text for s in result.segments)
    assert "best of times" in result.text and "meeting" in result.text
    assert der(domain(result), conversation.turns) <= 0.10


def test_known_speakers_name_their_segments(client: OpenAI, conversation: Conversation) -> None:
    names = list(NAMES)
    with open(conversation.path, "rb") as f:
        result = client.audio.transcriptions.create(
            file=f,
            model="whisper-1",
            response_format="diarized_json",
            known_speaker_names=names,
            known_speaker_references=[data_url(conversation.references[n]) for n in names],  # one is an mp3
        )
    assert {s.speaker for s in result.segments} == set(names)
    assert named_share(domain(result), conversation.turns) >= 0.9  # measured 1.0
    assert coverage(domain(result), conversation.turns) >= 0.85  # measured 0.91


def test_saved_voices_by_name_and_unknown_voices_stay_anonymous(client: OpenAI, conversation: Conversation) -> None:
    with open(conversation.path, "rb") as f:
        result = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="diarized_json", known_speaker_names=["Fiona", "Marcus"]
        )
    assert {s.speaker for s in result.segments} == {"Marcus", "Fiona", "A"}
    human = [s for s in result.segments if "times" in s.text or "wisdom" in s.text]
    assert human and {s.speaker for s in human} == {"A"}
    only_synthetic = [t for t in conversation.turns if t.speaker < 2]
    assert named_share(domain(result), only_synthetic) >= 0.9


def sse_events(server: ServerProcess, path: Path, data: dict[str, str]) -> tuple[list[dict[str, object]], int]:
    """The JSON events of a streamed answer (until [DONE]) and the number of keep-alive comments."""
    events: list[dict[str, object]] = []
    keepalives = 0
    files = {"file": (path.name, path.read_bytes(), "audio/wav")}
    url = f"{server.url}/v1/audio/transcriptions"
    with httpx.stream("POST", url, files=files, data={**data, "stream": "true"}, timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith(": keep-alive"):
                keepalives += 1
            elif line == "data: [DONE]":
                break
            elif line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events, keepalives


def test_streamed_speaker_segments(client: OpenAI, server: ServerProcess, conversation: Conversation) -> None:
    with open(conversation.path, "rb") as f:
        stream = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="diarized_json", stream=True
        )
        sdk_events = list(stream)
    kinds = [e.type for e in sdk_events]
    assert kinds[-1] == "transcript.text.done"
    segments = [e for e in sdk_events if e.type == "transcript.text.segment"]
    assert segments and {e.speaker for e in segments} == {"A", "B", "C"}
    # deltas first, then one segment event per diarized segment, then done
    last_delta = max(i for i, k in enumerate(kinds) if k == "transcript.text.delta")
    assert last_delta < kinds.index("transcript.text.segment")
    done = sdk_events[-1]
    deltas = "".join(e.delta for e in sdk_events if e.type == "transcript.text.delta")
    assert deltas == done.text == " ".join(e.text for e in segments)
    # the same segments as the synchronous answer
    with open(conversation.path, "rb") as f:
        synchronous = client.audio.transcriptions.create(file=f, model="whisper-1", response_format="diarized_json")
    assert [(e.start, e.end, e.speaker, e.text) for e in segments] == [
        (s.start, s.end, s.speaker, s.text) for s in synchronous.segments
    ]
    # keep-alives flow while the speakers are worked out (KEEPALIVE_SECONDS=0.2 here)
    events, keepalives = sse_events(server, conversation.path, {"response_format": "diarized_json"})
    assert keepalives >= 1 and events[-1]["type"] == "transcript.text.done"


def test_chunking_strategy_is_accepted_on_every_format(
    client: OpenAI, server: ServerProcess, conversation: Conversation
) -> None:
    vad = {"type": "server_vad", "threshold": 0.6, "prefix_padding_ms": 300, "silence_duration_ms": 400}
    with open(conversation.path, "rb") as f:
        plain = client.audio.transcriptions.create(file=f, model="whisper-1", chunking_strategy=vad)
    assert "best of times" in plain.text
    with open(conversation.path, "rb") as f:
        verbose = client.audio.transcriptions.create(
            file=f, model="whisper-1", response_format="verbose_json", chunking_strategy=vad
        )
    assert verbose.segments
    # as a JSON string, the way curl users send it
    events, _ = sse_events(server, conversation.path, {"chunking_strategy": json.dumps(vad)})
    assert events[-1]["type"] == "transcript.text.done" and "best of times" in str(events[-1]["text"])


def test_hanging_up_a_diarized_stream_stops_the_work(server: ServerProcess, conversation: Conversation) -> None:
    before = server.log().count("status=499")
    files = {"file": ("c.wav", conversation.path.read_bytes(), "audio/wav")}
    data = {"stream": "true", "response_format": "diarized_json"}
    url = f"{server.url}/v1/audio/transcriptions"
    with httpx.stream("POST", url, files=files, data=data, timeout=120) as response:
        for line in response.iter_lines():
            if "transcript.text.delta" in line:
                break  # the first words arrived: walk away before the speakers are worked out
    server.wait_until_idle()
    assert server.temp_entries() == []
    assert server.log().count("status=499") == before + 1
