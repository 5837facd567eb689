"""Download model files from a Hugging Face-style hub, resumably and verified, and place them atomically.

`download_repo_files` asks the hub API for the repository's file list (sizes, LFS sha256, git blob ids), streams
each wanted file into `<dest.parent>/.partial-<dest.name>/<file>.part` (resuming with an HTTP Range request when a
part is already there), verifies size and hash, and only then moves the finished directory to `dest` with one
`os.replace`: the server never sees a half-written model. `endpoint` selects a mirror (HF_ENDPOINT), `token`
authenticates (HF_TOKEN).

This module knows hubs, not models: which repository and files each model needs is in its registry entry
(`app/engines/registry.py`), where it lives under MODELS_DIR in `app/weights/store.py`.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import IO, Final
from urllib.parse import quote

import httpx
import msgspec

DEFAULT_ENDPOINT: Final = "https://huggingface.co"
CONNECT_TIMEOUT_S: Final = 5.0
READ_TIMEOUT_S: Final = 60.0
RETRIES: Final = 5
CHUNK_BYTES: Final = 1 << 20


class DownloadError(RuntimeError):
    """A download could not be completed; the message is one line a user can act on."""


class HubUnreachableError(DownloadError):
    """The hub endpoint cannot be reached at all (offline, DNS, firewall)."""


# ---------------------------------------------------------------------------------------------------------------------
# Hub API (what `GET /api/models/{repo}/revision/{rev}?blobs=true` answers; see huggingface_hub.hf_api.ModelInfo)


class _Lfs(msgspec.Struct, frozen=True):
    sha256: str
    size: int


class _Sibling(msgspec.Struct, frozen=True):
    rfilename: str
    size: int | None = None
    blob_id: str | None = msgspec.field(default=None, name="blobId")
    lfs: _Lfs | None = None


class _RepoInfo(msgspec.Struct, frozen=True):
    sha: str | None = None
    siblings: list[_Sibling] = msgspec.field(default_factory=list)


class RemoteFile(msgspec.Struct, frozen=True):
    """One file of a repository as the hub describes it; `sha256`/`git_sha1` are None when not published."""

    name: str
    size: int | None
    sha256: str | None
    git_sha1: str | None


def _remote_file(sibling: _Sibling) -> RemoteFile:
    if sibling.lfs is not None:
        return RemoteFile(sibling.rfilename, sibling.lfs.size, sibling.lfs.sha256.lower(), None)
    # A non-LFS file's blobId is the git object id of its content: sha1(b"blob <size>\0" + content).
    git_sha1 = sibling.blob_id.lower() if sibling.blob_id and sibling.size is not None else None
    return RemoteFile(sibling.rfilename, sibling.size, None, git_sha1)


def hub_endpoint(endpoint: str | None = None) -> str:
    return (endpoint or DEFAULT_ENDPOINT).rstrip("/")


def _client(endpoint: str, token: str | None) -> httpx.Client:
    headers = {"User-Agent": "stt-appliance-downloader/1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"  # httpx drops it on redirects to another origin (the CDN)
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    return httpx.Client(base_url=endpoint, headers=headers, timeout=timeout, follow_redirects=True)


def _unreachable(endpoint: str, exc: Exception) -> HubUnreachableError:
    return HubUnreachableError(
        f"model hub {endpoint} is unreachable ({type(exc).__name__}: {exc}); check the network or set HF_ENDPOINT "
        "to a reachable mirror, or copy the model files into MODELS_DIR by hand (see docs/deploy.md, offline)"
    )


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.status_code < 400:
        return
    if response.status_code in (401, 403):
        raise DownloadError(f"{what}: the hub refused access (HTTP {response.status_code}); set HF_TOKEN if gated")
    if response.status_code == 404:
        raise DownloadError(f"{what}: not found on the hub (HTTP 404); check the repository and revision")
    raise DownloadError(f"{what}: the hub answered HTTP {response.status_code}")


def fetch_repo_info(client: httpx.Client, repo: str, revision: str) -> tuple[str, dict[str, RemoteFile]]:
    """Return (commit to download from, files by name). Connection failures raise `HubUnreachableError` at once."""
    url = f"/api/models/{repo}/revision/{quote(revision, safe='')}"
    try:
        response = client.get(url, params={"blobs": "true"})
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise _unreachable(str(client.base_url).rstrip("/"), exc) from None
    except httpx.TransportError as exc:
        raise DownloadError(f"{repo}@{revision}: hub API request failed ({type(exc).__name__}: {exc})") from None
    _raise_for_status(response, f"{repo}@{revision}")
    try:
        info = msgspec.json.decode(response.content, type=_RepoInfo)
    except msgspec.DecodeError as exc:
        raise DownloadError(f"{repo}@{revision}: unexpected answer from the hub API ({exc})") from None
    return info.sha or revision, {s.rfilename: _remote_file(s) for s in info.siblings}


# ---------------------------------------------------------------------------------------------------------------------
# Progress on stderr: a tqdm bar on a terminal, a line every 10 % otherwise (container logs).


class _Progress:
    def __init__(self, total: int | None, label: str, enabled: bool, stream: IO[str] | None = None) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._next_report = 0.1
        self._bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=self.stream)

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and self.total and self.done / self.total >= self._next_report:
            mb_done, mb_total = self.done / 1e6, self.total / 1e6
            print(f"{self.label}: {self.done / self.total:4.0%} ({mb_done:.0f}/{mb_total:.0f} MB)", file=self.stream)
            self._next_report = (int(self.done / self.total * 10) + 1) / 10

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# ---------------------------------------------------------------------------------------------------------------------
# Files


def _safe_relpath(name: str) -> Path:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise DownloadError(f"refusing unsafe file name from the hub: {name!r}")
    return Path(*path.parts)


def _present(directory: Path, pattern: str) -> bool:
    return any(p.is_file() for p in directory.glob(pattern))


def missing_files(dest: Path, files: Sequence[str]) -> list[str]:
    """The entries of `files` (names or glob patterns) with no matching file in `dest`."""
    if not dest.is_dir():
        return list(files)
    return [pattern for pattern in files if not _present(dest, pattern)]


def _select(remote: dict[str, RemoteFile], files: Sequence[str], optional: Sequence[str], where: str) -> list[str]:
    chosen: list[str] = []
    for pattern, required in [*((f, True) for f in files), *((f, False) for f in optional)]:
        # A pattern without "/" names top-level files only; `*` may cross "/" in one that has it.
        matches = sorted(n for n in remote if fnmatch.fnmatchcase(n, pattern) and ("/" in pattern or "/" not in n))
        if not matches and required:
            raise DownloadError(f"{where}: the repository has no file matching {pattern!r}")
        chosen += [m for m in matches if m not in chosen]
    return chosen


def _hash_file(path: Path, remote: RemoteFile) -> tuple[str | None, str | None]:
    sha256 = hashlib.sha256() if remote.sha256 else None
    sha1 = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False) if remote.git_sha1 else None
    if sha256 is None and sha1 is None:
        return None, None
    with path.open("rb") as f:
        while block := f.read(CHUNK_BYTES):
            if sha256 is not None:
                sha256.update(block)
            if sha1 is not None:
                sha1.update(block)
    return (sha256.hexdigest() if sha256 else None), (sha1.hexdigest() if sha1 else None)


def _verify(part: Path, remote: RemoteFile) -> None:
    size = part.stat().st_size
    if remote.size is not None and size != remote.size:
        part.unlink()
        raise DownloadError(
            f"{remote.name}: size mismatch (expected {remote.size} bytes, got {size}); the partial file was "
            "deleted, run the download again"
        )
    sha256, sha1 = _hash_file(part, remote)
    for kind, expected, actual in (("sha256", remote.sha256, sha256), ("git sha1", remote.git_sha1, sha1)):
        if expected is not None and actual != expected:
            part.unlink()
            raise DownloadError(
                f"{remote.name}: {kind} mismatch (expected {expected}, got {actual}); the partial file was deleted, "
                "run the download again (if it repeats, the mirror serves corrupted data)"
            )


def _content_range_start(response: httpx.Response) -> int | None:
    value = response.headers.get("content-range", "")  # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _fetch(client: httpx.Client, url: str, part: Path, remote: RemoteFile, progress: _Progress) -> None:
    """Stream `url` into `part`, resuming what is there; retry transient failures with resume."""
    last_error: Exception | None = None
    for attempt in range(RETRIES):
        have = part.stat().st_size if part.exists() else 0
        if remote.size is not None and have > remote.size:
            part.unlink()
            have = 0
        if remote.size is not None and have == remote.size:
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with client.stream("GET", url, headers=headers) as response:
                if response.status_code == 416:  # our part is not a prefix of the file any more
                    part.unlink()
                    continue
                _raise_for_status(response, remote.name)
                if have and (response.status_code != 206 or _content_range_start(response) != have):
                    have = 0  # the server ignored the range: start over
                progress.update(have - progress.done)
                with part.open("ab" if have else "wb") as out:
                    for block in response.iter_bytes(CHUNK_BYTES):
                        out.write(block)
                        progress.update(len(block))
            if remote.size is None or part.stat().st_size >= remote.size:
                return  # complete (or too long: `_verify` reports it)
            last_error = DownloadError(f"{remote.name}: connection ended early")
        except httpx.TransportError as exc:
            last_error = exc
        if attempt < RETRIES - 1:
            time.sleep(_backoff_seconds(attempt))
    raise DownloadError(
        f"{remote.name}: download failed after {RETRIES} attempts ({last_error}); run it again to resume"
    )


def _backoff_seconds(attempt: int) -> float:
    return min(2.0**attempt, 10.0)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on `directory` (waits for another process downloading the same model)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another download into {directory.name} to finish...", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def download_repo_files(
    repo: str,
    files: list[str],
    dest: Path,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    revision: str = "main",
    progress: bool = True,
    optional: Sequence[str] = (),
) -> Path:
    """Make `dest` hold `files` (names or glob patterns) from hub repository `repo`; return `dest`.

    Nothing is fetched (and the network is not touched) when every entry of `files` already has a match in `dest`.
    `optional` patterns are downloaded when the repository has them. Raises `HubUnreachableError` at once when the
    hub cannot be reached, `DownloadError` for anything else (missing file, hash mismatch, refused access).
    """
    if not missing_files(dest, files):
        return dest
    base = hub_endpoint(endpoint)
    staging = dest.parent / f".partial-{dest.name}"
    with _client(base, token) as client:
        commit, remote = fetch_repo_info(client, repo, revision)
        wanted = [
            name for name in _select(remote, files, optional, f"{repo}@{revision}") if not (dest / name).is_file()
        ]
        staging.mkdir(parents=True, exist_ok=True)
        with _locked(staging):
            if not missing_files(dest, files):  # another process finished it while we waited
                return dest
            staging.mkdir(parents=True, exist_ok=True)  # the other process may have renamed it away
            _check_space(staging, [remote[name] for name in wanted])
            for name in wanted:
                rel = _safe_relpath(name)
                part = staging / rel.with_name(rel.name + ".part")
                final = staging / rel
                if final.is_file():  # finished and verified by an earlier run
                    continue
                part.parent.mkdir(parents=True, exist_ok=True)
                url = f"/{repo}/resolve/{quote(commit, safe='')}/{quote(name)}"
                bar = _Progress(remote[name].size, f"{repo}/{name}", progress)
                try:
                    _fetch(client, url, part, remote[name], bar)
                finally:
                    bar.close()
                _verify(part, remote[name])
                os.replace(part, final)
            _place(staging, dest)
    return dest


def _check_space(directory: Path, remotes: list[RemoteFile]) -> None:
    need = sum(r.size or 0 for r in remotes)
    free = shutil.disk_usage(directory).free
    if need > free:
        raise DownloadError(
            f"not enough disk space in {directory.parent}: need {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free"
        )


def _place(staging: Path, dest: Path) -> None:
    """Move the verified files into place: one directory rename, or one rename per file into an existing model."""
    leftovers = [p for p in staging.rglob("*.part")]
    for part in leftovers:
        part.unlink()
    if not dest.exists():
        os.replace(staging, dest)
        return
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        target = dest / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(staging)
