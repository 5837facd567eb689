"""schemathesis hooks for tests/system/test_contract.py (loaded through SCHEMATHESIS_HOOKS in the schemathesis process).

Schema-valid requests are given what no schema can state, so that they are really accepted: real audio where the
contract says "a file" or "an http(s) URL" (random bytes are bad audio, a documented 400), one reference voice per known
speaker name (the counts must match; references must be 2-10 s of a voice), response_format=json beside
include[]=logprobs (json only), `language` or `languages[]` (not both), and the text to translate when neither the query
nor the body carries it. One change is for speed only: Whisper `base` gets English (the clip's language) rather than a
random one. Everything else stays as generated. Schema-invalid (negative) requests are left alone: they must be refused.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import schemathesis
from schemathesis import Case

CLIP_PATH = os.environ.get("CONTRACT_CLIP", "")
VOICE_PATH = os.environ.get("CONTRACT_VOICE", "")
AUDIO_URL = os.environ.get("CONTRACT_AUDIO_URL", "")


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


CLIP = _read(CLIP_PATH) if CLIP_PATH else b""
VOICE_URL = "data:audio/wav;base64," + base64.b64encode(_read(VOICE_PATH)).decode() if VOICE_PATH else ""


def _is_positive(case: Case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def map_case(context: Any, case: Case) -> Case:
    if not _is_positive(case):
        return case
    path = case.operation.path
    body = case.body
    if isinstance(body, dict) and (path.startswith("/v1/audio/") or path == "/v1/jobs"):
        if body.get("model") == "base" and body.get("language"):
            # Speed, not validity: base forced into a language the clip is not in decodes to its token limit with
            # temperature fallbacks (20-60 s for 3 s of audio on 2 shared cores; seen, and answered 200).
            body["language"] = "en"
        if "file" in body:
            body["file"] = CLIP
        if "files[]" in body:
            body["files[]"] = [CLIP for _ in body["files[]"]]
        names = [name for name in body.get("known_speaker_names[]", []) if name != ""]  # "" is no name
        if names and body.get("task") == "translate":  # a job translating finds no speakers (diarized_json: a 400)
            body.pop("known_speaker_names[]")
            body.pop("known_speaker_references[]", None)
        elif names:
            body["response_format"] = "diarized_json"  # known voices are for diarized_json only (a 400 otherwise)
            body["known_speaker_references[]"] = [VOICE_URL for _ in names]
            if isinstance(body.get("include[]"), list):
                body["include[]"] = [item for item in body["include[]"] if item != "logprobs"]  # json only
        else:
            body.pop("known_speaker_references[]", None)  # references need names
            if isinstance(body.get("include[]"), list) and "logprobs" in body["include[]"]:
                body["response_format"] = "json"  # log probabilities come in json only (as at OpenAI; else a 400)
        if body.get("language") and body.get("languages[]"):
            del body["languages[]"]  # language or languages[], not both (a 400 when they differ)
        if isinstance(body.get("audio_file_url"), str):
            body["audio_file_url"] = AUDIO_URL
    if path in ("/asr", "/detect-language") and isinstance(body, dict) and "audio_file" in body:
        body["audio_file"] = CLIP  # a WAV file; with encode=false its bytes are taken as raw PCM (still speech)
    if path == "/v1/audio/transcriptions-from-url" and isinstance(body, dict):
        body["audio_file_url"] = AUDIO_URL
    if path == "/diarize" and case.query is not None:
        case.query["audio_file_url"] = AUDIO_URL
    if path == "/translate":
        query = case.query if case.query is not None else {}
        in_body = body if isinstance(body, dict) else {}
        for name, value in (("text", "Hello."), ("source_language", "en"), ("target_language", "en")):
            if query.get(name) in (None, "") and in_body.get(name) is None:
                query[name] = value
        case.query = query
    return case
