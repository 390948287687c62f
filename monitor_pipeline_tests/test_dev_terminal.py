"""What a user's terminal shows: `make dev` (``monitor-pipeline dev``, which starts ``dg dev`` in DAGSTER_HOME)
without Dagster's supersession, "dagster.yaml in the current folder" or virtual-environment warnings, and a
run under the repository's dagster.yaml logging at INFO, not every engine event at DEBUG."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from monitor_pipeline.lib import defaults
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, write_customers
from monitor_pipeline_tests.servers.net import free_port

BIN = Path(sys.executable).parent
WARNINGS = ("SupersessionWarning", "in the current folder", "does not match the virtual environment", "Traceback")


def _clean_env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MONITOR_", "APP4SALES_", "DAGSTER_")) and k != "VIRTUAL_ENV"}
    return {**env, "PYTHONPATH": os.pathsep.join(sys.path), "MONITOR_STEP_RETRIES": "0", **more}


def test_make_dev_starts_the_ui_without_warnings(tmp_path):
    port = free_port()
    env = _clean_env(DAGSTER_HOME=str(tmp_path / "home"), MONITOR_LOCAL_HOME=str(tmp_path / "local"),
                     DAGSTER_WEBSERVER_PORT=str(port))
    log = tmp_path / "dev.log"
    process = subprocess.Popen([str(BIN / "monitor-pipeline"), "dev"], cwd=defaults.REPO_ROOT, env=env,
                               stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Serving dagster-webserver" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        time.sleep(3)  # the daemon's first sensor ticks log too
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    text = log.read_text(errors="replace")
    assert f"App4Sales sandbox page: http://{defaults.SANDBOX_HOST}:{defaults.SANDBOX_PORT}/" in text
    for warning in WARNINGS:
        assert warning not in text, f"{warning!r} in the dev terminal:\n{text[-3000:]}"


def test_a_run_under_the_repositorys_instance_logs_at_info(tmp_path, sandbox):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(defaults.REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    folder = tmp_path / "monitor"
    folder.mkdir()
    write_customers(folder / "customers.xml", [customer_xml("T1", "Kafé Ett")])
    env = _clean_env(DAGSTER_HOME=str(home), MONITOR_FTP_URL=folder.as_uri(), MONITOR_STABILITY_SECONDS="0",
                     MONITOR_STATE_DIR=str(tmp_path / "state"), MONITOR_STORAGE_DIR=str(tmp_path / "storage"),
                     **sandbox.env())
    done = subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "monitor_pipeline.definitions", "-a", "defs",
                           "-j", "customer_sync_job"], cwd=home, env=env, capture_output=True, text=True, timeout=300)
    text = done.stdout + done.stderr
    assert done.returncode == 0, text[-3000:]
    assert " - INFO - customer_sync_job - " in text  # the run's own messages
    assert "Downloaded" in text
    assert " - DEBUG - " not in text, [line for line in text.splitlines() if " - DEBUG - " in line][:5]
    assert sandbox.admin_api().get_customer("T1")["CustomerName"] == "Kafé Ett"
