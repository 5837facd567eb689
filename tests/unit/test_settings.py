"""Settings come from the environment and `.env`, typed and validated once; a bad value names its variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, load_settings
from tests.server import ROOT


def test_defaults_follow_the_seed() -> None:
    settings = load_settings({}, None)
    assert settings == Settings()
    assert (
        settings.engines.model,
        settings.audio.batch_size,
        settings.limits.max_queue,
        settings.limits.max_upload_mb,
    ) == ("v3_ctc", 1, 8, 2048)  # BATCH_SIZE: the seed's 4 bought nothing on CPU and cost memory (ADR 59)
    assert (settings.audio.vad_min_duration, settings.audio.vad_max_duration, settings.audio.vad_strict_limit) == (
        15.0,
        22.0,
        30.0,
    )
    assert settings.http.auth_enabled is False
    assert settings.wyoming.wyoming_port is None  # no Wyoming server unless asked for


def test_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text('# comment\nexport PORT=9000\nMODEL="tiny.en"\nNUM_THREADS=3 # inline\nLOG_JSON=yes\n')
    settings = load_settings({"PORT": "9100", "ALLOWED_MODELS": "tiny.en, v3_ctc"}, dotenv)
    assert settings.http.port == 9100  # the environment
    assert (
        settings.engines.model == "tiny.en" and settings.engines.num_threads == 3 and settings.http.log_json is True
    )  # .env
    assert settings.engines.allowed_models == ("tiny.en", "v3_ctc")


def test_reflector_key_name_is_accepted() -> None:
    assert load_settings({"REFLECTOR_GPU_APIKEY": "k"}, None).http.api_key == "k"
    assert load_settings({"REFLECTOR_GPU_APIKEY": "k", "API_KEY": "a"}, None).http.api_key == "a"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"BATCH_SIZE": "four"}, "BATCH_SIZE"),
        ({"BATCH_SIZE": "0"}, "BATCH_SIZE"),
        ({"LOG_JSON": "maybe"}, "LOG_JSON"),
        ({"DEVICE": "tpu"}, "DEVICE"),
        ({"PORT": "70000"}, "PORT"),
        ({"VAD_THRESHOLD": "1.5"}, "VAD_THRESHOLD"),
        ({"VAD_STRICT_LIMIT": "45"}, "VAD_STRICT_LIMIT"),
        ({"MODEL": "v3_rnnt", "ALLOWED_MODELS": "tiny.en"}, "MODEL"),
        ({"DEFAULT_RESPONSE_FORMAT": "docx"}, "DEFAULT_RESPONSE_FORMAT"),
        ({"WYOMING_PORT": "70000"}, "WYOMING_PORT"),
        ({"WYOMING_PORT": "ha"}, "WYOMING_PORT"),
        ({"WYOMING_MAX_UTTERANCE_S": "0"}, "WYOMING_MAX_UTTERANCE_S"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env, None)


def test_the_server_refuses_to_start_with_a_bad_value(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "MAX_QUEUE": "-1", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["Invalid configuration: MAX_QUEUE must be at least 1, got -1"]
