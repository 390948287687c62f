"""SFTP on paramiko, with host key verification and password / private key authentication."""

from __future__ import annotations

import errno
import os
import posixpath
import socket
import stat as stat_mod
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_DATA, CMD_INIT, CMD_READ, CMD_STATUS, CMD_VERSION, CMD_WRITE, SFTPError, int64

from monitor_pipeline.transport.base import RemoteStat, Transport, _Guarded
from monitor_pipeline.transport.errors import (HostKeyError, TransientTransportError, TransportAuthError,
                                               TransportError)
from monitor_pipeline.transport.hostkeys import known_keys, preferred_key_types, verify_host_key
from monitor_pipeline.transport.neterrors import network_error

SFTP_CHUNK = 32 * 1024  # paramiko's request size; bigger reads are split anyway
PREFETCH_REQUESTS = 64  # at most 64 × 32 KiB read ahead in memory
WRITES_IN_FLIGHT = 16   # unacknowledged write requests of an upload


class _SFTPClient(paramiko.SFTPClient):
    """SFTPClient that keeps the extensions the server announces (paramiko drops them), and tells
    ``on_recv`` / ``on_send`` of every piece it reads from / writes to the channel during a transfer,
    so the transfer's pace (pace.py) sees progress inside a packet, not only between packets."""

    server_extensions: dict[str, str]
    on_recv: Callable[[int], None] | None = None
    on_send: Callable[[int], None] | None = None

    def _read_all(self, n):
        if self.on_recv is None or isinstance(self.sock, socket.socket):
            return super()._read_all(n)
        out = bytearray()
        while n > 0:
            piece = self.sock.recv(n)  # bounded by the channel timeout (MONITOR_FTP_READ_TIMEOUT)
            if not piece:
                raise EOFError()
            out += piece
            n -= len(piece)
            self.on_recv(len(piece))
        return bytes(out)

    def _write_all(self, out):
        if self.on_send is None:
            return super()._write_all(out)
        while out:
            n = self.sock.send(out)  # waits for the server's window, bounded by the channel timeout
            if n <= 0:
                raise EOFError()
            self.on_send(n)
            out = out[n:]

    def _send_version(self):
        msg = Message()
        msg.add_int(3)
        self._send_packet(CMD_INIT, msg)
        kind, data = self._read_packet()
        if kind != CMD_VERSION:
            raise SFTPError("Incompatible sftp protocol")
        reply = Message(data)
        version = reply.get_int()
        self.server_extensions = {}
        while reply.get_remainder():
            name = reply.get_text()
            self.server_extensions[name] = reply.get_text()
        return version


class _Answers:
    """Answers to pipelined requests by request number: paramiko's ``_read_response`` hands each answer to
    the object the request was sent with (``_async_request(answers, …)``)."""

    def __init__(self, client: _SFTPClient):
        self.client, self._got = client, {}

    def _async_response(self, kind: int, msg: Message, num: int) -> None:
        self._got[num] = (kind, msg)

    def ask(self, kind: int, *args) -> int:
        return self.client._async_request(self, kind, *args)

    def wait(self, num: int) -> tuple[int, Message]:
        while num not in self._got:
            self.client._read_response()  # one answer; each read bounded by the channel timeout
        return self._got.pop(num)


def _read_key(path: str, passphrase: bytes | None) -> paramiko.PKey:
    try:
        return paramiko.PKey.from_path(path, password=passphrase)
    except TypeError as exc:  # cryptography: "Key is password-protected, but password was not provided."
        if "password" in str(exc).lower():
            raise paramiko.PasswordRequiredException(str(exc)) from None
        raise


def _load_private_key(path: str, passphrase: str | None) -> paramiko.PKey:
    """Any key type paramiko reads; an encrypted key is opened with MONITOR_FTP_PASSWORD as passphrase."""
    try:
        return _read_key(path, None)
    except paramiko.PasswordRequiredException:
        if not passphrase:
            raise TransportAuthError(f"private key {path} (MONITOR_SFTP_PRIVATE_KEY) is encrypted; put its "
                                     "passphrase in MONITOR_FTP_PASSWORD") from None
        try:
            return _read_key(path, passphrase.encode())
        except (paramiko.SSHException, ValueError, TypeError) as exc:
            raise TransportAuthError(f"cannot decrypt private key {path} (MONITOR_SFTP_PRIVATE_KEY) with the "
                                     f"passphrase in MONITOR_FTP_PASSWORD: {type(exc).__name__}") from None
    except (OSError, paramiko.SSHException, ValueError, TypeError) as exc:
        raise TransportAuthError(f"cannot read private key {path} (MONITOR_SFTP_PRIVATE_KEY): {exc}") from None


