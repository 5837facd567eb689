"""Decoding: formats, rates, channel layouts, broken and unusable files, the duration limit."""

from __future__ import annotations

import numpy as np
import pytest

from app.audio.decode import AudioDecoder, decode_all
from app.errors import InvalidInput
from tests.audio_factory import write_wav
from tests.audio_helpers import BECKETT, ENDGAME, TWO_CITIES, encode, write_video_only


@pytest.fixture(scope="module")
def beckett() -> np.ndarray:
    return decode_all(BECKETT)


@pytest.mark.parametrize(("path", "rate"), [(TWO_CITIES, 48000), (ENDGAME, 24000), (BECKETT, 16000)])
def test_wav_at_any_rate_decodes_to_16k_with_the_declared_duration(path, rate):
    import av

    with av.open(str(path)) as container:
        assert container.streams.audio[0].rate == rate
    with AudioDecoder(path) as audio:
        blocks = list(audio.blocks(block_seconds=3.0))
        assert audio.declared_duration is not None
        assert abs(audio.decoded_seconds - audio.declared_duration) < 0.01
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    assert all(b.size == 48000 for b in blocks[:-1]) and 0 < blocks[-1].size <= 48000
    joined = np.concatenate(blocks)
    assert 0.05 < np.abs(joined).max() < 1.1  # resampling may overshoot full scale a little
    # the block size does not change the samples
    assert np.array_equal(joined, decode_all(path))


@pytest.mark.parametrize(
    ("name", "codec", "rate", "layout", "tolerance"),
    [
        ("a.mp3", "libmp3lame", 44100, "stereo", 0.06),
        ("a.ogg", "libopus", 48000, "stereo", 0.06),
        ("a.flac", "flac", 22050, "stereo", 0.01),
        ("a.m4a", "aac", 44100, "stereo", 0.06),
        ("a.wav", "pcm_s16le", 8000, "5.1", 0.01),
    ],
)
def test_other_containers_and_layouts_give_the_same_duration(tmp_path, beckett, name, codec, rate, layout, tolerance):
    path = encode(tmp_path / name, beckett, codec=codec, rate=rate, layout=layout)
    decoded = decode_all(path)
    assert abs(decoded.size - beckett.size) / 16000 < tolerance
    # the same speech comes out: high correlation at the best small lag (codecs add delay)
    n = min(decoded.size, beckett.size) - 2000
    best = max(
        float(np.corrcoef(beckett[1000 : 1000 + n - 1000], decoded[1000 + lag : 1000 + lag + n - 1000])[0, 1])
        for lag in range(-800, 801, 16)
    )
    assert best > 0.5


def test_garbage_bytes_are_rejected(tmp_path):
    path = tmp_path / "x.mp3"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(InvalidInput, match="Could not decode audio file"), AudioDecoder(path) as audio:
        list(audio.blocks())


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(InvalidInput, match="Audio file is empty") as info:
        AudioDecoder(path)
    assert info.value.about == "audio"


def test_wav_with_no_samples_is_empty(tmp_path):
    path = write_wav(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(InvalidInput, match="Audio file is empty"):
        decode_all(path)


def test_video_without_audio_is_rejected(tmp_path):
    path = write_video_only(tmp_path / "video.mp4")
    with pytest.raises(InvalidInput, match="File contains no audio stream"):
        AudioDecoder(path)


def test_truncated_file_gives_what_decoded(tmp_path, beckett):
    path = encode(tmp_path / "cut.mp3", beckett, codec="libmp3lame", rate=44100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    decoded = decode_all(path)
    assert 4.0 < decoded.size / 16000 < 8.0


def test_header_then_garbage_is_rejected(tmp_path, beckett):
    path = encode(tmp_path / "broken.flac", beckett, codec="flac", rate=16000)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    data[200:] = rng.integers(0, 256, len(data) - 200, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match="Could not decode audio file"):
        decode_all(path)


def test_declared_duration_over_the_limit_is_rejected_before_decoding():
    with pytest.raises(InvalidInput, match=r"Audio is 44 s long; the limit is 30 s \(MAX_AUDIO_SECONDS\)"):
        AudioDecoder(TWO_CITIES, max_seconds=30)
    with AudioDecoder(TWO_CITIES, max_seconds=0) as audio:  # 0 = no limit
        assert sum(b.size for b in audio.blocks()) > 0


def test_limit_is_enforced_while_decoding_when_the_header_says_nothing():
    with AudioDecoder(TWO_CITIES) as audio:
        audio.max_seconds = 10  # as if the container declared no duration
        decoded = 0
        with pytest.raises(InvalidInput, match="longer than the limit of 10 s"):
            for block in audio.blocks(block_seconds=1.0):
                decoded += block.size
        assert decoded <= 10 * 16000
