"""Issue #12, end to end: a real ``dagster-daemon`` over two tenants whose first Monitor server takes TCP
connections and never answers, with the DEFAULT timeouts (15 s connect × 4 attempts would be 64 s, past
Dagster's 60 s sensor-tick budget). The second tenant's sync run is launched and succeeds within a few
ticks, and no tick of customers_xml_sensor fails."""

from __future__ import annotations

import time

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import TickStatus

from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, write_customers
from monitor_pipeline_tests.defs.sensor_tenants import tenants_file
from monitor_pipeline_tests.e2e.dagster_processes import dagster_home, dagster_processes
from monitor_pipeline_tests.servers.ftp import start_ftp_server
from monitor_pipeline_tests.servers.hostile import HangingServer

pytestmark = pytest.mark.e2e

SENSOR = "customers_xml_sensor"
INTERVAL = 2  # MONITOR_FILE_SENSOR_SECONDS: short, so that the ticks follow one another
TENANT_SECONDS = DeploymentSettings.model_fields["sensor_tenant_seconds"].default  # the default: 20 s
BUDGET = 60  # Dagster's sensor-tick budget (DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS' default)


def sensor_ticks(instance: dg.DagsterInstance) -> list:
    states = [s for s in instance.all_instigator_state() if s.instigator_name == SENSOR]
    return [t for s in states for t in instance.get_ticks(s.instigator_origin_id, s.selector_id)]


def test_a_hung_monitor_server_does_not_stall_the_other_tenants_sync(tmp_path, sandbox, monkeypatch):
    ftp = start_ftp_server(tmp_path / "ftp-root", base="")
    hung = HangingServer()  # accepts, and never sends the FTP greeting
    (ftp.root / "south").mkdir()
    write_customers(ftp.root / "south" / "customers.xml", [customer_xml(f"S{i:03d}", f"Syd {i}") for i in range(15)])
    south_admin = sandbox.admin + "-s"
    path = tenants_file(tmp_path / "tenants.yaml", {
        "north": {"monitor": f"ftp://127.0.0.1:{hung.port}/", "app4sales": sandbox.base_url(sandbox.admin + "-n"),
                  "app4sales_username": sandbox.username},
        "south": {"monitor": f"{ftp.url}/south", "app4sales": sandbox.base_url(south_admin),
                  "app4sales_username": sandbox.username}})
    home = dagster_home(tmp_path)
    env = {"DAGSTER_HOME": str(home), "MONITOR_TENANTS_FILE": str(path), "MONITOR_FILE_SENSOR_SECONDS": str(INTERVAL),
           "MONITOR_STABILITY_SECONDS": "0", "MONITOR_SYNC_SCHEDULE": "off", "MONITOR_CREATE_CUSTOMER": "false",
           "NORTH_FTP_PASSWORD": ftp.password, "SOUTH_FTP_PASSWORD": ftp.password,
           "NORTH_APP4SALES_PASSWORD": sandbox.password, "SOUTH_APP4SALES_PASSWORD": sandbox.password}
    for variable in ("MONITOR_SENSOR_TENANT_SECONDS", "MONITOR_FTP_CONNECT_TIMEOUT", "MONITOR_FTP_READ_TIMEOUT",
                     "DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS"):
        monkeypatch.delenv(variable, raising=False)  # the defaults, as shipped
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    runs, ticks = [], []
    started = time.monotonic()
    try:
        with dagster_processes(env, tmp_path, webserver=False), dg.DagsterInstance.get() as instance:
            launched_after = None
            deadline = started + 300
            while time.monotonic() < deadline:
                # the sync runs only: tenant_health_schedule (hourly at minute 17) may launch a health run meanwhile
                runs = instance.get_runs(dg.RunsFilter(job_name="customer_sync_job"))
                if runs and launched_after is None:
                    launched_after = time.monotonic() - started
                if runs and all(r.is_finished for r in runs):
                    break
                time.sleep(1)
            ticks = sensor_ticks(instance)
    finally:
        hung.stop()
        ftp.stop()
    log = (tmp_path / "daemon.log").read_text(errors="replace")[-4000:]
    print(f"run launched {launched_after} s after the daemon started; ticks (status, seconds, skip reason):",
          *[(t.status.value, round((t.end_timestamp or t.timestamp) - t.timestamp, 1), t.skip_reason) for t in ticks],
          sep="\n")
    assert [(r.tags.get("dagster/partition"), r.status.value) for r in runs] == [("south", "SUCCESS")], log
    # launched within a few ticks: the file is seen on one tick and settled on the next, each tick lasting at
    # most the per-tenant deadline (plus the code server's start)
    assert launched_after is not None and launched_after < 150, (launched_after, log)
    assert ticks, log
    assert [t for t in ticks if t.status == TickStatus.FAILURE] == [], [t.error for t in ticks]
    finished = [t for t in ticks if t.end_timestamp]
    assert finished and max(t.end_timestamp - t.timestamp for t in finished) < TENANT_SECONDS + 10 < BUDGET
    assert any("north: not reachable" in (t.skip_reason or "") for t in ticks) or "north: not reachable" in log
    customers = {c["CustomerCode"] for c in sandbox.client(south_admin).list_customers()}
    assert customers == {f"S{i:03d}" for i in range(15)}
    assert hung.connections >= 1
