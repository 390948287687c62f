"""The backend matrix: every transport operation test runs against each real server kind."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor_pipeline.lib.retry import RetryPolicy
from monitor_pipeline.transport import TransportConfig, open_transport

BACKENDS = ["file", "ftp", "ftp-active", "ftps", "sftp-password", "sftp-key", "sshd-password", "sshd-key"]


def fast_retry(attempts: int = 3, sleeps: list[float] | None = None) -> RetryPolicy:
    def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)
        time.sleep(seconds)
    return RetryPolicy(attempts=attempts, base=0.02, cap=0.2, sleep=sleep)


@dataclass
class Backend:
    name: str
    base_dir: Path      # local folder behind the URL's base folder
    config: TransportConfig
    server: object | None = None

    def mkdir(self, rel: str) -> Path:
        folder = self.base_dir / rel
        folder.mkdir(parents=True)
        self._own(folder)
        return folder

    def write(self, rel: str, data: bytes, mtime: float | None = None) -> Path:
        path = self.base_dir / rel
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        self._own(path)
        return path

    def _own(self, path: Path) -> None:
        if hasattr(self.server, "give_to_user"):  # sshd logs in as another user than the test process
            self.server.give_to_user(path)

    def open(self, **overrides):
        config = TransportConfig(**{**self.config.model_dump(), **overrides})  # validated, as in production
        return open_transport(config, retry=fast_retry())


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    name = request.param
    if name == "file":
        base = tmp_path / "drop"
        base.mkdir()
        return Backend(name, base, TransportConfig(url=f"file://{base}"))
    if name.startswith("ftp"):
        server = request.getfixturevalue("ftp_server_factory")(name)
        return Backend(name, server.base_dir, server.config(), server)
    if name.startswith("sftp"):
        server = request.getfixturevalue("sftp_server")
    else:
        request.applymarker(pytest.mark.sshd)
        server = request.getfixturevalue("sshd_server")
        if name == "sshd-password" and not server.password_auth_available:
            pytest.skip("sshd password login needs root (sshd must check the test user's password); "
                        "run the tests as root after .ci/install-sshd.sh")
    if name.endswith("-key"):
        config = server.config(password="", private_key=server.client_key)
    else:
        config = server.config()
    return Backend(name, server.base_dir, config, server)