class SFTPTransport(Transport):
    scheme = "sftp"
    _ssh: paramiko.Transport | None = None
    _client: _SFTPClient | None = None
    _sock: socket.socket | None = None

    # ------------------------------------------------------------------ connection
    def _connect(self) -> None:
        cfg, url = self.config, self.config.parsed
        pkey = _load_private_key(os.path.expanduser(cfg.private_key), cfg.password) if cfg.private_key else None
        known = {} if cfg.host_key else known_keys(cfg, url.host, url.port)
        sock = self._sock = socket.create_connection((url.host, url.port), timeout=cfg.connect_timeout)
        ssh = paramiko.Transport(sock)
        self._ssh = ssh
        ssh.banner_timeout = ssh.handshake_timeout = ssh.auth_timeout = cfg.connect_timeout
        options = ssh.get_security_options()
        options.key_types = preferred_key_types(tuple(options.key_types), known)
        ssh.start_client(timeout=cfg.connect_timeout)
        if ssh.is_active() and not ssh.initial_kex_done:  # paramiko returns silently when time ran out
            raise TimeoutError("SSH key exchange did not finish in time")
        verify_host_key(cfg, url.host, url.port, ssh.get_remote_server_key(), known)
        self._authenticate(ssh, pkey)
        channel = ssh.open_session(timeout=cfg.connect_timeout)
        channel.settimeout(cfg.read_timeout)
        channel.invoke_subsystem("sftp")
        self._client = _SFTPClient(channel)
        base = url.base
        if base.startswith("~"):
            home = self._client.normalize(".")
            base = home if base == "~" else posixpath.normpath(posixpath.join(home, base[2:]))
        self._base = base

    def _authenticate(self, ssh: paramiko.Transport, pkey: paramiko.PKey | None) -> None:
        cfg, url = self.config, self.config.parsed
        user = cfg.effective_username
        where = f"sftp server {url.host}:{url.port} ({self.description})"
        if not user:
            raise TransportAuthError(f"no user name for {where}; set MONITOR_FTP_USERNAME")
        tried, reasons = [], []
        if pkey is not None:
            tried.append(f"publickey ({pkey.get_name()} key {cfg.private_key})")
            try:
                ssh.auth_publickey(user, pkey)
            except paramiko.AuthenticationException as exc:
                reasons.append(_auth_reason(exc))
        if not ssh.is_authenticated() and cfg.password:
            tried.append("password")
            try:
                ssh.auth_password(user, cfg.password)
            except paramiko.BadAuthenticationType as exc:
                if "keyboard-interactive" not in exc.allowed_types:
                    reasons.append(f"server allows only {', '.join(exc.allowed_types)}")
                else:
                    tried.append("keyboard-interactive")
                    try:
                        ssh.auth_interactive(user, lambda title, instr, prompts: [cfg.password for _ in prompts])
                    except paramiko.AuthenticationException as exc2:
                        reasons.append(_auth_reason(exc2))
            except paramiko.AuthenticationException as exc:
                reasons.append(_auth_reason(exc))
        if not tried:
            raise TransportAuthError(f"no credentials for {where}: set MONITOR_FTP_PASSWORD or "
                                     "MONITOR_SFTP_PRIVATE_KEY")
        if not ssh.is_authenticated():
            detail = "; ".join(dict.fromkeys(r for r in reasons if r)) or "rejected"
            raise TransportAuthError(f"authentication as {user!r} failed at {where} (tried {', '.join(tried)}): "
                                     f"{detail}")

    def _abort(self) -> None:
        """Shut the TCP connection down and stop the SSH transport (from any thread): a blocked handshake,
        authentication, subsystem request or SFTP read fails at once."""
        super()._abort()
        sock, ssh = self._sock, self._ssh
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if ssh is not None:
            ssh.close()

    def _disconnect(self) -> None:
        client, ssh = self._client, self._ssh
        self._client = self._ssh = self._sock = None
        try:
            if client is not None:
                client.close()
        finally:
            if ssh is not None:
                ssh.close()

    @property
    def sftp(self) -> _SFTPClient:
        if self._client is None:
            raise TransientTransportError(f"not connected to {self.description}")
        return self._client

    # ------------------------------------------------------------------ primitives
    def _stat(self, remote: str) -> RemoteStat:
        return self._to_stat(remote, self.sftp.stat(remote))

    def _to_stat(self, remote: str, attrs: paramiko.SFTPAttributes) -> RemoteStat:
        if attrs.st_mode is not None and stat_mod.S_ISDIR(attrs.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", remote)
        return RemoteStat(size=int(attrs.st_size or 0), mtime=datetime.fromtimestamp(attrs.st_mtime or 0, timezone.utc))

    def _download_to(self, remote: str, sink: _Guarded) -> RemoteStat:
        """Up to PREFETCH_REQUESTS reads of 32 KiB in flight, answers consumed in file order, in this thread
        (paramiko's prefetch thread would keep spinning after a transfer is cut off)."""
        client, pace = self.sftp, sink.pace
        with client.open(remote, "rb") as fh:
            stat = self._to_stat(remote, fh.stat())
            answers, pending = _Answers(client), deque()
            asked = got = 0
            pace.begin()
            client.on_recv = pace.advance
            try:
                while got < stat.size:
                    while asked < stat.size and len(pending) < PREFETCH_REQUESTS:
                        length = min(SFTP_CHUNK, stat.size - asked)
                        pending.append((answers.ask(CMD_READ, fh.handle, int64(asked), int(length)), asked, length))
                        asked += length
                    num, offset, length = pending.popleft()
                    kind, msg = answers.wait(num)
                    if kind == CMD_STATUS:
                        try:
                            client._convert_status(msg)
                        except EOFError:
                            break  # the file shrank meanwhile: download() reports the short count
                    if kind != CMD_DATA:
                        raise SFTPError("Expected data")
                    data = msg.get_string()
                    if not data:
                        break
                    sink.write(data)
                    got += len(data)
                    if len(data) < length:  # a short read: ask for the rest before anything further on
                        rest = offset + len(data)
                        pending.appendleft((answers.ask(CMD_READ, fh.handle, int64(rest), int(length - len(data))),
                                            rest, length - len(data)))
            finally:
                client.on_recv = None
        return stat

    def _listdir(self, remote: str) -> list[str]:
        return self.sftp.listdir(remote)

    def _is_dir(self, remote: str) -> bool:
        try:
            attrs = self.sftp.stat(remote)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR) or isinstance(exc, FileNotFoundError):
                return False
            raise
        return attrs.st_mode is not None and stat_mod.S_ISDIR(attrs.st_mode)

    def _mkdir(self, remote: str) -> None:
        self.sftp.mkdir(remote)

    def _write_file(self, remote: str, reader: _Guarded) -> None:
        """Up to WRITES_IN_FLIGHT writes unacknowledged; the pace counts acknowledged bytes (what the server
        wrote), so the last writes' wait is measured too, and checks it while waiting for the window."""
        client, pace = self.sftp, reader.pace
        size = self._write_size()
        fh = client.open(remote, "wbx")
        answers, pending = _Answers(client), deque()
        offset = 0
        pace.begin()
        client.on_recv = client.on_send = lambda n: pace.check()
        try:
            while True:
                data = reader.read(size)
                if data:
                    pending.append((answers.ask(CMD_WRITE, fh.handle, int64(offset), data), len(data)))
                    offset += len(data)
                while pending and (not data or len(pending) >= WRITES_IN_FLIGHT):
                    num, length = pending.popleft()
                    kind, msg = answers.wait(num)
                    if kind != CMD_STATUS:
                        raise SFTPError("Expected status")
                    client._convert_status(msg)  # raises the server's refusal (disk full, permissions)
                    pace.advance(length)
                if not data:
                    break
        except BaseException:
            client.on_recv = client.on_send = None
            try:
                fh.close()
            except Exception:  # noqa: BLE001 - keep the original error
                pass
            raise
        client.on_recv = client.on_send = None
        fh.close()

    def _write_size(self) -> int:
        """Bytes per write request: at most 32 KiB, and small enough that at the minimum rate an
        acknowledgement comes every eighth of a rate window and within half a read timeout, so the pace
        of a slow-but-sufficient upload is measured evenly."""
        cfg = self.config
        if cfg.min_rate <= 0:
            return SFTP_CHUNK
        return int(max(512, min(SFTP_CHUNK, cfg.min_rate * cfg.rate_window / 8, cfg.min_rate * cfg.read_timeout / 2)))

    def _replace(self, tmp: str, target: str) -> None:
        """posix-rename@openssh.com replaces atomically; without it, plain rename (which refuses to
        overwrite) and the base class's move-aside, never a delete of the target first."""
        if "posix-rename@openssh.com" in self.sftp.server_extensions:
            self.sftp.posix_rename(tmp, target)
            return
        super()._replace(tmp, target)

    def _rename(self, src: str, dst: str) -> None:
        """SSH_FXP_RENAME. OpenSSH's sftp-server implements it with link(2) + unlink, so it fails when
        ``dst`` exists: the no-replace rename the export needs (SPEC §6). (Only on a file system
        without hard links does OpenSSH fall back to stat-then-rename.)"""
        self.sftp.rename(src, dst)

    def _exists(self, remote: str) -> bool:
        try:
            self.sftp.lstat(remote)
        except OSError as exc:
            if self._is_not_found(exc):
                return False
            raise
        return True

    def _remove(self, remote: str) -> None:
        self.sftp.remove(remote)

    # ------------------------------------------------------------------ errors
    def _is_not_found(self, exc: BaseException) -> bool:
        return isinstance(exc, OSError) and not isinstance(exc, ConnectionError) and exc.errno == errno.ENOENT

    def _translate(self, exc: BaseException, op: str, where: str) -> TransportError:
        cfg, url = self.config, self.config.parsed
        net = network_error(exc, op=op, where=where, host=url.host, port=url.port,
                            connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout)
        if net is not None:
            return net
        if isinstance(exc, HostKeyError):
            return exc
        if isinstance(exc, paramiko.AuthenticationException):
            return TransportAuthError(f"{op} {where}: authentication failed: {exc}")
        channel_closed = isinstance(exc, OSError) and exc.errno is None and "closed" in str(exc).lower()
        if op != "connect" and (channel_closed or self._ssh is None or not self._ssh.is_active()):
            return TransientTransportError(f"{op} {where}: connection to {url.host}:{url.port} lost "
                                           f"({type(exc).__name__}: {exc})")
        if isinstance(exc, IsADirectoryError):
            return TransportError(f"{op} {where}: is a folder, not a file")
        if isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno == errno.EACCES):
            return TransportError(f"{op} {where}: permission denied by the server")
        if isinstance(exc, paramiko.SSHException) and "banner" in str(exc).lower():
            return TransientTransportError(f"{op} {where}: {url.host}:{url.port} did not answer as an SSH server in "
                                           f"time (connect timeout {cfg.connect_timeout:g}s): {exc}")
        if isinstance(exc, (paramiko.SSHException, SFTPError)):
            # negotiation failures, "Error reading SSH protocol banner", "Server connection dropped"
            return TransientTransportError(f"{op} {where}: SSH error with {url.host}:{url.port}: {exc}")
        if isinstance(exc, OSError):
            return TransportError(f"{op} {where}: server said: {exc.strerror or exc}")
        return TransportError(f"{op} {where}: {type(exc).__name__}: {exc}")


def _auth_reason(exc: paramiko.AuthenticationException) -> str:
    """Why an authentication method failed; paramiko's "Authentication timeout." is a slow server, not a
    refusal of the credentials, so it becomes a (transient) timeout."""
    if "timeout" in str(exc).lower():
        raise TimeoutError(f"SSH authentication did not finish in time: {exc}") from exc
    return str(exc)
