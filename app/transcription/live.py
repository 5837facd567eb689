"""Live transcription of a stream of PCM16 audio: utterances found by Silero VAD, partial text while a person is
still speaking, the final text of each utterance once they stop. No WebSocket here: the API layer feeds audio and
client commands in and sends the events this module emits.

- Audio arrives as PCM16 little-endian mono at the session's rate and is resampled to 16 kHz (PyAV, streaming).
- With turn detection (`server_vad`), Silero's streaming VAD and the segmenter of the file pipeline find speech:
  an utterance starts when speech is certain (longer than the shortest speech kept) and stops after
  `silence_duration_ms` of silence; an utterance reaching the engine's window is cut at its least speech-like point.
  Without turn detection the client commits the buffer itself.
- While an utterance is open it is re-decoded from its start every `partial_interval` (one decode at a time, on the
  Runner's live lane); the text so far goes out as append-only deltas: only the words two successive decodes agree
  on are sent, and a decode that no longer extends what was sent adds nothing. The `Completed` transcript is the
  authority (a client shows deltas as a preview and replaces them with it); before it, the rest of it is sent as a
  last delta whenever it extends what was sent, so deltas usually concatenate to the transcript.
- Every decode runs on the one worker: final text in its live lane, partial text in its preview lane (finals go
  first), both ahead of file jobs and between a file job's batches.
  The VAD (a 2 MB network, ~0.1 ms per 32 ms window) runs beside the worker, so speech stops are seen on time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import av
import msgspec
import numpy as np
import structlog

from app.audio.regions import RegionStream
from app.audio.types import SAMPLE_RATE, Audio
from app.audio.vad import VAD_MIN_SPEECH, SileroVad, SpeechRegion, SpeechSegmenter, load_vad
from app.errors import AppError, Cancelled, InvalidInput
from app.transcript import join_segments
from app.transcription.request import Plan, TranscriptionRequest
from app.transcription.service import Transcriber
from app.worker.cancel import CancelToken

log = structlog.get_logger("app.live")
END_PADDING = 0.2  # seconds of audio kept after the end of speech
MANUAL_PIECE_SECONDS = 28.0  # a hand-committed buffer is decoded in pieces of at most this length
MIN_COMMIT_SECONDS = 0.1  # OpenAI refuses to commit less than 100 ms of audio
MAX_BUFFER_SECONDS = 600.0  # uncommitted audio held at most (without turn detection the client must commit)
MAX_PENDING_SECONDS = 600.0  # committed audio not yet transcribed, held at most per session
INPUT_RATES = (8000, 16000, 24000, 44100, 48000)


class TurnDetection(msgspec.Struct, frozen=True, kw_only=True):
    """OpenAI's `server_vad` turn detection (the only kind here)."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


class LiveConfig(msgspec.Struct, frozen=True, kw_only=True):
    plan: Plan
    turn_detection: TurnDetection | None = msgspec.field(default_factory=TurnDetection)
    input_rate: int = 24000


# Events, in the domain's words; times are milliseconds of audio since the session started.
class SpeechStarted(msgspec.Struct, frozen=True):
    item_id: str
    audio_start_ms: int


class SpeechStopped(msgspec.Struct, frozen=True):
    item_id: str
    audio_end_ms: int


class Committed(msgspec.Struct, frozen=True):
    item_id: str
    previous_item_id: str | None


class Cleared(msgspec.Struct, frozen=True):
    pass


class Partial(msgspec.Struct, frozen=True):
    item_id: str
    delta: str


class Completed(msgspec.Struct, frozen=True):
    item_id: str
    transcript: str
    audio_seconds: float


class Failed(msgspec.Struct, frozen=True):
    item_id: str
    error: AppError


LiveEvent = SpeechStarted | SpeechStopped | Committed | Cleared | Partial | Completed | Failed


def new_item_id() -> str:
    return "item_" + uuid.uuid4().hex[:20]


