"""OpenAI's Realtime transcription protocol on the wire: the client events we take and the server events we send.

Shapes follow OpenAI's GA Realtime API (`session.update` with `session.type = "transcription"` and
`audio.input.{format, transcription, turn_detection}`); the older beta form (`transcription_session.update` with
`input_audio_format`, `input_audio_transcription`, `turn_detection`) is read too and answered in its own shape.
Fields a client leaves out of an update stay as they were (`UNSET`); `turn_detection: null` turns server VAD off.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from app.render.sse import ErrorBody


def event_id() -> str:
    return "event_" + uuid.uuid4().hex[:20]


# ---- session configuration (both directions) ----


class AudioFormat(msgspec.Struct, forbid_unknown_fields=False):
    type: str = "audio/pcm"
    rate: int = 24000


Delay = Literal["minimal", "low", "medium", "high", "xhigh"]  # OpenAI's latency/accuracy trade-off (accepted, shown)


class TranscriptionParams(msgspec.Struct, omit_defaults=False):
    model: str | UnsetType | None = UNSET
    language: str | UnsetType | None = UNSET
    prompt: str | UnsetType | None = UNSET
    languages: list[str] | UnsetType = UNSET  # the audio is in one of these (one: it is the language)
    keywords: list[str] | UnsetType = UNSET  # words or names to favour (Whisper: hotwords)
    delay: Delay | UnsetType = UNSET


class TurnDetectionParams(msgspec.Struct):
    type: str = "server_vad"
    threshold: float | UnsetType = UNSET
    prefix_padding_ms: int | UnsetType = UNSET
    silence_duration_ms: int | UnsetType = UNSET


class AudioInputParams(msgspec.Struct):
    format: AudioFormat | UnsetType = UNSET
    transcription: TranscriptionParams | UnsetType = UNSET
    turn_detection: TurnDetectionParams | UnsetType | None = UNSET
    noise_reduction: Any = UNSET  # accepted and ignored


class AudioParams(msgspec.Struct):
    input: AudioInputParams | UnsetType = UNSET


class SessionParams(msgspec.Struct):
    """GA: `session.update`'s session."""

    type: str | UnsetType = UNSET
    audio: AudioParams | UnsetType = UNSET
    include: Any = UNSET  # accepted and ignored


class BetaSessionParams(msgspec.Struct):
    """Beta: `transcription_session.update`'s session."""

    input_audio_format: str | UnsetType = UNSET
    input_audio_transcription: TranscriptionParams | UnsetType | None = UNSET
    turn_detection: TurnDetectionParams | UnsetType | None = UNSET
    input_audio_noise_reduction: Any = UNSET
    include: Any = UNSET


# ---- client events ----


class SessionUpdate(msgspec.Struct, tag_field="type", tag="session.update"):
    session: SessionParams
    event_id: str | None = None


class TranscriptionSessionUpdate(msgspec.Struct, tag_field="type", tag="transcription_session.update"):
    session: BetaSessionParams
    event_id: str | None = None


class AudioAppend(msgspec.Struct, tag_field="type", tag="input_audio_buffer.append"):
    audio: str
    event_id: str | None = None


class AudioCommit(msgspec.Struct, tag_field="type", tag="input_audio_buffer.commit"):
    event_id: str | None = None


class AudioClear(msgspec.Struct, tag_field="type", tag="input_audio_buffer.clear"):
    event_id: str | None = None


ClientEvent = SessionUpdate | TranscriptionSessionUpdate | AudioAppend | AudioCommit | AudioClear
CLIENT_EVENT_TYPES = (
    "session.update",
    "transcription_session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
)


# ---- server events ----


class TranscriptionState(msgspec.Struct, omit_defaults=True):
    model: str
    language: str | None
    prompt: str | None
    languages: list[str] | UnsetType = UNSET
    keywords: list[str] | UnsetType = UNSET
    delay: Delay | UnsetType = UNSET


class TurnDetectionState(msgspec.Struct):
    threshold: float
    prefix_padding_ms: int
    silence_duration_ms: int
    type: str = "server_vad"


