"""``file:///dir``: a local folder with the same semantics as the remote transports."""

from __future__ import annotations

import os
import stat as stat_mod
from datetime import datetime, timezone

from monitor_pipeline.transport.base import CHUNK, RemoteStat, Transport, _Guarded
from monitor_pipeline.transport.errors import TransportError


class LocalTransport(Transport):
    scheme = "file"

    def _connect(self) -> None:
        self._base = self.config.parsed.base

    def _disconnect(self) -> None:
        pass

    @staticmethod
    def _join(*parts: str) -> str:
        return os.path.join(*parts)

    def _stat(self, remote: str) -> RemoteStat:
        st = os.stat(remote)
        if stat_mod.S_ISDIR(st.st_mode):
            raise IsADirectoryError(remote)
        return RemoteStat(size=st.st_size, mtime=datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def _download_to(self, remote: str, sink: _Guarded) -> RemoteStat:
        with open(remote, "rb") as fh:
            st = os.fstat(fh.fileno())
            if stat_mod.S_ISDIR(st.st_mode):
                raise IsADirectoryError(remote)
            while chunk := fh.read(CHUNK):
                sink.write(chunk)
        return RemoteStat(size=st.st_size, mtime=datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def _listdir(self, remote: str) -> list[str]:
        return os.listdir(remote)

    def _is_dir(self, remote: str) -> bool:
        return os.path.isdir(remote)

    def _mkdir(self, remote: str) -> None:
        os.mkdir(remote)

    def _write_file(self, remote: str, reader: _Guarded) -> None:
        with open(remote, "xb") as fh:
            while chunk := reader.read(CHUNK):
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())

    def _replace(self, tmp: str, target: str) -> None:
        os.replace(tmp, target)

    def _remove(self, remote: str) -> None:
        os.unlink(remote)

    def _is_not_found(self, exc: BaseException) -> bool:
        return isinstance(exc, (FileNotFoundError, NotADirectoryError))

    def _translate(self, exc: BaseException, op: str, where: str) -> TransportError:
        if isinstance(exc, IsADirectoryError):
            return TransportError(f"{op} {where}: is a folder, not a file")
        if isinstance(exc, PermissionError):
            return TransportError(f"{op} {where}: permission denied ({exc.strerror})")
        if isinstance(exc, OSError):
            return TransportError(f"{op} {where}: {exc.strerror or exc}")
        return TransportError(f"{op} {where}: {type(exc).__name__}: {exc}")
