# syntax=docker/dockerfile:1.7
# CPU image of the speech-to-text appliance. Self-contained: PyAV bundles FFmpeg's libraries, so no apt ffmpeg.
# Build: docker compose build   (or: make build-docker for linux/amd64 + linux/arm64)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---- build: resolve nothing, install exactly what uv.lock says (torch swapped for its CPU build) ----------------
FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY docker/torch_cpu.py docker/torch_cpu.py
# 1. Everything from the lock except torch and the CUDA stack only torch pulls in (list computed from uv.lock).
# 2. The locked torch version from PyTorch's CPU index (no deps: they are already installed from the lock).
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project $(python docker/torch_cpu.py sync-flags) \
 && uv pip install --python /opt/venv/bin/python --no-deps \
        "torch==$(python docker/torch_cpu.py version)" --index-url https://download.pytorch.org/whl/cpu \
 && /opt/venv/bin/python -c "import torch; assert torch.version.cuda is None, torch.__version__" \
 && rm -rf /opt/venv/lib/python3.11/site-packages/torch/bin/test_* \
           /opt/venv/lib/python3.11/site-packages/torch/include

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
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MODELS_DIR=/data/models \
    HOST=0.0.0.0 \
    PORT=8000 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/data/models/.hf-home
USER 1000:1000
VOLUME ["/data/models"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]
CMD ["python", "-m", "app"]
