"""The image as the Dockerfile builds it, without a container engine (none runs on the dev machines).

The Dockerfile is read as data (stages of instructions) and carried out on folders, one per stage, each standing in
for that stage's root file system:
- the build context is the repository filtered by `.dockerignore` (Docker's matching: `*` and `?` stay within one
  path segment, `**` spans any, a pattern excludes what it matches and everything below, `!` re-includes);
- `FROM python:3.11-*` gives a stage this machine's Python 3.11 at `/usr/local/bin/python3.11` (and `python`,
  `python3`); `FROM ghcr.io/astral-sh/uv:*` gives `/uv`, this machine's uv;
- `ENV` values and `WORKDIR`/`COPY` paths are container paths, taken under the stage's folder; `COPY` copies from the
  context (or `--from` another stage's folder); `RUN` runs as written with `/bin/sh -c` in the build stages. The
  runtime stage's `RUN` may only create its user and folders (`groupadd`, `useradd`, `mkdir -p`, `chown`): the folders
  are made, the user cannot be (checked as data by the tests), anything else is refused;
- the runtime stage's `CMD` and `HEALTHCHECK` are kept as argv lists, to run for real with its `ENV`.
Any other instruction is refused, so that a Dockerfile change cannot slip past the tests that use this.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.server import ROOT, ServerProcess

PYTHON_IMAGE = "python:3.11"
UV_IMAGE = "ghcr.io/astral-sh/uv:"
RECORDED = {"LABEL", "USER", "VOLUME", "EXPOSE", "HEALTHCHECK", "CMD"}  # kept for the tests; nothing to carry out
USER_AND_FOLDERS = {"groupadd", "useradd", "mkdir", "chown"}


@dataclass
class Instruction:
    keyword: str
    flags: dict[str, str]  # `--from=uv` -> {"from": "uv"}
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    args: dict[str, str]  # the ARGs before the first FROM, with their defaults
    stages: list[Stage]

    @property
    def runtime(self) -> Stage:
        return self.stages[-1]


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions with line continuations joined and comments dropped; `${ARG}` in FROM expanded."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags: dict[str, str] = {}
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.lstrip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            base, _, name = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest).partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        else:
            stages[-1].instructions.append(Instruction(keyword, flags, rest.strip()))
    return Dockerfile(args, stages)


def exec_form(args: str) -> list[str]:
    """A CMD/HEALTHCHECK in exec form (a JSON array); the shell form is refused (signals would not reach the app)."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def healthcheck(instruction: Instruction) -> tuple[dict[str, str], list[str]]:
    """HEALTHCHECK's options (`interval`: "30s", ...) and its command."""
    options: dict[str, str] = dict(instruction.flags)
    assert instruction.args.startswith("CMD "), instruction.args
    return options, exec_form(instruction.args[4:])


# --- the build context -----------------------------------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignore_rules(path: Path) -> list[tuple[bool, str, re.Pattern[str]]]:
    """(excludes, pattern as written, pattern) per line of `.dockerignore`, in order."""
    rules = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            written = os.path.normpath(line.lstrip("!")).lstrip("/")
            rules.append((not line.startswith("!"), written, _pattern(written)))
    return rules


