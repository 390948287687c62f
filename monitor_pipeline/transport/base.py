"""The ``Transport`` interface and the logic every scheme shares.

Subclasses implement small primitives on *remote paths* (absolute strings built from the base
folder): connecting, stat, streaming a file into a writer, listing, creating a folder, writing a
file, the protocol's plain rename, an existence check, removing. This class adds the rest: path safety, the
file-vs-folder distinction of "not found", local temp-file-then-rename for downloads,
temp-name-then-rename for uploads with cleanup, and reconnect-and-retry of safe operations.

Uploads never destroy a file (SPEC §6): the temp file is renamed into place, and a target that is
in the way is never deleted first. ``overwrite=False`` refuses to replace an existing target
(``RemoteExistsError``); listings hide our own in-flight ``.<name>.<hex>.part`` temp files.
"""

from __future__ import annotations

import io
import logging
import os
import posixpath
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from monitor_pipeline.lib.redact import redact
from monitor_pipeline.lib.retry import RetryPolicy
from monitor_pipeline.transport.config import TransportConfig
from monitor_pipeline.transport.errors import (RemoteExistsError, RemoteNotFoundError, TransientTransportError,
                                               TransportError, UnsafePathError)
from monitor_pipeline.transport.pace import Deadline, Pace

log = logging.getLogger("monitor_pipeline.transport")
T = TypeVar("T")
CHUNK = 256 * 1024
Source = bytes | bytearray | memoryview | str | Path | BinaryIO
_TEMP_NAME = re.compile(r"\A\..+\.[0-9a-f]{12}\.part\Z", re.DOTALL)


def temp_name(name: str) -> str:
    """The hidden name a file is written under before it is renamed to ``name``: ``.<name>.<12 hex>.part``."""
    return f".{name}.{secrets.token_hex(6)}.part"


def is_temp_name(name: str) -> bool:
    """``name`` is one of our in-flight temp files (``temp_name``), not a file anyone delivered."""
    return bool(_TEMP_NAME.match(name))


@dataclass(frozen=True)
class RemoteStat:
    size: int
    mtime: datetime  # tz-aware UTC


def split_path(path: str | os.PathLike, what: str = "path") -> list[str]:
    """``"customers/x.xml"`` → ``["customers", "x.xml"]``; refuse anything that could leave the base."""
    text = os.fspath(path)
    if not isinstance(text, str):
        raise UnsafePathError(f"{what} must be text, got {type(text).__name__}")
    if any(ch in text for ch in "\x00\r\n\\"):
        raise UnsafePathError(f"{what} {text!r} contains a NUL, newline or backslash")
    if text.startswith("/") or text.startswith("~"):
        raise UnsafePathError(f"{what} {text!r} must be relative to the base folder (no leading '/' or '~')")
    parts = [seg for seg in text.split("/") if seg not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{what} {text!r} escapes the base folder ('..' is not allowed)")
    return parts


class _Guarded:
    """Wraps the caller's source/destination stream and remembers the error *it* raised, so a local
    fault (a failing source, a full disk) is re-raised as-is instead of looking like a network error.
    ``pace`` is the transfer's minimum rate (``pace.py``), which the scheme's streaming code advances."""

    def __init__(self, stream: BinaryIO, pace: Pace | None = None):
        self._stream, self.error, self.count = stream, None, 0
        self.pace = pace or Pace.unlimited()

    def read(self, size: int = CHUNK) -> bytes:
        try:
            data = self._stream.read(size)
        except BaseException as exc:
            self.error = exc
            raise
        self.count += len(data)
        return data

    def write(self, data: bytes) -> int:
        try:
            self._stream.write(data)
        except BaseException as exc:
            self.error = exc
            raise
        self.count += len(data)
        return len(data)


@contextmanager
def _open_source(source: Source) -> Iterator[BinaryIO]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(source))
    elif isinstance(source, (str, Path)):
        if not os.path.isfile(source):
            shown = str(source)[:60] + ("…" if len(str(source)) > 60 else "")
            raise ValueError(f"upload source {shown!r} is not a local file (a str source is a file path; "
                             "pass bytes to upload content)")
        with open(source, "rb") as fh:
            yield fh
    elif hasattr(source, "read"):
        yield source
    else:
        raise TypeError(f"cannot upload a {type(source).__name__}; pass bytes, a path or a binary file object")


