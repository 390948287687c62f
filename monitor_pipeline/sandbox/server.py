"""Run the sandbox with uvicorn: in a background thread (tests, demos) or in the foreground (CLI)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import uvicorn

from monitor_pipeline.sandbox.app import create_app

DEFAULT_USERS = {"demo": "demo"}


class SandboxHandle:
    """A sandbox server running in a daemon thread; ``stop()`` shuts it down."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, host: str, port: int, app):
        self.server, self.thread, self.host, self.port, self.app = server, thread, host, port, app

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def base_url(self, admin: str = "demo") -> str:
        return f"http://{self.host}:{self.port}/{admin}/api/app4sales/"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _config(app, log_level: str, **kw) -> uvicorn.Config:
    kw.setdefault("access_log", False)
    return uvicorn.Config(app, log_level=log_level, lifespan="off", timeout_graceful_shutdown=2, **kw)


def start_sandbox_in_thread(db_path: str | Path, host: str = "127.0.0.1", port: int = 0,
                            users: Mapping[str, str] | None = None, log_level: str = "warning",
                            startup_timeout: float = 10.0, **limits) -> SandboxHandle:
    """Start the sandbox on ``host:port`` (0: a free port) and return once it accepts connections.
    ``limits``: ``latency_ms``, ``max_in_flight``, ``retry_after`` (:func:`create_app`)."""
    app = create_app(db_path, users or DEFAULT_USERS, **limits)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    server = uvicorn.Server(_config(app, log_level))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="app4sales-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the App4Sales sandbox did not start")
        time.sleep(0.01)
    return SandboxHandle(server, thread, host, sock.getsockname()[1], app)


def serve(db_path: str | Path, host: str = "127.0.0.1", port: int = 8765, users: Mapping[str, str] | None = None,
          log_level: str = "info", **limits) -> None:
    """Serve in the foreground until interrupted (``limits`` as for :func:`start_sandbox_in_thread`)."""
    app = create_app(db_path, users or DEFAULT_USERS, **limits)
    uvicorn.Server(_config(app, log_level, host=host, port=port, access_log=True)).run()
