"""Request files live in `$TMPDIR/stt-appliance/req-*`: one private folder per request, removed on every path.

The root is emptied at start-up (`clean_temp_root`): nothing in it outlives the request that made it.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temp_root() -> Path:
    """A private directory for request files; cleared at start-up (nothing in it outlives a request)."""
    root = Path(tempfile.gettempdir()) / "stt-appliance"
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def clean_temp_root() -> int:
    """Remove whatever a previous process left behind (a crash, a kill). Returns how many entries went."""
    root = temp_root()
    removed = 0
    for entry in root.iterdir():
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
        removed += 1
    return removed


def new_workdir() -> Path:
    """A fresh private folder for one request's files; the caller removes it."""
    return Path(tempfile.mkdtemp(prefix="req-", dir=temp_root()))


@contextlib.contextmanager
def request_workdir() -> Iterator[Path]:
    """A fresh private folder, removed on every path."""
    workdir = new_workdir()
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
