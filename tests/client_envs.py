"""The third-party clients tests/clients/test_clients.py drives, installed as their users install them, apart from the
project's environment, and cached between runs.

- Python (OpenAI SDK, LiteLLM, livekit-plugins-openai): a venv made by uv from `tests/clients/requirements.txt`
  (fully pinned; uv's cache makes a re-creation a few seconds).
- JavaScript (OpenAI JS SDK, the Vercel AI SDK): `npm ci` from `tests/clients/package-lock.json`.

Each lives in `~/.cache/stt-appliance-tests/` (XDG_CACHE_HOME is honoured) under a name that is the hash of its
pin file, so a changed pin makes a new one and an unchanged one is reused. A build goes to a temporary folder that
is renamed into place when complete, under a lock: a failed or concurrent build never leaves a half environment.
They are not dev dependencies: LiteLLM and LiveKit bring ~540 MB and their own pins (openai, pydantic, protobuf,
aiohttp) that the project's lock should not have to agree with.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.server import ROOT

CLIENTS = ROOT / "tests" / "clients"
INSTALL_TIMEOUT = 900


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stt-appliance-tests"


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).is_file(), "uv not found (make test bootstraps it)"
    return found


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _cached(name: str, pins: list[Path], build: Callable[[Path], None]) -> Path:
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in pins) + sys.version.encode()).hexdigest()[:16]
    target = cache_root() / f"{name}-{digest}"
    with _locked(cache_root() / f"{name}.lock"):
        if not target.is_dir():
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            build(partial)
            partial.rename(target)
    return target


def python_clients() -> Path:
    """The venv's python (OpenAI SDK 3.57, LiteLLM 1.110, livekit-plugins-openai 1.8)."""

    def build(folder: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        run = {"env": env, "check": True, "timeout": INSTALL_TIMEOUT}
        subprocess.run([uv(), "venv", "-q", "--python", sys.executable, str(folder)], **run)  # type: ignore[call-overload]
        requirements = str(CLIENTS / "requirements.txt")
        command = [uv(), "pip", "install", "-q", "--python", str(folder / "bin" / "python"), "-r", requirements]
        subprocess.run(command, **run)  # type: ignore[call-overload]

    return _cached("python-clients", [CLIENTS / "requirements.txt"], build) / "bin" / "python"


def node_clients() -> Path:
    """A folder with `node_modules` (openai 7.59, ai 7.0, @ai-sdk/openai 4.0, ws) and the clients' script."""
    assert shutil.which("node") and shutil.which("npm"), "node and npm are needed (Debian: nodejs, npm)"

    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(CLIENTS / name, folder / name)
        command = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
        subprocess.run(command, cwd=folder, check=True, timeout=INSTALL_TIMEOUT)

    folder = _cached("node-clients", [CLIENTS / "package.json", CLIENTS / "package-lock.json"], build)
    shutil.copy(CLIENTS / "js_clients.mjs", folder / "js_clients.mjs")  # next to its node_modules; always current
    return folder
