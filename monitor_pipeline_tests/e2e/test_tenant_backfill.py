"""A real backfill over two tenants, launched through GraphQL and run by the daemon; each tenant's
customers land in its own App4Sales administration only."""

import time

import pytest

from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, write_customers
from monitor_pipeline_tests.defs.test_tenants import tenants_yaml
from monitor_pipeline_tests.e2e.dagster_processes import dagster_home, dagster_processes
from monitor_pipeline_tests.e2e.test_graphql_launch import graphql
from monitor_pipeline_tests.servers.ftp import start_ftp_server

pytestmark = pytest.mark.e2e

BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""
RUNS = """
query Runs($backfillId: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $backfillId}]}) {
    ... on Runs { results { status tags { key value } } }
  }
}"""


def backfill_runs(port: int, params: dict, runs: int = 2, timeout: float = 240) -> list[dict]:
    """Launch a partition backfill through the webserver's GraphQL (as the UI does) and wait until its
    ``runs`` runs have finished (or ``timeout``); their id, status and tags."""
    launched = graphql(port, BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    deadline = time.monotonic() + timeout
    found: list[dict] = []
    while time.monotonic() < deadline:
        found = graphql(port, RUNS, {"backfillId": launched["backfillId"]})["runsOrError"]["results"]
        if len(found) == runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in found):
            break
        time.sleep(1)
    return found


def test_backfill_over_two_tenants(tmp_path, sandbox):
    ftp = start_ftp_server(tmp_path / "ftp-root", base="")
    admins = {"north": sandbox.admin + "-n", "south": sandbox.admin + "-s"}
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(tenants_yaml(ftp, sandbox, admins), encoding="utf-8")
    for name, count in (("north", 30), ("south", 12)):
        (ftp.root / name).mkdir()
        write_customers(ftp.root / name / "customers.xml",
                        [customer_xml(f"{name[0].upper()}{i:03d}", f"{name} {i}") for i in range(count)])
    env = {"DAGSTER_HOME": str(dagster_home(tmp_path)), "MONITOR_TENANTS_FILE": str(tenants),
           "MONITOR_STABILITY_SECONDS": "0", "MONITOR_SYNC_SCHEDULE": "off", "MONITOR_CREATE_CUSTOMER": "false",
           "NORTH_FTP_PASSWORD": ftp.password, "SOUTH_FTP_PASSWORD": ftp.password,
           "NORTH_APP4SALES_PASSWORD": sandbox.password, "SOUTH_APP4SALES_PASSWORD": sandbox.password}
    try:
        with dagster_processes(env, tmp_path) as port:
            runs = backfill_runs(port, {
                "selector": {"partitionSetName": "customer_sync_job_partition_set",
                             "repositorySelector": {"repositoryLocationName": "monitor_pipeline",
                                                    "repositoryName": "__repository__"}},
                "partitionNames": ["north", "south"]})
    finally:
        ftp.stop()
    assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"], (tmp_path / "daemon.log").read_text()[-4000:]
    tags = [{t["key"]: t["value"] for t in r["tags"]} for r in runs]
    assert sorted(t["dagster/partition"] for t in tags) == ["north", "south"]
    assert all(t["monitor_pipeline/ftp_host"] == "127.0.0.1" for t in tags)
    assert sorted(t["monitor_pipeline/app4sales_administration"] for t in tags) == sorted(
        f"127.0.0.1:{sandbox.port}/{admin}" for admin in admins.values())
    north = {c["CustomerCode"] for c in sandbox.client(admins["north"]).list_customers()}
    south = {c["CustomerCode"] for c in sandbox.client(admins["south"]).list_customers()}
    assert north == {f"N{i:03d}" for i in range(30)}
    assert south == {f"S{i:03d}" for i in range(12)}
