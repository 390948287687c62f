"""One resource that turns a tenant (or none) into its file server, App4Sales API and settings.

Both flows carry the tenant the same way: as the partition key of their runs (the sync's assets and the
export job share the tenants' partitions). Without ``MONITOR_TENANTS_FILE`` nothing is partitioned and
the one tenant is the SPEC §2 variables. Assets, sensors and the export take only ``tenancy``.
"""

from __future__ import annotations

from dataclasses import dataclass
import dagster as dg

from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.app4sales.settings import App4SalesSettings
from monitor_pipeline.tenants import tenant_entry
from monitor_pipeline.transport.config import TransportConfig


@dataclass(frozen=True)
class TenantResources:
    """What a run or a sensor needs for one tenant (``name`` None: the single tenant of the variables)."""

    name: str | None
    monitor_ftp: MonitorFileTransport
    app4sales: App4SalesApi
    settings: ConnectorSettings


def tenant_of(context) -> str | None:
    """The tenant a run, step or request works for: its partition key, or None without tenants."""
    return context.partition_key if getattr(context, "has_partition_key", False) else None


class MonitorTenancy:
    """The tenants of ``tenants_file`` over the variables' defaults (the ``monitor_ftp``, ``app4sales`` and
    ``connector_settings`` resources)."""

    def __init__(self, monitor_ftp: MonitorFileTransport, app4sales: App4SalesApi,
                 connector_settings: ConnectorSettings, tenants_file: str | None = None):
        self.monitor_ftp, self.app4sales, self.connector_settings = monitor_ftp, app4sales, connector_settings
        self.tenants_file = tenants_file

    def for_context(self, context) -> TenantResources:
        """The tenant of a Dagster run or step (its partition key)."""
        return self.for_tenant(tenant_of(context))

    def for_tenant(self, name: str | None) -> TenantResources:
        if name is None:
            return TenantResources(None, self.monitor_ftp, self.app4sales, self.connector_settings)
        entry = tenant_entry(self.tenants_file, name)
        server = entry.monitor
        transport = {k: v for k, v in server.model_dump().items() if k in TransportConfig.model_fields}
        monitor_ftp = MonitorFileTransport(**{**self.monitor_ftp.values(TransportConfig), **transport,
                                              "username": entry.monitor_username(),
                                              "password": entry.monitor_password()})
        app4sales = App4SalesApi(**{**self.app4sales.values(App4SalesSettings), "url": entry.app4sales.url,
                                    "username": entry.app4sales_username(),
                                    "password": entry.app4sales_password()})
        settings = ConnectorSettings(**{
            **self.connector_settings.values(ConnectorSettings), **entry.settings.model_dump(),
            "customers_folder": server.customers_folder, "extra_data_folder": server.extra_data_folder,
            "state_tenant": name})  # its own state: <state_dir>/<tenant>/, or its own scope at state_url
        return TenantResources(name, monitor_ftp, app4sales, settings)


@dg.resource(
    required_resource_keys={"monitor_ftp", "app4sales", "connector_settings"},
    config_schema={"tenants_file": dg.Field(dg.Noneable(str), default_value=None,
                                            description="MONITOR_TENANTS_FILE (DeploymentSettings.tenants_file)")},
    description="Turns a run's tenant (its partition key; none without MONITOR_TENANTS_FILE) into its Monitor "
                "server, App4Sales administration and settings.",
)
def tenancy_resource(context: dg.InitResourceContext) -> MonitorTenancy:
    # A function resource over the three resource keys, not a ConfigurableResource with nested resources:
    # Dagster 1.13 initializes nested configured resources through InitResourceContext.dagster_run, which
    # warns that it is deprecated on every run.
    resources = context.resources
    return MonitorTenancy(resources.monitor_ftp, resources.app4sales, resources.connector_settings,
                          context.resource_config["tenants_file"])


def tenancy_for(tenants_file: str | None) -> dg.ResourceDefinition:
    """The ``tenancy`` resource of a deployment."""
    return tenancy_resource.configured({"tenants_file": tenants_file})
