"""Loopback port helpers."""

from __future__ import annotations

import socket
import threading
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


def accept_until(sock: socket.socket, stop: threading.Event, serve, on_accept=None) -> None:
    """Accept on ``sock`` (which has a short timeout) until ``stop`` is set or it is closed; each
    connection is counted by ``on_accept()`` here, then served by ``serve(conn)`` on a thread of its own."""
    while not stop.is_set():
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            continue
        except OSError:
            return
        if on_accept is not None:
            on_accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


class SilentServer:
    """Accepts TCP connections and never says a word: for connect/banner timeout tests."""

    def __init__(self, host: str = "127.0.0.1"):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self.host, self.port = host, self._sock.getsockname()[1]

    def stop(self) -> None:
        self._sock.close()


class TricklingServer:
    """Accepts TCP connections; on each sends ``first``, then ``line`` every ``interval`` seconds (nothing
    more when ``line`` is empty), ignoring what the client sends, and hangs up after ``for_seconds``: a
    server that never finishes its banner, or answers and then goes silent, for connect-deadline tests."""

    def __init__(self, first: bytes = b"", line: bytes = b"", interval: float = 0.05, for_seconds: float = 20.0,
                 host: str = "127.0.0.1"):
        self.first, self.line, self.interval, self.for_seconds = first, line, interval, for_seconds
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.host, self.port = host, self._sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"trickling-server-{self.port}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        accept_until(self._sock, self._stop, self._talk, on_accept=self._count)

    def _count(self) -> None:
        self.connections += 1

    def _talk(self, conn: socket.socket) -> None:
        deadline = time.monotonic() + self.for_seconds
        with conn:
            try:
                conn.sendall(self.first)
                while not self._stop.is_set() and time.monotonic() < deadline:
                    if self.line:
                        conn.sendall(self.line)
                    self._stop.wait(self.interval)
            except OSError:
                pass  # the client hung up

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)
