"""Loopback port helpers."""

from __future__ import annotations

import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (another process could still take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_for_banner(host: str, port: int, prefix: bytes, timeout: float = 10.0) -> None:
    """Wait until ``host:port`` accepts a connection and sends a line starting with ``prefix``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1.0) as sock:
                if sock.recv(64).startswith(prefix):
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered with {prefix!r} on {host}:{port} within {timeout}s ({last})")


class SilentServer:
    """Accepts TCP connections and never says a word: for connect/banner timeout tests."""

    def __init__(self, host: str = "127.0.0.1"):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self.host, self.port = host, self._sock.getsockname()[1]

    def stop(self) -> None:
        self._sock.close()