def ignored(relative: str, rules: list[tuple[bool, str, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for excludes, _, pattern in rules:
        if any(pattern.fullmatch(p) for p in prefixes):
            verdict = excludes
    return verdict


def build_context(root: Path = ROOT) -> set[str]:
    """The files `docker build .` sends, as paths relative to `root`."""
    rules = dockerignore_rules(root / ".dockerignore")
    re_included = [written for excludes, written, _ in rules if not excludes]

    def may_hold_some(folder: str) -> bool:  # a `!` pattern could bring a file below an ignored folder back
        return any(w.startswith(folder + "/") or w.startswith("**") for w in re_included)

    files: set[str] = set()
    for folder, dirs, names in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = [d for d in dirs if not ignored(prefix + d, rules) or may_hold_some(prefix + d)]
        files.update(prefix + n for n in names if not ignored(prefix + n, rules))
    return files


# --- the stages, carried out -----------------------------------------------------------------------------------


@dataclass
class Image:
    """The runtime stage on disk: `root` stands for `/`; `env` is its ENV (container paths under `root`)."""

    dockerfile: Dockerfile
    root: Path
    workdir: Path
    env: dict[str, str]
    cmd: list[str]
    health_options: dict[str, str]
    health_cmd: list[str]

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def run(self, argv: list[str], timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        """`argv` in the container: its WORKDIR, its ENV (and `env`), nothing of this machine's environment."""
        return subprocess.run(
            argv, cwd=self.workdir, env={**self.env, **env}, capture_output=True, text=True, timeout=timeout
        )


def _python_3_11(uv: str) -> str:
    found = subprocess.run([uv, "python", "find", "3.11"], capture_output=True, text=True, check=True)
    return found.stdout.strip()


def _base_root(stage: Stage, root: Path, uv: str) -> None:
    if stage.base.startswith(PYTHON_IMAGE):
        python = _python_3_11(uv)
        (root / "usr/local/bin").mkdir(parents=True)
        for name in ("python3.11", "python3", "python"):
            (root / "usr/local/bin" / name).symlink_to(python)
    elif stage.base.startswith(UV_IMAGE):
        (root / "uv").symlink_to(uv)
    else:
        raise AssertionError(f"no stand-in for the base image {stage.base!r}")


def _container_value(value: str, root: Path, env: dict[str, str]) -> str:
    """An ENV value in this stage: each absolute path (of a `:` list) under the stage's folder, `$VAR` expanded."""

    def one(part: str) -> str:
        if part.startswith("/"):
            return str(root / part.lstrip("/"))
        return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), part)

    return ":".join(one(part) for part in value.split(":"))


def _cache_mount(flag: str, root: Path, uv: str) -> None:
    """`--mount=type=cache,target=...`: a cache that outlives the build; uv's is this machine's uv cache."""
    options = dict(item.split("=", 1) for item in flag.split(","))
    assert options.get("type") == "cache", f"RUN --mount={flag}: only cache mounts have a stand-in"
    target = root / options["target"].lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.name == "uv" and target.parent.name == ".cache":
        cache = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()
        target.symlink_to(cache)
    else:
        target.mkdir()


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True, copy_function=os.link)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


def _user_and_folders(command: str, root: Path) -> None:
    for part in command.split("&&"):
        argv = shlex.split(part)
        assert argv and argv[0] in USER_AND_FOLDERS, f"the runtime stage runs {part.strip()!r}"
        if argv[0] == "mkdir":
            for folder in (a for a in argv[1:] if not a.startswith("-")):
                (root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)


def build_image(tmp: Path, uv: str, root: Path = ROOT) -> Image:
    dockerfile = parse_dockerfile((root / "Dockerfile").read_text(encoding="utf-8"))
    context = build_context(root)
    roots: dict[str, Path] = {}
    for number, stage in enumerate(dockerfile.stages):
        stage_root = tmp / f"stage{number}-{stage.name or 'unnamed'}"
        stage_root.mkdir(parents=True)
        _base_root(stage, stage_root, uv)
        if stage.name:
            roots[stage.name] = stage_root
        runtime = stage is dockerfile.runtime
        # the base image's PATH: its /usr/local/bin here, this machine's system folders for the rest
        env = {"PATH": f"{stage_root / 'usr/local/bin'}:/usr/bin:/bin", "HOME": str(stage_root / "root")}
        workdir = stage_root
        for instruction in stage.instructions:
            match instruction.keyword:
                case "ENV":
                    for item in shlex.split(instruction.args):
                        name, equals, value = item.partition("=")
                        assert equals, f"ENV {item}: use NAME=value"
                        env[name] = _container_value(value, stage_root, env)
                case "WORKDIR":
                    workdir = stage_root / instruction.args.lstrip("/")
                    workdir.mkdir(parents=True, exist_ok=True)
                case "COPY":
                    *sources, dest = shlex.split(instruction.args)
                    target = workdir / dest if not dest.startswith("/") else stage_root / dest.lstrip("/")
                    if "from" in instruction.flags:
                        for source in sources:
                            copied = roots[instruction.flags["from"]] / source.lstrip("/")
                            _copy(copied, target / copied.name if dest.endswith("/") else target)
                    else:
                        for source in sources:
                            files = sorted(f for f in context if f == source or f.startswith(source + "/"))
                            assert files, f"COPY {source}: not in the build context (.dockerignore)"
                            into = target / Path(source).name if dest.endswith("/") or len(sources) > 1 else target
                            for relative in files:
                                _copy(root / relative, into / Path(relative).relative_to(source))
                case "RUN" if runtime:
                    _user_and_folders(instruction.args, stage_root)
                case "RUN":
                    if "mount" in instruction.flags:
                        _cache_mount(instruction.flags["mount"], stage_root, uv)
                    run = subprocess.run(
                        ["/bin/sh", "-c", instruction.args], cwd=workdir, env=env, capture_output=True, text=True
                    )
                    assert run.returncode == 0, f"RUN {instruction.args}:\n{run.stderr[-3000:]}"
                case "VOLUME":
                    for folder in exec_form(instruction.args):
                        (stage_root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
                case keyword if keyword in RECORDED:
                    pass
                case other:
                    raise AssertionError(f"tests/image.py cannot carry out {other}")
        if runtime:
            (cmd,) = stage.all("CMD")
            (check,) = stage.all("HEALTHCHECK")
            options, health_cmd = healthcheck(check)
            return Image(dockerfile, stage_root, workdir, env, exec_form(cmd.args), options, health_cmd)
    raise AssertionError("the Dockerfile has no stage")


def uv_executable() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).is_file(), "uv not found (make test bootstraps it)"
    return found


@contextlib.contextmanager
def image_server(image: Image, tmp: Path, **env: str) -> Iterator[ServerProcess]:
    """The image's CMD as `docker run -e ...` starts it: its WORKDIR, its ENV and `env` (nothing of this machine's
    environment), on a loopback port of its own (HOST and PORT over the image's) and a TMPDIR under `tmp`."""
    (tmp / "tmp").mkdir(exist_ok=True)
    server = ServerProcess(
        {"TMPDIR": str(tmp / "tmp"), **env},
        log_path=tmp / "server.log",
        command=image.cmd,
        cwd=image.workdir,
        base_env=image.env,
    )
    try:
        yield server
    finally:
        server.stop()
