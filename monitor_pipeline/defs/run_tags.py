"""Run tags both flows set, which ``dagster.yaml``'s run queue limits per value (hosts, administration)."""

from __future__ import annotations

from urllib.parse import urlsplit


from monitor_pipeline.app4sales.client import parse_base_url
from monitor_pipeline.tenants import Tenant

FTP_HOST_TAG = "monitor_pipeline/ftp_host"
APP4SALES_HOST_TAG = "monitor_pipeline/app4sales_host"
ADMINISTRATION_TAG = "monitor_pipeline/app4sales_administration"


def host_tags(tenant: Tenant) -> dict[str, str]:
    """Run tags the queued run coordinator limits per unique value (dagster.yaml, tag_concurrency_limits)."""
    return {FTP_HOST_TAG: tenant.monitor.host, APP4SALES_HOST_TAG: tenant.app4sales.host, "monitor_pipeline/tenant": tenant.name}


def administration_key(app4sales_url: str) -> str:
    """``host:port/administration`` of an App4Sales base URL: the value of :data:`ADMINISTRATION_TAG`."""
    base, administration = parse_base_url(app4sales_url)
    return f"{urlsplit(base).netloc}/{administration}"


def sync_tags(tenant: Tenant) -> dict[str, str]:
    """Tags of a customer-sync run: the host tags, plus the administration it writes into, which
    dagster.yaml limits to one run at a time (SPEC §5 "one writer per administration"; the state's own
    lock holds for runs that bypass the queue, e.g. ``dagster job execute``)."""
    return {**host_tags(tenant), ADMINISTRATION_TAG: administration_key(tenant.app4sales.url)}
