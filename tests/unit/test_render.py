"""json, text, verbose_json and the SSE events, checked against the `openai` SDK's own types."""

from __future__ import annotations

import json
import math

import httpx
import pydantic
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import APIError, OpenAI
from openai._streaming import SSEDecoder, Stream
from openai.types.audio import Transcription, TranscriptionStreamEvent, TranscriptionVerbose
from openai.types.audio.transcription_create_response import TranscriptionCreateResponse

from app.render import (
    SSE_DONE,
    SSE_KEEPALIVE,
    DeltaJoiner,
    ErrorBody,
    compression_ratio,
    language_name,
    render_json,
    render_text,
    render_verbose_json,
    sse_delta,
    sse_done,
    sse_error,
    sse_segment,
    verbose_flags,
)
from app.transcript import Segment, Transcript, Word
from tests.render_strategies import transcripts

stream_event = pydantic.TypeAdapter(TranscriptionStreamEvent)


def stream_of(transcript: Transcript) -> bytes:
    """What the streaming endpoint sends for a transcript: deltas, a segment event each, keep-alives, done."""
    joiner, body = DeltaJoiner(), [SSE_KEEPALIVE]
    for index, segment in enumerate(transcript.segments):
        delta = joiner.push(segment.text)
        if delta is not None:
            body.append(sse_delta(delta))
        body += [sse_segment(index, segment), SSE_KEEPALIVE]
    return b"".join([*body, sse_done(transcript.text, math.ceil(transcript.duration)), SSE_DONE])


@settings(max_examples=100, deadline=None)
@given(transcripts(), st.booleans(), st.booleans())
def test_verbose_json_parses_as_the_sdk_type(transcript: Transcript, words: bool, segments: bool) -> None:
    body = render_verbose_json(transcript, words=words, segments=segments)
    parsed = TranscriptionVerbose.model_validate_json(body)  # strict: every required field, right types
    assert parsed.text == transcript.text and parsed.usage is not None
    assert parsed.usage.seconds == math.ceil(round(transcript.duration, 3))
    assert (parsed.words is not None) == words and (parsed.segments is not None) == segments
    if words:
        assert [w.word for w in parsed.words or []] == [w.word for w in transcript.words]
    if segments:
        assert [s.id for s in parsed.segments or []] == list(range(len(transcript.segments)))
        assert all(s.start <= s.end and s.seek >= 0 for s in parsed.segments or [])
    assert None not in _leaves(json.loads(body))  # numbers where OpenAI has numbers, never nulls


def _leaves(value: object) -> list[object]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


@settings(max_examples=100, deadline=None)
@given(transcripts())
def test_json_text_and_stream_agree(transcript: Transcript) -> None:
    parsed = Transcription.model_validate_json(render_json(transcript))
    assert parsed.text == transcript.text and parsed.usage is not None and parsed.usage.type == "duration"
    assert render_text(transcript) == transcript.text + "\n"

    events = [sse for sse in SSEDecoder().iter_bytes(iter([stream_of(transcript)])) if sse.data != "[DONE]"]
    parsed_events = [stream_event.validate_json(sse.data) for sse in events[:-1]]
    deltas = [e.delta for e in parsed_events if e.type == "transcript.text.delta"]
    assert "".join(deltas) == transcript.text and all(deltas)
    done = json.loads(events[-1].data)  # usage is a duration, as in the json response (the SDK reads it leniently)
    assert done == {
        "type": "transcript.text.done",
        "text": transcript.text,
        "usage": {"type": "duration", "seconds": math.ceil(transcript.duration)},
    }
    assert len([e for e in parsed_events if e.type == "transcript.text.segment"]) == len(transcript.segments)


def test_delta_joiner_moves_the_space_to_the_next_delta() -> None:
    joiner = DeltaJoiner()
    assert [joiner.push(t) for t in ["", "Hello there.", "", "General Kenobi."]] == [
        None,
        "Hello there.",
        None,
        " General Kenobi.",
    ]


