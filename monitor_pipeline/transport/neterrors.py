"""Socket-level failures shared by FTP and SFTP, turned into clear transient errors."""

from __future__ import annotations

import errno
import socket

from monitor_pipeline.transport.errors import TransientTransportError

_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
                   errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def network_error(exc: BaseException, *, op: str, where: str, host: str, port: int,
                  connect_timeout: float, read_timeout: float) -> TransientTransportError | None:
    """A transient error for a network failure, or None when ``exc`` is something else."""
    hostport = f"{host}:{port}"
    if isinstance(exc, ConnectionRefusedError):
        return TransientTransportError(f"{op}: connection refused by {hostport} ({where}): nothing is listening "
                                       "on that port, or a firewall rejects the connection")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        limit = f"connect timeout {connect_timeout:g}s" if op == "connect" else f"read timeout {read_timeout:g}s"
        return TransientTransportError(f"{op} {where}: {hostport} did not answer in time ({limit})")
    if isinstance(exc, socket.gaierror):
        return TransientTransportError(f"{op} {where}: cannot resolve host {host!r}: {exc.strerror or exc}")
    if isinstance(exc, (ConnectionError, EOFError)):
        return TransientTransportError(f"{op} {where}: connection to {hostport} lost "
                                       f"({type(exc).__name__}: {exc or 'closed by the server'})")
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return TransientTransportError(f"{op} {where}: network error talking to {hostport}: {exc.strerror or exc}")
    return None
