"""The deployment files do what they say: the Dockerfile and compose.yaml read as data and (slow) carried out by
`tests/image.py`; the Makefile, `.ci/run` and `scripts/system_packages.sh` run for real with stand-ins recording the
commands they start (uv, docker, bash, apt-get...); uv.lock's runtime set is pinned. No Docker engine needed."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from app.settings import Settings, load_settings, read_dotenv
from tests.image import Image, build_context, exec_form, healthcheck, image_server, parse_dockerfile
from tests.server import ROOT, free_port

INSTALL_COMMAND = "uv sync --frozen --no-dev"
# What the suite needs from the system (scripts/system_packages.sh installs what is missing): package -> why
SUITE_NEEDS = {
    "chromium": "the page's browser tests",
    "chromium-driver": "the page's browser tests",
    "espeak-ng": "synthetic voices",
    "strace": "the privacy test",
    "npm": "the JavaScript clients of tests/clients/test_clients.py",
    "make": "these tests run the Makefile",
}


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(read("compose.yaml")))


# ---- stand-ins that record the commands a script starts ------------------------------------------------------------


class Recorder:
    """A folder of stand-in commands: each appends its name and arguments (and where it ran) to a log, prints
    `STUB_OUT_<NAME>` and exits with `STUB_EXIT_<NAME>` (0 by default)."""

    def __init__(self, folder: Path, names: list[str]) -> None:
        self.folder = folder
        self.log = folder / "calls.jsonl"
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            stub = folder / name
            stub.write_text(
                f"#!{sys.executable}\n"
                "import json, os, sys\n"
                "name = os.path.basename(sys.argv[0])\n"
                "with open(os.environ['STUB_LOG'], 'a') as log:\n"
                "    log.write(json.dumps({'argv': [name, *sys.argv[1:]], 'cwd': os.getcwd()}) + '\\n')\n"
                "key = name.upper().replace('-', '_')\n"
                "print(os.environ.get('STUB_OUT_' + key, ''), end='')\n"
                "sys.exit(int(os.environ.get('STUB_EXIT_' + key, '0')))\n"
            )
            stub.chmod(0o755)

    def env(self, path: str, **settings: str) -> dict[str, str]:
        skip = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")  # a `make test` around this run must not leak into it
        base = {k: v for k, v in os.environ.items() if k not in skip}
        return {**base, "PATH": path, "STUB_LOG": str(self.log), **settings}

    def calls(self) -> list[list[str]]:
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines()] if self.log.exists() else []

    def places(self) -> list[str]:
        return [json.loads(line)["cwd"] for line in self.log.read_text().splitlines()]


@pytest.fixture
def recorder(tmp_path: Path) -> Recorder:
    return Recorder(tmp_path / "bin", ["uv", "docker", "bash"])


def make(recorder: Recorder, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in the repository with uv as a stand-in (UV=), docker and bash first on PATH."""
    env = recorder.env(f"{recorder.folder}:{os.environ['PATH']}", **settings)
    command = ["make", "--no-print-directory", "-C", str(ROOT), f"UV={recorder.folder / 'uv'}", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


# ---- compose.yaml -----------------------------------------------------------------------------------------------


def test_compose_service() -> None:
    stt = compose()["services"]["stt"]
    assert stt["build"] == "."
    assert [p.rsplit(":", 1)[1] for p in stt["ports"]] == [stt["environment"]["PORT"]]  # host port -> the app's
    assert stt["env_file"] == [{"path": ".env", "required": False}]  # `docker compose up -d` works without a .env
    assert "./models:/data/models" in stt["volumes"]
    assert stt["restart"] == "unless-stopped"
    assert stt["environment"]["MODELS_DIR"] == "/data/models"
    assert stt["healthcheck"]["start_period"] == "600s" and stt["healthcheck"]["test"][0] == "CMD"
    assert "profiles" not in stt
    assert len(stt["ports"]) == 1  # Wyoming (no authentication) is not published by default; its line is offered
    assert re.search(r'^\s*#\s*- "\$\{PUBLISH_WYOMING_PORT:-10300\}:10300"$', read("compose.yaml"), re.M)
    # the limits are offered, commented out
    assert re.search(r"^\s*#\s*mem_limit:", read("compose.yaml"), re.M)
    assert re.search(r"^\s*#\s*cpus:", read("compose.yaml"), re.M)


def test_compose_download_weights_tool() -> None:
    tool = compose()["services"]["download-weights"]
    assert tool["profiles"] == ["tools"]
    # `run --rm download-weights v3_ctc` appends to an entrypoint (extra arguments would replace a command)
    assert "command" not in tool and exec_form(json.dumps(tool["entrypoint"]))
    assert "./models:/data/models" in tool["volumes"]
    assert "ports" not in tool


# ---- Dockerfile, as data ----------------------------------------------------------------------------------------


def test_dockerfile_shape() -> None:
    dockerfile = parse_dockerfile(read("Dockerfile"))
    assert len(dockerfile.stages) >= 3 and dockerfile.runtime.name == "runtime"  # multi-stage
    assert dockerfile.args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    runtime = dockerfile.runtime
    assert [i.args for i in runtime.all("USER")] == ["1000:1000"]
    assert [i.args for i in runtime.all("EXPOSE")] == [compose()["services"]["stt"]["environment"]["PORT"]]
    (cmd,) = runtime.all("CMD")
    assert exec_form(cmd.args) == ["python", "-m", "app"]
    (check,) = runtime.all("HEALTHCHECK")
    options, command = healthcheck(check)
    assert (
        command[0] == "python"
        and options["start-period"] == compose()["services"]["stt"]["healthcheck"]["start_period"]
    )  # the slim image has no curl: the check is Python's
    runs = [shlex.split(i.args) for stage in dockerfile.stages for i in stage.all("RUN")]
    assert not any(word in ("apt-get", "apt") for argv in runs for word in argv)  # PyAV bundles FFmpeg; no compiler


def test_dockerfile_installs_the_runtime_lock_from_pypi_alone() -> None:
    dockerfile = parse_dockerfile(read("Dockerfile"))
    installs = [shlex.split(i.args) for s in dockerfile.stages for i in s.all("RUN") if i.args.startswith("uv ")]
    assert len(installs) == 1
    (install,) = installs
    assert install[:2] == ["uv", "sync"] and {"--frozen", "--no-dev"} <= set(install)
    assert not {"--index-url", "--extra-index-url", "--find-links"} & {a.split("=")[0] for a in install}
    env = {k: v for i in dockerfile.runtime.all("ENV") for k, _, v in (a.partition("=") for a in shlex.split(i.args))}
    assert {k: env[k] for k in ("ORT_DISABLE_TELEMETRY", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK")} == dict.fromkeys(
        ("ORT_DISABLE_TELEMETRY", "HF_HUB_DISABLE_TELEMETRY", "DO_NOT_TRACK"), "1"
    )
    assert env["MODELS_DIR"] == compose()["services"]["stt"]["environment"]["MODELS_DIR"]


def test_documented_install_command_matches_the_dockerfile() -> None:
    """The README (and docs/deploy.md, when there is one) documents the install the image runs."""
    docs = [read(name) for name in ("README.md", "docs/deploy.md") if (ROOT / name).is_file()]
    assert docs, "no README.md or docs/deploy.md"
    for text in docs:
        documented = {cmd.strip() for cmd in re.findall(r"uv sync --frozen[a-z -]*", text)}
        assert documented == {INSTALL_COMMAND}


# ---- .dockerignore: the build context ---------------------------------------------------------------------------


def test_dockerignore_keeps_secrets_and_bulk_out(tmp_path: Path) -> None:
    tree = {
        ".env": "API_KEY=secret",
        ".env.local": "API_KEY=secret",
        ".env.example": "MODEL=v3_ctc",
        ".git/config": "",
        ".venv/bin/python": "",
        "models/v3_ctc/model.onnx": "",
        "tests/test_x.py": "",
        "docs/guide.md": "",
        "README.md": "",
        "app/__init__.py": "",
        "app/static/js/main.js": "",
        "app/api/__pycache__/x.cpython-311.pyc": "",
        "pyproject.toml": "",
        "uv.lock": "",
        "Dockerfile": "",
    }
    for name, text in tree.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    sent = build_context(tmp_path) - {".dockerignore"}
    assert sent == {
        ".env.example",
        "app/__init__.py",
        "app/static/js/main.js",
        "pyproject.toml",
        "uv.lock",
        "Dockerfile",
    }


def test_every_copy_source_is_in_the_build_context() -> None:
    context = build_context(ROOT)
    for stage in parse_dockerfile(read("Dockerfile")).stages:
        for copy in stage.all("COPY"):
            if "from" not in copy.flags:
                for source in shlex.split(copy.args)[:-1]:
                    assert any(f == source or f.startswith(source + "/") for f in context), source
    assert "app/static/js/main.js" in context and not any(f.startswith(("tests/", ".venv/")) for f in context)


# ---- the image, carried out (tests/image.py) -------------------------------------------------------------------


def compose_settings(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment` as `docker compose` passes it, but HOST and PORT: the test server's are its own
    (loopback, a free port)."""
    return {k: str(v) for k, v in service["environment"].items() if k not in ("HOST", "PORT")}


@pytest.fixture(scope="module")
def compose_server(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("compose-stt")
    settings = {**compose_settings(compose()["services"]["stt"]), "MODEL": "tiny.en", "ALLOWED_MODELS": "tiny.en"}
    settings["MODELS_DIR"] = str(image.path(settings["MODELS_DIR"]))  # the volume, inside the image's folders
    with image_server(image, tmp, **settings) as server:
        yield server


@pytest.mark.slow
def test_compose_service_serves_and_its_healthcheck_says_so(image: Image, compose_server: Any) -> None:
    test = compose()["services"]["stt"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert image.run(test[1:], PORT=str(compose_server.port)).returncode == 0
    assert image.run(test[1:], PORT=str(free_port())).returncode != 0  # nothing serves there


@pytest.mark.slow
def test_download_weights_appends_the_model_names(image: Image, tmp_path: Path) -> None:
    tool = compose()["services"]["download-weights"]
    settings = {**compose_settings(tool), "MODELS_DIR": str(tmp_path / "models")}
    done = image.run([*tool["entrypoint"], "tiny.en"], **settings)
    assert done.returncode == 0, done.stderr
    assert "tiny.en: bundled" in done.stdout  # the name reached the download command: nothing to fetch
    unknown = image.run([*tool["entrypoint"], "no-such-model"], **settings)
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr


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


# ---- .env.example ----------------------------------------------------------------------------------------------


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


# ---- Makefile: what each target runs ---------------------------------------------------------------------------


MAKE_TARGETS = [
    "install", "run", "download-weights-local", "check", "pre-commit", "test", "test-integration", "build-docker",
    "up", "down", "logs", "download-weights", "clean", "bench",
]  # fmt: skip


@pytest.mark.parametrize("target", MAKE_TARGETS)
def test_make_targets_exist(target: str) -> None:
    result = subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


CHECKS = [["uv", "run", "ruff", "check", "."], ["uv", "run", "ruff", "format", "--check", "."], ["uv", "run", "mypy"]]
SYSTEM_PACKAGES = ["bash", "scripts/system_packages.sh"]
PYTEST = ["uv", "run", "pytest", "-q", "-n", "3", "--dist", "loadfile"]  # TEST_WORKERS=3 by default


@pytest.mark.parametrize(
    ("args", "calls"),
    [
        (["install"], [["uv", "sync"]]),
        (["run"], [["uv", "run", "python", "-m", "app"]]),
        (["download-weights-local", "MODEL=v3_ctc"], [["uv", "run", "python", "-m", "app", "download", "v3_ctc"]]),
        (["test"], [SYSTEM_PACKAGES, PYTEST]),
        (
            ["test", "PYTEST_ARGS=-k catalog -x"],
            [SYSTEM_PACKAGES, [*PYTEST, "-k", "catalog", "-x"]],
        ),
        (["test-integration"], [SYSTEM_PACKAGES, [*PYTEST, "-m", "slow or browser"]]),
        (["check"], [*CHECKS, SYSTEM_PACKAGES, PYTEST]),
        (
            ["pre-commit"],
            [
                *CHECKS,
                SYSTEM_PACKAGES,
                PYTEST,
                ["docker", "compose", "version"],
                ["docker", "compose", "--profile", "tools", "config", "--quiet"],
            ],
        ),
        (
            ["build-docker"],
            [["docker", "buildx", "build", "--platform", "linux/amd64,linux/arm64", "-t", "stt-appliance:latest", "."]],
        ),
        (["up"], [["docker", "compose", "up", "-d", "--build"]]),
        (["down"], [["docker", "compose", "down"]]),
        (["logs"], [["docker", "compose", "logs", "-f"]]),
        (
            ["download-weights", "MODEL=v3_ctc"],
            [["docker", "compose", "--profile", "tools", "run", "--rm", "download-weights", "v3_ctc"]],
        ),
        (["bench"], [["uv", "run", "python", "-m", "bench.server_bench", "--sizes", "10m,1h", "--model", "tiny.en"]]),
    ],
)
def test_make_runs(recorder: Recorder, args: list[str], calls: list[list[str]]) -> None:
    result = make(recorder, *args)
    assert result.returncode == 0, result.stderr
    assert [[Path(call[0]).name, *call[1:]] for call in recorder.calls()] == calls


def test_what_make_runs_exists() -> None:
    """The targets' Python modules and compose service are there (the commands above name them)."""
    assert (ROOT / "bench" / "server_bench.py").is_file() and (ROOT / "scripts" / "system_packages.sh").is_file()
    assert "tools" in compose()["services"]["download-weights"]["profiles"]


@pytest.mark.parametrize(
    ("pytest_exit", "make_fails", "says"), [(0, False, ""), (5, True, "pytest collected no tests")]
)
def test_make_test_fails_when_pytest_collects_nothing(
    recorder: Recorder, pytest_exit: int, make_fails: bool, says: str
) -> None:
    result = make(recorder, "test", STUB_EXIT_UV=str(pytest_exit))
    assert (result.returncode != 0) is make_fails, result.stderr
    assert says in result.stderr


def test_make_test_passes_pytests_failure_on(recorder: Recorder) -> None:
    result = make(recorder, "test", STUB_EXIT_UV="1")
    assert result.returncode != 0 and "Error 1" in result.stderr


def test_make_bootstraps_uv_when_it_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "bin" / "uv"
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), f"UV={missing}", "install"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines() == [
        f"python3 scripts/bootstrap_uv.py --dest {missing.parent}/",
        f"{missing} sync",
    ]


def test_bootstrap_uv_picks_a_wheel_for_this_machine() -> None:
    spec = importlib.util.spec_from_file_location("bootstrap_uv", ROOT / "scripts" / "bootstrap_uv.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fragments = module.wheel_tag_fragments()
    machine = os.uname().machine
    assert fragments and all(machine.replace("arm64", "aarch64") in f or "macosx" in f for f in fragments)


# ---- .ci/run ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_exit", "output", "exit_code"),
    [(0, "120 passed in 300s\n", 0), (0, "collected 0 items\n", 1), (0, "no tests ran in 0.01s\n", 1), (4, "", 4)],
)
def test_ci_runs_make_test_and_fails_on_an_empty_run(
    tmp_path: Path, make_exit: int, output: str, exit_code: int
) -> None:
    path = ROOT / ".ci" / "run"
    assert path.stat().st_mode & stat.S_IXUSR
    stubs = Recorder(tmp_path / "bin", ["make", "apt-get", "sudo"])  # it installs nothing itself: make test does
    env = stubs.env(f"{stubs.folder}:/usr/bin:/bin", STUB_EXIT_MAKE=str(make_exit), STUB_OUT_MAKE=output)
    result = subprocess.run([str(path)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == exit_code, result.stderr
    assert stubs.calls() == [["make", "test"]] and stubs.places() == [str(ROOT)]
    assert output in result.stdout  # the log is shown as it comes


def test_the_readme_test_command_is_what_ci_runs() -> None:
    assert "make test" in read("README.md")


# ---- scripts/system_packages.sh --------------------------------------------------------------------------------

COMMAND_OF = {"chromium": "chromium", "chromium-driver": "chromedriver", "espeak-ng": "espeak-ng", "strace": "strace"}


def system_packages(tmp_path: Path, present: list[str], *, uid: str = "0", apt: bool = True) -> tuple[Any, Recorder]:
    """The script with only stand-ins on PATH: the commands `present`, `id` answering `uid`, and apt-get."""
    stubs = Recorder(tmp_path / "bin", [*present, "id", *(["apt-get"] if apt else [])])
    env = stubs.env(str(stubs.folder), STUB_OUT_ID=uid)
    script = ROOT / "scripts" / "system_packages.sh"
    return subprocess.run(["/bin/bash", str(script)], env=env, capture_output=True, text=True, timeout=60), stubs


def installs(stubs: Recorder) -> list[list[str]]:
    return [call for call in stubs.calls() if call[0] == "apt-get"]


def test_system_packages_installs_what_the_suite_needs(tmp_path: Path) -> None:
    result, stubs = system_packages(tmp_path, [])
    assert result.returncode == 0, result.stderr
    update, install = installs(stubs)
    assert update == ["apt-get", "update", "-qq"]
    assert install[:5] == ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
    assert set(install[5:]) == set(SUITE_NEEDS)


def test_system_packages_installs_only_what_is_missing(tmp_path: Path) -> None:
    present = [COMMAND_OF.get(p, p) for p in SUITE_NEEDS if p != "strace"]
    result, stubs = system_packages(tmp_path, present)
    assert result.returncode == 0, result.stderr
    assert installs(stubs)[-1][5:] == ["strace"]
    result, stubs = system_packages(tmp_path / "all", [*present, "strace"])
    assert result.returncode == 0 and installs(stubs) == []


def test_system_packages_says_what_to_run_without_root_or_apt(tmp_path: Path) -> None:
    result, stubs = system_packages(tmp_path, [], uid="1000")  # no sudo either
    assert result.returncode == 1 and installs(stubs) == []
    assert "run: sudo apt-get update && sudo apt-get install" in result.stderr and "strace" in result.stderr
    result, stubs = system_packages(tmp_path / "no-apt", [], apt=False)
    assert result.returncode == 1 and "make test needs these Debian/Ubuntu packages" in result.stderr
