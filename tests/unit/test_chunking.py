"""Chunker invariants (Hypothesis) and seed 004's 15/22/30 s semantics on hand-made regions."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audio.chunking import Chunk, Chunker, chunk_regions
from app.audio.vad import CUT_SPEECH, SpeechRegion, SpeechSegmenter, speech_regions

SR = 16_000


def sec(x: float) -> int:
    return round(x * SR)


@st.composite
def region_lists(draw):
    """Ordered, non-overlapping speech regions (some longer than any limit) and an audio length."""
    regions = []
    t = draw(st.integers(0, sec(3)))
    for _ in range(draw(st.integers(0, 25))):
        length = draw(st.one_of(st.integers(1, sec(3)), st.integers(sec(3), sec(70))))
        regions.append(SpeechRegion(t, t + length))
        t += length + draw(st.one_of(st.integers(0, sec(0.5)), st.integers(sec(0.5), sec(60))))
    total = (regions[-1].end if regions else t) + draw(st.integers(0, sec(2)))
    return regions, total


limits = st.tuples(
    st.floats(1.0, 15.0), st.floats(0.0, 10.0), st.floats(0.0, 15.0), st.floats(0.0, 1.0), st.floats(0.0, 0.4)
).map(
    lambda t: {
        "min_duration": t[0],
        "max_duration": t[0] + t[1],
        "strict_limit": t[0] + t[1] + t[2] + 2 * t[4] + 0.2,
        "new_chunk_threshold": t[3],
        "pad": t[4],
    }
)


def check_invariants(regions: list[SpeechRegion], total: int, chunks: list[Chunk], strict: float) -> None:
    # ordered, within the audio, never overlapping, never empty, within the strict limit (padding included)
    for a, b in itertools.pairwise(chunks):
        assert a.end <= b.start
    for c in chunks:
        assert 0 <= c.start < c.end <= total
        assert c.end - c.start <= sec(strict)
        assert any(r.start < c.end and c.start < r.end for r in regions), "a chunk without speech"
    # every speech sample is in some chunk: walk regions and chunks together
    i = 0
    for r in regions:
        position = r.start
        while position < r.end:
            while i < len(chunks) and chunks[i].end <= position:
                i += 1
            assert i < len(chunks) and chunks[i].start <= position, f"speech at {position} not covered"
            position = chunks[i].end


@settings(max_examples=100, deadline=None)
@given(region_lists(), limits)
def test_chunks_cover_speech_respect_limit_ordered_disjoint(case, options):
    regions, total = case
    chunks = chunk_regions(regions, total, **options)
    check_invariants(regions, total, chunks, options["strict_limit"])
    if not regions:
        assert chunks == []


@settings(max_examples=100, deadline=None)
@given(region_lists(), limits, st.data())
def test_incremental_advance_gives_the_same_chunks(case, options, data):
    """Closing chunks early from promises about the future (as the pipeline does) changes nothing."""
    regions, total = case
    chunker = Chunker(**options)
    chunks = []
    previous_end = 0
    for i, region in enumerate([*regions, None]):
        limit_start = region.start if region else total
        for _ in range(data.draw(st.integers(0, 3))):
            horizon = data.draw(st.integers(previous_end, limit_start))
            if region is None:
                chunks += chunker.advance(horizon)
            else:
                strict = chunker.strict
                length = region.end - region.start
                first_end = region.start + length // -(-length // strict) if length > strict else region.end
                min_end = data.draw(st.integers(horizon, first_end))
                known = data.draw(st.booleans())
                chunks += chunker.advance(horizon, next_start=region.start if known else None, min_end=min_end)
        if region is not None:
            chunks += chunker.push(region)
            previous_end = region.end
    chunks += chunker.finish(total)
    assert chunks == chunk_regions(regions, total, **options)


def test_seed_004_semantics():
    # 5 s utterances with 0.5 s pauses: grow to at least 15 s, then cut at the next pause (>= 0.2 s).
    regions = [SpeechRegion(sec(t), sec(t + 5)) for t in np.arange(0, 55, 5.5)]
    chunks = chunk_regions(regions, sec(60), pad=0.0)
    assert [round(c.duration, 1) for c in chunks] == [16.0, 16.0, 16.0, 5.0]
    # pauses shorter than the threshold never cut between min and max; only max does
    regions = [SpeechRegion(sec(t), sec(t + 4.9)) for t in np.arange(0, 50, 5.0)]
    chunks = chunk_regions(regions, sec(50), pad=0.0)
    assert all(c.duration <= 22.0 for c in chunks)
    assert [round(c.duration, 1) for c in chunks] == [19.9, 19.9, 9.9]
    # a long silence makes no chunk: two chunks, nothing in between
    regions = [SpeechRegion(0, sec(3)), SpeechRegion(sec(300), sec(303))]
    chunks = chunk_regions(regions, sec(310))
    assert len(chunks) == 2 and chunks[0].end <= sec(3.2) and chunks[1].start >= sec(299.8)
    # one 70 s region is split hard into pieces within the strict limit, adjacent (no padding at the cuts)
    chunks = chunk_regions([SpeechRegion(sec(1), sec(71))], sec(72))
    assert len(chunks) == 3
    assert chunks[0].end == chunks[1].start and chunks[1].end == chunks[2].start
    assert all(c.duration <= 30.0 for c in chunks)


def test_padding_stops_at_the_middle_of_a_pause():
    chunker = Chunker(min_duration=1, max_duration=2, strict_limit=30, new_chunk_threshold=0.2, pad=0.2)
    assert chunker.push(SpeechRegion(sec(1), sec(2.5))) == []
    (first,) = chunker.push(SpeechRegion(sec(2.6), sec(4)))
    (second,) = chunker.finish(sec(4.1))
    assert first == Chunk(sec(0.8), sec(2.55))
    assert second == Chunk(sec(2.55), sec(4.1))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0, width=32), min_size=0, max_size=3000),
    st.floats(0.2, 0.8),
    st.floats(2.0, 20.0),
    st.integers(0, 511),
)
def test_segmenter_regions_are_ordered_long_enough_and_bounded(probs, threshold, max_speech, padding):
    p = np.array(probs, dtype=np.float32)
    total = max(p.size * 512 - padding, 0)  # the audio may end inside the last (zero-padded) window
    options = {"threshold": threshold, "max_speech_seconds": max_speech, "split_search_from_seconds": max_speech / 2}
    regions = speech_regions(p, total, **options)
    for a, b in itertools.pairwise(regions):
        assert a.end <= b.start
    for r in regions:
        assert 0 <= r.start < r.end <= total
        # only speech the end of the audio cuts off may be shorter than min_speech (not shorter than CUT_SPEECH)
        cut_off = r is regions[-1] and r.end == total
        assert r.end - r.start > (CUT_SPEECH if cut_off else sec(0.25))
        assert r.end - r.start <= sec(max_speech)
        assert p[r.start // 512] >= threshold  # speech starts at a confident window
    # incremental: any split of the probability stream gives the same regions
    segmenter = SpeechSegmenter(**options)
    cut = len(p) // 3
    streamed = segmenter.push(p[:cut]) + segmenter.push(p[cut:]) + segmenter.finish(total)
    assert streamed == regions


def test_speech_the_end_of_the_audio_cuts_off_is_kept():
    """A word the recording stops in is kept however short (above CUT_SPEECH); a short region that a pause ended
    is still a click or a breath (min_speech 0.25 s = 7.8 windows)."""
    w = 512
    word = [0.0] * 20 + [0.9] * 6  # 0.19 s of speech
    assert speech_regions(np.array(word, dtype=np.float32), 26 * w) == [SpeechRegion(20 * w, 26 * w)]
    # the audio ends 100 samples into a last window whose zero padding scores low: that is no pause
    padded = np.array([*word, 0.1], dtype=np.float32)
    assert speech_regions(padded, 26 * w + 100) == [SpeechRegion(20 * w, 26 * w + 100)]
    # a real pause after it, too short to close the region (min_silence 0.1 s): the region is complete, too short
    paused = np.array([*word, 0.1, 0.1], dtype=np.float32)
    assert speech_regions(paused, 28 * w) == []
    # cut off, but shorter than CUT_SPEECH (0.1 s): nothing a word fits in
    assert speech_regions(np.array([0.0] * 20 + [0.9] * 3, dtype=np.float32), 23 * w) == []


def test_segmenter_hysteresis_and_split_at_the_quietest_window():
    w = 512
    # speech, a dip to 0.4 (above neg threshold 0.35: still speech), speech, then silence
    p = np.array([0.9] * 20 + [0.4] * 10 + [0.9] * 20 + [0.0] * 10, dtype=np.float32)
    assert speech_regions(p, p.size * w) == [SpeechRegion(0, 50 * w)]
    # a pause shorter than min_silence (0.1 s = 3.1 windows) does not end the region; a longer one does
    p = np.array([0.9] * 20 + [0.1] * 3 + [0.9] * 20 + [0.1] * 10 + [0.9] * 20, dtype=np.float32)
    assert speech_regions(p, p.size * w) == [SpeechRegion(0, 43 * w), SpeechRegion(53 * w, 73 * w)]
    # continuous speech longer than max_speech: split at the least speech-like window in the search range
    p = np.full(200, 0.95, dtype=np.float32)
    p[120] = 0.6
    regions = speech_regions(p, p.size * w, max_speech_seconds=5.0, split_search_from_seconds=2.5)
    assert regions[0] == SpeechRegion(0, 120 * w)
    assert regions[1].start == 120 * w
