"""Settings of the App4Sales side (SPEC §2, §5): how to reach the API, and how a sync behaves.

Each field is declared once here with its environment variable (``monitor_pipeline.lib.settings``); the
Dagster resources inherit these models and the tenants file takes the fields marked ``tenant``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import model_validator

from monitor_pipeline.app4sales.client import App4SalesClient, parse_base_url
from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib import defaults
from monitor_pipeline.lib.retry import RetryPolicy
from monitor_pipeline.lib.settings import Settings, setting
from monitor_pipeline.transport.config import refuse_credentials

MAX_BATCH_SIZE = 100  # the contract's limit for POST customers/batch (more → 413)


class App4SalesSettings(Settings):
    """One App4Sales administration; the path segment before ``/api/`` in ``url`` names it.

    Without ``APP4SALES_URL`` this is the embedded default: the sandbox on loopback with its demo login.
    With it, ``APP4SALES_USERNAME`` and ``APP4SALES_PASSWORD`` are required (a missing login fails at load,
    not after a download and a parse)."""

    url: str = setting("", "APP4SALES_URL", "API base URL, e.g. https://host/ADMINISTRATION/api/app4sales/ "
                       "(unset: the embedded sandbox)")
    username: str = setting("", "APP4SALES_USERNAME", "API user")
    password: str = setting("", "APP4SALES_PASSWORD", "API password", secret=True)
    connect_timeout: float = setting(5.0, "APP4SALES_CONNECT_TIMEOUT", "seconds to connect", gt=0, unit=" s")
    read_timeout: float = setting(60.0, "APP4SALES_READ_TIMEOUT", "seconds for each read", gt=0, unit=" s")
    answer_timeout: float = setting(120.0, "APP4SALES_ANSWER_TIMEOUT", "seconds for one whole attempt of a call, "
                                    "connect to last byte (a trickling answer is a timeout)", gt=0, unit=" s")
    retry_attempts: int = setting(5, None, "tries of each call (transient failures only)", ge=1, le=20)
    retry_backoff_seconds: float = setting(0.5, None, "first wait between tries; doubles each time", ge=0)
    host_connections: int = setting(4, "MONITOR_APP4SALES_HOST_CONNECTIONS", "calls in flight at most to the App4Sales "
                                    "host:port at once, over all runs and tenants (lib/host_slots.py)", ge=1, le=64)

    @model_validator(mode="before")
    @classmethod
    def _embedded_default(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("url"):
            return data
        given = [v for v in ("username", "password") if data.get(v)]
        if given:
            variables = cls.variables()
            raise ConfigError(f"{variables[given[0]]} is set but {variables['url']} is not (without it the "
                              "pipeline talks to the embedded sandbox)")
        return {**data, "url": defaults.default_app4sales_url(), "username": defaults.SANDBOX_USERNAME,
                "password": defaults.SANDBOX_PASSWORD}

    @model_validator(mode="after")
    def _checked(self) -> App4SalesSettings:
        refuse_credentials(self.url.strip(), self.variables()["url"], "APP4SALES_USERNAME and APP4SALES_PASSWORD")
        try:
            parse_base_url(self.url)
        except ValueError as exc:
            raise ConfigError(f"APP4SALES_URL {exc}") from None
        for name in ("username", "password"):
            if not getattr(self, name):
                raise ConfigError(f"{self.variables()[name]} is not set (required with {self.variables()['url']})")
        return self

    @property
    def administration(self) -> str:
        """The administration the URL names (the segment before ``/api/``)."""
        return parse_base_url(self.url)[1]

    @property
    def slot_host(self) -> str:
        """``host:port`` of the API, whose connection slots the calls take."""
        parts = urlsplit(self.url.strip())
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def client(self, *, max_in_flight: int = 1, logger: Any = None) -> App4SalesClient:
        """A new client (its own connection pool) with at most ``max_in_flight`` calls open at once; use it
        as a context manager. ``logger`` gets its retries and window changes."""
        return App4SalesClient(
            self.url, self.username, self.password,
            connect_timeout=self.connect_timeout, read_timeout=self.read_timeout, answer_timeout=self.answer_timeout,
            retry=RetryPolicy(attempts=self.retry_attempts, base=self.retry_backoff_seconds),
            max_in_flight=max_in_flight, logger=logger,
        )


class SyncOptions(Settings):
    """How the customer sync writes into App4Sales (SPEC §2, §5)."""

    batch_size: int = setting(MAX_BATCH_SIZE, "MONITOR_BATCH_SIZE", "customers per POST customers/batch",
                              ge=1, le=MAX_BATCH_SIZE, tenant=True)
    upsert_concurrency: int = setting(4, "MONITOR_UPSERT_CONCURRENCY", "batches in flight at once (App4Sales' "
                                      "429/503 answers lower it for the run, successes raise it back)",
                                      ge=1, le=16, tenant=True)
    enable_price_deduplication: bool = setting(False, "MONITOR_ENABLE_PRICE_DEDUPLICATION",
                                               "send a price list only where it differs from the default one",
                                               tenant=True)
    deactivate_missing: bool = setting(False, "MONITOR_DEACTIVATE_MISSING", "deactivate customers absent from "
                                       "customers.xml", tenant=True)
    deactivate_max_fraction: float = setting(0.1, "MONITOR_DEACTIVATE_MAX_FRACTION", "largest share of active "
                                             "customers one run may deactivate", ge=0.0, le=1.0, tenant=True)
    max_change_fraction: float = setting(0.5, "MONITOR_MAX_CHANGE_FRACTION", "largest share of the customers "
                                         "already in App4Sales one run may update (more: refused unless run config "
                                         "approve_mass_change)", ge=0.0, le=1.0, tenant=True)
    sync_lock_timeout: float = setting(300.0, "MONITOR_SYNC_LOCK_TIMEOUT", "seconds a sync waits for another run "
                                       "holding its App4Sales administration before it fails", ge=0, unit=" s")
    stale_after_hours: float = setting(26.0, "MONITOR_SYNC_STALE_HOURS", "hours after a tenant's last successful "
                                       "sync when check every_tenant_synced_recently fails for it", gt=0,
                                       unit=" h", tenant=True)


class SyncSettings(SyncOptions):
    """The options plus what one run asks for: ``full_refresh`` comes from the run config, never from the
    environment."""

    full_refresh: bool = setting(False, None, "send every customer, changed or not")
    approve_mass_change: bool = setting(False, None, "send even when more than max_change_fraction would be updated")
