"""``every_tenant_synced_recently``: a tenant that has not synced is red although another one is fresh."""

import time

import dagster as dg

from monitor_pipeline.definitions import build_defs
from monitor_pipeline.defs.customer_sync.health import CHECK_NAME, tenant_rows
from monitor_pipeline_tests.defs.test_tenants import ftp, two_tenants

FIXTURES = (ftp, two_tenants)  # the two-tenant setup of test_tenants: one FTP server, two administrations
CHECK = dg.AssetCheckKey(dg.AssetKey("customer_upsert_batches"), CHECK_NAME)


def _evaluation(result: dg.ExecuteInProcessResult):
    evaluations = [e.asset_check_evaluation_data for e in result.all_events
                   if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
                   and e.asset_check_evaluation_data.asset_check_key == CHECK]
    assert len(evaluations) == 1
    return evaluations[0]


def _table(evaluation) -> dict[str, dict]:
    return {r.data["tenant"]: r.data for r in evaluation.metadata["tenant_health"].value.records}


def test_one_fresh_tenant_does_not_hide_one_that_never_synced(two_tenants):
    defs = build_defs()
    health = defs.resolve_job_def("tenant_health_job")
    with dg.DagsterInstance.ephemeral() as instance:
        first = _evaluation(health.execute_in_process(instance=instance, raise_on_error=False))
        assert not first.passed
        assert {t: r["status"] for t, r in _table(first).items()} == {"north": "never synced",
                                                                      "south": "never synced"}

        sync = defs.resolve_job_def("customer_sync_job").execute_in_process(partition_key="north", instance=instance)
        in_run = _evaluation(sync)  # the check runs after every sync too, over every tenant
        assert not in_run.passed and "south (never synced)" in in_run.description
        rows = _table(in_run)
        assert rows["north"]["status"] == "fresh" and rows["north"]["last_sync_utc"]
        assert rows["north"]["window_hours"] == 26.0
        assert in_run.metadata["stale_tenants"].value == 1

        defs.resolve_job_def("customer_sync_job").execute_in_process(partition_key="south", instance=instance)
        last = _evaluation(health.execute_in_process(instance=instance))
        assert last.passed and last.metadata["stale_tenants"].value == 0
        assert {t: r["status"] for t, r in _table(last).items()} == {"north": "fresh", "south": "fresh"}

        # two hours on: the tenant with a one-hour window is stale, the other one not
        later = tenant_rows(instance, {"north": 1.0, "south": 26.0}, now=time.time() + 2 * 3600)
        assert [(r["tenant"], r["status"]) for r in later] == [("north", "stale"), ("south", "fresh")]
        assert later[0]["age_hours"] >= 2.0


def test_health_is_scheduled_every_hour_without_running_the_sync(two_tenants):
    defs = build_defs()
    schedule = defs.resolve_schedule_def("tenant_health_schedule")
    assert schedule.job_name == "tenant_health_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    job = defs.resolve_job_def("tenant_health_job")
    assert list(job.graph.node_names()) == [f"customer_upsert_batches_{CHECK_NAME}"]
