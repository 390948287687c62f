"""One retry budget (monitor_pipeline/defs/retries.py): short tries inside a step, Dagster's RetryPolicy for an
outage longer than them, never one layer inside another, a permanent failure not retried.

Real peers: pyftpdlib greeting the next connections with "421 Service not available" (a server that is
away) and the App4Sales sandbox answering 503. The delays are shortened (``MONITOR_STEP_RETRY_DELAY``); the
counts are what the servers saw.
"""

from __future__ import annotations

import dagster as dg
import pytest

from benchmarks.generate import generate
from monitor_pipeline.defs.customer_export.asset import MONITOR_CUSTOMER_FILES
from monitor_pipeline.defs.customer_export.job import (
    EXPORT_JOB_NAME, EXPORT_OP_NAME, build_export_new_customer_job, run_config_for,
)
from monitor_pipeline.definitions import build_defs
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline_tests.defs.customer_sync.harness import sync  # noqa: F401 (fixture)
from monitor_pipeline_tests.resources import tenancy


def _starts(result) -> dict[str, int]:
    starts: dict[str, int] = {}
    for event in result.all_events:
        if event.event_type in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_RESTARTED):
            starts[event.step_key] = starts.get(event.step_key, 0) + 1
    return starts


@pytest.fixture
def retries(monkeypatch):
    monkeypatch.setenv("MONITOR_STEP_RETRIES", "2")
    monkeypatch.setenv("MONITOR_STEP_RETRY_DELAY", "0.2")


def test_the_definitions_give_every_sync_step_and_the_export_the_policy(monkeypatch):
    monkeypatch.setenv("MONITOR_STEP_RETRIES", "3")
    monkeypatch.setenv("MONITOR_STEP_RETRY_DELAY", "45")
    defs = build_defs()
    job = defs.resolve_job_def("customer_sync_job")
    for step in ("customers_xml", "customer_frames", "customer_upsert_batches"):
        policy = job.graph.node_named(step).definition.retry_policy
        assert (policy.max_retries, policy.delay, policy.backoff) == (3, 45, dg.Backoff.EXPONENTIAL), step
    export = defs.resolve_job_def(EXPORT_JOB_NAME).graph.node_named(EXPORT_OP_NAME).definition.retry_policy
    assert (export.max_retries, export.delay) == (3, 45)
    monkeypatch.setenv("MONITOR_STEP_RETRIES", "0")
    job = build_defs().resolve_job_def("customer_sync_job")
    assert job.graph.node_named("customers_xml").definition.retry_policy is None


# -- the sync -------------------------------------------------------------------------------------------------

def _sync_over_ftp(sync, ftp):  # noqa: F811
    sync.setenv(MONITOR_FTP_URL=ftp.url, MONITOR_FTP_USERNAME=ftp.username, MONITOR_FTP_PASSWORD=ftp.password,
                MONITOR_FTP_CONNECT_TIMEOUT="5", MONITOR_FTP_READ_TIMEOUT="5")
    generate(ftp.base_dir / "customers.xml", 30, nested=True, seed=3)


def test_an_ftp_server_away_for_longer_than_the_transports_tries_is_retried_by_dagster(
        sync, retries, ftp_server_factory):  # noqa: F811
    ftp = ftp_server_factory("ftp")
    _sync_over_ftp(sync, ftp)
    ftp.refusing = 4  # the transport's 4 tries of the first step try; the next connection is served
    run = sync.run()
    assert run.success, run.failure_message()
    assert ftp.refused == 4
    assert _starts(run.result) == {"customers_xml": 2, "customer_frames": 1, "customer_upsert_batches": 1,
                                   "customer_upsert_batches_every_tenant_synced_recently": 1,
                                   "customers_exported_customers_arrived": 1}
    assert len(sync.sandbox.client().list_customers()) == 30


