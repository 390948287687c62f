"""pyftpdlib FTP / FTPS server in a background thread on 127.0.0.1."""

from __future__ import annotations

import errno
import os
import queue
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

with warnings.catch_warnings():  # pyftpdlib still imports asyncore/asynchat (deprecated in 3.11)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import DTPHandler, FTPHandler, TLS_DTPHandler, TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

from monitor_pipeline.transport import TransportConfig
from monitor_pipeline_tests.servers.certs import TLSFiles, make_tls_files

USERNAME = "monitor"
PASSWORD = "ftp-s3cret-pw"


class _NoOverwriteFS(AbstractedFS):
    """Like some Windows/IIS servers: RNTO onto an existing file is refused."""

    def rename(self, src, dst):
        if os.path.lexists(dst):
            raise OSError(errno.EEXIST, "File exists")
        return super().rename(src, dst)


@dataclass
class FTPTestServer:
    kind: str                     # "ftp", "ftp-active" or "ftps"
    host: str
    port: int
    root: Path                    # the folder the server serves ("/" on the server)
    base_dir: Path                # local folder behind the URL's base ("/monitor")
    url: str
    username: str = USERNAME
    password: str = field(default=PASSWORD, repr=False)
    active: bool = False
    ca_file: str | None = None
    tls_files: TLSFiles | None = None
    # one entry per data connection the server opened: was it TLS-wrapped?
    data_connections_tls: list[bool] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _calls: queue.Queue = field(default_factory=queue.Queue, repr=False)
    _server: FTPServer | None = field(default=None, repr=False)

    def config(self, **overrides) -> TransportConfig:
        fields = dict(url=self.url, username=self.username, password=self.password, active=self.active,
                      ca_file=self.ca_file, connect_timeout=5.0, read_timeout=5.0)
        fields.update(overrides)
        return TransportConfig(**fields)

    def call_in_server(self, fn: Callable[[], None], timeout: float = 5.0) -> None:
        done = threading.Event()
        self._calls.put((fn, done))
        if not done.wait(timeout):
            raise TimeoutError("FTP test server did not run the call")

    def drop_connections(self) -> None:
        """Close every client connection from the server side (the listener stays up)."""
        def close_all() -> None:
            for obj in list(self._server.ioloop.socket_map.values()):
                if isinstance(obj, (FTPHandler, DTPHandler)):
                    obj.close()
        self.call_in_server(close_all)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                self._server.ioloop.loop(0.02, blocking=False)
                while not self._calls.empty():
                    fn, done = self._calls.get_nowait()
                    try:
                        fn()
                    finally:
                        done.set()
        finally:
            self._server.close_all()


def start_ftp_server(root: Path, *, kind: str = "ftp", port: int = 0, base: str = "monitor",
                     refuse_overwrite: bool = False, tls_files: TLSFiles | None = None,
                     max_cons: int | None = None) -> FTPTestServer:
    """Start a server serving ``root``; ``kind`` is ``ftp`` (passive client), ``ftp-active`` or ``ftps``
    (explicit TLS, TLS required on control and data connections). ``refuse_overwrite``: RNTO onto an
    existing file fails, as on some servers."""
    if kind not in ("ftp", "ftp-active", "ftps"):
        raise ValueError(kind)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base_dir = root / base if base else root
    base_dir.mkdir(parents=True, exist_ok=True)
    tls = kind == "ftps"
    if tls and tls_files is None:
        tls_files = make_tls_files(root.parent / f"{root.name}-tls")
    state = FTPTestServer(kind=kind, host="127.0.0.1", port=0, root=root, base_dir=base_dir, url="",
                          active=kind == "ftp-active", ca_file=str(tls_files.ca_file) if tls else None,
                          tls_files=tls_files)

    authorizer = DummyAuthorizer()
    authorizer.add_user(USERNAME, PASSWORD, str(root), perm="elradfmwMT")

    class DataHandler(TLS_DTPHandler if tls else DTPHandler):
        def __init__(self, sock, cmd_channel):
            super().__init__(sock, cmd_channel)
            state.data_connections_tls.append(type(self.socket).__name__ == "Connection")  # OpenSSL.SSL.Connection

    handler_attrs = dict(authorizer=authorizer, dtp_handler=DataHandler, banner="monitor-pipeline test FTP", auth_failed_timeout=0.1,
                         timeout=60, abstracted_fs=_NoOverwriteFS if refuse_overwrite else AbstractedFS)
    if tls:
        handler_attrs.update(certfile=str(tls_files.cert_file), keyfile=str(tls_files.key_file), ssl_context=None,
                             tls_control_required=True, tls_data_required=True)

    base_handler = TLS_FTPHandler if tls else FTPHandler

    class Handler(base_handler):
        def pre_process_command(self, line, cmd, arg):
            state.commands.append(cmd)
            return super().pre_process_command(line, cmd, arg)

    for name, value in handler_attrs.items():
        setattr(Handler, name, value)

    server = FTPServer(("127.0.0.1", port), Handler, ioloop=IOLoop())
    if max_cons is not None:
        server.max_cons = max_cons  # further clients get "421 Too many connections"
    state._server = server
    state.port = server.address[1]
    state.url = f"{'ftps' if tls else 'ftp'}://127.0.0.1:{state.port}/{base}"
    state._thread = threading.Thread(target=state._serve, name=f"ftp-test-server-{state.port}", daemon=True)
    state._thread.start()
    return state