class PcmResampler:
    """PCM16 little-endian mono bytes at `rate` -> 16 kHz float32, streaming (an odd trailing byte is carried)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._carry = b""
        self._pts = 0
        self._resampler = (
            av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE) if rate != SAMPLE_RATE else None
        )

    def feed(self, pcm: bytes) -> Audio:
        data = self._carry + pcm
        whole = len(data) - len(data) % 2
        self._carry = data[whole:]
        samples = np.frombuffer(data[:whole], dtype="<i2")
        if samples.size == 0:
            return np.zeros(0, dtype=np.float32)
        if self._resampler is None:
            return samples.astype(np.float32) / 32768.0
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        self._pts += samples.size
        out = [np.asarray(f.to_ndarray(), dtype=np.float32).reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def agreed_words(previous: str, hypothesis: str) -> str:
    """The words two successive decodes agree on, from the start (the hypothesis' spelling)."""
    a, b = previous.split(), hypothesis.split()
    count = 0
    while count < min(len(a), len(b)) and a[count] == b[count]:
        count += 1
    return " ".join(b[:count])


def extension(sent: str, text: str) -> str:
    """What to append to `sent` to make `text`, when `text` extends it at a word boundary; else "" (deltas are
    append-only: a decode that no longer agrees with what was sent adds nothing)."""
    text = " ".join(text.split())
    if len(text) <= len(sent) or not text.startswith(sent):
        return ""
    if sent and text[len(sent)] != " ":  # `sent` ends inside a word of `text`: it changed
        return ""
    return text[len(sent) :]


class _Utterance:
    def __init__(self, item_id: str, start: int) -> None:
        self.item_id = item_id
        self.start = start  # first sample of speech
        self.sent = ""  # text sent as deltas so far
        self.hypothesis = ""  # the last partial decode
        self.finished = False
        self.partial_running = False
        self.partial_until = start  # audio end of the last partial decode


class LiveTranscriber:
    """What every live session shares: the transcriber (model checks, engines), the Runner and the VAD model."""

    def __init__(self, transcriber: Transcriber, *, partial_interval_seconds: float) -> None:
        self.transcriber = transcriber
        self.partial_interval = partial_interval_seconds
        self._vad: SileroVad | None = None

    def vad(self) -> SileroVad:
        if self._vad is None:
            self._vad = load_vad()
        return self._vad

    def config(
        self,
        *,
        model: str | None,
        language: str | None,
        prompt: str | None,
        turn_detection: TurnDetection | None,
        input_rate: int,
        keywords: tuple[str, ...] = (),
        languages: tuple[str, ...] = (),
    ) -> LiveConfig:
        """Check a session's settings (InvalidInput names the field) before any audio is taken."""
        request = TranscriptionRequest(
            model=model, language=language, prompt=prompt, words=False, keywords=keywords, languages=languages
        )
        plan = self.transcriber.live_plan(request)
        if input_rate not in INPUT_RATES:
            raise InvalidInput(
                f"Unsupported audio rate {input_rate}; use one of {', '.join(map(str, INPUT_RATES))}",
                about="audio.input.format.rate",
                code="invalid_value",
            )
        if turn_detection is not None:
            if not 0.0 < turn_detection.threshold < 1.0:
                raise InvalidInput(
                    "turn_detection.threshold must be between 0 and 1",
                    about="audio.input.turn_detection.threshold",
                    code="invalid_value",
                )
            if (
                not 0 <= turn_detection.prefix_padding_ms <= 5000
                or not 50 <= turn_detection.silence_duration_ms <= 10000
            ):
                raise InvalidInput(
                    "turn_detection: prefix_padding_ms must be 0-5000 and silence_duration_ms 50-10000",
                    about="audio.input.turn_detection",
                    code="invalid_value",
                )
        return LiveConfig(plan=plan, turn_detection=turn_detection, input_rate=input_rate)

    async def decode(
        self,
        audio: Audio,
        plan: Plan,
        cancel: CancelToken,
        *,
        preview: bool = False,
        unless: Callable[[], bool] | None = None,
    ) -> str | None:
        """The text of one utterance, decoded on the worker's live lane; None when `unless()` is true by the time
        the worker gets to it (a partial decode of an utterance that has ended meanwhile)."""
        transcriber = self.transcriber

        def work() -> str | None:
            if unless is not None and unless():
                return None
            engine = transcriber.engine(plan.model)
            texts: list[str] = []
            step = int(MANUAL_PIECE_SECONDS * SAMPLE_RATE)
            for start in range(0, max(audio.size, 1), step):
                cancel.raise_if_cancelled()  # the session closed (its client left): stop at the next piece
                for result in engine.transcribe([audio[start : start + step]], plan.decoding):
                    texts.extend(segment.text.strip() for segment in result.segments)
            return join_segments(texts)

        return await transcriber.runner.run(work, cancel, lane="preview" if preview else "live")


class LiveSession:
    """One live stream. Feed it audio and commands from one task; it emits events through `emit`, possibly later
    (decodes finish in the background). `close()` stops everything it started."""

    def __init__(self, live: LiveTranscriber, config: LiveConfig, emit: Callable[[LiveEvent], None]) -> None:
        self.live = live
        self.emit = emit
        self.cancel = CancelToken()
        self.stream = RegionStream(None, None)
        self.audio_seconds = 0.0
        self.utterances = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_final: asyncio.Task[None] | None = None
        self._previous_item: str | None = None
        self._open: _Utterance | None = None
        self._pending_start: int | None = None  # manual mode: where the uncommitted buffer starts
        self.pending_samples = 0  # committed audio whose transcription has not completed
        self.config = config
        self._restart_detection()
        self.live.transcriber.runner.live_sessions += 1
        self._counted = True

    def _restart_detection(self) -> None:
        """Speech detection afresh from the current end of the audio (the audio held stays)."""
        self._resampler = PcmResampler(self.config.input_rate)
        td = self.config.turn_detection
        if td is None:
            self.stream.restart(None, None)
        else:
            segmenter = SpeechSegmenter(
                threshold=td.threshold,
                min_speech_seconds=VAD_MIN_SPEECH,
                min_silence_seconds=td.silence_duration_ms / 1000,
                max_speech_seconds=MANUAL_PIECE_SECONDS - td.prefix_padding_ms / 1000 - END_PADDING,
                split_search_from_seconds=10.0,
            )
            self.stream.restart(self.live.vad().stream(), segmenter)
        self._pending_start = self.stream.end

    def reconfigure(self, config: LiveConfig) -> None:
        """session.update: new settings apply to audio from now on (an open utterance is dropped)."""
        changed_stream = (
            config.input_rate != self.config.input_rate or config.turn_detection != self.config.turn_detection
        )
        self.config = config
        if changed_stream:
            self._abandon_open()
            self._restart_detection()

    @property
    def _prefix(self) -> int:
        td = self.config.turn_detection
        return round((td.prefix_padding_ms if td else 0) * SAMPLE_RATE / 1000)

    async def append(self, pcm: bytes) -> None:
        held = self.stream.end - self.stream.held_from + len(pcm) // 2 * SAMPLE_RATE / self.config.input_rate
        if held > MAX_BUFFER_SECONDS * SAMPLE_RATE:
            raise InvalidInput(
                f"The input audio buffer would hold more than {MAX_BUFFER_SECONDS:g} s of uncommitted audio:"
                " commit it (input_audio_buffer.commit) or clear it",
                about="audio",
                code="input_audio_buffer_full",
            )
        audio = self._resampler.feed(pcm)
        if audio.size == 0:
            return
        self.audio_seconds += audio.size / SAMPLE_RATE
        stream = self.stream
        if not stream.detects_speech:
            stream.feed(audio)
            return
        # The VAD (~0.1 ms per 32 ms window) runs beside the worker, so speech stops are seen on time.
        for region in await asyncio.to_thread(stream.feed, audio):
            self._speech_ended(region)
        start = stream.next_start
        if start is not None and self._open is None:
            self._speech_began(start)
        if self._open is not None:
            self._maybe_partial(self._open)
        keep = stream.horizon - self._prefix
        if self._open is not None:
            keep = min(keep, self._open.start - self._prefix)
        stream.release_before(keep)

    def _speech_began(self, start: int) -> None:
        self._open = _Utterance(new_item_id(), start)
        self.emit(SpeechStarted(self._open.item_id, _ms(start)))

    def _speech_ended(self, region: SpeechRegion) -> None:
        start, end = region.start, region.end
        utterance = self._open
        if utterance is None or utterance.start != start:
            utterance = _Utterance(new_item_id(), start)
            self.emit(SpeechStarted(utterance.item_id, _ms(start)))
        self._open = None
        self.emit(SpeechStopped(utterance.item_id, _ms(end)))
        self._commit(utterance, self.stream.audio(start - self._prefix, end + round(END_PADDING * SAMPLE_RATE)))

    def commit(self) -> None:
        """input_audio_buffer.commit: the audio not yet committed becomes an item now."""
        if self._open is not None:  # server VAD had an utterance open: end it here
            utterance = self._open
            self._open = None
            audio = self.stream.audio(utterance.start - self._prefix, self.stream.end)
            self._restart_detection()
            self._commit(utterance, audio)
            return
        start = max(self._pending_start or 0, self.stream.held_from)
        audio = self.stream.audio(start, self.stream.end)
        if audio.size < MIN_COMMIT_SECONDS * SAMPLE_RATE:
            held_ms = audio.size * 1000 / SAMPLE_RATE
            raise InvalidInput(
                "Error committing input audio buffer: buffer too small. Expected at least"
                f" {int(MIN_COMMIT_SECONDS * 1000)}ms of audio, but buffer only has {held_ms:.2f}ms of audio.",
                about=None,
                code="input_audio_buffer_commit_empty",
            )
        self._check_backlog(audio.size)
        self.stream.release_before(self.stream.end)  # committed: the buffer holds only what is not
        self._restart_detection()
        self._commit(_Utterance(new_item_id(), start), audio)

    def _check_backlog(self, samples: int) -> None:
        if self.pending_samples + samples > MAX_PENDING_SECONDS * SAMPLE_RATE:
            raise InvalidInput(
                f"Committed audio still being transcribed would exceed {MAX_PENDING_SECONDS:g} s: wait for the "
                "completed events before committing more (the audio stays in the input buffer)",
                about=None,
                code="transcription_backlog",
            )

    def end_of_audio(self) -> None:
        """The client's audio has ended (Wyoming's audio-stop): an utterance the VAD still has open is committed now
        (audio in which it heard no speech is not decoded)."""
        if self._open is not None:
            self.commit()

    def clear(self) -> None:
        """input_audio_buffer.clear: forget uncommitted audio (and an open utterance)."""
        self._abandon_open()
        self.stream.release_before(self.stream.end)
        self._restart_detection()
        self.emit(Cleared())

    def _abandon_open(self) -> None:
        if self._open is not None:
            self._open.finished = True
            self._open = None

    def _commit(self, utterance: _Utterance, audio: Audio) -> None:
        utterance.finished = True  # no more partials for it
        self.emit(Committed(utterance.item_id, self._previous_item))
        self._previous_item = utterance.item_id
        self.utterances += 1
        try:
            self._check_backlog(audio.size)  # speech found by the VAD, faster than the worker transcribes it
        except InvalidInput as exc:
            self.emit(Failed(utterance.item_id, exc))
            return
        self.pending_samples += audio.size
        previous = self._last_final
        task = asyncio.get_running_loop().create_task(self._finalise(utterance, audio, previous))
        self._last_final = task
        self._track(task)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finalise(self, utterance: _Utterance, audio: Audio, previous: asyncio.Task[None] | None) -> None:
        try:
            await self._transcribe(utterance, audio, previous)
        finally:
            self.pending_samples -= audio.size

    async def _transcribe(self, utterance: _Utterance, audio: Audio, previous: asyncio.Task[None] | None) -> None:
        try:
            text = await self.live.decode(audio, self.config.plan, self.cancel) or ""
        except Cancelled:
            return  # the session is closing
        except Exception as exc:  # a model that cannot load, or a bug: this utterance fails, the session goes on
            error = exc if isinstance(exc, AppError) else AppError("Transcription failed", code="internal_error")
            if not isinstance(exc, AppError):
                log.error("live_decode_failed", error_type=type(exc).__name__, exc_info=exc)
            if previous is not None:
                await asyncio.wait([previous])
            self.emit(Failed(utterance.item_id, error))
            return
        if previous is not None:
            await asyncio.wait([previous])  # completions go out in the order of the items
        rest = extension(utterance.sent, text)
        if rest:
            utterance.sent += rest
            self.emit(Partial(utterance.item_id, rest))
        self.emit(Completed(utterance.item_id, text, audio.size / SAMPLE_RATE))

    def _maybe_partial(self, utterance: _Utterance) -> None:
        end = self.stream.end
        interval = round(self.live.partial_interval * SAMPLE_RATE)
        if utterance.partial_running or end - utterance.partial_until < interval or end - utterance.start < interval:
            return

        utterance.partial_running = True
        utterance.partial_until = end
        audio = self.stream.audio(utterance.start - self._prefix, end)
        self._track(asyncio.get_running_loop().create_task(self._partial(utterance, audio)))

    async def _partial(self, utterance: _Utterance, audio: Audio) -> None:
        try:
            text = await self.live.decode(
                audio, self.config.plan, self.cancel, preview=True, unless=lambda: utterance.finished
            )
        except (AppError, Cancelled):
            return  # the final decode reports failures
        finally:
            utterance.partial_running = False
        if utterance.finished or text is None:
            return
        delta = extension(utterance.sent, agreed_words(utterance.hypothesis, text))
        utterance.hypothesis = text
        if delta:
            utterance.sent += delta
            self.emit(Partial(utterance.item_id, delta))

    async def drain(self, seconds: float) -> None:
        """Wait (at most `seconds`) for committed utterances to complete."""
        if self._last_final is not None:
            await asyncio.wait([self._last_final], timeout=seconds)

    async def close(self) -> None:
        """Stop: decodes not yet started are skipped, running ones end; nothing is emitted afterwards."""
        self.cancel.cancel()
        if self._counted:
            self._counted = False
            self.live.transcriber.runner.live_sessions -= 1
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


def _ms(sample: int) -> int:
    return round(sample * 1000 / SAMPLE_RATE)
