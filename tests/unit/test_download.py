"""app.weights.hub against a fake Hugging Face hub on 127.0.0.1 (tests/fake_hub.py: API, resolve redirect, Range)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.weights import hub as download
from app.weights.hub import DownloadError, HubUnreachableError, download_repo_files
from tests import fake_hub
from tests.fake_hub import COMMIT, REPO, FakeHub, HubFile, closed_port_endpoint

hub = fake_hub.hub  # the fixture, for this module


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download, "_backoff_seconds", lambda attempt: 0.0)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def blob(n: int, seed: int = 1) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d-%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:n])


def standard_files(hub: FakeHub) -> None:
    hub.files["config.json"] = HubFile(b'{"version":"v3"}', lfs=False)
    hub.files["model.onnx"] = HubFile(blob(3 * 1024 * 1024 + 17))
    hub.files["vocab.txt"] = HubFile("▁ 0\nа 1\n<blk> 2\n".encode(), lfs=False)
    hub.files["README.md"] = HubFile(b"# not wanted", lfs=False)


def test_fresh_download_places_verified_files(hub: FakeHub, tmp_path: Path) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    dest = tmp_path / "models" / "v3_ctc"
    result = download_repo_files(
        REPO, ["config.json", "model.onnx", "vocab.txt"], dest, endpoint=endpoint, progress=False
    )
    assert result == dest
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "model.onnx", "vocab.txt"]
    for name in ("config.json", "model.onnx", "vocab.txt"):
        assert (dest / name).read_bytes() == fake.files[name].content
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["v3_ctc"]  # no staging dir left
    # Files are fetched from the commit the API reported, not the moving branch name.
    assert any(p.startswith(f"/{REPO}/resolve/{COMMIT}/") for p, _ in fake.requests)


def test_glob_patterns_and_optional_files(hub: FakeHub, tmp_path: Path) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    fake.files["vocabulary.json"] = HubFile(b'["a","b"]', lfs=False)
    dest = tmp_path / "whisper"
    download_repo_files(
        REPO, ["vocabulary.*", "model.onnx"], dest, endpoint=endpoint, progress=False,
        optional=["preprocessor_config.json", "model.onnx?data"],
    )  # fmt: skip
    assert sorted(p.name for p in dest.iterdir()) == ["model.onnx", "vocabulary.json"]


def test_resume_sends_range_request(hub: FakeHub, tmp_path: Path) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    content = fake.files["model.onnx"].content
    staging = tmp_path / ".partial-m"
    staging.mkdir()
    (staging / "model.onnx.part").write_bytes(content[:1_000_000])
    dest = tmp_path / "m"
    download_repo_files(REPO, ["model.onnx"], dest, endpoint=endpoint, progress=False)
    assert (dest / "model.onnx").read_bytes() == content
    assert fake.cdn_requests() == [(f"/cdn/{REPO}/model.onnx", "bytes=1000000-")]
    assert not staging.exists()


def test_interrupted_transfer_is_resumed_in_the_same_call(hub: FakeHub, tmp_path: Path) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    fake.cut_first_transfer_at = 1_500_000
    dest = tmp_path / "m"
    download_repo_files(REPO, ["model.onnx"], dest, endpoint=endpoint, progress=False)
    assert (dest / "model.onnx").read_bytes() == fake.files["model.onnx"].content
    ranges = [r for _, r in fake.cdn_requests()]
    assert ranges[0] is None
    assert len(ranges) == 2 and ranges[1] is not None and int(ranges[1][6:-1]) > 0


def test_server_ignoring_range_restarts_cleanly(hub: FakeHub, tmp_path: Path) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    fake.honour_range = False
    staging = tmp_path / ".partial-m"
    staging.mkdir()
    (staging / "model.onnx.part").write_bytes(b"x" * 1000)  # even a wrong prefix is replaced, not appended to
    dest = tmp_path / "m"
    download_repo_files(REPO, ["model.onnx"], dest, endpoint=endpoint, progress=False)
    assert (dest / "model.onnx").read_bytes() == fake.files["model.onnx"].content


@pytest.mark.parametrize("name", ["model.onnx", "config.json"])  # LFS sha256 and git blob sha1
def test_bad_hash_raises_and_places_nothing(hub: FakeHub, tmp_path: Path, name: str) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    good = fake.files[name].content
    fake.files[name].served = bytes([good[0] ^ 1]) + good[1:]
    dest = tmp_path / "m"
    with pytest.raises(DownloadError, match=r"(sha256|git sha1) mismatch"):
        download_repo_files(REPO, ["config.json", "model.onnx"], dest, endpoint=endpoint, progress=False)
    assert not dest.exists()
    assert not list(tmp_path.rglob(f"{name}*"))  # the corrupted part was deleted


def test_wrong_size_raises(hub: FakeHub, tmp_path: Path) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    fake.files["model.onnx"].served = fake.files["model.onnx"].content + b"extra"
    with pytest.raises(DownloadError, match="size mismatch"):
        download_repo_files(REPO, ["model.onnx"], tmp_path / "m", endpoint=endpoint, progress=False)
    assert not (tmp_path / "m").exists()


def test_unreachable_hub_fails_at_once_with_advice(tmp_path: Path) -> None:
    with pytest.raises(HubUnreachableError) as info:
        download_repo_files(REPO, ["model.onnx"], tmp_path / "m", endpoint=closed_port_endpoint(), progress=False)
    message = str(info.value)
    assert "\n" not in message
    assert "unreachable" in message and "HF_ENDPOINT" in message and "MODELS_DIR" in message
    assert not (tmp_path / "m").exists()


def test_complete_model_is_not_downloaded_again(hub: FakeHub, tmp_path: Path) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    dest = tmp_path / "m"
    download_repo_files(REPO, ["config.json", "model.onnx"], dest, endpoint=endpoint, progress=False)
    fake.requests.clear()
    download_repo_files(REPO, ["config.json", "model.onnx"], dest, endpoint=endpoint, progress=False)
    assert fake.requests == []
    # ... and it works offline too.
    download_repo_files(REPO, ["config.json", "model.onnx"], dest, endpoint=closed_port_endpoint(), progress=False)


def test_existing_model_gets_only_its_missing_files(hub: FakeHub, tmp_path: Path) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    dest = tmp_path / "m"
    download_repo_files(REPO, ["config.json"], dest, endpoint=endpoint, progress=False)
    fake.requests.clear()
    download_repo_files(REPO, ["config.json", "vocab.txt"], dest, endpoint=endpoint, progress=False)
    assert [p for p, _ in fake.cdn_requests()] == [f"/cdn/{REPO}/vocab.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert (dest / "vocab.txt").read_bytes() == fake.files["vocab.txt"].content


def test_missing_file_in_repo_is_a_clear_error(hub: FakeHub, tmp_path: Path) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    with pytest.raises(DownloadError, match=r"no file matching 'v3_ctc\.int8\.onnx'"):
        download_repo_files(REPO, ["v3_ctc.int8.onnx"], tmp_path / "m", endpoint=endpoint, progress=False)


def test_unknown_repo_is_a_clear_error(hub: FakeHub, tmp_path: Path) -> None:
    endpoint = hub.url
    with pytest.raises(DownloadError, match="not found"):
        download_repo_files("acme/nope", ["x"], tmp_path / "m", endpoint=endpoint, progress=False)


def test_progress_lines_when_not_a_terminal(hub: FakeHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake, endpoint = hub, hub.url
    standard_files(fake)
    download_repo_files(REPO, ["model.onnx"], tmp_path / "m", endpoint=endpoint, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith(f"{REPO}/model.onnx: 100%")
    assert 2 <= len(lines) <= 11


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=300_000), cut=st.floats(0, 1), lfs=st.booleans())
def test_resume_from_any_prefix_gives_the_exact_file(hub: FakeHub, data: bytes, cut: float, lfs: bool) -> None:
    fake, endpoint = hub, hub.url
    fake.files["f.bin"] = HubFile(data, lfs=lfs)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp, ".partial-m")
        staging.mkdir()
        (staging / "f.bin.part").write_bytes(data[: int(len(data) * cut)])
        download_repo_files(REPO, ["f.bin"], Path(tmp, "m"), endpoint=endpoint, progress=False)
        assert Path(tmp, "m", "f.bin").read_bytes() == data
        assert [p.name for p in Path(tmp).iterdir()] == ["m"]
