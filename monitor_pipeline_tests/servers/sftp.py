"""In-process paramiko SFTP server on 127.0.0.1, serving a local folder (chroot-like: "/" is ``root``)."""

from __future__ import annotations

import os
import posixpath
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_INIT, CMD_VERSION, SFTPError

from monitor_pipeline.transport import TransportConfig, fingerprint
from monitor_pipeline_tests.servers.keys import known_hosts_line, public_line, write_private_key
from monitor_pipeline_tests.servers.net import accept_until

USERNAME = "monitor"
PASSWORD = "sftp-s3cret-pw"


class _Handle(paramiko.SFTPHandle):
    rate = 0                              # bytes per second of reads and writes; 0: full speed
    stopping: threading.Event | None = None

    def read(self, offset, length):
        if self.rate:  # a trickle: short reads of a tenth of a second's worth, each after its pause
            length = min(length, max(1, self.rate // 10))
            self._pause(length)
        return super().read(offset, length)

    def write(self, offset, data):
        if self.rate:
            self._pause(len(data))
        return super().write(offset, data)

    def _pause(self, size: int) -> None:
        self.stopping.wait(size / self.rate)

    def stat(self):
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)

    def chattr(self, attr):
        return paramiko.SFTP_OK


class FolderSFTP(paramiko.SFTPServerInterface):
    """SFTP operations on ``root``. ``rename`` refuses to overwrite (SFTPv3, as OpenSSH);
    ``posix_rename`` overwrites; with the server's ``refuse_rename`` both answer "permission denied"."""

    def __init__(self, server, root: str, *args, **kwargs):
        super().__init__(server, *args, **kwargs)
        self.root = root
        self.state = server.state
        self.ops = server.state.ops  # (operation, path[, …]) log for tests

    def _record(self, op: str, *paths: str) -> None:
        self.ops.append((op, *paths))

    def _local(self, path: str) -> str:
        return os.path.join(self.root, self.canonicalize(path).lstrip("/"))

    def canonicalize(self, path):
        return posixpath.normpath("/" + path) if path not in ("", ".") else "/"

    def _wrap(self, fn, *args):
        try:
            result = fn(*args)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        return paramiko.SFTP_OK if result is None else result

    def list_folder(self, path):
        def listing():
            local = self._local(path)
            return [paramiko.SFTPAttributes.from_stat(os.lstat(os.path.join(local, name)), name)
                    for name in os.listdir(local)]
        return self._wrap(listing)

    def stat(self, path):
        return self._wrap(lambda: paramiko.SFTPAttributes.from_stat(os.stat(self._local(path))))

    def lstat(self, path):
        return self._wrap(lambda: paramiko.SFTPAttributes.from_stat(os.lstat(self._local(path))))

    def open(self, path, flags, attr):
        self._record("open", path, "w" if flags & (os.O_WRONLY | os.O_RDWR) else "r")
        local = self._local(path)
        try:
            fd = os.open(local, flags, getattr(attr, "st_mode", None) or 0o644)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno)
        if flags & os.O_WRONLY:
            mode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            mode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            mode = "rb"
        handle = _Handle(flags)
        handle.rate, handle.stopping = self.state.file_rate, self.state._stop
        handle.filename = local
        handle.readfile = handle.writefile = os.fdopen(fd, mode)
        return handle

    def remove(self, path):
        self._record("remove", path)
        return self._wrap(os.remove, self._local(path))

    def rename(self, oldpath, newpath):
        self._record("rename", oldpath, newpath)
        if self.state.refuse_rename:
            return paramiko.SFTP_PERMISSION_DENIED

        def rename():
            if os.path.lexists(self._local(newpath)):
                raise FileExistsError(17, "exists")
            os.rename(self._local(oldpath), self._local(newpath))
        return self._wrap(rename)

    def posix_rename(self, oldpath, newpath):
        self._record("posix_rename", oldpath, newpath)
        if self.state.refuse_rename:
            return paramiko.SFTP_PERMISSION_DENIED
        return self._wrap(os.replace, self._local(oldpath), self._local(newpath))

    def mkdir(self, path, attr):
        return self._wrap(os.mkdir, self._local(path))

    def rmdir(self, path):
        return self._wrap(os.rmdir, self._local(path))

    def chattr(self, path, attr):
        return paramiko.SFTP_OK


class _AdvertisingSFTPServer(paramiko.SFTPServer):
    """Announces posix-rename@openssh.com like OpenSSH does (paramiko handles it but does not announce it)."""

    def _send_server_version(self):
        kind, data = self._read_packet()
        if kind != CMD_INIT:
            raise SFTPError("Incompatible sftp protocol")
        msg = Message()
        msg.add_int(3)
        msg.add("posix-rename@openssh.com", "1")
        self._send_packet(CMD_VERSION, msg)
        return 3


