"""``file:///dir``: a local folder with the same semantics as the remote transports.

The folder may be a network mount (NFS, SMB) that hangs or trickles: a transfer's file calls run on a
helper thread and each must answer within MONITOR_FTP_READ_TIMEOUT, and the transfer keeps the minimum
rate (pace.py), as on the remote schemes.
"""

from __future__ import annotations

import errno
import os
import queue
import stat as stat_mod
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from monitor_pipeline.transport.base import CHUNK, RemoteStat, Transport, _Guarded
from monitor_pipeline.transport.errors import TransientTransportError, TransportError

# link(2) failing with these means "this file system has no hard links", not "the target exists"
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV})


class _Stalled(TimeoutError):
    """A file call did not return within the read timeout."""


class _FileCalls:
    """Runs blocking file calls on a daemon thread and waits at most ``timeout`` seconds for each. A call
    that does not return (a hung mount) cannot be interrupted: its thread is left to finish on its own and
    the next call gets a new one."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.stalled = False
        self._jobs: queue.SimpleQueue | None = None

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=_serve_calls, args=(self._jobs,), name="monitor-local-io", daemon=True).start()
        answer: queue.SimpleQueue = queue.SimpleQueue()
        self._jobs.put((fn, args, kwargs, answer))
        try:
            ok, value = answer.get(timeout=self.timeout)
        except queue.Empty:
            self.stalled = True
            self.close()  # that thread is stuck in the call; it exits once the call returns
            raise _Stalled(f"{getattr(fn, '__name__', 'file call')} did not return in time") from None
        if not ok:
            raise value
        return value

    def close(self) -> None:
        jobs, self._jobs = self._jobs, None
        if jobs is not None:
            jobs.put(None)


def _serve_calls(jobs: queue.SimpleQueue) -> None:
    while (job := jobs.get()) is not None:
        fn, args, kwargs, answer = job
        try:
            answer.put((True, fn(*args, **kwargs)))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            answer.put((False, exc))


class LocalTransport(Transport):
    scheme = "file"
    _calls: _FileCalls | None = None

    def _connect(self) -> None:
        self._base = self.config.parsed.base
        self._calls = _FileCalls(self.config.read_timeout)

    def _disconnect(self) -> None:
        calls, self._calls = self._calls, None
        if calls is not None:
            calls.close()

    @property
    def calls(self) -> _FileCalls:
        if self._calls is None:
            raise TransientTransportError(f"not connected to {self.description}")
        return self._calls

    @staticmethod
    def _join(*parts: str) -> str:
        return os.path.join(*parts)

    def _stat(self, remote: str) -> RemoteStat:
        st = os.stat(remote)
        if stat_mod.S_ISDIR(st.st_mode):
            raise IsADirectoryError(remote)
        return RemoteStat(size=st.st_size, mtime=datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def _download_to(self, remote: str, sink: _Guarded) -> RemoteStat:
        call, pace = self.calls, sink.pace
        fh = call(open, remote, "rb", buffering=0)  # unbuffered: each read is one read(2), whatever it brings
        try:
            st = call(os.fstat, fh.fileno())
            if stat_mod.S_ISDIR(st.st_mode):
                raise IsADirectoryError(remote)
            pace.begin()
            while chunk := call(fh.read, CHUNK):
                sink.write(chunk)
                pace.advance(len(chunk))
        finally:
            _close_quietly(call, fh)
        return RemoteStat(size=st.st_size, mtime=datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def _listdir(self, remote: str) -> list[str]:
        return os.listdir(remote)

    def _is_dir(self, remote: str) -> bool:
        return os.path.isdir(remote)

    def _mkdir(self, remote: str) -> None:
        os.mkdir(remote)

    def _write_file(self, remote: str, reader: _Guarded) -> None:
        call, pace = self.calls, reader.pace
        fh = call(open, remote, "xb", buffering=0)
        try:
            pace.begin()
            while chunk := reader.read(CHUNK):
                view = memoryview(chunk)
                while view:
                    written = call(fh.write, view)
                    view = view[written:]
                    pace.advance(written)
            call(os.fsync, fh.fileno())
        except BaseException:
            _close_quietly(call, fh)
            raise
        call(fh.close)  # a network mount may report a failed write only here

    def _replace(self, tmp: str, target: str) -> None:
        os.replace(tmp, target)  # atomic, and never leaves the target missing

    def _rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def _rename_noreplace(self, tmp: str, target: str) -> None:
        """``link(tmp, target)`` fails with EEXIST when ``target`` exists: an atomic no-replace rename
        (SPEC §6). On a file system without hard links: check, then rename (a file created in between
        would be replaced on POSIX)."""
        try:
            os.link(tmp, target, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            super()._rename_noreplace(tmp, target)
            return
        os.unlink(tmp)

    def _exists(self, remote: str) -> bool:
        return os.path.lexists(remote)

    def _remove(self, remote: str) -> None:
        os.unlink(remote)

    def _is_not_found(self, exc: BaseException) -> bool:
        return isinstance(exc, (FileNotFoundError, NotADirectoryError))

    def _translate(self, exc: BaseException, op: str, where: str) -> TransportError:
        if isinstance(exc, _Stalled):
            return TransientTransportError(f"{op} {where}: the folder did not answer in time (read timeout "
                                           f"{self.config.read_timeout:g}s, MONITOR_FTP_READ_TIMEOUT); a network "
                                           "mount may be hanging")
        if isinstance(exc, IsADirectoryError):
            return TransportError(f"{op} {where}: is a folder, not a file")
        if isinstance(exc, PermissionError):
            return TransportError(f"{op} {where}: permission denied ({exc.strerror})")
        if isinstance(exc, OSError):
            return TransportError(f"{op} {where}: {exc.strerror or exc}")
        return TransportError(f"{op} {where}: {type(exc).__name__}: {exc}")


def _close_quietly(call: _FileCalls, fh) -> None:
    """Close after a failure, unless a call hung (the file stays with the stuck thread)."""
    if call.stalled:
        return
    try:
        call(fh.close)
    except Exception:  # noqa: BLE001 - the transfer's own error matters
        pass
