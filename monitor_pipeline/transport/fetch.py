"""Download a remote file only once it has stopped changing (``download_when_stable``), and say where a
remote file is in words a person can follow (``server_location``)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from monitor_pipeline.transport.base import RemoteStat, Transport
from monitor_pipeline.transport.config import TransportConfig
from monitor_pipeline.transport.errors import TransientTransportError


class FileStillBeingWritten(TransientTransportError):
    """The remote file changed between two looks: Monitor is probably still writing it."""


@dataclass(frozen=True)
class FetchedFile:
    path: Path
    size: int
    mtime: datetime
    sha256: str


def server_location(config: TransportConfig, remote_path: str) -> str:
    """Where ``remote_path`` (relative to the base folder) is, as a URL a person can follow:
    ``sftp://user@host:22/base/extra/extraCustomerData.csv`` (``…/~/…`` under the login's home,
    ``(TLS)`` after an ``ftp://`` URL with TLS). Never the password: this is ``TransportConfig.describe``."""
    described = config.describe()
    suffix = ""
    if described.endswith(" (TLS)"):
        described, suffix = described[: -len(" (TLS)")], " (TLS)"
    parsed = config.parsed
    if parsed.scheme != "file" and parsed.base == "~" and parsed.display_path in ("", "/"):
        described += "/~"  # describe() leaves the home folder out; a bare "/name" would read as absolute
    relative = "/".join(seg for seg in remote_path.split("/") if seg not in ("", "."))
    return f"{described.rstrip('/')}/{relative}{suffix}"


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_when_stable(transport: Transport, remote_path: str, local_path: Path, *, stability_seconds: float,
                         sleep: Callable[[float], None] = time.sleep) -> FetchedFile:
    """Stat, wait, stat again; refuse if size or mtime moved; download; check the size still matches."""
    first = transport.stat(remote_path)
    if stability_seconds > 0:
        sleep(stability_seconds)
    second = transport.stat(remote_path)
    _refuse_if_changed(transport, remote_path, first, second, stability_seconds)
    local_path.parent.mkdir(parents=True, exist_ok=True)
    downloaded = transport.download(remote_path, local_path)
    _refuse_if_changed(transport, remote_path, second, downloaded, stability_seconds)
    actual = local_path.stat().st_size
    if actual != second.size:
        local_path.unlink(missing_ok=True)
        raise FileStillBeingWritten(
            f"{transport.description}: {remote_path} was {second.size} bytes on the server but {actual} bytes arrived; "
            "the file is probably still being written — try again later")
    return FetchedFile(local_path, actual, second.mtime, sha256_of(local_path))


def _refuse_if_changed(transport: Transport, remote_path: str, before: RemoteStat, after: RemoteStat,
                       seconds: float) -> None:
    if (before.size, before.mtime) != (after.size, after.mtime):
        raise FileStillBeingWritten(
            f"{transport.description}: {remote_path} is still being written "
            f"(size {before.size} → {after.size}, modified {before.mtime.isoformat()} → {after.mtime.isoformat()} "
            f"within {seconds:g} s); the sync will pick it up once it stops changing")
