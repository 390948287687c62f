"""Shared pytest setup.

Server fixtures live in ``monitor_pipeline_tests/fixtures/`` (one module per peer) and are
loaded as plugins here. In CI (``CI=true``) a skipped test is reported as a failure: a missing
server must never pass silently.
"""

import os

import pytest

pytest_plugins = [
    "monitor_pipeline_tests.fixtures.ftp",
    "monitor_pipeline_tests.fixtures.sftp",
    "monitor_pipeline_tests.fixtures.sandbox",
    "monitor_pipeline_tests.fixtures.postgres",
    "monitor_pipeline_tests.fixtures.s3",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true), which counts as a failure: {reason}"


@pytest.fixture(autouse=True)
def _one_try_per_step(monkeypatch):
    """Each test sees one try per step (``MONITOR_STEP_RETRIES=0``): a test of a failing run asserts what one
    try does, without Dagster's minutes-long retry delays. The step retries have their own tests
    (``defs/test_step_retries.py``), which set the variables themselves."""
    monkeypatch.setenv("MONITOR_STEP_RETRIES", "0")
