"""Dagster resources: Monitor's file server, the App4Sales API, connector settings, the tenants and
asset storage.

``build_resources()`` reads the SPEC §2 variables through the settings models (each declared once, in
its domain); secrets stay ``EnvVar`` references, so their values never reach the UI or run metadata.
Unset variables fall back to the embedded default (a local folder for Monitor, the App4Sales sandbox
on loopback).
"""

from __future__ import annotations

import os

import dagster as dg

from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.lib.settings import variable_of
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.resources.storage import MonitorStorage
from monitor_pipeline.resources.tenancy import MonitorTenancy, TenantResources, tenancy_for

__all__ = ["App4SalesApi", "ConnectorSettings", "MonitorFileTransport", "MonitorStorage", "MonitorTenancy",
           "TenantResources", "build_resources", "tenancy_for"]


def build_resources(deployment: DeploymentSettings | None = None) -> dict[str, object]:
    """The code location's resources from the environment; a bad setting fails here, naming the variable."""
    deployment = deployment or DeploymentSettings.from_env()
    monitor_ftp = MonitorFileTransport.from_env(secret=dg.EnvVar)
    app4sales = App4SalesApi.from_env(secret=dg.EnvVar)
    settings = ConnectorSettings.from_env(state_dir=deployment.state_folder(), state_url=_state_url(deployment))
    return {
        "monitor_ftp": monitor_ftp,
        "app4sales": app4sales,
        "connector_settings": settings,
        "tenancy": tenancy_for(deployment.tenants_file),
        "monitor_storage": MonitorStorage(base_dir=deployment.storage_folder()),
    }


def _state_url(deployment: DeploymentSettings) -> str | None:
    """``MONITOR_STATE_URL`` as an ``EnvVar`` when it is the environment's (it may hold a password: the UI and
    the run config then show the variable's name only); a URL given in code as it is."""
    variable = variable_of(DeploymentSettings, "state_url")
    if deployment.state_url is None:
        return None
    if (os.environ.get(variable) or "").strip() == deployment.state_url:
        return dg.EnvVar(variable)
    return deployment.state_url