class AudioInputState(msgspec.Struct):
    format: AudioFormat
    transcription: TranscriptionState
    turn_detection: TurnDetectionState | None
    noise_reduction: None = None


class AudioState(msgspec.Struct):
    input: AudioInputState


class SessionState(msgspec.Struct):
    """GA: the session as `session.created` / `session.updated` show it."""

    id: str
    audio: AudioState
    type: str = "transcription"
    object: str = "realtime.transcription_session"
    include: None = None


class BetaSessionState(msgspec.Struct):
    """Beta: the session as `transcription_session.updated` shows it."""

    id: str
    input_audio_format: str
    input_audio_transcription: TranscriptionState
    turn_detection: TurnDetectionState | None
    object: str = "realtime.transcription_session"
    input_audio_noise_reduction: None = None


class SessionCreated(msgspec.Struct, tag_field="type", tag="session.created"):
    session: SessionState
    event_id: str = msgspec.field(default_factory=event_id)


class SessionUpdated(msgspec.Struct, tag_field="type", tag="session.updated"):
    session: SessionState
    event_id: str = msgspec.field(default_factory=event_id)


class TranscriptionSessionUpdated(msgspec.Struct, tag_field="type", tag="transcription_session.updated"):
    session: BetaSessionState
    event_id: str = msgspec.field(default_factory=event_id)


class SpeechStartedEvent(msgspec.Struct, tag_field="type", tag="input_audio_buffer.speech_started"):
    audio_start_ms: int
    item_id: str
    event_id: str = msgspec.field(default_factory=event_id)


class SpeechStoppedEvent(msgspec.Struct, tag_field="type", tag="input_audio_buffer.speech_stopped"):
    audio_end_ms: int
    item_id: str
    event_id: str = msgspec.field(default_factory=event_id)


class CommittedEvent(msgspec.Struct, tag_field="type", tag="input_audio_buffer.committed"):
    item_id: str
    previous_item_id: str | None
    event_id: str = msgspec.field(default_factory=event_id)


class ClearedEvent(msgspec.Struct, tag_field="type", tag="input_audio_buffer.cleared"):
    event_id: str = msgspec.field(default_factory=event_id)


class TranscriptionDeltaEvent(
    msgspec.Struct, tag_field="type", tag="conversation.item.input_audio_transcription.delta"
):
    item_id: str
    delta: str
    content_index: int = 0
    event_id: str = msgspec.field(default_factory=event_id)


class DurationUsage(msgspec.Struct, tag_field="type", tag="duration"):
    seconds: float


class TranscriptionCompletedEvent(
    msgspec.Struct, tag_field="type", tag="conversation.item.input_audio_transcription.completed"
):
    item_id: str
    transcript: str
    usage: DurationUsage
    content_index: int = 0
    event_id: str = msgspec.field(default_factory=event_id)


class TranscriptionFailedEvent(
    msgspec.Struct, tag_field="type", tag="conversation.item.input_audio_transcription.failed"
):
    item_id: str
    error: ErrorBody
    content_index: int = 0
    event_id: str = msgspec.field(default_factory=event_id)


class RealtimeErrorBody(msgspec.Struct):
    """OpenAI's error object plus the id of the client event it is about (Realtime's error events carry it)."""

    message: str
    type: str
    param: str | None
    code: str | None
    event_id: str | None = None


class ErrorEvent(msgspec.Struct, tag_field="type", tag="error"):
    error: RealtimeErrorBody
    event_id: str = msgspec.field(default_factory=event_id)


ServerEvent = (
    SessionCreated
    | SessionUpdated
    | TranscriptionSessionUpdated
    | SpeechStartedEvent
    | SpeechStoppedEvent
    | CommittedEvent
    | ClearedEvent
    | TranscriptionDeltaEvent
    | TranscriptionCompletedEvent
    | TranscriptionFailedEvent
    | ErrorEvent
)

_encoder = msgspec.json.Encoder()


def encode_event(event: ServerEvent) -> str:
    return _encoder.encode(event).decode()