def test_without_step_retries_the_same_outage_fails_the_run_after_the_transports_tries(
        sync, ftp_server_factory, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MONITOR_STEP_RETRIES", "0")
    ftp = ftp_server_factory("ftp")
    _sync_over_ftp(sync, ftp)
    ftp.refusing = 4
    run = sync.run()
    assert not run.success
    assert ftp.refused == 4 and "421" in run.failure_message()
    assert _starts(run.result) == {"customers_xml": 1}


def test_app4sales_down_for_longer_than_the_clients_tries_is_retried_and_each_customer_stored_once(
        sync, retries):  # noqa: F811
    sync.setenv(MONITOR_UPSERT_CONCURRENCY="1")  # one batch in flight: the five 503s all hit the one call
    generate(sync.customers_xml, 250, nested=False, seed=8)
    # the second batch call gets 503 five times: all the client's tries of the upsert step's first try
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", skip=1, times=5, status=503)
    run = sync.run()
    assert run.success, run.failure_message()
    assert _starts(run.result)["customer_upsert_batches"] == 2
    assert _starts(run.result)["customer_frames"] == 1  # the frames were not parsed again
    assert run.metadata()["sent"] == 150  # the retry sent only what the first try had not got confirmed
    assert run.metadata()["customers_in_app4sales"] == 250  # the retry's index (100) and what it created (150)
    codes = [c["CustomerCode"] for c in sync.sandbox.client().list_customers()]
    assert len(codes) == len(set(codes)) == 250


def test_a_permanent_failure_is_not_retried(sync, retries):  # noqa: F811
    sync.customers_xml.write_text('<?xml version="1.0"?>\n<customers><customer><customercode>A1',
                                  encoding="utf-8")
    run = sync.run()
    assert not run.success
    assert "customers.xml" in run.failure_message()
    assert _starts(run.result) == {"customers_xml": 1, "customer_frames": 1}


def test_refused_credentials_are_not_retried(sync, retries):  # noqa: F811
    generate(sync.customers_xml, 20, nested=False, seed=2)
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", status=401, times=10)
    run = sync.run()
    assert not run.success
    assert "401" in run.failure_message()
    assert _starts(run.result)["customer_upsert_batches"] == 1


# -- the export -----------------------------------------------------------------------------------------------

def _export(sandbox, ftp, *, max_retries: int = 2):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Retry AB")
    with sandbox.client() as client:
        item = next(i for i in client.new_customers(after=0, take=1000) if i["CustomerGuid"] == created["CustomerGuid"])
    job = build_export_new_customer_job(None, dg.RetryPolicy(max_retries=max_retries, delay=0.2))
    run_config = run_config_for(item)
    run_config["ops"][EXPORT_OP_NAME]["config"]["retry_backoff_seconds"] = 0.0
    monitor_ftp = MonitorFileTransport(url=ftp.url, username=ftp.username, password=ftp.password,
                                       connect_timeout=5.0, read_timeout=5.0)
    app4sales = App4SalesApi(url=sandbox.base_url(), username=sandbox.username, password=sandbox.password,
                             retry_attempts=2, retry_backoff_seconds=0.01)
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = job.execute_in_process(run_config=run_config, resources=tenancy(monitor_ftp, app4sales),
                                        instance=instance, raise_on_error=False)
        return result, admin.get_result(created["CustomerGuid"]), created["CustomerCode"], _history(instance)
    finally:
        instance.dispose()


def _history(instance: dg.DagsterInstance) -> list[tuple[str, dict]]:
    """The asset monitor_customer_files' events, oldest first: ("materialization" | "observation", metadata)."""
    records = [("materialization", r) for r in instance.fetch_materializations(MONITOR_CUSTOMER_FILES, limit=50).records]
    records += [("observation", r) for r in instance.fetch_observations(MONITOR_CUSTOMER_FILES, limit=50).records]
    records.sort(key=lambda kind_record: kind_record[1].storage_id)
    return [(kind, {k: v.value for k, v in (r.asset_materialization or r.asset_observation).metadata.items()})
            for kind, r in records]


def test_an_export_outlasting_its_upload_attempts_is_retried_and_app4sales_hears_only_the_success(
        sandbox, ftp_server_factory):
    ftp = ftp_server_factory("ftp")
    ftp.refusing = 4  # the export's 4 upload attempts of the first try
    result, posted, code, history = _export(sandbox, ftp)
    assert result.success
    # the asset's history: the first try's failure (retried), then the delivery by the second try
    assert [(kind, m["delivered"], m["step_try"]) for kind, m in history] == [("observation", 0, 1),
                                                                             ("materialization", 1, 2)]
    failed, done = history[0][1], history[1][1]
    assert (failed["stage"], failed["will_retry"], failed["error_posted_to_app4sales"]) == ("upload", True, False)
    assert "421" in failed["error"] and ftp.password not in failed["error"]
    assert (done["customer_code"], done["upload_attempts"], done["uploaded"]) == (code, 1, 1)
    # one connection per upload attempt: the transport did not retry inside them (4, not 4 × 4)
    assert ftp.refused == 4
    assert _starts(result)[EXPORT_OP_NAME] == 2
    assert posted["Result"] == f"SUCCESS_CUSTOMER:{code}" and posted["Posts"] == 1 and not posted.get("Error")
    assert (ftp.base_dir / "customers" / f"{code}.xml").exists()


def test_an_export_failing_every_try_posts_its_error_once_at_the_end(sandbox, ftp_server_factory):
    ftp = ftp_server_factory("ftp")
    ftp.refusing = 1000
    result, posted, code, history = _export(sandbox, ftp)
    assert not result.success
    assert [(kind, m["stage"], m["will_retry"], m["step_try"]) for kind, m in history] == [
        ("observation", "upload", True, 1), ("observation", "upload", True, 2), ("observation", "upload", False, 3)]
    assert history[-1][1]["error_posted_to_app4sales"] is True and history[-1][1]["error"] == posted["Error"]
    assert ftp.refused == 3 * 4  # 3 tries of the step × 4 upload attempts, each one connection
    assert _starts(result)[EXPORT_OP_NAME] == 3
    assert posted["Posts"] == 1 and not posted.get("Result")
    assert f"customers/{code}.xml" in posted["Error"] and "421" in posted["Error"]
    assert ftp.password not in posted["Error"]
