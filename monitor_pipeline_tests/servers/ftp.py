"""pyftpdlib FTP / FTPS server in a background thread on 127.0.0.1."""

from __future__ import annotations

import errno
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

with warnings.catch_warnings():  # pyftpdlib still imports asyncore/asynchat (deprecated in 3.11)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import DTPHandler, FTPHandler, ThrottledDTPHandler, TLS_DTPHandler, TLS_FTPHandler
    from pyftpdlib.ioloop import timer
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


class _CaseInsensitiveFS(AbstractedFS):
    """Like a server on NTFS (IIS, FileZilla Server): a name matches an existing file or folder in any
    case, and the stored name keeps its case. ``STOR abc.xml`` or ``RNTO abc.xml`` with ``ABC.xml``
    present writes to ``ABC.xml``."""

    def ftp2fs(self, ftppath):
        return _match_case(self.root, super().ftp2fs(ftppath))


def _match_case(root: str, path: str) -> str:
    """``path`` under ``root`` with each component that does not exist as written replaced by an
    existing entry whose name equals it ignoring case."""
    rel = os.path.relpath(path, root)
    if rel == "." or rel.startswith(".."):
        return path
    current = root
    for part in rel.split(os.sep):
        candidate = os.path.join(current, part)
        if not os.path.lexists(candidate) and os.path.isdir(current):
            candidate = next((os.path.join(current, name) for name in sorted(os.listdir(current))
                              if name.lower() == part.lower()), candidate)
        current = candidate
    return current


class _TrickleDTPHandler(ThrottledDTPHandler):
    """pyftpdlib's ThrottledDTPHandler (``read_limit``/``write_limit`` bytes per second), paced in tenths of a
    second instead of bursts of a second's worth followed by pauses of up to two seconds: a steady
    trickle, so the transfer-rate tests can use windows well under a second."""

    slot = 0.1

    def __init__(self, sock, cmd_channel):
        super().__init__(sock, cmd_channel)
        for limit, buffer in ((self.read_limit, "ac_in_buffer_size"), (self.write_limit, "ac_out_buffer_size")):
            if limit:
                setattr(self, buffer, max(64, min(getattr(self, buffer), int(limit * self.slot))))

    def _throttle_bandwidth(self, len_chunk, max_speed):
        self._datacount += len_chunk
        if self._datacount < max_speed * self.slot:
            return
        self._datacount = 0  # this slot's bytes are spent: the next ones wait for the next slot
        now = timer()
        if self._timenext <= now:
            self._timenext = now + self.slot
            return

        def unsleep():
            self.add_channel(events=self.ioloop.READ if self.receive else self.ioloop.WRITE)

        self.del_channel()
        self._cancel_throttler()
        self._throttler = self.ioloop.call_later(self._timenext - now, unsleep, _errback=self.handle_error)
        self._timenext += self.slot


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
    commands: list[str] = field(default_factory=list)  # every command the server received, in order
    arguments: list[tuple[str, str]] = field(default_factory=list)  # (command, argument); PASS masked
    # control connections: (opened, closed) on the server's time.monotonic(); closed None while open
    control_intervals: list[list[float | None]] = field(default_factory=list)
    max_control_connections: int = 0  # most control connections open at the same time
    # the next ``refusing`` connections are greeted "421 Service not available" and closed (a server that is
    # away, or full); ``refused`` counts those
    refusing: int = 0
    refused: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _calls: queue.Queue = field(default_factory=queue.Queue, repr=False)
    _server: FTPServer | None = field(default=None, repr=False)

    def config(self, **overrides) -> TransportConfig:
        fields = dict(url=self.url, username=self.username, password=self.password, active=self.active,
                      ca_file=self.ca_file, connect_timeout=5.0, read_timeout=5.0)
        fields.update(overrides)
        return TransportConfig(**fields)

    def count(self, command: str) -> int:
        """How often the server received ``command`` (e.g. ``STOR``: uploads, counted on the server side)."""
        return self.commands.count(command.upper())

    @property
    def control_connections(self) -> int:
        """Control connections open right now."""
        return sum(1 for _, closed in self.control_intervals if closed is None)

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
                     refuse_overwrite: bool = False, refuse_rename: str | None = None,
                     case_insensitive: bool = False, tls_files: TLSFiles | None = None,
                     max_cons: int | None = None, read_limit: int = 0, write_limit: int = 0) -> FTPTestServer:
    """Start a server serving ``root``; ``kind`` is ``ftp`` (passive client), ``ftp-active`` or ``ftps``
    (explicit TLS, TLS required on control and data connections). ``refuse_overwrite``: RNTO onto an
    existing file fails, as on some servers. ``refuse_rename="RNFR"`` or ``"RNTO"``: that command is
    always answered ``550`` (renames not permitted). ``case_insensitive``: names match in any case.
    ``read_limit`` / ``write_limit``: data connections receive (uploads) / send (downloads) at most that
    many bytes per second (pyftpdlib's ThrottledDTPHandler, see ``_TrickleDTPHandler``)."""
    if kind not in ("ftp", "ftp-active", "ftps"):
        raise ValueError(kind)
    if refuse_rename not in (None, "RNFR", "RNTO"):
        raise ValueError(refuse_rename)
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

    data_base = TLS_DTPHandler if tls else DTPHandler
    if read_limit or write_limit:
        data_base = type("_ThrottledData", (data_base, _TrickleDTPHandler) if tls else (_TrickleDTPHandler,),
                         {"read_limit": read_limit, "write_limit": write_limit})

    class DataHandler(data_base):
        def __init__(self, sock, cmd_channel):
            super().__init__(sock, cmd_channel)
            state.data_connections_tls.append(type(self.socket).__name__ == "Connection")  # OpenSSL.SSL.Connection

    fs_classes = tuple(cls for cls, wanted in ((_NoOverwriteFS, refuse_overwrite),
                                               (_CaseInsensitiveFS, case_insensitive)) if wanted)
    filesystem = type("_TestFS", fs_classes, {}) if fs_classes else AbstractedFS
    handler_attrs = dict(authorizer=authorizer, dtp_handler=DataHandler, banner="monitor-pipeline test FTP",
                         auth_failed_timeout=0.1, timeout=60, abstracted_fs=filesystem)
    if tls:
        handler_attrs.update(certfile=str(tls_files.cert_file), keyfile=str(tls_files.key_file), ssl_context=None,
                             tls_control_required=True, tls_data_required=True)

    base_handler = TLS_FTPHandler if tls else FTPHandler

    class Handler(base_handler):
        def on_connect(self):
            if state.refusing > 0:
                state.refusing -= 1
                state.refused += 1
                self.respond("421 Service not available, closing control connection.")
                return self.close_when_done()
            self._interval = [time.monotonic(), None]
            state.control_intervals.append(self._interval)
            state.max_control_connections = max(state.max_control_connections, state.control_connections)
            return super().on_connect()

        def close(self):
            interval = getattr(self, "_interval", None)
            if interval is not None and interval[1] is None:
                interval[1] = time.monotonic()
            return super().close()

        def pre_process_command(self, line, cmd, arg):
            state.commands.append(cmd)
            state.arguments.append((cmd, "***" if cmd == "PASS" else arg))
            return super().pre_process_command(line, cmd, arg)

        def ftp_RNFR(self, path):
            if refuse_rename == "RNFR":
                return self.respond("550 Renaming is not permitted on this server.")
            return super().ftp_RNFR(path)

        def ftp_RNTO(self, path):
            if refuse_rename == "RNTO":
                self._rnfr = None
                return self.respond("550 Rename refused: permission denied.")
            return super().ftp_RNTO(path)

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

