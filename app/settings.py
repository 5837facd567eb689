"""Typed settings from the environment and `.env`, validated once at start-up.

Environment variables win over `.env`. A bad value raises `SettingsError` naming the variable; `python -m app`
turns that into a one-line message and a non-zero exit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import msgspec

Device = Literal["auto", "cpu", "cuda"]
ResponseFormat = Literal["json", "text", "verbose_json", "srt", "vtt"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class SettingsError(ValueError):
    """A setting has a value the server cannot run with."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    model: str = "v3_ctc"
    allowed_models: tuple[str, ...] = ("v3_ctc", "v3_e2e_ctc", "v3_rnnt", "v3_e2e_rnnt", "tiny.en")
    device: Device = "auto"
    api_key: str = ""
    models_dir: Path = Path("/data/models")
    batch_size: int = 4
    num_threads: int = 4
    max_upload_mb: int = 2048
    max_audio_seconds: int = 36000
    max_queue: int = 8
    vad_min_duration: float = 15.0
    vad_max_duration: float = 22.0
    vad_strict_limit: float = 30.0
    vad_new_chunk_threshold: float = 0.2
    vad_threshold: float = 0.5
    keepalive_seconds: float = 15.0
    host: str = "0.0.0.0"
    port: int = 8000
    log_level: LogLevel = "INFO"
    log_json: bool = False
    default_response_format: ResponseFormat = "json"
    allow_private_urls: bool = False
    url_timeout_seconds: float = 600.0
    # where missing OPUS-MT pairs come from (CTranslate2 conversions); empty = never download translation models
    translation_hub_repo: str = "gaudi/opus-mt-{src}-{tgt}-ctranslate2"
    load_model_on_startup: bool = True
    unload_model_after_s: int = 0
    max_loaded_models: int = 1
    quantization: Literal["none", "int8"] = "none"

    def __post_init__(self) -> None:
        positive_ints = ("batch_size", "num_threads", "max_upload_mb", "max_queue", "port", "max_loaded_models")
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.upper()} must be at least 1, got {getattr(self, name)}")
        for name in ("max_audio_seconds", "unload_model_after_s"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name.upper()} must be 0 or more, got {getattr(self, name)}")
        if self.port > 65535:
            raise SettingsError(f"PORT must be at most 65535, got {self.port}")
        if not 0.0 < self.vad_threshold < 1.0:
            raise SettingsError(f"VAD_THRESHOLD must be between 0 and 1, got {self.vad_threshold}")
        if not 0 < self.vad_min_duration <= self.vad_max_duration <= self.vad_strict_limit:
            raise SettingsError(
                "VAD_MIN_DURATION <= VAD_MAX_DURATION <= VAD_STRICT_LIMIT must hold (all positive), got "
                f"{self.vad_min_duration}, {self.vad_max_duration}, {self.vad_strict_limit}"
            )
        if self.vad_strict_limit > 30.0:
            raise SettingsError(f"VAD_STRICT_LIMIT must be at most 30 (model window), got {self.vad_strict_limit}")
        if self.keepalive_seconds <= 0:
            raise SettingsError(f"KEEPALIVE_SECONDS must be positive, got {self.keepalive_seconds}")
        if not self.allowed_models:
            raise SettingsError("ALLOWED_MODELS must name at least one model")
        if self.model not in self.allowed_models:
            raise SettingsError(f"MODEL={self.model!r} must be one of ALLOWED_MODELS ({','.join(self.allowed_models)})")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def onnx_quantization(self) -> str | None:
        """QUANTIZATION as the ONNX engines and the weights table take it: None for full precision."""
        return None if self.quantization == "none" else self.quantization

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_key)


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file: KEY=VALUE lines, `#` comments, optional `export` and quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


_FLAGS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def parse_flag(raw: str) -> bool:
    """true/false, 1/0, yes/no, on/off (any case): the one boolean syntax of settings, forms and query strings."""
    try:
        return _FLAGS[raw.strip().lower()]
    except KeyError:
        raise ValueError(f"expected true or false, got {raw!r}") from None


def _convert(name: str, field_type: Any, raw: str) -> Any:
    if field_type is bool:
        try:
            return parse_flag(raw)
        except ValueError:
            raise SettingsError(f"{name} must be true or false, got {raw!r}") from None
    if field_type is Path:  # msgspec.convert does not turn str into Path
        return Path(raw).expanduser()
    if field_type == tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def load_settings(environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Build Settings from `.env` (if present) overlaid by the environment."""
    env = dict(environ if environ is not None else os.environ)
    merged = read_dotenv(dotenv) if dotenv is not None else {}
    merged.update(env)
    if not merged.get("API_KEY") and merged.get("REFLECTOR_GPU_APIKEY"):
        merged["API_KEY"] = merged["REFLECTOR_GPU_APIKEY"]
    raw: dict[str, Any] = {}
    for field in msgspec.structs.fields(Settings):
        key = field.name.upper()
        if key in merged and merged[key] != "":
            raw[field.name] = _convert(key, field.type, merged[key])
        elif key in merged and field.type is str:
            raw[field.name] = ""
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except SettingsError:
        raise
    except msgspec.ValidationError as exc:
        message = str(exc)
        # msgspec says "... at `$.batch_size`": name the environment variable instead.
        if "$." in message:
            path = message.rsplit("$.", 1)[1].rstrip("`")
            message = f"{path.upper()}: {message.rsplit(' - at', 1)[0]}"
        raise SettingsError(message) from None
