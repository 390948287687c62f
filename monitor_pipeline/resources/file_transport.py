"""Monitor's file server (FTP, FTPS, SFTP or a local folder) as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import Field

from monitor_pipeline.tenants import tenant_entry
from monitor_pipeline.transport import Transport, TransportConfig, open_transport
from monitor_pipeline.transport.config import DEFAULT_MIN_RATE, DEFAULT_RATE_WINDOW


class MonitorFileTransport(dg.ConfigurableResource):
    """Where Monitor's files live: ``ftp://``, ``ftps://``, ``sftp://`` or ``file://`` (SPEC §2).

    The scheme picks the implementation (``file://`` is the local stand-in of the embedded
    default); everything else reads the same. Secrets come in through ``EnvVar``.
    """

    url: str = Field(description="ftp://host[:port][/base], ftps://…, sftp://…, or file:///dir")
    username: str = ""
    password: str = Field(default="", description="set through EnvVar('MONITOR_FTP_PASSWORD')")
    active: bool = Field(default=False, description="FTP active mode (passive by default)")
    tls: bool = Field(default=False, description="explicit TLS on ftp:// (same as ftps://)")
    ca_file: str | None = None
    tls_insecure_skip_verify: bool = False
    known_hosts: str | None = None
    host_key: str | None = Field(default=None, description="pinned SFTP host key, SHA256:…")
    private_key: str | None = None
    sftp_insecure_accept_unknown_host_key: bool = False
    connect_timeout: float = Field(default=15.0, description="MONITOR_FTP_CONNECT_TIMEOUT: seconds for the whole "
                                   "connect (TCP, TLS/SSH handshake, login)")
    read_timeout: float = Field(default=60.0, description="MONITOR_FTP_READ_TIMEOUT: longest pause of a transfer")
    min_rate: float = Field(default=DEFAULT_MIN_RATE, description="MONITOR_FTP_MIN_RATE: bytes/s a transfer must "
                            "average over rate_window (0: no minimum)")
    rate_window: float = Field(default=DEFAULT_RATE_WINDOW, description="MONITOR_FTP_RATE_WINDOW: seconds")
    tenants_file: str | None = Field(default=None, description="MONITOR_TENANTS_FILE; per-tenant servers")

    def for_tenant(self, tenant: str | None) -> MonitorFileTransport:
        """This resource for one tenant of the tenants file (itself without tenants)."""
        if tenant is None:
            return self
        entry = tenant_entry(self.tenants_file, tenant)
        server = entry.monitor
        return MonitorFileTransport(
            url=server.url, username=entry.monitor_username(), password=entry.monitor_password(),
            active=server.active, tls=server.tls, ca_file=server.ca_file, known_hosts=server.known_hosts,
            host_key=server.host_key, private_key=server.private_key,
            connect_timeout=self.connect_timeout, read_timeout=self.read_timeout, min_rate=self.min_rate,
            rate_window=self.rate_window,
        )

    def transport_config(self) -> TransportConfig:
        config = TransportConfig(
            url=self.url, username=self.username, password=self.password, active=self.active,
            tls=self.tls, ca_file=self.ca_file, tls_insecure_skip_verify=self.tls_insecure_skip_verify,
            known_hosts=self.known_hosts, host_key=self.host_key, private_key=self.private_key,
            sftp_insecure_accept_unknown_host_key=self.sftp_insecure_accept_unknown_host_key,
            connect_timeout=self.connect_timeout, read_timeout=self.read_timeout, min_rate=self.min_rate,
            rate_window=self.rate_window,
        )
        config.validate()
        return config

    @property
    def description(self) -> str:
        return self.transport_config().describe()

    @contextmanager
    def open(self) -> Iterator[Transport]:
        """A connected transport, closed on exit."""
        with open_transport(self.transport_config()) as transport:
            yield transport
