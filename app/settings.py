"""Typed settings from the environment and `.env`, validated once at start-up.

Environment variables win over `.env`. A bad value raises `SettingsError` naming the variable; `python -m app`
turns that into a one-line message and a non-zero exit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from app.languages import LANGUAGES

Device = Literal["auto", "cpu", "cuda"]
ResponseFormat = Literal["json", "text", "verbose_json", "srt", "vtt", "diarized_json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Quantization = Literal["int8"] | None  # None: full precision
AUTO_MODEL = "auto"  # MODEL / a request's model: route each request by its language (AUTO_ROUTES)
# Ranges as msgspec constraints: `load_settings` turns a violation into "NAME must be at least 1, got 0".
Count = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]


class SettingsError(ValueError):
    """A setting has a value the server cannot run with."""


class AudioSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Decoding, VAD and chunking: what the transcription pipeline is given as it is."""

    batch_size: Positive = 1  # chunks per engine call: an exact batch for fp32 onnx-asr (ADRs 58, 59)
    vad_threshold: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.5
    vad_min_duration: float = 15.0
    vad_max_duration: float = 22.0
    vad_strict_limit: Annotated[float, msgspec.Meta(le=30.0)] = 30.0  # at most the models' 30 s window
    vad_new_chunk_threshold: float = 0.2
    max_audio_seconds: Count = 36000  # 0 = no limit

    def __post_init__(self) -> None:
        if not 0 < self.vad_min_duration <= self.vad_max_duration <= self.vad_strict_limit:
            raise SettingsError(
                "VAD_MIN_DURATION <= VAD_MAX_DURATION <= VAD_STRICT_LIMIT must hold (all positive), got "
                f"{self.vad_min_duration}, {self.vad_max_duration}, {self.vad_strict_limit}"
            )


class EngineSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Which models may run, where their weights live, how they run and how long they stay in memory."""

    model: str = "v3_ctc"
    # the names clients may send (`auto` among them or not: AUTO_ROUTES enables it); kept without `auto`
    allowed_models: tuple[str, ...] = ("v3_ctc", "v3_e2e_ctc", "v3_rnnt", "v3_e2e_rnnt", "multilingual_ctc", "tiny.en")
    models_dir: Path = Path("/data/models")
    device: Device = "auto"
    num_threads: Positive = 4
    quantization: Literal["none", "int8"] = "none"
    optimize_graphs: bool = True  # rewrite int8 GigaAM/Parakeet graphs for onnxruntime's CPU (cached in MODELS_DIR)
    load_model_on_startup: bool = True
    unload_model_after_s: Count = 0
    max_loaded_models: Positive = 1  # per kind of model: speech, speaker encoder, translation
    # MODEL=auto / model=auto: language -> model, e.g. "ru=v3_e2e_ctc,en=tiny.en,*=small" (`*`: every other language)
    auto_routes: tuple[str, ...] = ()
    auto_detect_model: str = ""  # the Whisper that detects languages for auto; empty: the smallest allowed multilingual

    def __post_init__(self) -> None:
        if AUTO_MODEL in self.allowed_models:
            # Clients may ask for `auto` whenever AUTO_ROUTES is set; naming it here says so (and needs AUTO_ROUTES).
            if not self.auto_routes:
                raise SettingsError(f"ALLOWED_MODELS names {AUTO_MODEL!r}: set AUTO_ROUTES to enable it")
            names = tuple(name for name in self.allowed_models if name != AUTO_MODEL)
            msgspec.structs.force_setattr(self, "allowed_models", names)  # the models themselves, as everywhere
        if not self.allowed_models:
            raise SettingsError("ALLOWED_MODELS must name at least one model")
        if self.model == AUTO_MODEL and not self.auto_routes:
            raise SettingsError("MODEL=auto needs AUTO_ROUTES, e.g. AUTO_ROUTES=ru=v3_e2e_ctc,*=small")
        if self.model != AUTO_MODEL and self.model not in self.allowed_models:
            raise SettingsError(f"MODEL={self.model!r} must be one of ALLOWED_MODELS ({','.join(self.allowed_models)})")
        self.routes()  # raises SettingsError naming AUTO_ROUTES
        if self.auto_detect_model and self.auto_detect_model not in self.allowed_models:
            raise SettingsError(f"AUTO_DETECT_MODEL={self.auto_detect_model!r} must be one of ALLOWED_MODELS")

    def routes(self) -> dict[str, str]:
        """AUTO_ROUTES as language code (or `*`) -> model name, in the order given."""
        routes: dict[str, str] = {}
        for item in self.auto_routes:
            language, sep, model = (part.strip() for part in item.partition("="))
            language = language.lower()
            if not sep or not language or not model:
                raise SettingsError(f"AUTO_ROUTES: expected language=model (such as en=tiny.en), got {item!r}")
            if language != "*" and language not in LANGUAGES:
                raise SettingsError(f"AUTO_ROUTES: {language!r} is not a language code (such as en) or *")
            if language in routes:
                raise SettingsError(f"AUTO_ROUTES names {language!r} twice")
            if model not in self.allowed_models:
                raise SettingsError(
                    f"AUTO_ROUTES: model {model!r} (for {language}) must be one of ALLOWED_MODELS "
                    f"({','.join(self.allowed_models)})"
                )
            routes[language] = model
        return routes

    @property
    def onnx_quantization(self) -> Quantization:
        """QUANTIZATION as the weights table and the ONNX engines take it: None for full precision."""
        return None if self.quantization == "none" else self.quantization


class LimitSettings(msgspec.Struct, frozen=True, kw_only=True):
    max_upload_mb: Positive = 2048
    max_queue: Positive = 8  # requests with their body read, queued or running
    allow_private_urls: bool = False
    url_timeout_seconds: float = 600.0
    # Flaky clients (issue 14): uploads in progress hold no queue slot and are capped apart; a body that makes no
    # progress for this long is answered 408; a hung-up job waits this long for its retry (0 = cancel at once).
    max_uploads: Positive = 12
    upload_idle_timeout_seconds: PositiveSeconds = 30.0
    resume_grace_seconds: Seconds = 30.0
    # Hostile clients (issue 26): a request body, or an audio_file_url download, must bring this many bytes per
    # second on average over every UPLOAD_IDLE_TIMEOUT_SECONDS, else 408 (a download: 504); 0 = any progress will do.
    upload_min_bytes_per_second: Count = 4096

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


class HubSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where missing weights come from."""

    hf_endpoint: str = ""  # a Hugging Face mirror; empty = huggingface.co
    hf_token: str = ""  # for gated or private repositories (HUGGING_FACE_HUB_TOKEN is accepted too)
    # where missing OPUS-MT pairs come from (CTranslate2 conversions); empty = never download translation models
    translation_hub_repo: str = "gaudi/opus-mt-{src}-{tgt}-ctranslate2"


class SpeakerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Who said what (response_format=diarized_json)."""

    speakers_dir: Path = Path("/data/speakers")  # saved voices, `<name>.wav` (2-10 s each), usable by name


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "0.0.0.0"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    api_key: str = ""
    keepalive_seconds: PositiveSeconds = 15.0
    default_response_format: ResponseFormat = "json"
    log_level: LogLevel = "INFO"
    log_json: bool = False
    # TLS: https:// and wss:// on PORT (browsers give a page the microphone only on https:// or localhost; OpenAI's
    # JS realtime client connects with wss:// only). TLS_CERT_FILE + TLS_KEY_FILE (PEM): your certificate; or
    # TLS=self-signed: one made once for this machine's names and TLS_NAMES, kept in MODELS_DIR/.tls (app/tls.py).
    tls: Literal["off", "self-signed"] = "off"
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_names: tuple[str, ...] = ()  # more names or addresses clients use, e.g. nas.local,192.168.1.20

    def __post_init__(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise SettingsError("TLS_CERT_FILE and TLS_KEY_FILE go together: set both (or neither)")
        if self.tls_cert_file and self.tls == "self-signed":
            raise SettingsError("TLS=self-signed makes its own certificate: unset TLS_CERT_FILE/TLS_KEY_FILE, or TLS")
        if self.tls_names and self.tls != "self-signed":
            raise SettingsError("TLS_NAMES names the self-signed certificate's hosts: it needs TLS=self-signed")

    @property
    def tls_enabled(self) -> bool:
        return self.tls == "self-signed" or bool(self.tls_cert_file)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_key)


class RealtimeSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Live dictation over WebSocket (/v1/realtime): how many sessions, how long, how often partial text."""

    realtime_max_sessions: Count = 4  # live sessions at once; more are refused
    # a WebSocket session stays open while its socket answers pings (however long the client is silent): one that
    # stops answering is closed within this many seconds; a Wyoming connection (no pings) after this long without
    # an event
    realtime_idle_timeout_s: PositiveSeconds = 60.0
    realtime_max_session_s: PositiveSeconds = 3600.0  # the longest a session may last
    # re-decode the growing utterance at most this often
    realtime_partial_interval_ms: Annotated[int, msgspec.Meta(ge=100)] = 500

    @property
    def ping_interval_s(self) -> float:
        """Seconds between WebSocket pings, and to answer one: a dead socket is found within the idle limit."""
        return self.realtime_idle_timeout_s / 2


class WyomingSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The Wyoming server (Home Assistant's speech-to-text protocol, plain TCP, no authentication) beside HTTP, on
    HOST; its streams are live sessions (REALTIME_MAX_SESSIONS, REALTIME_IDLE_TIMEOUT_S, REALTIME_MAX_SESSION_S)."""

    wyoming_port: Annotated[int, msgspec.Meta(ge=1, le=65535)] | None = None  # empty: off (HA's default is 10300)
    wyoming_max_utterance_s: PositiveSeconds = 120.0  # audio-start to audio-stop at most; then the transcript so far
    wyoming_zeroconf: str = ""  # advertise the server on mDNS (_wyoming._tcp.local.) under this name; empty: don't


class JobSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Jobs (POST /v1/jobs): held in memory only, each result for JOBS_TTL_SECONDS after it finished."""

    jobs_ttl_seconds: PositiveSeconds = 3600.0
    jobs_ttl_refresh: bool = True  # fetching a finished job (or its result) restarts its time to live
    max_jobs: Positive = 32  # jobs held at once: queued, running, and finished ones not yet expired


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting, in the groups the code that uses them takes as they are. Each field of a group is read from
    the variable of its name in capitals (`engines.num_threads` <- NUM_THREADS)."""

    audio: AudioSettings = msgspec.field(default_factory=AudioSettings)
    engines: EngineSettings = msgspec.field(default_factory=EngineSettings)
    limits: LimitSettings = msgspec.field(default_factory=LimitSettings)
    hub: HubSettings = msgspec.field(default_factory=HubSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    speakers: SpeakerSettings = msgspec.field(default_factory=SpeakerSettings)

    realtime: RealtimeSettings = msgspec.field(default_factory=RealtimeSettings)
    wyoming: WyomingSettings = msgspec.field(default_factory=WyomingSettings)
    jobs: JobSettings = msgspec.field(default_factory=JobSettings)


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
    for name, alias in (("API_KEY", "REFLECTOR_GPU_APIKEY"), ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")):
        if not merged.get(name) and merged.get(alias):
            merged[name] = merged[alias]
    raw: dict[str, dict[str, Any]] = {}
    for group in msgspec.structs.fields(Settings):
        values = raw.setdefault(group.name, {})
        for field in msgspec.structs.fields(group.type):
            key = field.name.upper()
            if key in merged and merged[key] != "":
                values[field.name] = _convert(key, field.type, merged[key])
            elif key in merged and field.type is str:
                values[field.name] = ""
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except SettingsError:
        raise
    except msgspec.ValidationError as exc:
        # msgspec says "... - at `$.audio.batch_size`": name the environment variable instead. A group's own check
        # (at `$.limits`) already names its variables.
        message, _, where = str(exc).rpartition(" - at ")
        variable = where.strip("`").removeprefix("$.").partition(".")[2].upper()
        bound = _BOUND.fullmatch(message)
        if variable and bound:
            relation, limit = bound.groups()
            raise SettingsError(f"{variable} must be {_RELATIONS[relation]} {limit}, got {merged[variable]}") from None
        raise SettingsError(f"{variable}: {message}" if variable else message or str(exc)) from None


_BOUND = re.compile(r"Expected `\w+` (>=|<=|>|<) (\S+)")
_RELATIONS = {">=": "at least", "<=": "at most", ">": "greater than", "<": "less than"}
