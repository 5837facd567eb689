"""The Python clients, each making the calls it makes by default, against a running server.

Run by tests/clients/test_clients.py in the clients' own venv (tests/client_envs.py), never imported by the suite:
    python python_clients.py CASE BASE_URL AUDIO_DIR [SILENT_SECONDS]
One JSON line out (the test asserts on it); a failure is a traceback and exit status 1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
import time
import wave
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM fetches its price list online otherwise

CASE, BASE_URL, AUDIO_DIR = sys.argv[1], sys.argv[2], Path(sys.argv[3])
API_KEY = "unused"


def pcm24k(name: str) -> bytes:
    """The test recording as PCM16 mono at 24 kHz (the realtime API's rate), resampled with numpy."""
    import numpy as np

    with wave.open(str(AUDIO_DIR / name)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    times = np.arange(0, len(samples) / rate, 1 / 24000)
    return np.interp(times, np.arange(len(samples)) / rate, samples).astype("<i2").tobytes()


def openai_sdk() -> dict[str, Any]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{BASE_URL}/v1", api_key=API_KEY, max_retries=0, timeout=300)
    beckett = AUDIO_DIR / "beckett.wav"
    with open(beckett, "rb") as f:
        current = client.audio.transcriptions.create(file=f, model="gpt-transcribe", languages=["en"])
    with open(beckett, "rb") as f:
        dated = client.audio.transcriptions.create(
            file=f, model="gpt-4o-mini-transcribe-2025-12-15", include=["logprobs"]
        )
    with open(beckett, "rb") as f:
        diarized = client.audio.transcriptions.create(
            file=f, model="gpt-4o-transcribe-diarize", response_format="diarized_json", chunking_strategy="auto"
        )
    with open(beckett, "rb") as f:
        streamed = [e.type for e in client.audio.transcriptions.create(file=f, model="gpt-4o-transcribe", stream=True)]
    realtime = []
    with client.realtime.connect(extra_query={"intent": "transcription"}) as connection:
        transcription = {"model": "gpt-realtime-whisper", "delay": "low", "keywords": ["Beckett"]}
        audio_input = {"transcription": transcription, "turn_detection": None}
        session = {"type": "transcription", "audio": {"input": audio_input}}
        connection.session.update(session=session)  # type: ignore[arg-type]
        connection.input_audio_buffer.append(audio=base64.b64encode(pcm24k("beckett.wav")).decode())
        connection.input_audio_buffer.commit()
        for event in connection:
            realtime.append(event.type)
            if event.type in ("conversation.item.input_audio_transcription.completed", "error"):
                realtime.append(getattr(event, "transcript", "") or str(getattr(event, "error", "")))
                break
    return {
        "current": current.text,
        "dated": dated.text,
        "logprobs": len(dated.logprobs or []),
        "turns": [[s.speaker, s.text] for s in diarized.segments],
        "stream": streamed,
        "realtime": realtime,
        "models": [m.id for m in client.models.list()],
    }


def litellm_calls() -> dict[str, Any]:
    import litellm

    results = {}
    for model in ("openai/whisper-1", "openai/gpt-4o-transcribe"):
        with open(AUDIO_DIR / "beckett.wav", "rb") as f:
            response = litellm.transcription(model=model, file=f, api_base=f"{BASE_URL}/v1", api_key=API_KEY)
        results[model] = response.text
    return results


async def livekit_stays(silent_seconds: float) -> dict[str, Any]:
    """LiveKit's OpenAI STT (its defaults: gpt-4o-mini-transcribe with server VAD), a participant muted for
    `silent_seconds` (no audio at all), then speaking."""
    from livekit import rtc
    from livekit.agents import stt as agents_stt
    from livekit.agents import utils
    from livekit.plugins import openai as lk_openai

    errors: list[str] = []
    async with utils.http_context.open():
        plugin = lk_openai.STT(base_url=f"{BASE_URL}/v1", api_key=API_KEY, use_realtime=True)
        plugin.on("error", lambda error: errors.append(str(error)))
        stream = plugin.stream()
        finals: list[str] = []
        heard = asyncio.Event()

        async def read() -> None:
            async for event in stream:
                if event.type == agents_stt.SpeechEventType.FINAL_TRANSCRIPT:
                    finals.append(event.alternatives[0].text)
                    if "better" in " ".join(finals).lower():  # the end of the recording
                        heard.set()

        reader = asyncio.create_task(read())
        started = time.monotonic()
        await asyncio.sleep(silent_seconds)  # muted: nothing is sent
        muted_for = time.monotonic() - started
        pcm = pcm24k("beckett.wav") + bytes(2 * 24000 * 2)  # the speech, then 2 s of silence to end the turn
        step = 24000 // 10 * 2
        for offset in range(0, len(pcm), step):
            chunk = pcm[offset : offset + step]
            stream.push_frame(rtc.AudioFrame(chunk, 24000, 1, len(chunk) // 2))
            await asyncio.sleep(0.1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(heard.wait(), 60)
        stream.end_input()
        await stream.aclose()
        reader.cancel()
        await plugin.aclose()
    return {"finals": finals, "errors": errors, "seconds": round(muted_for, 1)}


if __name__ == "__main__":
    if CASE == "openai":
        result = openai_sdk()
    elif CASE == "litellm":
        result = litellm_calls()
    elif CASE == "livekit":
        result = asyncio.run(livekit_stays(float(sys.argv[4])))
    else:
        raise SystemExit(f"unknown case {CASE}")
    print(json.dumps(result))
