"""Deployment settings (SPEC §2): tenants, where state and frames are kept, when the sync runs.

The sync state is SQLite files in ``MONITOR_STATE_DIR`` unless ``MONITOR_STATE_URL`` names a PostgreSQL
database (pods that share no disk, issue #12); a URL of any other database fails here, at load.

Declared once here with their variables (``monitor_pipeline.lib.settings``); the definitions, resources
and CLI read them through :meth:`DeploymentSettings.from_env`.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import field_validator, model_validator

from monitor_pipeline.app4sales.settings import App4SalesSettings, SyncOptions
from monitor_pipeline.app4sales.state_postgres import parse_state_url
from monitor_pipeline.customers.settings import NormalizeOptions
from monitor_pipeline.errors import ConfigError
from monitor_pipeline.export.settings import ExportSettings
from monitor_pipeline.lib import defaults
from monitor_pipeline.lib.object_store import check_storage_url
from monitor_pipeline.lib.settings import Settings, declared_variables, field_bounds, field_extra, setting
from monitor_pipeline.transport.config import MonitorFolders, TransportConfig


class DeploymentSettings(Settings):
    """What one deployment serves and where it keeps what runs leave behind."""

    tenants_file: str | None = setting(None, "MONITOR_TENANTS_FILE", "YAML file of tenants; each becomes a "
                                       "partition of the customer sync (unset: one tenant from these variables)")
    storage_dir: str | None = setting(None, "MONITOR_STORAGE_DIR", "folder of the frames and the raw file "
                                      "(default $DAGSTER_HOME/storage/monitor_pipeline)")
    storage_url: str | None = setting(None, "MONITOR_STORAGE_URL", "where the frames and the raw file are kept "
                                      "instead: s3://bucket/prefix (credentials and endpoint from the AWS_* "
                                      "variables), gs://…, az://…, file://… or a folder")
    state_dir: str | None = setting(None, "MONITOR_STATE_DIR", "folder of the sync state per administration "
                                    "(default $DAGSTER_HOME/monitor_pipeline/sync_state)")
    state_url: str | None = setting(None, "MONITOR_STATE_URL", "PostgreSQL URL of the sync state "
                                    "(postgresql://user:password@host:port/database; the password may come from "
                                    "PGPASSWORD instead); unset: SQLite files in MONITOR_STATE_DIR", secret=True)
    sync_schedule: str = setting("0 * * * *", "MONITOR_SYNC_SCHEDULE", "cron of customer_sync_schedule, or off")
    file_sensor_seconds: int = setting(60, "MONITOR_FILE_SENSOR_SECONDS", "seconds between two looks at "
                                       "customers.xml", ge=1, unit=" s")
    sensor_tenant_seconds: float = setting(20.0, "MONITOR_SENSOR_TENANT_SECONDS", "seconds a sensor tick waits for "
                                           "one tenant's server (tenants are looked at all at once, one attempt "
                                           "each; one that does not answer is named and looked at later)",
                                           ge=1, le=40, unit=" s")
    step_retries: int = setting(2, "MONITOR_STEP_RETRIES", "times a step that failed transiently (server away, "
                                "App4Sales 5xx/429 after its own tries) is run again; 0: never "
                                "(monitor_pipeline/defs/retries.py)", ge=0, le=10)
    step_retry_delay: float = setting(60.0, "MONITOR_STEP_RETRY_DELAY", "seconds before a step's first retry; "
                                      "the next wait 3 times that, then 7 times (exponential)", ge=0, le=3600, unit=" s")

    @field_validator("state_url")
    @classmethod
    def _postgres_state_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_state_url(value)  # a ConfigError naming the variable, never echoing the URL
        return value.strip()

    @model_validator(mode="after")
    def _one_storage(self) -> DeploymentSettings:
        if self.storage_url is not None:
            variables = self.variables()
            if self.storage_dir is not None:
                raise ConfigError(f"{variables['storage_url']} and {variables['storage_dir']} are both set: "
                                  f"set only one ({variables['storage_url']} takes a folder too)")
            check_storage_url(self.storage_url, variables["storage_url"])
        return self

    def storage_folder(self) -> str:
        """The local folder of the storage (MONITOR_STORAGE_DIR or the default under DAGSTER_HOME); see
        :meth:`storage_location`, which MONITOR_STORAGE_URL overrides."""
        return self.storage_dir or str(_dagster_home() / "storage" / "monitor_pipeline")

    def storage_location(self) -> str:
        """Where the frames and the raw file are kept: MONITOR_STORAGE_URL (``s3://bucket/prefix``, …; a
        ``file://`` URL as its folder), else :meth:`storage_folder`."""
        if self.storage_url is not None:
            return check_storage_url(self.storage_url, self.variables()["storage_url"])
        return self.storage_folder()

    def state_folder(self) -> str:
        return self.state_dir or str(_dagster_home() / "monitor_pipeline" / "sync_state")

    @property
    def schedule_off(self) -> bool:
        return self.sync_schedule.lower() in ("off", "false", "none")


def _dagster_home() -> Path:
    home = os.environ.get("DAGSTER_HOME")  # Dagster's own variable
    return Path(home) if home else defaults.local_home() / "dagster_home"


def all_settings() -> tuple[type[Settings], ...]:
    """Every settings model, in the order the README's table lists them."""
    return (TransportConfig, MonitorFolders, NormalizeOptions, App4SalesSettings, SyncOptions, ExportSettings,
            DeploymentSettings, defaults.EmbeddedDefault)


def settings_table() -> str:
    """The README's settings table (``monitor-pipeline settings`` prints it), generated from the fields."""
    rows = ["| Variable | What | Default | Per tenant | Declared in |", "|---|---|---|---|---|"]
    declared_variables(all_settings())  # refuses a variable declared twice
    for model in all_settings():
        for name, info in model.model_fields.items():
            extra = field_extra(info)
            variable = extra.get("env")
            if not variable:
                continue
            what = (info.description or "").removeprefix(f"{variable}: ")
            bounds = field_bounds(info)
            if bounds:
                what += " (" + ", ".join(f"{_SYMBOL[k]} {v:g}" for k, v in bounds.items()) + ")"
            default = "secret" if extra.get("secret") else _shown_default(info)
            tenant = f"`{name}`" if extra.get("tenant") else ""
            rows.append(f"| `{variable}` | {what} | {default} | {tenant} | `{model.__name__}` |")
    return "\n".join(rows) + "\n"


_SYMBOL = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}


def _shown_default(info) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
        return "embedded default" if isinstance(value, str) else f"`{value!r}`"
    value = info.default
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"
