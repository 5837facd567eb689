"""The deployment files agree with each other, with the settings and with uv.lock (no Docker engine needed)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from app.settings import Settings, load_settings, read_dotenv

ROOT = Path(__file__).resolve().parent.parent
INSTALL_COMMAND = "uv sync --frozen --no-dev"


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", read("Dockerfile"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


# ---- compose.yaml ---------------------------------------------------------------------------------------------------


def test_compose_service() -> None:
    compose = yaml.safe_load(read("compose.yaml"))
    stt = compose["services"]["stt"]
    assert stt["build"] == "."
    assert any(str(p).endswith(":8000") for p in stt["ports"])
    assert stt["env_file"] == [{"path": ".env", "required": False}]  # `docker compose up -d` works without a .env
    assert "./models:/data/models" in stt["volumes"]
    assert stt["restart"] == "unless-stopped"
    assert stt["environment"]["MODELS_DIR"] == "/data/models"
    health = stt["healthcheck"]
    assert health["start_period"] == "600s"
    assert "/health" in " ".join(health["test"]) and health["test"][0] == "CMD"
    assert "profiles" not in stt
    assert len(stt["ports"]) == 1  # Wyoming (no authentication) is not published by default; its line is offered
    assert re.search(r'^\s*#\s*- "\$\{PUBLISH_WYOMING_PORT:-10300\}:10300"$', read("compose.yaml"), re.M)
    # the limits are offered, commented out
    assert re.search(r"^\s*#\s*mem_limit:", read("compose.yaml"), re.M)
    assert re.search(r"^\s*#\s*cpus:", read("compose.yaml"), re.M)


def test_compose_download_weights_tool() -> None:
    compose = yaml.safe_load(read("compose.yaml"))
    tool = compose["services"]["download-weights"]
    assert tool["profiles"] == ["tools"]
    # `run --rm download-weights v3_ctc` appends to an entrypoint (it would replace a command)
    assert tool["entrypoint"] == ["python", "-m", "app", "download"]
    assert "command" not in tool
    assert "./models:/data/models" in tool["volumes"]
    assert "ports" not in tool


# ---- Dockerfile -----------------------------------------------------------------------------------------------------


def test_dockerfile_shape() -> None:
    instructions = dockerfile_instructions()
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert len(froms) >= 3 and froms[-1].endswith("AS runtime")  # multi-stage
    base = next(args for kw, args in instructions if kw == "ARG" and args.startswith("PYTHON_IMAGE="))
    assert base.split("=", 1)[1].startswith("python:3.11-slim")
    runtime = instructions[max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM") :]
    assert ("USER", "1000:1000") in runtime
    assert ("EXPOSE", "8000") in runtime
    assert ("CMD", '["python", "-m", "app"]') in runtime
    env = " ".join(args for kw, args in runtime if kw == "ENV")
    assert "MODELS_DIR=/data/models" in env
    health = next(args for kw, args in runtime if kw == "HEALTHCHECK")
    assert "/health" in health and "urllib" in health and "curl" not in health
    assert not any("apt-get" in args and "ffmpeg" in args for _, args in instructions)  # PyAV bundles FFmpeg


def test_dockerfile_installs_the_runtime_lock_from_pypi_alone() -> None:
    instructions = dockerfile_instructions()
    run = " ".join(args for kw, args in instructions if kw == "RUN")
    assert INSTALL_COMMAND in run
    assert "--index-url" not in run and "--extra-index-url" not in run  # no second package index
    assert not any("apt-get" in args for _, args in instructions)  # no compiler, no system packages
    env = " ".join(args for kw, args in instructions if kw == "ENV")
    for opt_out in ("ORT_DISABLE_TELEMETRY=1", "HF_HUB_DISABLE_TELEMETRY=1", "DO_NOT_TRACK=1"):
        assert opt_out in env


def test_documented_install_command_matches_the_dockerfile() -> None:
    """The README (or, before it exists, docs/deploy.md) documents the same install the image runs."""
    docs = [read(name) for name in ("README.md", "docs/deploy.md") if (ROOT / name).is_file()]
    assert docs, "no README.md or docs/deploy.md"
    for text in docs:
        documented = set(re.findall(r"uv sync --frozen[a-z -]*", text))
        assert {cmd.strip() for cmd in documented} == {INSTALL_COMMAND}


def test_dockerignore_keeps_secrets_and_bulk_out() -> None:
    ignored = {line.strip() for line in read(".dockerignore").splitlines() if line.strip() and line[0] != "#"}
    for entry in (".env", ".venv", ".git", "models", "tests"):
        assert entry in ignored
    for needed in ("app", "uv.lock", "pyproject.toml"):
        assert needed not in ignored


# ---- uv.lock: the runtime ----------------------------------------------------------------------------------------


HEAVY_DEV_ONLY = {
    "torch",
    "torchaudio",
    "triton",
    "numba",
    "llvmlite",
    "librosa",
    "gigaam",
    "resemblyzer",
    "hydra-core",
    "silero-vad",
    "transformers",
}  # fmt: skip  (`onnx`, 27 MB, is runtime since the int8 graph rewrite: docs/adr/0034)


def runtime_packages() -> set[str]:
    """Every package `uv sync --no-dev` installs: the project's dependencies and theirs, from uv.lock."""
    lock = tomllib.loads(read("uv.lock"))
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        by_name.setdefault(package["name"], []).append(package)
    todo = [d["name"] for d in by_name["stt-appliance"][0]["dependencies"]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for package in by_name[name]:
            todo += [d["name"] for d in package.get("dependencies", [])]
            for extra in package.get("optional-dependencies", {}).values():  # uvicorn[standard]
                todo += [d["name"] for d in extra]
    return seen


def test_runtime_dependencies_hold_no_torch_or_cuda_stack() -> None:
    runtime = runtime_packages()
    assert {"onnxruntime", "faster-whisper", "litestar", "av"} <= runtime
    # Home Assistant (issue 21): the reference Wyoming package (pure Python, no dependencies) and zeroconf for the
    # optional mDNS advertisement (compiled wheels for amd64/arm64; it brings ifaddr, pure Python)
    assert {"wyoming", "zeroconf", "ifaddr"} <= runtime
    assert not runtime & HEAVY_DEV_ONLY
    assert not [name for name in runtime if name.startswith(("nvidia-", "cuda-"))]


def test_runtime_wheels_exist_for_amd64_and_arm64() -> None:
    """The image builds on both architectures with no compiler: each runtime package has a wheel for each (or a
    pure-Python one)."""
    wheels_of: dict[str, list[str]] = {}  # a package may be locked at two versions (by Python version): all count
    for package in tomllib.loads(read("uv.lock"))["package"]:
        wheels_of.setdefault(package["name"], []).extend(w["url"].rsplit("/", 1)[-1] for w in package.get("wheels", []))
    for name in runtime_packages():
        wheels = wheels_of[name]
        assert wheels, f"{name} has no wheel"
        if any(w.endswith("-none-any.whl") for w in wheels):
            continue
        linux = [w for w in wheels if "cp311" in w or "abi3" in w or "py3-none" in w]
        assert any("x86_64" in w and "linux" in w for w in linux), f"{name}: no linux x86_64 wheel for 3.11"
        assert any("aarch64" in w and "linux" in w for w in linux), f"{name}: no linux aarch64 wheel for 3.11"


# ---- .env.example, Makefile, .ci/run --------------------------------------------------------------------------------


def test_env_example_lists_every_setting_with_its_default() -> None:
    values = read_dotenv(ROOT / ".env.example")
    groups = msgspec.structs.fields(Settings)
    fields = {f.name.upper() for group in groups for f in msgspec.structs.fields(group.type)}
    assert fields <= set(values), f"missing: {sorted(fields - set(values))}"
    assert load_settings({}, ROOT / ".env.example") == Settings()
    lines = read(".env.example").splitlines()
    for i, line in enumerate(lines):  # each setting has a comment line right above it (or above its group)
        if re.match(r"^[A-Z_]+=", line) and line.split("=")[0] in fields:
            assert lines[i - 1].startswith("#") or re.match(r"^[A-Z_]+=", lines[i - 1]), line


MAKE_TARGETS = [
    "install", "run", "download-weights-local", "check", "pre-commit", "test", "test-integration", "build-docker",
    "up", "down", "logs", "download-weights", "clean", "bench",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
@pytest.mark.parametrize("target", MAKE_TARGETS)
def test_make_targets_exist(target: str) -> None:
    result = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_make_commands() -> None:
    makefile = read("Makefile")
    assert re.search(r"^run: .*\n\t\$\(UV\) run python -m app$", makefile, re.M)
    assert "$(UV) run pytest -q" in makefile
    assert "python3 scripts/bootstrap_uv.py" in makefile
    assert "docker buildx build --platform $(PLATFORMS)" in makefile and "linux/amd64,linux/arm64" in makefile
    assert "--profile tools run --rm download-weights" in makefile


def test_ci_script_is_the_readme_test_command() -> None:
    path = ROOT / ".ci" / "run"
    text = path.read_text()
    assert path.stat().st_mode & stat.S_IXUSR
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "make test" in text and "make test" in read("README.md")
    assert "apt-get" not in text  # the Makefile installs what the tests need, for CI and people alike
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


def test_make_test_installs_the_system_packages_the_suite_uses() -> None:
    script = read("scripts/system_packages.sh")
    packages = re.search(r"^PACKAGES=\(([^)]+)\)", script, re.M)
    assert packages and {"chromium", "chromium-driver", "espeak-ng", "strace"} <= set(packages.group(1).split())
    assert re.search(r"^test: .*\n\t@bash scripts/system_packages.sh$", read("Makefile"), re.M)
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "system_packages.sh")]).returncode == 0


def test_bootstrap_uv_picks_a_wheel_for_this_machine() -> None:
    spec = importlib.util.spec_from_file_location("bootstrap_uv", ROOT / "scripts" / "bootstrap_uv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fragments = module.wheel_tag_fragments()
    machine = os.uname().machine
    assert fragments and all(machine.replace("arm64", "aarch64") in f or "macosx" in f for f in fragments)
