"""Transport errors. Messages name the server (scheme://host:port) and the path, never a password."""

from __future__ import annotations

from monitor_pipeline.errors import PipelineError


class TransportError(PipelineError):
    """A file-transport operation failed. ``transient`` says whether retrying may help."""

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None):
        super().__init__(message)
        if transient is not None:
            self.transient = transient

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class TransientTransportError(TransportError):
    """Connection refused/reset, timeout, temporary FTP 4xx reply: retrying may help."""

    transient = True


class SlowTransferError(TransientTransportError):
    """A transfer moved fewer bytes than MONITOR_FTP_MIN_RATE over MONITOR_FTP_RATE_WINDOW: the server
    or the network is stalling (SPEC §2). Transient: the connection is dropped and the transfer retried."""


class TransportAuthError(TransportError):
    """The server rejected the credentials."""


class HostKeyError(TransportError):
    """The SFTP server's host key is unknown, changed, or does not match the pinned fingerprint.
    ``fingerprint``: the ``SHA256:…`` of the key the server presented (None when no key was seen, e.g. an
    unreadable known_hosts file), for a caller that shows how to pin it (``monitor-pipeline doctor``)."""

    def __init__(self, message: str, *, fingerprint: str | None = None):
        super().__init__(message)
        self.fingerprint = fingerprint


class HostKeyChangedError(HostKeyError):
    """known_hosts has a key for the SFTP server, and the server presented another one (of the same or
    another key type). Never accepted, whatever MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY says."""


class TLSVerificationError(TransportError):
    """The FTPS server certificate is not trusted or does not match the host name."""


class RemoteNotFoundError(TransportError):
    """A remote file or folder does not exist. ``kind`` is ``"file"`` or ``"folder"``."""

    def __init__(self, message: str, *, path: str = "", kind: str = "file"):
        super().__init__(message)
        self.path = path
        self.kind = kind


class RemoteExistsError(TransportError):
    """``upload_atomic(..., overwrite=False)``: the target already exists (or appeared during the upload);
    it was left as it is. ``path`` is relative to the base folder."""

    def __init__(self, message: str, *, path: str = ""):
        super().__init__(message)
        self.path = path


class UnsafePathError(TransportError, ValueError):
    """A path is absolute or escapes the base folder (``..``)."""
