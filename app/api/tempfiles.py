"""Request files live in `$TMPDIR/stt-appliance/req-*`: one private folder per request, removed on every path.

The root is emptied at start-up and at shutdown (`clean_temp_root`): nothing in it outlives the request that made
it. A full disk while writing them is `StorageFull` (`storage_errors`), never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.errors import StorageFull

STORAGE_RETRY_SECONDS = 30  # the files of the requests in progress go when they end


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


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """A full disk (or quota) while writing request files becomes `StorageFull`; other OS errors pass."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise StorageFull(
            "The server's storage is full: it cannot keep this request's audio. Retry later; if this persists, "
            "its operator should give TMPDIR more room (or lower MAX_UPLOAD_MB or MAX_UPLOADS)",
            retry_after_seconds=STORAGE_RETRY_SECONDS,
            code="storage_full",
        ) from None
