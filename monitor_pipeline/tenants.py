"""Tenants: several Monitor/App4Sales administrations served from one deployment.

``MONITOR_TENANTS_FILE`` names a YAML file; each tenant becomes a partition of the customer-sync
assets, and the export sensor serves every tenant. Secrets are never in the file: it names the
environment variables that hold them (``password_env``), read only when a run needs them.
Without the file there is one tenant, built from the SPEC §2 variables, and no partitions.

    tenants:
      - name: north
        monitor:
          url: sftp://ftp.north.example/monitor
          username: north
          password_env: NORTH_FTP_PASSWORD
          host_key: "SHA256:…"
          customers_folder: export
        app4sales:
          url: https://north.example/north/api/app4sales/
          username: sync
          password_env: NORTH_APP4SALES_PASSWORD
        settings:
          enable_price_deduplication: true
          language_map: {SV: sv}
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor_pipeline.app4sales.settings import SyncOptions
from monitor_pipeline.customers.settings import NormalizeOptions
from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.errors import ConfigError
from monitor_pipeline.export.settings import ExportSettings
from monitor_pipeline.lib.settings import tenant_model
from monitor_pipeline.transport.config import MonitorFolders, TransportConfig, parse_url, refuse_credentials

TENANTS_FILE_VARIABLE = DeploymentSettings.variables()["tenants_file"]  # named in messages


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _from_env(variable: str | None, what: str, tenant: str) -> str:
    if not variable:
        return ""
    value = os.environ.get(variable)
    if value is None:
        raise ConfigError(f"tenant {tenant!r}: {what} variable {variable} is not set")
    return value


class _MonitorServerBase(_Strict):
    @field_validator("url", check_fields=False)
    @classmethod
    def _url(cls, url: str) -> str:
        # at load, as MONITOR_FTP_URL at start; the message never shows the URL's user info
        parse_url(url, "the Monitor URL", "username/username_env and password_env")
        return url

    @property
    def host(self) -> str:
        parts = urlsplit(self.url)
        return parts.hostname or "local"


# A tenant's ``monitor:`` section: the fields of TransportConfig and MonitorFolders marked ``tenant`` (same
# names, defaults and bounds as the variables), the URL required, the login named or read from a variable.
MonitorServer = tenant_model("MonitorServer", [TransportConfig, MonitorFolders], _MonitorServerBase,
                             url=(str, ...), username=(str, ""), username_env=(str | None, None),
                             password_env=(str | None, None))

class App4SalesServer(_Strict):
    url: str
    username: str = ""
    username_env: str | None = None
    password_env: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        refuse_credentials(url.strip(), "the App4Sales URL", "username/username_env and password_env")
        return url

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc or "unknown"


# A tenant's ``settings:`` section: the fields marked ``tenant`` of the mapping, sync and export settings.
TenantSettings = tenant_model("TenantSettings", [NormalizeOptions, SyncOptions, ExportSettings], _Strict)


class Tenant(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
    monitor: MonitorServer
    app4sales: App4SalesServer
    settings: TenantSettings = Field(default_factory=TenantSettings)

    def monitor_username(self) -> str:
        return _from_env(self.monitor.username_env, "Monitor username", self.name) or self.monitor.username

    def monitor_password(self) -> str:
        return _from_env(self.monitor.password_env, "Monitor password", self.name)

    def app4sales_username(self) -> str:
        return _from_env(self.app4sales.username_env, "App4Sales username", self.name) or self.app4sales.username

    def app4sales_password(self) -> str:
        return _from_env(self.app4sales.password_env, "App4Sales password", self.name)


class _TenantsFile(_Strict):
    tenants: list[Tenant] = Field(min_length=1)


def load_tenants(path: str | Path) -> dict[str, Tenant]:
    """The tenants of ``path`` by name, in file order; ConfigError naming the file and the field otherwise."""
    return dict(_load(str(Path(path).resolve())))


@lru_cache(maxsize=8)
def _load(path: str) -> tuple[tuple[str, Tenant], ...]:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{TENANTS_FILE_VARIABLE}: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{TENANTS_FILE_VARIABLE}: {path} is not valid YAML: {exc}") from None
    try:
        parsed = _TenantsFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{TENANTS_FILE_VARIABLE}: {path}: {problems}") from None
    names = [t.name for t in parsed.tenants]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{TENANTS_FILE_VARIABLE}: {path}: tenant names must be unique, repeated: {duplicated}")
    return tuple((t.name, t) for t in parsed.tenants)


def tenant_entry(path: str | None, tenant: str) -> Tenant:
    """One tenant of the tenants file; a clear error when there is no file or no such tenant."""
    if not path:
        raise ConfigError(f"a run for tenant {tenant!r} needs {TENANTS_FILE_VARIABLE}, which is not set")
    tenants = load_tenants(path)
    if tenant not in tenants:
        raise ConfigError(f"tenant {tenant!r} is not in {path} (it has: {', '.join(tenants)})")
    return tenants[tenant]