def _rereadable(source: Source) -> bool:
    return isinstance(source, (bytes, bytearray, memoryview, str, Path))


class Transport(ABC):
    """A connected file transport; use as a context manager. Paths are relative to the base folder."""

    def __init__(self, config: TransportConfig, retry: RetryPolicy | None = None):
        self.config = config
        self.description = config.describe()
        self.retry = retry or RetryPolicy(attempts=config.retry_attempts)
        self._connected = False
        self._broken = False
        self._base: str = ""

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    def connect(self) -> None:
        """Connect (or reconnect); errors are ``TransportError``s. The whole connect — TCP, the TLS or SSH
        handshake, the login, the SFTP subsystem — must finish within MONITOR_FTP_CONNECT_TIMEOUT: a server
        that trickles its banner or never answers a step is cut off then (``_abort``), as a transient error."""
        self._disconnect_quietly()
        deadline = Deadline(self.config.connect_timeout, self._abort)
        try:
            with deadline:
                self._connect()
            if deadline.expired:
                raise self._connect_timed_out()
        except Exception as exc:
            self._disconnect_quietly()
            if deadline.expired:
                raise self._connect_timed_out() from exc  # whatever broke, it broke because we cut it off
            if isinstance(exc, TransportError):
                raise
            raise self._error(exc, "connect", "") from exc
        self._connected, self._broken = True, False

    def _connect_timed_out(self) -> TransportError:
        return self._transient(f"connect {self.description}: the server did not complete the connection in time "
                               f"(connect timeout {self.config.connect_timeout:g}s, MONITOR_FTP_CONNECT_TIMEOUT, "
                               "covers the TCP connect, the TLS or SSH handshake and the login)")

    def _abort(self) -> None:
        """Drop the connection at once, from any thread, so that a blocked or later call on it fails fast
        (the connect deadline, a stalled transfer). Schemes with sockets shut them down."""
        self._broken = True

    def _pace(self, op: str, parts: list[str]) -> Pace:
        """The minimum rate of one transfer (MONITOR_FTP_MIN_RATE over MONITOR_FTP_RATE_WINDOW)."""
        return Pace(self.config.min_rate, self.config.rate_window, what=f"{op} of {self._where(parts)}",
                    on_stall=self._abort)

    def close(self) -> None:
        self._disconnect_quietly()

    def _disconnect_quietly(self) -> None:
        self._connected = False
        try:
            self._disconnect()
        except Exception:  # noqa: BLE001 - closing a dead connection may fail in many ways
            pass

    # ------------------------------------------------------------------ public operations
    def stat(self, path: str) -> RemoteStat:
        parts = split_path(path)
        return self._retrying(lambda: self._run("stat", parts, "file", lambda: self._stat(self._remote(parts))))

    def listdir(self, path: str = "", *, include_temp: bool = False) -> list[str]:
        """Names in the folder, sorted; our in-flight upload temp files are left out unless ``include_temp``."""
        parts = split_path(path)
        names = self._retrying(lambda: self._run("list", parts, "folder", lambda: self._listdir(self._remote(parts))))
        return sorted(n for n in names if n not in (".", "..") and (include_temp or not is_temp_name(n)))

    def download(self, path: str, local_path: str | Path) -> RemoteStat:
        parts = split_path(path)
        if not parts:
            raise UnsafePathError("download needs a file name, got the base folder itself")
        target = Path(local_path)
        target.parent.mkdir(parents=True, exist_ok=True)

        def attempt() -> RemoteStat:
            tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.part"
            try:
                with open(tmp, "wb") as fh:
                    sink = _Guarded(fh, self._pace("download", parts))
                    stat = self._run("download", parts, "file", lambda: self._download_to(self._remote(parts), sink),
                                     guard=sink)
                    if sink.count != stat.size:
                        raise self._transient(f"download of {self._where(parts)} got {sink.count} bytes but the "
                                              f"file has {stat.size} (changed or cut off during transfer)")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
                return stat
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

        return self._retrying(attempt)

    def upload_atomic(self, source: Source, path: str, *, make_dirs: bool = True, overwrite: bool = True) -> None:
        """Write ``source`` to a temp name in the target folder, then rename it to ``path`` (SPEC §6).

        ``overwrite=True`` replaces an existing file atomically where the server can rename over it;
        where it refuses, the old file is renamed aside, the new one into place, and only then the
        aside copy is removed — never deleted first, and renamed back if the second rename fails.
        ``overwrite=False`` raises ``RemoteExistsError`` when ``path`` exists before the upload or
        appears during it; the rename is then one that cannot replace a file where the scheme has
        one (see ``_rename_noreplace``). Either way a failure removes the temp file.
        """
        parts = split_path(path)
        if not parts:
            raise UnsafePathError("upload needs a file name, got the base folder itself")

        def attempt() -> None:
            with _open_source(source) as raw:
                guard = _Guarded(raw, self._pace("upload", parts))
                self._run("upload", parts, "file", lambda: self._upload(parts, guard, make_dirs, overwrite),
                          guard=guard)

        if _rereadable(source):
            self._retrying(attempt)
        else:
            self._ensure_connected()
            attempt()

    def _upload(self, parts: list[str], reader: _Guarded, make_dirs: bool, overwrite: bool) -> None:
        folder = self._remote(parts[:-1])
        if not self._is_dir(folder):
            if not make_dirs:
                raise RemoteNotFoundError(f"upload: folder {self._shown(parts[:-1])} does not exist on "
                                          f"{self.description} (make_dirs=False)", path="/".join(parts[:-1]),
                                          kind="folder")
            self._make_dirs(parts[:-1])
        target = self._remote(parts)
        if not overwrite and self._exists(target):
            raise self._exists_error(parts, "already exists")
        tmp = self._join(folder, temp_name(parts[-1]))
        try:
            self._write_file(tmp, reader)
            if overwrite:
                self._replace(tmp, target)
            else:
                self._rename_into_place(tmp, target, parts)
        except BaseException:
            self._remove_quietly(tmp)
            raise

    def _rename_into_place(self, tmp: str, target: str, parts: list[str]) -> None:
        """``_rename_noreplace``; a refusal because the target now exists becomes ``RemoteExistsError``."""
        try:
            self._rename_noreplace(tmp, target)
        except TransportError:
            raise
        except Exception as exc:
            if not self._exists_quietly(target):
                raise
            # the server's refusal is worth showing; our own check's FileExistsError says nothing more
            reason = "" if isinstance(exc, FileExistsError) else f" ({self._error(exc, 'rename', self._where(parts))})"
            raise self._exists_error(parts, f"appeared during the upload{reason}") from exc

    def _exists_error(self, parts: list[str], what: str) -> RemoteExistsError:
        rel = "/".join(parts)
        return RemoteExistsError(self._redact(f"upload: file {rel!r} {what} on {self.description}; "
                                              "it was left as it is (not overwritten)"), path=rel)

    def _replace(self, tmp: str, target: str) -> None:
        """Rename ``tmp`` over ``target``. Where the server refuses because ``target`` exists, move
        ``target`` aside first (never delete it), rename ``tmp`` into place, then remove the aside
        copy; if that second rename fails, ``target`` is renamed back. A server refusing every rename
        leaves ``target`` untouched."""
        try:
            self._rename(tmp, target)
            return
        except Exception:
            if not self._exists_quietly(target):
                raise
        folder, name = posixpath.split(target)
        aside = posixpath.join(folder, f".{name}.{secrets.token_hex(6)}.replaced")
        self._rename(target, aside)
        try:
            self._rename(tmp, target)
        except BaseException:
            try:
                self._rename(aside, target)
            except Exception as exc:  # noqa: BLE001 - keep the rename's error; say where the old file is
                log.error("could not move %s back to %s on %s (%s); the previous file is kept there", aside,
                          target, self.description, exc)
            raise
        try:
            self._remove(aside)
        except Exception as exc:  # noqa: BLE001 - the new file is in place; the old copy is only litter
            log.warning("replaced %s on %s but could not remove the previous version, kept as %s: %s", target,
                        self.description, aside, exc)

    def _exists_quietly(self, remote: str) -> bool:
        """``_exists`` after a failed rename: an error here (a dead connection) means "not known to exist",
        so the rename's own error is the one raised."""
        try:
            return self._exists(remote)
        except Exception:  # noqa: BLE001
            return False

    def _rename_noreplace(self, tmp: str, target: str) -> None:
        """Rename ``tmp`` to ``target`` unless ``target`` exists. This default checks, then renames: where
        the protocol's rename replaces files (FTP ``RNTO`` on most servers) a file created by someone
        else between the check and the rename would be replaced. Schemes with a rename that cannot
        replace (SFTP ``rename``, local ``link``) close that window in their override or rename."""
        if self._exists(target):
            raise FileExistsError(f"{target} exists")
        self._rename(tmp, target)

    def _make_dirs(self, parts: list[str]) -> None:
        """Create the base folder (if missing) and then each missing folder of ``parts``, top-down."""
        if not self._is_dir(self._base):
            chain, folder = [], self._base
            while folder not in ("", "/", ".", "~") and not self._is_dir(folder):
                chain.append(folder)
                folder = posixpath.dirname(folder)
            for missing in reversed(chain):
                self._mkdir_tolerant(missing)
        for i in range(1, len(parts) + 1):
            folder = self._remote(parts[:i])
            if not self._is_dir(folder):
                self._mkdir_tolerant(folder)

    def _mkdir_tolerant(self, folder: str) -> None:
        try:
            self._mkdir(folder)
        except Exception:
            if not self._is_dir(folder):  # created concurrently is fine
                raise

    # ------------------------------------------------------------------ machinery
    def _ensure_connected(self) -> None:
        if not self._connected or self._broken:
            self.connect()

    def _retrying(self, fn: Callable[[], T]) -> T:
        def attempt() -> T:
            self._ensure_connected()
            try:
                return fn()
            except TransportError as exc:
                if exc.transient:
                    self._broken = True
                raise

        def on_retry(n: int, exc: BaseException, wait: float) -> None:
            log.warning("%s (attempt %d of %d; reconnecting in %.1fs)", exc, n, self.retry.attempts, wait)

        try:
            return self.retry.call(attempt, is_transient=lambda e: getattr(e, "transient", False), on_retry=on_retry)
        except TransportError as exc:
            if exc.transient and self.retry.attempts > 1 and "(gave up after" not in str(exc):
                exc.args = (f"{exc} (gave up after {self.retry.attempts} attempts)",)
            raise

    def _run(self, op: str, parts: list[str], kind: str, fn: Callable[[], T], guard: _Guarded | None = None) -> T:
        try:
            return fn()
        except Exception as exc:
            if guard is not None and guard.error is exc:
                raise  # the caller's own stream failed: not a transport problem
            if guard is not None and guard.pace.error is not None and exc is not guard.pace.error:
                raise guard.pace.error from exc  # cut off for stalling: what broke then is a consequence
            if isinstance(exc, TransportError):
                raise
            if self._is_not_found(exc):
                raise self._not_found(op, parts, kind, exc) from exc
            raise self._error(exc, op, self._where(parts)) from exc

    def _not_found(self, op: str, parts: list[str], kind: str, exc: BaseException) -> TransportError:
        rel = "/".join(parts)
        if kind == "folder":
            return RemoteNotFoundError(f"{op}: folder {self._shown(parts)} does not exist on {self.description}",
                                       path=rel, kind="folder")
        try:
            parent_ok = self._is_dir(self._remote(parts[:-1]))
            present = parent_ok and parts[-1] in self._listdir(self._remote(parts[:-1]))
        except Exception:  # noqa: BLE001 - only refining the message
            parent_ok, present = True, False
        if not parent_ok:
            return RemoteNotFoundError(f"{op}: folder {self._shown(parts[:-1])} does not exist on {self.description} "
                                       f"(looking for file {rel!r})", path="/".join(parts[:-1]), kind="folder")
        if present or op == "upload":
            # the name exists, or we are creating it: the server refused for another reason (permissions, a folder)
            return self._error(exc, op, self._where(parts))
        return RemoteNotFoundError(f"{op}: file {rel!r} does not exist in folder {self._shown(parts[:-1])} on "
                                   f"{self.description}", path=rel, kind="file")

    def _shown(self, parts: list[str]) -> str:
        rel = "/".join(parts)
        return f"{rel!r} ({self._remote(parts)})" if rel else f"{self._remote(parts)!r} (the base folder)"

    def _where(self, parts: list[str]) -> str:
        return f"{'/'.join(parts) or '.'!r} on {self.description}"

    def _redact(self, message: str) -> str:
        # Messages never include the password; this is a safety net for a server echoing it. Very short
        # "passwords" are not replaced: that would garble every message and hide nothing.
        password = self.config.password
        return redact(message, password) if len(password) >= 4 else message

    def _transient(self, message: str) -> TransportError:
        return TransientTransportError(self._redact(message))

    def _error(self, exc: BaseException, op: str, where: str) -> TransportError:
        err = self._translate(exc, op, where or self.description)
        err.args = (self._redact(str(err)),)
        return err

    def _remote(self, parts: list[str]) -> str:
        return self._join(self._base, *parts) if parts else self._base

    @staticmethod
    def _join(*parts: str) -> str:
        return posixpath.join(*parts)

    def _remove_quietly(self, remote: str) -> None:
        try:
            if self._broken:
                self.connect()
            self._remove(remote)
        except Exception as exc:  # noqa: BLE001 - best effort; the original error matters more
            if self._is_not_found(exc):
                return  # never created (or already gone)
            log.warning("could not remove temporary file %s on %s: %s", remote, self.description, exc)

    # ------------------------------------------------------------------ scheme primitives
    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _disconnect(self) -> None: ...

    @abstractmethod
    def _stat(self, remote: str) -> RemoteStat: ...

    @abstractmethod
    def _download_to(self, remote: str, sink: _Guarded) -> RemoteStat: ...

    @abstractmethod
    def _listdir(self, remote: str) -> list[str]: ...

    @abstractmethod
    def _is_dir(self, remote: str) -> bool: ...

    @abstractmethod
    def _mkdir(self, remote: str) -> None: ...

    @abstractmethod
    def _write_file(self, remote: str, reader: _Guarded) -> None: ...

    @abstractmethod
    def _rename(self, src: str, dst: str) -> None:
        """The protocol's plain rename; whether it replaces an existing ``dst`` depends on the server."""

    @abstractmethod
    def _exists(self, remote: str) -> bool:
        """Something (a file, a folder) has this name; False only when the server says it does not exist."""

    @abstractmethod
    def _remove(self, remote: str) -> None: ...

    @abstractmethod
    def _is_not_found(self, exc: BaseException) -> bool: ...

    @abstractmethod
    def _translate(self, exc: BaseException, op: str, where: str) -> TransportError: ...
