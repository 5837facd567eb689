"""Read uv.lock and say how to install the CPU build of the locked torch, staying faithful to the lock otherwise.

PyPI's torch wheel for Linux pulls the CUDA stack (nvidia-*, cuda-*, triton: several GB). The Docker build runs

    uv sync --frozen --no-dev $(python docker/torch_cpu.py sync-flags)
    uv pip install --no-deps "torch==$(python docker/torch_cpu.py version)" --index-url https://download.pytorch.org/whl/cpu

`sync-flags` prints `--no-install-package NAME` for torch and for every package that only torch's Linux-specific
dependencies (the CUDA stack) bring in, computed from the lock's dependency graph, not from a hand-written list.
torch's other dependencies (sympy, networkx, ...) stay installed at their locked versions.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

Lock = dict[str, Any]


def _edges(package: dict[str, Any]) -> list[dict[str, Any]]:
    return list(package.get("dependencies", []))


def _closure(lock: Lock, roots: list[dict[str, Any]], skip: set[str]) -> set[str]:
    """Names reachable from dependency entries `roots` (following requested extras), not entering `skip`."""
    packages: dict[str, list[dict[str, Any]]] = {}
    for package in lock["package"]:
        packages.setdefault(package["name"], []).append(package)
    seen: set[str] = set()
    stack = [(dep["name"], tuple(dep.get("extra", ()))) for dep in roots]
    while stack:
        name, extras = stack.pop()
        if name in skip:
            continue
        new = name not in seen
        seen.add(name)
        for package in packages.get(name, []):
            deps = _edges(package) if new else []
            for extra in extras:
                deps += package.get("optional-dependencies", {}).get(extra, [])
            stack += [(dep["name"], tuple(dep.get("extra", ()))) for dep in deps]
    return seen


def _project(lock: Lock) -> dict[str, Any]:
    for package in lock["package"]:
        source = package.get("source", {})
        if source.get("virtual") == "." or source.get("editable") == ".":
            return package
    raise SystemExit("uv.lock has no project package (source virtual/editable '.')")


def _torch(lock: Lock) -> dict[str, Any]:
    found = [p for p in lock["package"] if p["name"] == "torch"]
    if len(found) != 1:
        raise SystemExit(f"expected exactly one locked torch, found {len(found)}")
    return found[0]


def cuda_only_packages(lock: Lock) -> set[str]:
    """torch plus what only its Linux-specific (CUDA) dependencies pull in."""
    torch = _torch(lock)
    platform_deps = [d for d in _edges(torch) if "linux" in d.get("marker", "")]
    portable_deps = [d for d in _edges(torch) if "linux" not in d.get("marker", "")]
    kept = _closure(lock, [*(d for d in _edges(_project(lock)) if d["name"] != "torch"), *portable_deps], {"torch"})
    return {"torch"} | (_closure(lock, platform_deps, {"torch"}) - kept)


def torch_version(lock: Lock) -> str:
    return str(_torch(lock)["version"])


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or argv[0] not in ("sync-flags", "version"):
        print("usage: torch_cpu.py sync-flags|version [uv.lock]", file=sys.stderr)
        return 2
    lock = tomllib.loads(Path(argv[1] if len(argv) == 2 else "uv.lock").read_text(encoding="utf-8"))
    if argv[0] == "version":
        print(torch_version(lock))
    else:
        print(" ".join(f"--no-install-package {name}" for name in sorted(cuda_only_packages(lock))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
