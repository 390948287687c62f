"""The ``monitor-pipeline`` command and the sandbox's own: every sub-command answers ``--help``, the sandbox
serves without arguments (its data where the demo keeps it) and prints its login with its URL, and ``sync``
runs customer_sync_job on the DAGSTER_HOME instance, a bad setting being one line."""

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


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["dev", "--help"], ["sync", "--help"],
                                  ["settings", "--help"],
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


def _sync_env(tmp_path, **extra) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONITOR_", "APP4SALES_"))}
    env.update({"DAGSTER_HOME": str(home), "MONITOR_STEP_RETRIES": "0", "MONITOR_SYNC_SCHEDULE": "off",
                "MONITOR_STATE_DIR": str(tmp_path / "state"), "MONITOR_STORAGE_DIR": str(tmp_path / "storage"),
                "MONITOR_STABILITY_SECONDS": "0", **extra})
    return env


def _cli(env, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor_pipeline.cli", "sync", *argv], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("variables, first_words", [
    ({"MONITOR_BATCH_SIZE": "500"}, "MONITOR_BATCH_SIZE=500 is out of range"),
    ({"MONITOR_FTP_URL": "gopher://monitor.example"}, "MONITOR_FTP_URL has an unknown scheme"),
    ({"APP4SALES_URL": "http://127.0.0.1:9/demo/api/app4sales/", "APP4SALES_PASSWORD": "s3cr3t-pw"},
     "APP4SALES_USERNAME is not set"),
])
def test_sync_names_a_bad_setting_in_one_line(tmp_path, variables, first_words):
    done = _cli(_sync_env(tmp_path, **variables))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == "" and done.stderr == f"FAIL  settings: {done.stderr.split(': ', 1)[1]}"
    assert done.stderr.splitlines()[0].startswith(f"FAIL  settings: {first_words}"), done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr and "s3cr3t-pw" not in done.stderr


def test_sync_runs_the_job_on_the_dagster_home_instance(tmp_path, sandbox):
    from dagster import DagsterInstance, DagsterRunStatus

    from monitor_pipeline.samples import write_demo_customers_xml

    folder = tmp_path / "monitor"
    folder.mkdir()
    write_demo_customers_xml(folder / "customers.xml")
    env = _sync_env(tmp_path, MONITOR_FTP_URL=folder.as_uri(), APP4SALES_URL=sandbox.base_url(),
                    APP4SALES_USERNAME=sandbox.username, APP4SALES_PASSWORD=sandbox.password)
    first = _cli(env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "App4Sales: created 11" in first.stdout and "success" in first.stdout
    again = _cli(env, "--full-refresh")
    assert again.returncode == 0 and "updated 11" in again.stdout, again.stdout[-3000:]
    assert sandbox.password not in first.stdout + first.stderr + again.stdout + again.stderr
    xml = folder / "customers.xml"
    xml.write_text(xml.read_text(encoding="utf-8").replace("Nordic Tools AB", "Nordic Tools Sverige AB"),
                   encoding="utf-8")  # one customer renamed
    events = sandbox.admin_api().events()
    dry = _cli(env, "--dry-run")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert "dry run (nothing sent): create 0, update 1, reactivate 0, deactivate 0, unchanged 10" in dry.stdout
    assert sandbox.admin_api().events() == events  # nothing reached App4Sales
    plan = [line.split() for line in dry.stdout.splitlines() if line.startswith("  ") and "→" not in line]
    assert [reason for reason, _code in plan] == ["changed"], dry.stdout
    with DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        runs = instance.get_runs()
        assert [(r.job_name, r.status) for r in runs] == [("customer_sync_job", DagsterRunStatus.SUCCESS)] * 3

    xml.write_text(xml.read_text(encoding="utf-8").replace("</customername>", " (ny)</customername>"),
                   encoding="utf-8")  # every customer renamed: the mass-change guard refuses
    refused = _cli(env)
    assert refused.returncode == 1 and "refusing to update 11 of 11 customers" in refused.stdout, refused.stdout
    assert "monitor-pipeline sync --approve-mass-change" in refused.stdout
    assert sandbox.admin_api().events() == events  # still nothing sent
    approved = _cli(env, "--approve-mass-change")
    assert approved.returncode == 0 and "updated 11" in approved.stdout, approved.stdout[-3000:]

    assert _cli(env, "--tenant", "north").returncode == 2  # no tenants: a clear refusal, nothing run
