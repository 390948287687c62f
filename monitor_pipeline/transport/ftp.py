"""FTP and explicit FTPS (``AUTH TLS`` + ``PROT P``) on ``ftplib``; passive by default, active on request."""

from __future__ import annotations

import ftplib
import logging
import posixpath
import socket
import ssl
from datetime import datetime, timezone

from monitor_pipeline.transport.base import CHUNK, RemoteStat, Transport, _Guarded
from monitor_pipeline.transport.errors import (TLSVerificationError, TransientTransportError, TransportAuthError,
                                               TransportError)
from monitor_pipeline.transport.neterrors import network_error

log = logging.getLogger("monitor_pipeline.transport")
SEND_SLICE = 16 * 1024  # one TLS record; each send() returns as soon as the kernel takes a piece


class _FTP(ftplib.FTP):
    """Remembers whether a data transfer was opened, so a failed transfer knows a reply is still owed."""

    transfer_open = False

    def ntransfercmd(self, cmd, rest=None):
        result = super().ntransfercmd(cmd, rest)
        self.transfer_open = True
        return result


class _ReusingFTP_TLS(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session.

    Servers such as vsftpd (``require_ssl_reuse``) and FileZilla Server reject data connections
    that do not reuse the session; plain ftplib starts a new one each time.
    """

    transfer_open = False

    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            session = getattr(self.sock, "session", None)
            try:
                conn = self.context.wrap_socket(conn, server_hostname=self.host, session=session)
            except BaseException:
                conn.close()
                raise
        self.transfer_open = True
        return conn, size


def tls_context(ca_file: str | None, insecure: bool, description: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        log.warning("MONITOR_FTP_TLS_INSECURE_SKIP_VERIFY is set: the certificate of %s is NOT verified; anyone on "
                    "the network path can read and change the transfer", description)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Missing(Exception):
    """The folder to list does not exist (whatever reply code the server used)."""


def _reply_code(exc: BaseException) -> str:
    return str(exc)[:3]


class FTPTransport(Transport):
    scheme = "ftp"
    _ftp: ftplib.FTP | None = None
    _features: frozenset[str] = frozenset()
    _stage = ""

    # ------------------------------------------------------------------ connection
    def _connect(self) -> None:
        cfg, url = self.config, self.config.parsed
        if cfg.use_tls:
            ctx = tls_context(cfg.ca_file, cfg.tls_insecure_skip_verify, self.description)
            ftp: ftplib.FTP = _ReusingFTP_TLS(context=ctx, timeout=cfg.connect_timeout)
        else:
            ftp = _FTP(timeout=cfg.connect_timeout)
        self._ftp = ftp
        self._stage = "connect"
        ftp.connect(url.host, url.port, timeout=cfg.connect_timeout)
        if cfg.use_tls:
            ftp.auth()
        self._stage = "login"
        ftp.login(cfg.effective_username, cfg.password)
        self._stage = ""
        if cfg.use_tls:
            ftp.prot_p()
        ftp.sock.settimeout(cfg.read_timeout)
        ftp.timeout = cfg.read_timeout  # used for data connections and the active-mode accept
        ftp.set_pasv(not cfg.active)
        ftp.voidcmd("TYPE I")
        try:
            self._features = frozenset(line.strip().split(" ")[0].upper()
                                       for line in ftp.sendcmd("FEAT").splitlines()[1:-1])
        except ftplib.Error:
            self._features = frozenset()
        base = url.base
        if base.startswith("~"):
            base = posixpath.normpath(posixpath.join(ftp.pwd(), base[2:])) if base != "~" else ftp.pwd()
        self._base = base

    def _abort(self) -> None:
        """Shut the control connection down (from any thread): a blocked read, TLS handshake or login fails."""
        super()._abort()
        sock = getattr(self._ftp, "sock", None)
        if sock is not None:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the raw socket, also under TLS
            except OSError:
                pass

    def _disconnect(self) -> None:
        ftp, self._ftp = self._ftp, None
        if ftp is None:
            return
        try:
            if ftp.sock is not None and not self._broken:
                ftp.sock.settimeout(min(2.0, self.config.read_timeout))
                ftp.quit()
        finally:
            ftp.close()

    @property
    def ftp(self) -> ftplib.FTP:
        if self._ftp is None:
            raise TransientTransportError(f"not connected to {self.description}")
        return self._ftp

    # ------------------------------------------------------------------ primitives
    def _size(self, remote: str) -> int | None:
        self.ftp.voidcmd("TYPE I")  # listings switch ftplib to ASCII, where servers refuse or distort SIZE
        return self.ftp.size(remote)

    def _stat(self, remote: str) -> RemoteStat:
        size = self._size(remote)
        if size is None:
            raise TransportError(f"server {self.description} did not report the size of {remote}")
        return RemoteStat(size=int(size), mtime=self._mtime(remote))

    def _mtime(self, remote: str) -> datetime:
        try:
            reply = self.ftp.sendcmd(f"MDTM {remote}")
            return _parse_ftp_time(reply.split()[-1])
        except ftplib.error_perm as exc:
            if _reply_code(exc) not in ("500", "502", "504") or "MLST" not in self._features:
                raise
        reply = self.ftp.sendcmd(f"MLST {remote}")  # "250-...\n type=file;modify=YYYYMMDDHHMMSS; name\n250 End"
        for line in reply.splitlines()[1:-1]:
            for fact in line.strip().split(";"):
                key, _, value = fact.partition("=")
                if key.lower() == "modify":
                    return _parse_ftp_time(value)
        raise TransportError(f"server {self.description} reports no modification time for {remote}")

    def _download_to(self, remote: str, sink: _Guarded) -> RemoteStat:
        stat = self._stat(remote)
        pace = sink.pace

        def received(data: bytes) -> None:  # once per recv() on the data connection
            sink.write(data)
            pace.advance(len(data))

        self.ftp.transfer_open = False
        pace.begin()
        try:
            self.ftp.retrbinary(f"RETR {remote}", received, blocksize=CHUNK)
        except BaseException as exc:
            self._after_failed_transfer(exc)
            raise
        return stat

    def _listdir(self, remote: str) -> list[str]:
        try:
            if "MLST" in self._features or "MLSD" in self._features:  # RFC 3659: MLST in FEAT implies MLSD
                return [name for name, facts in self.ftp.mlsd(remote)
                        if facts.get("type", "").lower() not in ("cdir", "pdir")]
            names = self.ftp.nlst(remote)
        except ftplib.error_perm as exc:
            # servers differ: 550 or 501 for a missing folder, some "550 No files found" for an empty one
            if not self._is_dir(remote):
                raise _Missing(remote) from exc
            if "MLST" not in self._features and _reply_code(exc) == "550":
                return []
            raise
        return [posixpath.basename(n.rstrip("/")) for n in names]

    def _is_dir(self, remote: str) -> bool:
        try:
            self.ftp.cwd(remote)
        except ftplib.error_perm:
            return False
        return True

    def _mkdir(self, remote: str) -> None:
        self.ftp.mkd(remote)

    def _write_file(self, remote: str, reader: _Guarded) -> None:
        self.ftp.transfer_open = False
        try:
            self._store(f"STOR {remote}", reader)
        except BaseException as exc:
            self._after_failed_transfer(exc)
            raise

    def _store(self, cmd: str, reader: _Guarded) -> None:
        """``storbinary`` sending in slices with ``send()``, so each call is bounded by the read timeout
        (``sendall`` of a whole chunk must finish within one timeout) and the pace sees every piece."""
        ftp, pace = self.ftp, reader.pace
        ftp.voidcmd("TYPE I")
        pace.begin()
        with ftp.transfercmd(cmd) as conn:
            while data := reader.read(CHUNK):
                view = memoryview(data)
                while view:
                    sent = conn.send(view[:SEND_SLICE])
                    view = view[sent:]
                    pace.advance(sent)
            if isinstance(conn, ssl.SSLSocket):
                conn.unwrap()
        ftp.voidresp()

    def _after_failed_transfer(self, exc: BaseException) -> None:
        """After a transfer interrupted on our side the server still owes a reply (226/426); read it or
        give up the connection, so the next command (the cleanup) is not confused by it."""
        if isinstance(exc, ftplib.Error):
            return  # the failure *was* the server's reply: nothing is pending
        if isinstance(exc, (TransportError, TimeoutError)):
            self._broken = True  # stalled or silent (pace.py, read timeout): do not wait on this server again
            return
        if not self.ftp.transfer_open:
            self._broken = True  # failed on the control connection itself
            return
        try:
            self.ftp.sock.settimeout(min(5.0, self.config.read_timeout))
            self.ftp.getresp()
        except ftplib.Error:
            pass  # a 4xx/5xx reply was consumed: the connection is usable
        except Exception:  # noqa: BLE001
            self._broken = True
        finally:
            if not self._broken and self._ftp is not None and self._ftp.sock is not None:
                self._ftp.sock.settimeout(self.config.read_timeout)

    def _rename(self, src: str, dst: str) -> None:
        """RNFR/RNTO. Most servers replace an existing ``dst``, some (IIS) refuse; FTP has no rename
        that is guaranteed not to replace, so ``_rename_noreplace`` is the base class's check-then-rename."""
        self.ftp.rename(src, dst)

    def _exists(self, remote: str) -> bool:
        """SIZE answers for a file (also under another case on a case-insensitive server); where SIZE is
        not implemented, the parent folder's listing decides."""
        try:
            return self._size(remote) is not None
        except ftplib.error_perm as exc:
            if _reply_code(exc) not in ("500", "502", "504"):
                return False  # 550: no such file (or not a plain file)
        folder, name = posixpath.split(remote)
        try:
            return name in self._listdir(folder)
        except _Missing:
            return False

    def _remove(self, remote: str) -> None:
        self.ftp.delete(remote)

    # ------------------------------------------------------------------ errors
    def _is_not_found(self, exc: BaseException) -> bool:
        return isinstance(exc, _Missing) or (isinstance(exc, ftplib.error_perm) and _reply_code(exc) in ("550", "450"))

    def _translate(self, exc: BaseException, op: str, where: str) -> TransportError:
        cfg, url = self.config, self.config.parsed
        reply = str(exc).strip()
        if isinstance(exc, ssl.SSLCertVerificationError):
            return TLSVerificationError(
                f"{op} {where}: the TLS certificate of {url.host}:{url.port} is not trusted: "
                f"{exc.verify_message or exc.reason}. Pass its CA bundle in MONITOR_FTP_CA_FILE"
                f"{' (now ' + cfg.ca_file + ')' if cfg.ca_file else ''}.")
        if isinstance(exc, ssl.SSLError):
            return TransportError(f"{op} {where}: TLS failure with {url.host}:{url.port}: {exc.reason or exc}")
        net = network_error(exc, op=op, where=where, host=url.host, port=url.port,
                            connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout)
        if net is not None:
            return net
        if isinstance(exc, ftplib.error_perm) and (_reply_code(exc) == "530" or getattr(self, "_stage", "") == "login"):
            user = cfg.effective_username or "anonymous"
            if _reply_code(exc) == "530":
                return TransportAuthError(f"login to {url.host}:{url.port} as {user!r} refused ({where}): {reply}")
            return TransportError(f"login to {url.host}:{url.port} as {user!r} failed ({where}): {reply}"
                                  + ("; the server may require TLS (set MONITOR_FTP_TLS=true or use ftps://)"
                                     if "TLS" in reply.upper() or "SSL" in reply.upper() else ""))
        if isinstance(exc, ftplib.error_temp):
            return TransientTransportError(f"{op} {where}: server replied {reply}")
        if isinstance(exc, ftplib.Error):
            return TransportError(f"{op} {where}: server replied {reply}")
        return TransportError(f"{op} {where}: {type(exc).__name__}: {exc}")


def _parse_ftp_time(value: str) -> datetime:
    """``YYYYMMDDHHMMSS[.sss]`` (RFC 3659, always UTC) → aware datetime."""
    main, _, frac = value.strip().partition(".")
    stamp = datetime.strptime(main, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    if frac.isdigit():
        stamp = stamp.replace(microsecond=int((frac + "000000")[:6]))
    return stamp
