"""The model names OpenAI's clients send, which here mean "this server's model" (MODEL, or `auto` under MODEL=auto).

Clients are written for OpenAI's own models and send their names unchanged: the SDKs' examples use `whisper-1` or
`gpt-4o-transcribe`, the Vercel AI SDK sends `gpt-4o-transcribe-diarize` for speaker labels and only
`gpt-transcribe`, `gpt-live-transcribe` or `gpt-realtime-whisper` for streaming transcription, and pinned clients
send dated snapshots such as `gpt-4o-mini-transcribe-2025-12-15`. Every route and the realtime session look names up
here (`Transcriber.resolve_name`); `/v1/models` lists the undated ones as aliases of MODEL.
"""

from __future__ import annotations

import re

# OpenAI's transcription models (openai-python 3.57's `AudioModel` and realtime `AudioTranscription.model`).
OPENAI_TRANSCRIPTION_MODELS = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-transcribe",
    "gpt-live-transcribe",
    "gpt-realtime-whisper",
)
# A dated snapshot of one of them: the name, a dash and the release date (gpt-4o-mini-transcribe-2025-12-15).
DATED_SNAPSHOT = re.compile(r"(?P<name>[a-z0-9-]+?)-(?P<date>\d{4}-\d{2}-\d{2})")
# Names that mean MODEL besides OpenAI's: an omitted or empty model, and `default`.
GENERIC_NAMES = ("", "default")


def means_default_model(name: str) -> bool:
    """Whether a requested model name stands for the server's model: empty, `default`, one of OpenAI's
    transcription models, or a dated snapshot of one."""
    if name in GENERIC_NAMES or name in OPENAI_TRANSCRIPTION_MODELS:
        return True
    dated = DATED_SNAPSHOT.fullmatch(name)
    return dated is not None and dated.group("name") in OPENAI_TRANSCRIPTION_MODELS