def test_the_sdk_streams_our_events_and_raises_our_error() -> None:
    client = OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
    segments = (Segment(0.0, 1.5, "Привет,"), Segment(1.6, 3.0, "мир!"))
    ok = _sdk_stream(client, stream_of(Transcript("ru", 3.0, segments)))
    assert [type(e).__name__ for e in ok] == [
        "TranscriptionTextDeltaEvent",
        "TranscriptionTextSegmentEvent",
        "TranscriptionTextDeltaEvent",
        "TranscriptionTextSegmentEvent",
        "TranscriptionTextDoneEvent",
    ]
    assert ok[-1].text == "Привет, мир!" and ok[1].id == "0" and ok[3].start == 1.6
    assert ok[-1].usage.type == "duration" and ok[-1].usage.seconds == 3

    failing = sse_delta("Hello") + sse_error(
        ErrorBody("The audio could not be decoded.", "invalid_request_error", None, None)
    )
    try:
        _sdk_stream(client, failing)
    except APIError as error:
        assert error.message == "The audio could not be decoded."
        assert error.body == {
            "message": "The audio could not be decoded.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    else:
        raise AssertionError("the SDK did not raise our error event")


def _sdk_stream(client: OpenAI, body: bytes) -> list[object]:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/audio/transcriptions")
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body, request=request)
    return list(Stream(cast_to=TranscriptionStreamEvent, response=response, client=client))


def test_verbose_json_example_reads_like_openai() -> None:
    words = (Word("Hello", 0.0, 0.42, 0.9), Word("world.", 0.5, 0.98, 0.8))
    whisper = Segment(0.0, 1.0, "Hello world.", words, (50364, 2425), -0.21, 0.8, 0.01, 0.2)
    ctc = Segment(31.04, 33.0, "no statistics here")
    body = json.loads(render_verbose_json(Transcript("en", 33.2, (whisper, ctc)), words=True, segments=True))
    assert body["task"] == "transcribe" and body["language"] == "english" and body["duration"] == 33.2
    assert body["text"] == "Hello world. no statistics here"
    assert body["usage"] == {"type": "duration", "seconds": 34}
    assert body["words"] == [
        {"word": "Hello", "start": 0.0, "end": 0.42},
        {"word": "world.", "start": 0.5, "end": 0.98},
    ]
    assert body["segments"][0] == {
        "id": 0, "seek": 0, "start": 0.0, "end": 1.0, "text": "Hello world.", "tokens": [50364, 2425],
        "temperature": 0.2, "avg_logprob": -0.21, "compression_ratio": 0.8, "no_speech_prob": 0.01,
    }  # fmt: skip
    second = body["segments"][1]
    assert second["seek"] == 3104 and second["tokens"] == [] and second["avg_logprob"] == 0.0
    assert second["compression_ratio"] == compression_ratio("no statistics here") > 0
    assert list(body) == ["task", "language", "duration", "text", "words", "segments", "usage"]


def test_spaced_words_rebuild_the_text_when_joined() -> None:
    words = (Word("Hello", 0.0, 0.4), Word("world.", 0.5, 0.9))
    transcript = Transcript("en", 1.0, (Segment(0.0, 0.9, "Hello world.", words),))
    body = json.loads(render_verbose_json(transcript, words=True, segments=False, spaced_words=True))
    assert [w["word"] for w in body["words"]] == [" Hello", " world."]
    assert "".join(w["word"] for w in body["words"]).strip() == body["text"]


def test_granularities_decide_segments_and_words() -> None:
    assert verbose_flags([]) == (False, True)
    assert verbose_flags(["word"]) == (True, False)
    assert verbose_flags(["segment", "word"]) == (True, True)


def test_translation_reports_english_and_no_usage() -> None:
    transcript = Transcript("de", 2.0, (Segment(0.0, 2.0, "Good morning."),), task="translate")
    body = json.loads(render_verbose_json(transcript, words=False, segments=True))
    assert body["task"] == "translate" and body["language"] == "english" and "usage" not in body
    assert json.loads(render_json(transcript)) == {"text": "Good morning."}


def test_language_names() -> None:
    assert [language_name(c) for c in ["en", "RU", "pt-BR", "german", "xx"]] == [
        "english",
        "russian",
        "portuguese",
        "german",
        "xx",
    ]


def test_response_union_accepts_json_body() -> None:
    body = render_json(Transcript("en", 0.2, (Segment(0.0, 0.2, "Hi."),)))
    assert json.loads(body) == {"text": "Hi.", "usage": {"type": "duration", "seconds": 1}}
    pydantic.TypeAdapter(TranscriptionCreateResponse).validate_json(body)
