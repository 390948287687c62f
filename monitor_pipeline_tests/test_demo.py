"""``monitor-pipeline demo`` as a new user runs it (``make demo``), twice, on a fresh local home: it says what
it created, the second sync sends nothing, and it never points at a sandbox it has stopped."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from monitor_pipeline.lib import defaults


def _demo(tmp_path) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MONITOR_", "APP4SALES_"))}
    env.update({"MONITOR_LOCAL_HOME": str(tmp_path / "local"), "DAGSTER_HOME": str(tmp_path / "dagster_home")})
    done = subprocess.run([sys.executable, "-m", "monitor_pipeline.cli", "demo"], env=env, cwd=defaults.REPO_ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_make_demo_twice_on_a_fresh_home(tmp_path):
    with socket.socket() as probe:
        if probe.connect_ex((defaults.SANDBOX_HOST, defaults.SANDBOX_PORT)) == 0:
            pytest.fail(f"something already listens on {defaults.SANDBOX_PORT}; the demo would use it")
    first, second = _demo(tmp_path), _demo(tmp_path)
    assert "App4Sales: created 11," in first
    assert re.search(r"App4Sales: created 0, updated 0, reactivated 0, unchanged 11,", second), second
    assert "Exported customers" not in first  # nothing exported before the first sync
    assert "Exported customers (check exported_customers_arrived): 1 exported, 0 arrived in customers.xml, " \
           "1 pending, 0 overdue" in second  # the first demo's customer, not in the sample customers.xml
    names = [re.search(r"A sales rep created (C\d+) '([^']+)'", out).groups() for out in (first, second)]
    assert names[0] != names[1], "each demo's customer is told apart by code and name"
    for out, (code, _) in zip((first, second), names):
        assert f"Arrived in Monitor's folder: {tmp_path / 'local' / 'monitor-ftp' / 'customers' / code}.xml" in out
        assert "Browse the sandbox" not in out  # it was stopped at the end of the demo
        assert "The sandbox stopped with the demo" in out and "login demo / demo" in out
        assert " 1 rows " not in out
