"""customer_sync_schedule: hourly by default, one run per tenant, a bad cron named."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from monitor_pipeline.defs.customer_sync.assets import build_customer_sync_assets
from monitor_pipeline.errors import ConfigError
from monitor_pipeline.defs.customer_sync.job import build_customer_sync_job
from monitor_pipeline.resources import build_resources
from monitor_pipeline.defs.customer_sync.schedule import build_customer_sync_schedule
from monitor_pipeline.tenants import Tenant

TICK = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def tenant(name: str, host: str) -> Tenant:
    return Tenant.model_validate({"name": name, "monitor": {"url": f"sftp://{host}/m"},
                                  "app4sales": {"url": f"http://{host}:8000/{name}/api/app4sales/"}})


def test_hourly_by_default_one_run(monkeypatch):
    monkeypatch.delenv("MONITOR_SYNC_SCHEDULE", raising=False)
    schedule = build_customer_sync_schedule()
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    with dg.build_schedule_context(scheduled_execution_time=TICK) as context:
        requests = list(schedule.evaluate_tick(context).run_requests)
    assert len(requests) == 1 and requests[0].partition_key is None
    assert requests[0].run_key == "schedule|2026-11-21T10:00:00+00:00"


def test_one_run_per_tenant_with_host_tags(monkeypatch):
    monkeypatch.setenv("MONITOR_SYNC_SCHEDULE", "*/15 * * * *")
    tenants = {"a": tenant("a", "ftp.a"), "b": tenant("b", "ftp.b")}
    schedule = build_customer_sync_schedule(tenants)
    partitions = dg.StaticPartitionsDefinition(list(tenants))
    repository = dg.Definitions(assets=build_customer_sync_assets(partitions),
                                jobs=[build_customer_sync_job(partitions, tenants)], schedules=[schedule],
                                resources=build_resources()).get_repository_def()
    with dg.build_schedule_context(scheduled_execution_time=TICK, repository_def=repository) as context:
        requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["a", "b"]
    assert [r.tags["monitor_pipeline/ftp_host"] for r in requests] == ["ftp.a", "ftp.b"]
    assert [r.tags["monitor_pipeline/app4sales_administration"] for r in requests] == ["ftp.a:8000/a", "ftp.b:8000/b"]


def test_off_and_bad_cron(monkeypatch):
    monkeypatch.setenv("MONITOR_SYNC_SCHEDULE", "off")
    assert build_customer_sync_schedule() is None
    monkeypatch.setenv("MONITOR_SYNC_SCHEDULE", "every hour")
    with pytest.raises(ConfigError, match="MONITOR_SYNC_SCHEDULE"):
        build_customer_sync_schedule()
