"""The App4Sales HTTP API (``app4sales-api.md``) as a Dagster resource."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from monitor_pipeline.app4sales.client import App4SalesClient
from monitor_pipeline.lib.retry import RetryPolicy
from monitor_pipeline.tenants import tenant_entry


class App4SalesApi(dg.ConfigurableResource):
    """One App4Sales administration; the path segment before ``/api/`` in ``url`` names it."""

    url: str = Field(description="API base URL, e.g. http://127.0.0.1:8765/demo/api/app4sales/")
    username: str = ""
    password: str = Field(default="", description="set through EnvVar('APP4SALES_PASSWORD')")
    connect_timeout: float = 5.0
    read_timeout: float = Field(default=60.0, description="APP4SALES_READ_TIMEOUT: seconds for each read")
    answer_timeout: float = Field(default=120.0, gt=0,
                                  description="APP4SALES_ANSWER_TIMEOUT: seconds for one whole attempt of a call, "
                                              "connect to last byte (a trickling answer is a timeout)")
    retry_attempts: int = Field(default=5, ge=1, le=20)
    retry_backoff_seconds: float = 0.5
    tenants_file: str | None = Field(default=None, description="MONITOR_TENANTS_FILE; per-tenant administrations")

    def for_tenant(self, tenant: str | None) -> App4SalesApi:
        """This resource for one tenant of the tenants file (itself without tenants)."""
        if tenant is None:
            return self
        entry = tenant_entry(self.tenants_file, tenant)
        return App4SalesApi(url=entry.app4sales.url, username=entry.app4sales_username(),
                            password=entry.app4sales_password(), connect_timeout=self.connect_timeout,
                            read_timeout=self.read_timeout, answer_timeout=self.answer_timeout,
                            retry_attempts=self.retry_attempts,
                            retry_backoff_seconds=self.retry_backoff_seconds)

    def client(self) -> App4SalesClient:
        """A new client (its own connection pool); use it as a context manager."""
        return App4SalesClient(
            self.url, self.username, self.password,
            connect_timeout=self.connect_timeout, read_timeout=self.read_timeout, answer_timeout=self.answer_timeout,
            retry=RetryPolicy(attempts=self.retry_attempts, base=self.retry_backoff_seconds),
        )
