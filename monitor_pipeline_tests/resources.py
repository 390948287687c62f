"""The ``tenancy`` resource for tests that run an asset, a sensor or the export with chosen peers."""

from __future__ import annotations

import tempfile

from monitor_pipeline.resources import App4SalesApi, ConnectorSettings, MonitorFileTransport, tenancy_for


def tenancy(monitor_ftp: MonitorFileTransport | None = None, app4sales: App4SalesApi | None = None,
            settings: ConnectorSettings | None = None, *, state_dir: str | None = None,
            tenants_file: str | None = None) -> dict[str, object]:
    """``tenancy`` over the given resources (what is not given is the embedded default), with those also
    bound at the top level, as the definitions bind them. Without ``state_dir`` the state (where an export
    records its deliveries) is a new temporary folder."""
    monitor_ftp = monitor_ftp or MonitorFileTransport()
    app4sales = app4sales or App4SalesApi()
    settings = settings or ConnectorSettings(state_dir=state_dir or tempfile.mkdtemp(prefix="monitor-test-state-"))
    return {"tenancy": tenancy_for(tenants_file),
            "monitor_ftp": monitor_ftp, "app4sales": app4sales, "connector_settings": settings}
