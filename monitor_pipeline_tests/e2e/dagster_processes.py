"""Start the real Dagster webserver and daemon on a temporary DAGSTER_HOME for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dagster_home(tmp_path: Path) -> Path:
    """A new DAGSTER_HOME with the repository's dagster.yaml and its storage already created: a daemon and
    a webserver started together on an empty home race to create the same SQLite tables ("table job_ticks
    already exists")."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=tmp_path, check=True, timeout=120,
                   env={**os.environ, "DAGSTER_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return home


@contextmanager
def dagster_processes(env: dict[str, str], log_dir: Path, webserver: bool = True, daemon: bool = True):
    """Yield the webserver's port (or None); both processes are killed on exit, their logs kept in log_dir."""
    full_env = {**os.environ, **env}
    processes = []
    port = free_port() if webserver else None
    try:
        if daemon:
            processes.append(_start([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                    full_env, log_dir / "daemon.log"))
        if webserver:
            processes.append(_start([str(BIN / "dagster-webserver"), "-w", str(REPO / "workspace.yaml"),
                                     "-h", "127.0.0.1", "-p", str(port)], full_env, log_dir / "webserver.log"))
            _wait_for(f"http://127.0.0.1:{port}/server_info", processes[-1], log_dir / "webserver.log")
        yield port
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "wb")
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} process exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
