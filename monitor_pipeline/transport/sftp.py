"""SFTP on paramiko, with host key verification and password / private key authentication."""

from __future__ import annotations

import errno
import os
import posixpath
import socket
import stat as stat_mod
from datetime import datetime, timezone

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_INIT, CMD_VERSION, SFTPError

from monitor_pipeline.transport.base import RemoteStat, Transport, _Guarded
from monitor_pipeline.transport.errors import (HostKeyError, TransientTransportError, TransportAuthError,
                                               TransportError)
from monitor_pipeline.transport.hostkeys import known_keys, preferred_key_types, verify_host_key
from monitor_pipeline.transport.neterrors import network_error

SFTP_CHUNK = 32 * 1024  # paramiko's request size; bigger reads are split anyway
PREFETCH_REQUESTS = 64  # at most 64 × 32 KiB read ahead in memory


class _SFTPClient(paramiko.SFTPClient):
    """SFTPClient that keeps the extensions the server announces (paramiko drops them)."""

    server_extensions: dict[str, str]

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

    # ------------------------------------------------------------------ connection
    def _connect(self) -> None:
        cfg, url = self.config, self.config.parsed
        pkey = _load_private_key(os.path.expanduser(cfg.private_key), cfg.password) if cfg.private_key else None
        known = {} if cfg.host_key else known_keys(cfg, url.host, url.port)
        sock = socket.create_connection((url.host, url.port), timeout=cfg.connect_timeout)
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
                reasons.append(str(exc))
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
                        reasons.append(str(exc2))
            except paramiko.AuthenticationException as exc:
                reasons.append(str(exc))
        if not tried:
            raise TransportAuthError(f"no credentials for {where}: set MONITOR_FTP_PASSWORD or "
                                     "MONITOR_SFTP_PRIVATE_KEY")
        if not ssh.is_authenticated():
            detail = "; ".join(dict.fromkeys(r for r in reasons if r)) or "rejected"
            raise TransportAuthError(f"authentication as {user!r} failed at {where} (tried {', '.join(tried)}): "
                                     f"{detail}")

    def _disconnect(self) -> None:
        client, ssh = self._client, self._ssh
        self._client = self._ssh = None
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
        with self.sftp.open(remote, "rb") as fh:
            stat = self._to_stat(remote, fh.stat())
            fh.prefetch(stat.size, max_concurrent_requests=PREFETCH_REQUESTS)
            remaining = stat.size
            while remaining > 0:
                chunk = fh.read(min(SFTP_CHUNK * 8, remaining))
                if not chunk:
                    break
                sink.write(chunk)
                remaining -= len(chunk)
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
        fh = self.sftp.open(remote, "wbx")
        try:
            fh.set_pipelined(True)
            while chunk := reader.read(SFTP_CHUNK * 8):
                fh.write(chunk)
        except BaseException:
            try:
                fh.close()
            except Exception:  # noqa: BLE001 - keep the original error
                pass
            raise
        fh.close()  # waits for the server's acknowledgements of the pipelined writes

    def _replace(self, tmp: str, target: str) -> None:
        if "posix-rename@openssh.com" in self.sftp.server_extensions:
            self.sftp.posix_rename(tmp, target)
            return
        try:
            self.sftp.rename(tmp, target)  # SFTPv3 rename refuses to overwrite an existing file
        except OSError:
            if not self._exists(target):
                raise
            self.sftp.remove(target)
            self.sftp.rename(tmp, target)

    def _exists(self, remote: str) -> bool:
        try:
            self.sftp.stat(remote)
        except OSError:
            return False
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
