"""``open_transport``: pick the transport for the URL's scheme and connect, retrying transient failures."""

from __future__ import annotations

import logging

from monitor_pipeline.lib.retry import RetryPolicy
from monitor_pipeline.transport.base import Transport
from monitor_pipeline.transport.config import TransportConfig
from monitor_pipeline.transport.errors import TransportError

log = logging.getLogger("monitor_pipeline.transport")


def transport_class(scheme: str) -> type[Transport]:
    if scheme in ("ftp", "ftps"):
        from monitor_pipeline.transport.ftp import FTPTransport
        return FTPTransport
    if scheme == "sftp":
        from monitor_pipeline.transport.sftp import SFTPTransport
        return SFTPTransport
    from monitor_pipeline.transport.local import LocalTransport
    return LocalTransport


def open_transport(config: TransportConfig, *, retry: RetryPolicy | None = None) -> Transport:
    """A connected transport. Transient connect failures (refused, reset, timeout, FTP 4xx) are retried with
    backoff (``retry``, default ``RetryPolicy(attempts=config.retry_attempts)``); the rest raise at once.
    ``config`` was checked when it was made (``TransportConfig`` validates itself)."""
    policy = retry or RetryPolicy(attempts=config.retry_attempts)
    transport = transport_class(config.scheme)(config, policy)

    def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
        log.warning("%s (attempt %d of %d; retrying in %.1fs)", exc, attempt, policy.attempts, wait)

    try:
        policy.call(transport.connect, is_transient=lambda e: getattr(e, "transient", False), on_retry=on_retry)
    except TransportError as exc:
        if exc.transient and policy.attempts > 1:
            exc.args = (f"{exc} (gave up after {policy.attempts} attempts)",)
        raise
    return transport
