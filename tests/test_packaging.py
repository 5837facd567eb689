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
from types import ModuleType

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


def torch_cpu() -> ModuleType:
    spec = importlib.util.spec_from_file_location("torch_cpu", ROOT / "docker" / "torch_cpu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- compose.yaml ---------------------------------------------------------------------------------------------------


def test_compose_service() -> None:
    compose = yaml.safe_load(read("compose.yaml"))
    stt = compose["services"]["stt"]
    assert stt["build"] == "."
    assert any(str(p).endswith(":8000") for p in stt["ports"])
    assert stt["env_file"] in (".env", [".env"])
    assert "./models:/data/models" in stt["volumes"]
    assert stt["restart"] == "unless-stopped"
    assert stt["environment"]["MODELS_DIR"] == "/data/models"
    health = stt["healthcheck"]
    assert health["start_period"] == "600s"
    assert "/health" in " ".join(health["test"]) and health["test"][0] == "CMD"
    assert "profiles" not in stt
    # the limits are offered, commented out
    assert re.search(r"^\s*#\s*mem_limit:", read("compose.yaml"), re.M)
    assert re.search(r"^\s*#\s*cpus:", read("compose.yaml"), re.M)


def test_compose_download_weights_tool() -> None:
    compose = yaml.safe_load(read("compose.yaml"))
    tool = compose["services"]["download-weights"]
    assert tool["profiles"] == ["tools"]
    assert tool["command"] == ["python", "-m", "app", "download"]
    assert "./models:/data/models" in tool["volumes"]
    assert "ports" not in tool


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_config_validates(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(read("compose.yaml"))
    (tmp_path / ".env").write_text("")
    result = subprocess.run(
        ["docker-compose", "--profile", "tools", "config", "--services"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["download-weights", "stt"]


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


def test_dockerfile_installs_from_the_lock_with_cpu_torch() -> None:
    run = " ".join(args for kw, args in dockerfile_instructions() if kw == "RUN")
    assert INSTALL_COMMAND in run
    assert "$(python docker/torch_cpu.py sync-flags)" in run
    assert "--index-url https://download.pytorch.org/whl/cpu" in run
    assert '"torch==$(python docker/torch_cpu.py version)"' in run
    assert "--no-deps" in run


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
    for needed in ("app", "uv.lock", "pyproject.toml", "docker"):
        assert needed not in ignored


# ---- uv.lock -> CPU torch -------------------------------------------------------------------------------------------


def test_cpu_torch_flags_from_the_real_lock() -> None:
    module = torch_cpu()
    lock = tomllib.loads(read("uv.lock"))
    excluded = module.cuda_only_packages(lock)
    names = {p["name"] for p in lock["package"]}
    cuda_stack = {n for n in names if n.startswith(("nvidia-", "cuda-", "triton"))}
    assert "torch" in excluded and cuda_stack <= excluded
    assert excluded - cuda_stack == {"torch"}  # nothing else is dropped: sympy, numpy, ... stay as locked
    assert re.fullmatch(r"\d+\.\d+\.\d+", module.torch_version(lock))


def test_cpu_torch_keeps_shared_dependencies() -> None:
    """A package needed both by the CUDA stack and by something else stays installed."""
    lock = {
        "package": [
            {"name": "proj", "source": {"virtual": "."}, "dependencies": [{"name": "torch"}, {"name": "app-lib"}]},
            {"name": "app-lib", "version": "1", "dependencies": [{"name": "shared"}]},
            {
                "name": "torch",
                "version": "9.9.9",
                "dependencies": [
                    {"name": "sympy"},
                    {"name": "nv-stack", "extra": ["blas"], "marker": "sys_platform == 'linux'"},
                ],
            },
            {"name": "sympy", "version": "1"},
            {"name": "nv-stack", "version": "1", "optional-dependencies": {"blas": [{"name": "nv-blas"}]}},
            {"name": "nv-blas", "version": "1", "dependencies": [{"name": "shared"}]},
            {"name": "shared", "version": "1"},
        ]
    }
    module = torch_cpu()
    assert module.cuda_only_packages(lock) == {"torch", "nv-stack", "nv-blas"}
    assert module.torch_version(lock) == "9.9.9"


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


def test_ci_script() -> None:
    path = ROOT / ".ci" / "run"
    text = path.read_text()
    assert path.stat().st_mode & stat.S_IXUSR
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    packages = re.search(r'^DEBIAN_PACKAGES="([^"]+)"', text, re.M)
    assert packages and {"chromium", "chromium-driver", "espeak-ng"} <= set(packages.group(1).split())
    assert "make test" in text
    assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


def test_bootstrap_uv_picks_a_wheel_for_this_machine() -> None:
    spec = importlib.util.spec_from_file_location("bootstrap_uv", ROOT / "scripts" / "bootstrap_uv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fragments = module.wheel_tag_fragments()
    machine = os.uname().machine
    assert fragments and all(machine.replace("arm64", "aarch64") in f or "macosx" in f for f in fragments)
