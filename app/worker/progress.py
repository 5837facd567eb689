"""How far queued work has got and how long it will still take: the queue's view of each piece of work.

A `Ticket` follows one piece of transcription work (a request, a stream, a job) through the Runner: its audio length
(when known), its model, the audio seconds done so far (reported by the pipeline after each batch) and when its
worker time began. `Speeds` measures worker seconds per audio second of each model on this machine from the work
that finished; `Ticket.remaining` estimates what a ticket still needs: from its own recent pace once it has made
progress, else from its model's measured speed.

A ticket is written on the worker thread and read on the event loop: plain attributes, each written by one side;
what must be read together (a pace's seconds and audio, a model's runs) is one object, replaced or copied whole.
"""

from __future__ import annotations

import time
from collections import deque

# Speeds keeps the last few runs of each model: recent enough to follow the machine's load, enough to smooth one.
SPEED_SAMPLES = 8
# A running ticket's pace weighs what it did PACE_AUDIO_SECONDS of audio earlier 0.75 of what it does now: it follows
# a change of the machine's load (other work on a shared machine) within a few batches, one odd batch moves it a
# quarter of the way, and it is the same whether a report covers one chunk or four (BATCH_SIZE; ADR 57).
PACE_DECAY = 0.75
PACE_AUDIO_SECONDS = 80.0  # about one report's audio with BATCH_SIZE=4, four with BATCH_SIZE=1 (the default)


class Speeds:
    """Worker seconds per audio second of each model, over its last SPEED_SAMPLES finished runs."""

    def __init__(self) -> None:
        self._runs: dict[str, deque[tuple[float, float]]] = {}

    def observe(self, model: str, audio_seconds: float, worker_seconds: float) -> None:
        if audio_seconds > 0 and worker_seconds > 0:
            self._runs.setdefault(model, deque(maxlen=SPEED_SAMPLES)).append((audio_seconds, worker_seconds))

    def rate(self, model: str | None) -> float | None:
        """Worker seconds per audio second (long runs weigh more), or None before the model's first run."""
        runs = tuple(self._runs.get(model or "", ()))  # one copy: the worker thread may append meanwhile
        if not runs:
            return None
        return sum(seconds for _, seconds in runs) / sum(audio for audio, _ in runs)


class Ticket:
    """One piece of work in the queue. `audio_seconds`: its length when known (None: unknown, counted as nothing)."""

    def __init__(self, audio_seconds: float | None = None, model: str | None = None) -> None:
        self.audio_seconds = audio_seconds
        self.model = model
        self.done_seconds = 0.0  # audio transcribed so far: never decreases
        self.started: float | None = None  # monotonic: when its first piece of work began on the worker
        self._piece_started: float | None = None  # the piece running now (a route's detection, the transcription)
        self._piece_done_from = 0.0  # done_seconds when that piece began
        self._reported: float | None = None  # monotonic: the last progress report of that piece (or its start)
        self._pace = (0.0, 0.0)  # worker seconds and audio seconds of its reports so far, each decayed by the next
        self._reports = 0  # progress reports of the piece running now

    @property
    def running(self) -> bool:
        return self._piece_started is not None

    @property
    def fraction(self) -> float | None:
        """0..1 by audio seconds done; None while the length is unknown."""
        if not self.audio_seconds:
            return None
        return min(1.0, self.done_seconds / self.audio_seconds)

    def begin(self) -> None:
        """Worker thread: one of its pieces of work starts."""
        now = time.monotonic()
        if self.started is None:
            self.started = now
        self._piece_started = self._reported = now
        self._piece_done_from = self.done_seconds
        self._pace = (0.0, 0.0)
        self._reports = 0

    def advance(self, done_seconds: float) -> None:
        """Worker thread: the audio up to `done_seconds` is transcribed (a length the header understated grows)."""
        if done_seconds > self.done_seconds:
            now = time.monotonic()
            if self._reported is not None:
                step, took = done_seconds - self.done_seconds, now - self._reported
                if self._reports < 2:  # the first report alone, then without it: it carries the start-up costs
                    self._pace = (took, step)
                else:
                    seconds, audio = self._pace
                    decay = PACE_DECAY ** (step / PACE_AUDIO_SECONDS)
                    self._pace = (decay * seconds + took, decay * audio + step)
                self._reports += 1
            self.done_seconds = done_seconds
            if self.audio_seconds is not None and done_seconds > self.audio_seconds:
                self.audio_seconds = done_seconds
            self._reported = now

    def end(self) -> tuple[float, float]:
        """Worker thread: the piece of work ends. Returns (audio seconds it transcribed, worker seconds it took)."""
        started = self._piece_started if self._piece_started is not None else time.monotonic()
        self._piece_started = None
        return self.done_seconds - self._piece_done_from, time.monotonic() - started

    def remaining(self, speeds: Speeds, now: float) -> float | None:
        """Worker seconds this work still needs (unknown length: nothing); None when no speed is known yet.

        Running with progress made: its own recent pace, less the time since its last report (the estimate counts
        down between batches instead of jumping at each); else its model's measured speed, less the time it has
        been running."""
        if self.audio_seconds is None:
            return 0.0
        left = max(self.audio_seconds - self.done_seconds, 0.0)
        started, reported = self._piece_started, self._reported
        paced_seconds, paced_audio = self._pace
        if started is not None and reported is not None and paced_audio > 0:
            return max(left * paced_seconds / paced_audio - (now - reported), 0.0)
        rate = speeds.rate(self.model)
        if rate is None:
            return None
        return max(left * rate - (now - started if started is not None else 0.0), 0.0)
