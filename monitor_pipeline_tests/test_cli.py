"""The ``monitor-pipeline`` command and the sandbox's own: every sub-command answers ``--help``, the sandbox
serves without arguments (its data where the demo keeps it) and prints its login with its URL."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from monitor_pipeline import cli
from monitor_pipeline.sandbox import __main__ as sandbox_cli

from .servers.net import free_port


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["dev", "--help"], ["settings", "--help"],
                                  ["doctor", "--help"], ["sandbox", "--help"], ["sandbox", "serve", "--help"],
                                  ["sandbox", "create-customer", "--help"]])
def test_every_command_answers_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: monitor-pipeline"), out[:200]
    if argv[:2] == ["sandbox", "serve"]:
        assert "--db" in out and "sandbox.sqlite" in out  # optional, with the demo's file as default


def test_sandbox_serves_without_arguments_and_prints_its_login(tmp_path):
    """What `make sandbox` runs: no --db needed; the first line has the URL and the demo login."""
    port = free_port()
    env = {**os.environ, "MONITOR_LOCAL_HOME": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "monitor_pipeline.cli", "sandbox", "serve", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/demo/" in first and "login demo / demo" in first, first
        assert str(tmp_path / "sandbox.sqlite") in first
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/demo/api/app4sales/customers", auth=("demo", "demo"),
                                      timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None, "the sandbox did not come up"
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json()["total"] == 0
        assert (tmp_path / "sandbox.sqlite").exists()
    finally:
        process.terminate()
        process.wait(10)


def test_a_password_given_to_the_sandbox_is_not_printed(tmp_path, capsys, monkeypatch):
    seen = {}
    monkeypatch.setattr("monitor_pipeline.sandbox.server.serve", lambda db, host, port, users, **kw: seen.update(users))
    assert sandbox_cli.main(["serve", "--db", str(tmp_path / "s.sqlite"), "--user", "rep:s3cret-pw"]) == 0
    out = capsys.readouterr().out
    assert seen == {"rep": "s3cret-pw"} and "s3cret-pw" not in out and "the --user you gave" in out


def test_the_export_jobs_description_survives_markdown():
    """The UI renders descriptions as Markdown (react-markdown, rehype-sanitize): <CustomerCode> could be taken
    for an HTML tag and dropped ("customers/.xml"), so the descriptions write {CustomerCode}."""
    import re

    from monitor_pipeline.definitions import build_defs

    job = build_defs().resolve_job_def("export_new_customer_job")
    op = job.graph.node_named("export_new_customer").definition
    assert "`customers/{CustomerCode}.xml`" in job.description
    assert "`customers/{CustomerCode}.xml`" in op.description and "SUCCESS_CUSTOMER:{CustomerCode}" in op.description
    for description in (job.description, op.description):
        assert not re.search(r"<[A-Za-z/!?]", description), description