class _Auth(paramiko.ServerInterface):
    def __init__(self, state: SFTPTestServer):
        self.state = state

    def check_auth_password(self, username, password):
        self.state._stop.wait(self.state.auth_delay)
        ok = username == self.state.username and password == self.state.password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self.state._stop.wait(self.state.auth_delay)
        ok = username == self.state.username and key.asbytes() in self.state.authorized_blobs
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "password,publickey"

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel, name):
        if self.state.stall_subsystem:  # answers the "sftp" subsystem request only after that long: a refusal
            self.state._stop.wait(self.state.stall_subsystem)
            return False
        return super().check_channel_subsystem_request(channel, name)


@dataclass
class SFTPTestServer:
    host: str
    port: int
    root: Path
    base_dir: Path
    url: str
    host_key: paramiko.PKey
    known_hosts: str                 # path of a known_hosts file holding the host key
    host_key_fingerprint: str        # "SHA256:…"
    client_key: str                  # ed25519 private key accepted for USERNAME
    client_key_rsa: str              # an RSA key, also accepted
    username: str = USERNAME
    password: str = field(default=PASSWORD, repr=False)
    authorized_blobs: set[bytes] = field(default_factory=set, repr=False)
    connections: int = 0
    ops: list[tuple[str, ...]] = field(default_factory=list)  # file operations the server performed
    refuse_rename: bool = False      # rename and posix-rename answer "permission denied"
    file_rate: int = 0               # file reads and writes trickle at this many bytes per second (0: full speed)
    auth_delay: float = 0.0          # seconds each authentication attempt takes
    stall_subsystem: float = 0.0     # seconds before the "sftp" subsystem request is answered (refused)
    _sock: socket.socket | None = field(default=None, repr=False)
    _transports: list[paramiko.Transport] = field(default_factory=list, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def config(self, **overrides) -> TransportConfig:
        fields = dict(url=self.url, username=self.username, password=self.password, known_hosts=self.known_hosts,
                      connect_timeout=5.0, read_timeout=5.0)
        fields.update(overrides)
        return TransportConfig(**fields)

    def uploads(self) -> list[str]:
        """Paths the server opened for writing, in order (every upload, counted on the server side)."""
        return [op[1] for op in self.ops if op[0] == "open" and op[2] == "w"]

    def drop_connections(self) -> None:
        for transport in list(self._transports):
            transport.close()

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(5)
        self.drop_connections()

    def _accept_loop(self, handler_cls, sftp_root: str) -> None:
        def count() -> None:
            self.connections += 1
        accept_until(self._sock, self._stop, lambda conn: self._serve_one(conn, handler_cls, sftp_root),
                     on_accept=count)

    def _serve_one(self, conn: socket.socket, handler_cls, sftp_root: str) -> None:
        transport = paramiko.Transport(conn)
        self._transports.append(transport)
        transport.add_server_key(self.host_key)
        transport.set_subsystem_handler("sftp", handler_cls, FolderSFTP, sftp_root)
        try:
            transport.start_server(server=_Auth(self))
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()
            return
        channels = []  # keep references: a garbage-collected Channel closes itself
        while transport.is_active() and not self._stop.is_set():
            channel = transport.accept(0.2)
            if channel is not None:
                channels.append(channel)


def start_sftp_server(root: Path, *, port: int = 0, base: str = "monitor", advertise_posix_rename: bool = True,
                      keys_dir: Path | None = None, host_key: paramiko.PKey | None = None,
                      refuse_rename: bool = False, file_rate: int = 0, auth_delay: float = 0.0,
                      stall_subsystem: float = 0.0) -> SFTPTestServer:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base_dir = root / base if base else root
    base_dir.mkdir(parents=True, exist_ok=True)
    keys_dir = Path(keys_dir or root.parent / f"{root.name}-keys")
    keys_dir.mkdir(parents=True, exist_ok=True)
    host_key = host_key or paramiko.ECDSAKey.generate(bits=256)
    client_key = write_private_key(keys_dir / "client_ed25519", "ed25519")
    client_key_rsa = write_private_key(keys_dir / "client_rsa", "rsa", shared=True)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    sock.settimeout(0.1)
    port = sock.getsockname()[1]
    known_hosts = keys_dir / "known_hosts"
    known_hosts.write_text(known_hosts_line("127.0.0.1", port, host_key))
    (keys_dir / "client_ed25519.pub").write_text(public_line(client_key) + "\n")
    state = SFTPTestServer(
        host="127.0.0.1", port=port, root=root, base_dir=base_dir,
        url=f"sftp://127.0.0.1:{port}/{base}", host_key=host_key, known_hosts=str(known_hosts),
        host_key_fingerprint=fingerprint(host_key), client_key=str(keys_dir / "client_ed25519"),
        client_key_rsa=str(keys_dir / "client_rsa"),
        authorized_blobs={client_key.asbytes(), client_key_rsa.asbytes()}, refuse_rename=refuse_rename,
        file_rate=file_rate, auth_delay=auth_delay, stall_subsystem=stall_subsystem, _sock=sock)
    handler_cls = _AdvertisingSFTPServer if advertise_posix_rename else paramiko.SFTPServer
    state._thread = threading.Thread(target=state._accept_loop, args=(handler_cls, str(root)),
                                     name=f"sftp-test-server-{port}", daemon=True)
    state._thread.start()
    return state
