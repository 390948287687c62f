"""The connector settings of SPEC §2 that are not secrets, as one Dagster resource."""

from __future__ import annotations

import dagster as dg

from monitor_pipeline.app4sales.settings import SyncOptions
from monitor_pipeline.customers.settings import NormalizeOptions
from monitor_pipeline.export.settings import ExportSettings
from monitor_pipeline.lib.settings import setting
from monitor_pipeline.transport.config import MonitorFolders


class ConnectorSettings(dg.ConfigurableResource, MonitorFolders, NormalizeOptions, SyncOptions, ExportSettings):
    """Folder names and connector flags. Every field is declared once in its domain's model (folders:
    ``MonitorFolders``, mapping: ``NormalizeOptions``, the sync: ``SyncOptions``, the export:
    ``ExportSettings``), with its ``MONITOR_*`` variable; this resource only gathers them."""

    state_dir: str = setting(..., None, "where the last successful sync per administration is kept "
                             "(DeploymentSettings.state_dir)")
    state_url: str | None = setting(None, None, "PostgreSQL URL of the sync state, instead of state_dir's files "
                                    "(DeploymentSettings.state_url)", secret=True)
    state_tenant: str | None = setting(None, None, "the tenant whose sync state this is (set by MonitorTenancy; "
                                       "its own folder below state_dir, its own rows at state_url)")
