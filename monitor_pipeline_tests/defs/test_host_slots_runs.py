"""Connection slots per host hold however a run was started: a ``dagster job execute`` subprocess and an
in-process run at the same time, neither through the run queue nor with run tags, against real peers
(the pyftpdlib server counts its control connections, the sandbox its calls in flight)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from monitor_pipeline.definitions import build_defs
from monitor_pipeline.sandbox import SandboxAdmin, start_sandbox_in_thread
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, write_customers
from monitor_pipeline_tests.fixtures.sandbox import PASSWORD, USERNAME
from monitor_pipeline_tests.servers.ftp import FTPTestServer

DAGSTER = Path(sys.executable).parent / "dagster"
CLEARED = ("MONITOR_TENANTS_FILE", "MONITOR_EXTRA_DATA_FOLDER", "MONITOR_DEACTIVATE_MISSING",
           "MONITOR_ENABLE_PRICE_DEDUPLICATION", "MONITOR_FTP_URL", "MONITOR_FTP_HOST_CONNECTIONS",
           "MONITOR_APP4SALES_HOST_CONNECTIONS", "MONITOR_UPSERT_CONCURRENCY", "MONITOR_STATE_URL")


def _env(tmp_path: Path, name: str, app4sales_url: str, **more: str) -> dict[str, str]:
    """One run's variables; the state folder (and so the slots' SQLite file) is shared by both runs."""
    return {"MONITOR_STATE_DIR": str(tmp_path / "state"), "MONITOR_STORAGE_DIR": str(tmp_path / f"storage-{name}"),
            "MONITOR_SYNC_SCHEDULE": "off", "APP4SALES_URL": app4sales_url, "APP4SALES_USERNAME": USERNAME,
            "APP4SALES_PASSWORD": PASSWORD, "APP4SALES_READ_TIMEOUT": "10", **more}


def _ftp_env(ftp: FTPTestServer, **more: str) -> dict[str, str]:
    return {"MONITOR_FTP_URL": ftp.url, "MONITOR_FTP_USERNAME": ftp.username, "MONITOR_FTP_PASSWORD": ftp.password,
            **more}


def _start_cli_run(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, Path]:
    """``dagster job execute`` of customer_sync_job on an instance of its own: no queue, no run tags."""
    home = tmp_path / "cli_home"
    home.mkdir()
    log = tmp_path / "cli-run.log"
    full = {**{k: v for k, v in os.environ.items() if k not in CLEARED}, **env, "DAGSTER_HOME": str(home),
            "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([str(DAGSTER), "job", "execute", "-m", "monitor_pipeline.definitions", "-a", "defs",
                                "-j", "customer_sync_job"], cwd=tmp_path, env=full, stdout=open(log, "wb"),
                               stderr=subprocess.STDOUT)
    return process, log


def _wait_for(condition, process: subprocess.Popen, log: Path, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the CLI run ended before {what}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


def _run_in_process(monkeypatch, env: dict[str, str]) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.ephemeral() as instance:
        result = build_defs().resolve_job_def("customer_sync_job").execute_in_process(
            instance=instance, raise_on_error=False)
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    return result, messages


def _finish(process: subprocess.Popen, log: Path) -> str:
    try:
        process.wait(180)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    text = log.read_text()
    assert process.returncode == 0, text[-4000:]
    return text


def _overlap(a: list[float | None], b: list[float | None]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.parametrize("same_host, backend", [(True, "sqlite"), (True, "postgresql"), (False, "sqlite")],
                         ids=["one-host-limit-1", "one-host-limit-1-postgresql", "two-hosts"])
def test_two_runs_started_two_ways_share_one_ftp_hosts_single_slot(request, tmp_path, monkeypatch, ftp_server_factory,
                                                                   sandbox, same_host, backend):
    """MONITOR_FTP_HOST_CONNECTIONS=1. The CLI run holds its connection for 5 s (the stability wait); the
    in-process run starts as soon as that connection is open. On one host the second connection waits
    for the first to close (the server never sees 2 at once) and both succeed; on two hosts (another
    port) they are open at the same time. The slots are in the state folder's SQLite file, or with
    MONITOR_STATE_URL in PostgreSQL."""
    state = {"MONITOR_STATE_URL": request.getfixturevalue("postgres_db_url")} if backend == "postgresql" else {}
    first = ftp_server_factory("ftp")
    second = first if same_host else ftp_server_factory("ftp")
    write_customers(first.base_dir / "customers.xml", [customer_xml(f"C{i}", f"CLI {i}") for i in range(5)])
    if not same_host:
        write_customers(second.base_dir / "customers.xml", [customer_xml(f"C{i}", f"In-process {i}") for i in range(5)])
    cli_admin, own_admin = sandbox.admin + "-cli", sandbox.admin + "-own"
    process, log = _start_cli_run(tmp_path, _env(tmp_path, "cli", sandbox.base_url(cli_admin), **_ftp_env(
        first, MONITOR_FTP_HOST_CONNECTIONS="1", MONITOR_STABILITY_SECONDS="5", **state)))
    try:
        _wait_for(lambda: first.control_connections >= 1, process, log, "connection of the CLI run")
        started = time.monotonic()
        result, messages = _run_in_process(monkeypatch, _env(tmp_path, "own", sandbox.base_url(own_admin), **_ftp_env(
            second, MONITOR_FTP_HOST_CONNECTIONS="1", MONITOR_STABILITY_SECONDS="0.5", **state)))
        _finish(process, log)
    finally:
        if process.poll() is None:
            process.kill()
    assert result.success, messages[-20:]
    assert {c["CustomerCode"] for c in sandbox.client(cli_admin).list_customers()} == {f"C{i}" for i in range(5)}
    assert {c["CustomerName"] for c in sandbox.client(own_admin).list_customers()} == {
        f"{'CLI' if same_host else 'In-process'} {i}" for i in range(5)}
    waits = [m for m in messages if m.startswith("waiting for a connection slot") and "MONITOR_FTP_" in m]
    if same_host:
        assert len(first.control_intervals) == 2 and first.max_control_connections == 1
        assert not _overlap(*first.control_intervals)
        assert waits, (started, first.control_intervals, [m for m in messages if "slot" in m])
        assert waits == [f"waiting for a connection slot to 127.0.0.1:{first.port}: 1 of 1 held by run "
                         + waits[0].split("held by run ", 1)[1]]
        assert "(customers_xml, pid " in waits[0] and "(MONITOR_FTP_HOST_CONNECTIONS=1)" in waits[0]
    else:
        assert first.max_control_connections == second.max_control_connections == 1
        assert _overlap(first.control_intervals[0], second.control_intervals[0]), "hosts apart go in parallel"
        assert waits == []


def test_upserts_of_two_runs_share_the_app4sales_hosts_slots(tmp_path, monkeypatch):
    """MONITOR_APP4SALES_HOST_CONNECTIONS=3 and MONITOR_UPSERT_CONCURRENCY=2 for two runs into two
    administrations of one App4Sales host (a sandbox with 250 ms per call), one a CLI run, the other in
    process, their upserts at the same time: the first is granted 2 slots, the second the 1 left, and
    the sandbox never has more than 3 calls in flight; both store every customer."""
    handle = start_sandbox_in_thread(tmp_path / "remote.db", users={USERNAME: PASSWORD}, latency_ms=250)
    admins = {name: SandboxAdmin(handle.base_url(name), USERNAME, PASSWORD) for name in ("cli", "own")}
    try:
        folders = {name: tmp_path / f"monitor-{name}" for name in admins}
        counts = {"cli": 3000, "own": 600}
        for name, folder in folders.items():
            folder.mkdir()
            write_customers(folder / "customers.xml", [customer_xml(f"{name}{i:05d}", f"{name} {i}")
                                                       for i in range(counts[name])])
        limits = {"MONITOR_APP4SALES_HOST_CONNECTIONS": "3", "MONITOR_UPSERT_CONCURRENCY": "2",
                  "MONITOR_STABILITY_SECONDS": "0"}
        admins["cli"].reset_stats()
        process, log = _start_cli_run(tmp_path, _env(tmp_path, "cli", handle.base_url("cli"), **limits,
                                                     MONITOR_FTP_URL=folders["cli"].as_uri()))
        try:
            _wait_for(lambda: len(admins["cli"].events("batch")) >= 2, process, log, "batch of the CLI run")
            result, messages = _run_in_process(monkeypatch, _env(tmp_path, "own", handle.base_url("own"), **limits,
                                                                 MONITOR_FTP_URL=folders["own"].as_uri()))
            _finish(process, log)
        finally:
            if process.poll() is None:
                process.kill()
        assert result.success, messages[-20:]
        cli_ids = [e["id"] for e in admins["cli"].events("batch")]
        own_ids = [e["id"] for e in admins["own"].events("batch")]
        assert (len(cli_ids), len(own_ids)) == (30, 6)
        assert min(own_ids) < max(cli_ids), "the two upserts overlapped"
        assert admins["cli"].stats()["max_in_flight_seen"] <= 3  # server-wide: both administrations
        assert any(m.startswith("1 batches in flight at most, not 2") for m in messages), messages
    finally:
        for admin in admins.values():
            admin.close()
        handle.stop()
