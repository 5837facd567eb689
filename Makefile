# Developer conveniences. Production deployment needs only Docker: see docs/deploy.md.
# Works on a fresh Debian/Ubuntu with python3 and make: uv is bootstrapped into ~/.local/bin when missing.

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= $(or $(shell command -v uv 2>/dev/null),$(HOME)/.local/bin/uv)
COMPOSE ?= docker compose
IMAGE ?= stt-appliance:latest
PLATFORMS ?= linux/amd64,linux/arm64
BUILDX_FLAGS ?=
MODEL ?=
PYTEST_ARGS ?=
# The suite waits more than it computes (audio paced at real time, servers starting, clients' timeouts): three pytest
# processes (pytest-xdist, one test file each at a time) fill two cores. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 3
PYTEST := $(UV) run pytest -q -n $(TEST_WORKERS) --dist loadfile
BENCH_ARGS ?= --sizes 10m,1h --model tiny.en

.PHONY: help install run download-weights-local check lint format-check typecheck pre-commit test test-integration \
        compose-config build-docker up down logs download-weights clean bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

$(UV):
	python3 scripts/bootstrap_uv.py --dest $(dir $(UV))

install: $(UV) ## Install dependencies into .venv (uv sync)
	$(UV) sync

run: $(UV) ## Run the server locally (HOST/PORT/MODELS_DIR from .env)
	$(UV) run python -m app

download-weights-local: $(UV) ## Download model weights natively into MODELS_DIR (MODEL=name to override)
	$(UV) run python -m app download $(MODEL)

lint: $(UV)
	$(UV) run ruff check .

format-check: $(UV)
	$(UV) run ruff format --check .

typecheck: $(UV)
	$(UV) run mypy

# pytest exits 5 when it collected no tests: that is a failure here, never a silent pass.
test: $(UV) ## Run the test suite (first installs the Debian packages it needs: scripts/system_packages.sh)
	@bash scripts/system_packages.sh
	@$(PYTEST) $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

test-integration: $(UV) ## Only the slow tests (real models, real audio) and browser tests
	@bash scripts/system_packages.sh
	@$(PYTEST) -m "slow or browser" $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no integration tests" >&2; exit 1; fi; exit $$status

check: lint format-check typecheck test ## ruff check + ruff format --check + mypy + pytest

compose-config: ## Validate compose.yaml (needs docker compose, or docker-compose)
	@if $(COMPOSE) version >/dev/null 2>&1; then $(COMPOSE) --profile tools config --quiet; \
	elif command -v docker-compose >/dev/null; then docker-compose --profile tools config --quiet; \
	else echo "compose-config: no docker compose here, skipped (tests/packaging/test_packaging.py still checks the file)"; fi

pre-commit: check compose-config ## Everything before a commit

build-docker: ## Build the image for amd64 + arm64 with buildx (BUILDX_FLAGS=--push, or PLATFORMS=linux/amd64 BUILDX_FLAGS=--load)
	docker buildx build --platform $(PLATFORMS) -t $(IMAGE) $(BUILDX_FLAGS) .

up: ## docker compose up -d (builds on first use)
	$(COMPOSE) up -d --build

down: ## docker compose down
	$(COMPOSE) down

logs: ## Follow the service logs
	$(COMPOSE) logs -f

download-weights: ## Pre-download weights with a one-off container (tools profile; MODEL=name to override)
	$(COMPOSE) --profile tools run --rm download-weights $(MODEL)

bench: $(UV) ## Server vs direct engine: RTF, first delta, peak RSS on long inputs (BENCH_ARGS="--sizes 10m,1h,2h")
	$(UV) run python -m bench.server_bench $(BENCH_ARGS)

clean: ## Remove tool caches (keeps .venv and models)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis build bench/out
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
