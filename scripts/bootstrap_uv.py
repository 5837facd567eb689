"""Install the `uv` binary with nothing but python3 (no pip, no venv module, no curl): fetch uv's wheel from PyPI,
check its sha256 against the index's JSON simple API (PEP 691), and extract the binary into ~/.local/bin (or --dest).

    python3 scripts/bootstrap_uv.py [--version 0.13.9] [--dest ~/.local/bin]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import stat
import sys
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

DEFAULT_VERSION = "0.13.9"  # keep in step with UV_VERSION in the Dockerfile


def wheel_tag_fragments() -> list[str]:
    """Substrings identifying uv's wheel for this machine, best first."""
    system, machine = platform.system(), platform.machine().lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}.get(machine, machine)
    if system == "Linux":
        libc = platform.libc_ver()[0]
        kind = "manylinux" if libc == "glibc" else "musllinux"
        return [f"{kind}_2_17_{arch}", f"{kind}_1_1_{arch}", f"{kind}_2_28_{arch}", f"{kind}2014_{arch}"]
    if system == "Darwin":
        return ["macosx_11_0_arm64"] if arch == "aarch64" else ["macosx_10_12_x86_64"]
    raise SystemExit(
        f"bootstrap_uv: unsupported platform {system}/{machine}; install uv by hand: https://docs.astral.sh/uv/"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=DEFAULT_VERSION)
    parser.add_argument("--index-url", default=os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple"))
    parser.add_argument("--dest", type=Path, default=Path.home() / ".local" / "bin")
    args = parser.parse_args(argv)

    index = args.index_url.rstrip("/") + "/uv/"
    if urllib.parse.urlsplit(index).scheme not in ("https", "http"):
        raise SystemExit(f"bootstrap_uv: index URL must be http(s): {index}")
    request = urllib.request.Request(index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (PEP 691 JSON simple API)
        files = json.load(response)["files"]
    wheels = [f for f in files if f["filename"].startswith(f"uv-{args.version}-") and f["filename"].endswith(".whl")]
    chosen = next((w for frag in wheel_tag_fragments() for w in wheels if frag in w["filename"]), None)
    if chosen is None:
        raise SystemExit(f"bootstrap_uv: no uv {args.version} wheel for this platform on PyPI")
    print(f"bootstrap_uv: downloading {chosen['filename']}", file=sys.stderr)
    url = urllib.parse.urljoin(index, chosen["url"])
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise SystemExit(f"bootstrap_uv: unexpected wheel URL {url}")
    with urllib.request.urlopen(url, timeout=300) as response:  # noqa: S310 (scheme checked)
        data = response.read()
    if hashlib.sha256(data).hexdigest() != chosen["hashes"]["sha256"]:
        raise SystemExit("bootstrap_uv: sha256 mismatch for the downloaded wheel; not installing it")
    args.dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        for name in wheel.namelist():
            if "/scripts/" in name and Path(name).name in ("uv", "uvx"):
                target = args.dest / Path(name).name
                target.write_bytes(wheel.read(name))
                target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
                print(f"bootstrap_uv: installed {target}", file=sys.stderr)
    if not (args.dest / "uv").is_file():
        raise SystemExit("bootstrap_uv: the wheel held no uv binary")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
