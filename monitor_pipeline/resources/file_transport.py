"""Monitor's file server (FTP, FTPS, SFTP or a local folder) as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from monitor_pipeline.transport import Transport, TransportConfig, open_transport


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

    @contextmanager
    def open(self) -> Iterator[Transport]:
        """A connected transport, closed on exit."""
        with open_transport(self.transport_config()) as transport:
            yield transport
