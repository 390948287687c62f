"""Monitor's file server (FTP, FTPS, SFTP or a local folder) as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import dagster as dg

from monitor_pipeline.lib import host_slots
from monitor_pipeline.lib.settings import variable_of
from monitor_pipeline.transport import Transport, TransportConfig, open_transport
from monitor_pipeline.transport.errors import TransientTransportError


class MonitorFileTransport(dg.ConfigurableResource, TransportConfig):
    """Where Monitor's files live: ``ftp://``, ``ftps://``, ``sftp://`` or ``file://`` (SPEC §2).

    The fields are :class:`TransportConfig`'s (declared there once, with their variables); the scheme picks
    the implementation (``file://`` is the local stand-in of the embedded default). Secrets come in
    through ``EnvVar``.
    """

    def transport_config(self) -> TransportConfig:
        return TransportConfig(**self.values(TransportConfig))

    @property
    def description(self) -> str:
        return self.transport_config().describe()

    def one_attempt(self, seconds: float | None = None) -> MonitorFileTransport:
        """This server with one try of each connect and transfer: for a caller that retries itself (a sensor's
        look, whose next tick is the retry; each upload attempt of the export, :mod:`monitor_pipeline.defs.retries`),
        so that retries never nest. ``seconds``: connect and read timeouts no longer than that."""
        values = {**self.values(TransportConfig), "retry_attempts": 1}
        if seconds is not None:
            values.update(connect_timeout=min(self.connect_timeout, seconds),
                          read_timeout=min(self.read_timeout, seconds))
        return MonitorFileTransport(**values)

    @contextmanager
    def open(self, *, slot_wait: float | None = None) -> Iterator[Transport]:
        """A connected transport, closed on exit, holding one of the host's connection slots
        (``MONITOR_FTP_HOST_CONNECTIONS``, :mod:`monitor_pipeline.lib.host_slots`) while it is open; a local
        folder takes none. ``slot_wait``: how long to wait for a slot (default: 300 s in a run's step;
        outside one, e.g. a sensor's look, one look only). No free slot in time: a transient
        ``TransportError`` saying who holds them, before anything was sent."""
        config = self.transport_config()
        with host_slot(config, slot_wait):
            with open_transport(config) as transport:
                yield transport


@contextmanager
def host_slot(config: TransportConfig, wait: float | None = None) -> Iterator[None]:
    """One connection slot of ``config``'s host for the ``with`` (none for a local folder)."""
    host = config.slot_host
    if host is None:
        yield
        return
    step = host_slots.step_context()
    timeout = wait if wait is not None else (host_slots.WAIT_SECONDS if step is not None else 0.0)
    with ExitStack() as stack:
        try:
            stack.enter_context(host_slots.host_slots().acquire(
                "ftp", host, 1, limit=config.host_connections, timeout=timeout, owner=host_slots.owner_of(step),
                setting=variable_of(TransportConfig, "host_connections"), on_wait=step.log.info if step is not None else None))
        except host_slots.HostSlotsError as exc:
            raise TransientTransportError(f"{config.describe()}: {exc}") from None
        yield
