"""app.api.metrics: the exposition parses and carries what the API recorded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from app.api.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    content, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(content.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_records_and_parses() -> None:
    m = Metrics()
    m.observe_request("/v1/audio/transcriptions", 200, audio_seconds=44.0, processing_seconds=4.4)
    m.observe_request("/v1/audio/transcriptions", 200, audio_seconds=10.0, processing_seconds=2.0)
    m.observe_request("/v1/audio/transcriptions", 400)
    m.observe_request("/health", 200)
    m.set_queue(depth=3, in_flight=1)
    m.set_model_loaded("v3_ctc", True)
    m.set_model_loaded("tiny.en", True)
    m.set_model_loaded("tiny.en", False)
    m.rejected()
    m.rejected()
    m.cancelled()
    s = samples(m)
    route = ("route", "/v1/audio/transcriptions")
    assert s[("stt_requests_total", (route, ("status", "200")))] == 2
    assert s[("stt_requests_total", (route, ("status", "400")))] == 1
    assert s[("stt_requests_total", (("route", "/health"), ("status", "200")))] == 1
    assert s[("stt_audio_seconds_total", ())] == 54.0
    assert abs(s[("stt_processing_seconds_total", ())] - 6.4) < 1e-9
    assert s[("stt_real_time_factor_count", ())] == 2
    assert abs(s[("stt_real_time_factor_sum", ())] - 0.3) < 1e-9
    assert s[("stt_real_time_factor_bucket", (("le", "0.1"),))] == 1
    assert s[("stt_real_time_factor_bucket", (("le", "0.2"),))] == 2
    assert s[("stt_request_processing_seconds_count", ())] == 2
    assert s[("stt_queue_depth", ())] == 3
    assert s[("stt_jobs_in_flight", ())] == 1
    assert s[("stt_model_loaded", (("model", "v3_ctc"),))] == 1
    assert s[("stt_model_loaded", (("model", "tiny.en"),))] == 0
    assert s[("stt_rejected_total", ())] == 2
    assert s[("stt_cancelled_total", ())] == 1


def test_instances_are_independent() -> None:
    a, b = Metrics(), Metrics()  # a process-global registry would raise "Duplicated timeseries" here
    a.rejected()
    assert samples(a)[("stt_rejected_total", ())] == 1
    assert samples(b)[("stt_rejected_total", ())] == 0


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["/v1/audio/transcriptions", "/v1/models", "/health"]),
            st.sampled_from([200, 400, 401, 413, 499, 503]),
            st.floats(0, 36000, allow_nan=False),
            st.floats(0, 36000, allow_nan=False),
        ),
        max_size=30,
    )
)
def test_counts_add_up(requests: list[tuple[str, int, float, float]]) -> None:
    m = Metrics()
    for route, status, audio, processing in requests:
        m.observe_request(route, status, audio, processing)
    s = samples(m)
    total = sum(v for (name, _), v in s.items() if name == "stt_requests_total")
    assert total == len(requests)
    assert s[("stt_real_time_factor_count", ())] == sum(1 for _, _, a, p in requests if a > 0 and p > 0)
    assert abs(s[("stt_audio_seconds_total", ())] - sum(a for _, _, a, _ in requests)) < 1e-6 * (1 + len(requests))
