"""The webserver and the daemon on a temporary DAGSTER_HOME run customer_sync_job launched through GraphQL."""

import time

import pytest
import requests

from monitor_pipeline.samples import write_demo_customers_xml
from monitor_pipeline_tests.e2e.dagster_processes import dagster_home, dagster_processes

pytestmark = pytest.mark.e2e

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
STATUS = """
query Status($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }"""


def graphql(port: int, query: str, variables: dict) -> dict:
    answer = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query, "variables": variables}, timeout=30)
    answer.raise_for_status()
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


def test_customer_sync_job_launched_through_graphql_succeeds(tmp_path, sandbox):
    monitor = tmp_path / "monitor"
    monitor.mkdir()
    write_demo_customers_xml(monitor / "customers.xml")
    env = {
        "DAGSTER_HOME": str(dagster_home(tmp_path)),
        "MONITOR_FTP_URL": monitor.as_uri(),
        "MONITOR_STABILITY_SECONDS": "0",
        "MONITOR_SYNC_SCHEDULE": "off",
        "MONITOR_CREATE_CUSTOMER": "false",
        **sandbox.env(),
    }
    with dagster_processes(env, tmp_path) as port:
        launched = graphql(port, LAUNCH, {"params": {
            "selector": {"repositoryLocationName": "monitor_pipeline", "repositoryName": "__repository__",
                         "jobName": "customer_sync_job"},
            "runConfigData": {}}})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        deadline = time.monotonic() + 180
        status = None
        while status not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
            time.sleep(1)
            status = graphql(port, STATUS, {"runId": run_id})["runOrError"]["status"]
    assert status == "SUCCESS", (tmp_path / "daemon.log").read_text()[-4000:]
    stored = sandbox.client().list_customers()
    # the demo file: 12 customers, one of them rejected (no name)
    assert sorted(c["CustomerCode"] for c in stored) == ["DE3001", "DE3002", "DK5001", "FI6001", "GB7001", "NL2001",
                                                          "NL2002", "NO4001", "SE1001", "SE1002", "SE1004"]
    assert all(c["CustomerEnabled"] for c in stored)
