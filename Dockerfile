# syntax=docker/dockerfile:1.7
# CPU image of the speech-to-text appliance, built from the stock Python base with no compiler and no extra package
# index: every runtime dependency has wheels for amd64 and arm64 (no torch: see CLAUDE.md, ADR 22). PyAV bundles
# FFmpeg's libraries, so no apt ffmpeg.
# Build: docker compose build   (or: make build-docker for linux/amd64 + linux/arm64)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---- build: resolve nothing, install exactly the runtime part of uv.lock ----------------------------------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# ---- runtime ------------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="stt-appliance" \
      org.opencontainers.image.description="Self-hosted OpenAI-compatible speech-to-text (GigaAM, Whisper, Parakeet), CPU"
RUN groupadd --gid 1000 app \
 && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin app \
 && mkdir -p /data/models \
 && chown 1000:1000 /data/models
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY --chown=1000:1000 app ./app
# Third-party telemetry off (app/__init__.py forces the same; here it also covers any tool run in the container).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MODELS_DIR=/data/models \
    HOST=0.0.0.0 \
    PORT=8000 \
    ORT_DISABLE_TELEMETRY=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    DO_NOT_TRACK=1 \
    HF_HOME=/data/models/.hf-home
USER 1000:1000
VOLUME ["/data/models"]
EXPOSE 8000
# GET /health over http, or https when TLS is on (app/healthcheck.py)
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-m", "app", "healthcheck"]
CMD ["python", "-m", "app"]
