"""Prometheus metrics on a private registry (no process-global state, so tests and several apps don't collide).

The HTTP layer calls the small API below and serves `render()` at GET /metrics. Labels stay low-cardinality:
route templates (not raw paths), status codes, model names from ALLOWED_MODELS.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
_LIVE_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 10.0)
_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32)
_SECONDS_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class Metrics:
    """All metrics of one app instance, prefixed `stt_`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter("stt_requests", "HTTP requests by route and status", ["route", "status"], registry=r)
        self._audio_seconds = Counter("stt_audio_seconds", "Seconds of audio transcribed", registry=r)
        self._processing_seconds = Counter(
            "stt_processing_seconds", "Wall-clock seconds spent processing requests with audio", registry=r
        )
        self._request_seconds = Histogram(
            "stt_request_processing_seconds",
            "Processing time per request with audio",
            buckets=_SECONDS_BUCKETS,
            registry=r,
        )
        self._rtf = Histogram(
            "stt_real_time_factor", "Processing seconds / audio seconds per request", buckets=_RTF_BUCKETS, registry=r
        )
        self._queue_depth = Gauge("stt_queue_depth", "Jobs waiting for the worker", registry=r)
        self._in_flight = Gauge("stt_jobs_in_flight", "Jobs being processed", registry=r)
        self._model_loaded = Gauge("stt_model_loaded", "1 when the model is loaded in memory", ["model"], registry=r)
        self._rejected = Counter("stt_rejected", "Requests rejected because the queue was full (503)", registry=r)
        self._cancelled = Counter("stt_cancelled", "Jobs cancelled because the client went away (499)", registry=r)
        # MODEL=auto: languages detected to route requests (label "none": no speech), and what detecting cost
        self._detections = Counter(
            "stt_language_detections", "Languages detected for MODEL=auto", ["language"], registry=r
        )
        self._detection_seconds = Histogram(
            "stt_language_detection_seconds", "Seconds spent detecting a language", buckets=_SECONDS_BUCKETS, registry=r
        )

        # Batching (issue 25): how many chunks each onnxruntime run of a GigaAM/Parakeet model recognised together
        self._engine_batch = Histogram(
            "stt_engine_batch_chunks",
            "Chunks per engine call (onnx-asr models; Whisper decodes chunk by chunk)",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )

        # Flaky clients (issue 14)
        self._uploads = Gauge("stt_uploads_in_progress", "Requests whose body is still streaming in", registry=r)
        self._upload_timeouts = Counter("stt_upload_timeouts", "Uploads dropped with 408 (no progress)", registry=r)
        self._resumed = Counter("stt_resumed_requests", "Retried requests that attached to a running job", registry=r)

        # Jobs (POST /v1/jobs): held by status, and finished ones with the audio and worker time they took
        self._jobs = Gauge("stt_jobs", "Jobs held (POST /v1/jobs), by status", ["status"], registry=r)
        self._jobs_finished = Counter("stt_jobs_finished", "Jobs whose work ended, by outcome", ["status"], registry=r)

        # Live dictation (/v1/realtime)
        self._live_sessions = Gauge("stt_realtime_sessions", "Open live sessions", registry=r)
        self._live_ended = Counter(
            "stt_realtime_sessions_ended",
            "Live sessions ended, by outcome (closed_by_client, connection_lost, max_duration, refused, ...)",
            ["outcome"],
            registry=r,
        )
        self._live_latency = Histogram(
            "stt_realtime_latency_seconds",
            "Seconds from speech_stopped (or commit) to the completed transcript",
            buckets=_LIVE_BUCKETS,
            registry=r,
        )
        self._live_first_partial = Histogram(
            "stt_realtime_first_partial_seconds",
            "Seconds from speech_started to the first partial text",
            buckets=_LIVE_BUCKETS,
            registry=r,
        )

        # Wyoming (Home Assistant): connections, how each ended, audio-stop -> transcript
        self._wyoming_connections = Gauge("stt_wyoming_connections", "Open Wyoming connections", registry=r)
        self._wyoming_ended = Counter(
            "stt_wyoming_connections_ended",
            "Wyoming connections ended, by outcome (closed_by_client, idle_timeout, protocol_error, ...)",
            ["outcome"],
            registry=r,
        )
        self._wyoming_latency = Histogram(
            "stt_wyoming_latency_seconds",
            "Seconds from audio-stop to the transcript",
            buckets=_LIVE_BUCKETS,
            registry=r,
        )

    def observe_request(
        self, route: str, status: int, audio_seconds: float = 0.0, processing_seconds: float = 0.0
    ) -> None:
        """Count one finished request; audio/processing seconds (when > 0) feed the totals and the RTF histogram."""
        self._requests.labels(route=route, status=str(status)).inc()
        self._observe_work(audio_seconds, processing_seconds)

    def _observe_work(self, audio_seconds: float, processing_seconds: float) -> None:
        """Audio and worker seconds (each when > 0) into the totals, the duration and the RTF histograms."""
        if audio_seconds > 0:
            self._audio_seconds.inc(audio_seconds)
        if processing_seconds > 0:
            self._processing_seconds.inc(processing_seconds)
            self._request_seconds.observe(processing_seconds)
        if audio_seconds > 0 and processing_seconds > 0:
            self._rtf.observe(processing_seconds / audio_seconds)

    def set_queue(self, depth: int, in_flight: int) -> None:
        self._queue_depth.set(depth)
        self._in_flight.set(in_flight)

    def set_model_loaded(self, name: str, loaded: bool) -> None:
        self._model_loaded.labels(model=name).set(1 if loaded else 0)

    def rejected(self) -> None:
        self._rejected.inc()

    def cancelled(self) -> None:
        self._cancelled.inc()

    def language_detected(self, language: str | None, seconds: float) -> None:
        self._detections.labels(language=language or "none").inc()
        self._detection_seconds.observe(seconds)

    def observe_engine_batch(self, chunks: int) -> None:
        self._engine_batch.observe(chunks)

    def set_uploads(self, in_progress: int) -> None:
        self._uploads.set(in_progress)

    def upload_timed_out(self) -> None:
        self._upload_timeouts.inc()

    def resumed(self) -> None:
        self._resumed.inc()

    def set_jobs(self, counts: Iterable[tuple[str, int]]) -> None:
        for status, count in counts:
            self._jobs.labels(status=status).set(count)

    def job_finished(self, status: str, audio_seconds: float, processing_seconds: float) -> None:
        """A job's work ended: counted by outcome; its audio and worker seconds feed the totals and the RTF."""
        self._jobs_finished.labels(status=status).inc()
        self._observe_work(audio_seconds, processing_seconds)

    def set_live_sessions(self, count: int) -> None:
        self._live_sessions.set(count)

    def live_session_ended(self, outcome: str) -> None:
        self._live_ended.labels(outcome=outcome).inc()

    def observe_live_latency(self, seconds: float) -> None:
        self._live_latency.observe(seconds)

    def observe_live_first_partial(self, seconds: float) -> None:
        self._live_first_partial.observe(seconds)

    def set_wyoming_connections(self, count: int) -> None:
        self._wyoming_connections.set(count)

    def wyoming_connection_ended(self, outcome: str) -> None:
        self._wyoming_ended.labels(outcome=outcome).inc()

    def observe_wyoming_latency(self, seconds: float) -> None:
        self._wyoming_latency.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its media type, without the charset (Litestar appends it to every
        text/* type: the client library's own would make two, which strict parsers refuse)."""
        media_type = "; ".join(p for p in CONTENT_TYPE_LATEST.split("; ") if not p.lower().startswith("charset="))
        return generate_latest(self.registry), media_type
