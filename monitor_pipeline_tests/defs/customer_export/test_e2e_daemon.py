"""End to end: the real Dagster daemon runs ``new_customer_sensor``, which launches
``export_new_customer_job`` runs that upload to a real pyftpdlib server and report to a real sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor_pipeline.sandbox import start_sandbox_in_thread
from monitor_pipeline.sandbox.admin import SandboxAdmin
from monitor_pipeline_tests.servers.ftp import start_ftp_server

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CODE_LOCATION = "monitor_pipeline.definitions"
USERNAME, PASSWORD = "e2e-user", "e2e-Sandbox-pw"
POLL_SECONDS = 1
DEADLINE_SECONDS = POLL_SECONDS + 60

DAGSTER_YAML = """\
storage:
  sqlite:
    base_dir:
      env: DAGSTER_HOME
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 4
telemetry:
  enabled: false
"""

XML = ('<?xml version="1.0" encoding="utf-8"?>\n<NewCustomers><Customer><customerGuid>x</customerGuid>'
       '<name>Ångström &amp; Söner AB</name></Customer></NewCustomers>\n')


@pytest.fixture
def servers(tmp_path):
    sandbox = start_sandbox_in_thread(tmp_path / "sandbox.db", users={USERNAME: PASSWORD})
    ftp = start_ftp_server(tmp_path / "ftp")
    try:
        yield sandbox, ftp
    finally:
        ftp.stop()
        sandbox.stop()


def _daemon(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "daemon.log"
    process = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-m", CODE_LOCATION, "-d", str(REPO)],
        cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the code server and run workers die with it
    )
    return process, log


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # leftovers of the group (the daemon's children)
    except ProcessLookupError:
        pass
    process.wait(5)


@pytest.mark.e2e
def test_daemon_exports_new_customers_to_ftp(tmp_path, servers, monkeypatch):
    sandbox, ftp = servers
    admin = SandboxAdmin(sandbox.base_url("demo"), USERNAME, PASSWORD)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MONITOR_", "APP4SALES_", "DAGSTER_"))}
    env.update({
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": str(REPO),
        "MONITOR_FTP_URL": ftp.url, "MONITOR_FTP_USERNAME": ftp.username, "MONITOR_FTP_PASSWORD": ftp.password,
        "APP4SALES_URL": sandbox.base_url("demo"), "APP4SALES_USERNAME": USERNAME, "APP4SALES_PASSWORD": PASSWORD,
        "MONITOR_EXPORT_POLL_SECONDS": str(POLL_SECONDS),
        "MONITOR_LOCAL_HOME": str(tmp_path / "local"),
    })

    before = admin.create_new_customer("Before Start AB", xml=XML)  # waiting in the feed when the daemon starts
    process, log = _daemon(tmp_path, env)
    try:
        after = admin.create_new_customer("After Start AB")
        with admin_feed(sandbox) as feed:
            expected = {c["CustomerGuid"]: (c["CustomerCode"], feed[c["CustomerGuid"]]) for c in (before, after)}
        deadline = time.monotonic() + DEADLINE_SECONDS
        pending = dict(expected)
        while pending and time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"dagster-daemon exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            for guid, (code, xml) in list(pending.items()):
                path = ftp.base_dir / "customers" / f"{code}.xml"
                if path.exists() and admin.get_result(guid)["Result"]:
                    pending.pop(guid)
            time.sleep(0.5)
        if pending:
            results = {guid: admin.get_result(guid) for guid in expected}
            pytest.fail(f"not exported within {DEADLINE_SECONDS} s: {sorted(pending)}; results {results}; "
                        f"files {sorted(p.name for p in ftp.base_dir.rglob('*'))}\n"
                        f"daemon log:\n{log.read_text()[-4000:]}")
        for guid, (code, xml) in expected.items():
            assert (ftp.base_dir / "customers" / f"{code}.xml").read_bytes() == xml.encode("utf-8")
            result = admin.get_result(guid)
            assert result["Result"] == f"SUCCESS_CUSTOMER:{code}" and result["Error"] is None
            assert result["Posts"] == 1
        assert sorted(p.name for p in (ftp.base_dir / "customers").iterdir()) == sorted(
            f"{code}.xml" for code, _ in expected.values())  # no temp files
        # the sensor's backlog on monitor_customer_files: it rose, and came back to 0 once both were delivered
        monkeypatch.setenv("DAGSTER_HOME", str(home))  # the instance's dagster.yaml reads it
        backlog = _backlog_until_zero(home, deadline=time.monotonic() + 30)
        assert backlog and max(backlog) >= 1 and backlog[-1] == 0, backlog
    finally:
        _stop(process)
        admin.close()
    assert PASSWORD not in log.read_text(errors="replace") and ftp.password not in log.read_text(errors="replace")


def _backlog_until_zero(home: Path, deadline: float) -> list[int]:
    """The ``feed_backlog`` values the daemon's sensor observed, oldest first, once the last is 0 (or at the
    deadline)."""
    import dagster as dg

    from monitor_pipeline.defs.customer_export.asset import MONITOR_CUSTOMER_FILES

    values: list[int] = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        while time.monotonic() < deadline:
            records = instance.fetch_observations(MONITOR_CUSTOMER_FILES, limit=100).records
            values = [int(r.asset_observation.metadata["feed_backlog"].value) for r in reversed(records)
                      if "feed_backlog" in r.asset_observation.metadata]
            if values and values[-1] == 0:
                break
            time.sleep(0.5)
    return values


class admin_feed:
    """The feed items by GUID, read through the pipeline's own client."""

    def __init__(self, sandbox):
        from monitor_pipeline.app4sales import App4SalesClient
        self.client = App4SalesClient(sandbox.base_url("demo"), USERNAME, PASSWORD)

    def __enter__(self) -> dict[str, str]:
        return {item["CustomerGuid"]: item["Xml"] for item in self.client.new_customers(after=0, take=100)}

    def __exit__(self, *exc) -> None:
        self.client.close()
