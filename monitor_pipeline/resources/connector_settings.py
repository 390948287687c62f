"""The connector settings of SPEC §2 that are not secrets, as one Dagster resource."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import PurePosixPath

import dagster as dg
from pydantic import Field

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib import env
from monitor_pipeline.tenants import tenant_entry


class ConnectorSettings(dg.ConfigurableResource):
    """Folder names and connector flags; each field is one ``MONITOR_*`` variable."""

    customers_folder: str = Field(default="", description="MONITOR_CUSTOMERS_FOLDER, relative to the base folder")
    extra_data_folder: str | None = Field(default=None, description="MONITOR_EXTRA_DATA_FOLDER; unset = no extra data")
    default_action_price_list_code: str | None = None
    enable_price_deduplication: bool = False
    customer_item_filter: bool = False
    language_map_json: str = Field(default="{}", description="MONITOR_LANGUAGE_MAP, a JSON object")
    batch_size: int = Field(default=100, ge=1, le=100)
    deactivate_missing: bool = False
    deactivate_max_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    create_customer: bool = True
    export_poll_seconds: int = Field(default=30, ge=1)
    stability_seconds: float = Field(
        default=3.0, ge=0.0, description="wait between the two looks at customers.xml that prove it is not being written")
    state_dir: str = Field(description="where the last successful sync per administration is kept")
    sync_lock_timeout: float = Field(
        default=300.0, ge=0.0, description="MONITOR_SYNC_LOCK_TIMEOUT: seconds a sync waits for another run "
                                           "holding its App4Sales administration before it fails")
    tenants_file: str | None = Field(default=None, description="MONITOR_TENANTS_FILE; per-tenant settings")

    def for_tenant(self, tenant: str | None) -> ConnectorSettings:
        """The settings of one tenant of the tenants file (these settings without tenants)."""
        if tenant is None:
            return self
        entry = tenant_entry(self.tenants_file, tenant)
        values = entry.settings.model_dump()
        language_map = values.pop("language_map")
        return ConnectorSettings(
            **values, language_map_json=json.dumps(language_map),
            customers_folder=entry.monitor.customers_folder, extra_data_folder=entry.monitor.extra_data_folder,
            export_poll_seconds=self.export_poll_seconds, stability_seconds=self.stability_seconds,
            sync_lock_timeout=self.sync_lock_timeout, state_dir=str(PurePosixPath(self.state_dir) / tenant),
        )

    @classmethod
    def from_env(cls, state_dir: str, environ: Mapping[str, str] | None = None) -> ConnectorSettings:
        """From the SPEC §2 variables; a bad value fails here, naming the variable."""
        language_map = env.env_json_object("MONITOR_LANGUAGE_MAP", environ)
        return cls(
            customers_folder=env.env_str("MONITOR_CUSTOMERS_FOLDER", "", environ) or "",
            extra_data_folder=env.env_str("MONITOR_EXTRA_DATA_FOLDER", None, environ),
            default_action_price_list_code=env.env_str("MONITOR_DEFAULT_ACTION_PRICE_LIST_CODE", None, environ),
            enable_price_deduplication=env.env_bool("MONITOR_ENABLE_PRICE_DEDUPLICATION", False, environ),
            customer_item_filter=env.env_bool("MONITOR_CUSTOMER_ITEM_FILTER", False, environ),
            language_map_json=json.dumps(language_map),
            batch_size=env.env_int("MONITOR_BATCH_SIZE", 100, environ, low=1, high=100),
            deactivate_missing=env.env_bool("MONITOR_DEACTIVATE_MISSING", False, environ),
            deactivate_max_fraction=env.env_float("MONITOR_DEACTIVATE_MAX_FRACTION", 0.1, environ, low=0.0, high=1.0),
            create_customer=env.env_bool("MONITOR_CREATE_CUSTOMER", True, environ),
            export_poll_seconds=env.env_int("MONITOR_EXPORT_POLL_SECONDS", 30, environ, low=1),
            stability_seconds=env.env_float("MONITOR_STABILITY_SECONDS", 3.0, environ, low=0.0),
            state_dir=state_dir,
            sync_lock_timeout=env.env_float("MONITOR_SYNC_LOCK_TIMEOUT", 300.0, environ, low=0.0),
            tenants_file=env.env_str("MONITOR_TENANTS_FILE", None, environ),
        )

    @property
    def language_map(self) -> dict[str, str]:
        try:
            parsed = json.loads(self.language_map_json)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"MONITOR_LANGUAGE_MAP is not valid JSON: {exc.msg}") from None
        if not isinstance(parsed, dict):
            raise ConfigError("MONITOR_LANGUAGE_MAP must be a JSON object")
        return {str(k): str(v) for k, v in parsed.items()}

    def customers_xml_path(self) -> str:
        return str(PurePosixPath(self.customers_folder.strip("/") or ".") / "customers.xml")

    def extra_data_path(self) -> str | None:
        if self.extra_data_folder is None:
            return None
        return str(PurePosixPath(self.extra_data_folder.strip("/") or ".") / "extraCustomerData.csv")
