"""``monitor-pipeline doctor``: one line per check, exit 1 on any failure, never a traceback or a password.

Against real servers only: the embedded default (local folder + the sandbox the doctor starts on loopback),
pyftpdlib FTP/FTPS, the paramiko SFTP server, the App4Sales sandbox fixture, and a free port for a refused
connection. The exit-status tests run the CLI as a subprocess, as a user would.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest

from monitor_pipeline import doctor
from monitor_pipeline.lib import defaults
from monitor_pipeline.samples import write_demo_customers_xml
from monitor_pipeline.transport import fingerprint

from .servers.keys import known_hosts_line
from .servers.net import free_port

SANDBOX_STARTED = re.compile(r"^note  app4sales: embedded default: (Started the App4Sales sandbox at "
                             r"http://127\.0\.0\.1:8765/demo/api/app4sales/|Using the App4Sales sandbox already "
                             r"running at http://127\.0\.0\.1:8765/demo/api/app4sales/)", re.M)


def _clean_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("MONITOR_", "APP4SALES_"))}
    env.update({"MONITOR_LOCAL_HOME": str(tmp_path / "local"), "DAGSTER_HOME": str(tmp_path / "dagster_home")})
    env.update(variables)
    return env


def _doctor(tmp_path: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor_pipeline.cli", "doctor", *args],
                          env=_clean_env(tmp_path, **variables), cwd=defaults.REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def _fails(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAIL")]


def _assert_clean(done: subprocess.CompletedProcess, *secrets: str) -> None:
    both = done.stdout + done.stderr
    assert "Traceback" not in both, both
    for secret in secrets:
        assert secret not in both, f"{secret!r} shown: {both}"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """In-process checks: no MONITOR_*/APP4SALES_* of the caller's, a local home of the test's own."""
    for key in list(os.environ):
        if key.startswith(("MONITOR_", "APP4SALES_")):
            monkeypatch.delenv(key)
    for key, value in _clean_env(tmp_path).items():
        if key.startswith(("MONITOR_", "DAGSTER_")):
            monkeypatch.setenv(key, value)

    def set_env(**variables: str) -> None:
        for key, value in variables.items():
            monkeypatch.setenv(key, value)

    return set_env


def _lines(tenant: str | None = None) -> list[str]:
    return [check.line() for check in doctor.run(tenant, seconds=5.0)]


# --- the CLI, as a subprocess ---------------------------------------------------------------------------------

def test_doctor_passes_on_the_embedded_default_of_a_fresh_checkout(tmp_path):
    """No variables at all: the local folder gets the bundled sample, the sandbox is started for the check
    and stopped after it, every check passes, and nothing was sent to App4Sales."""
    done = _doctor(tmp_path)
    _assert_clean(done)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert _fails(out) == []
    lines = out.splitlines()
    assert lines[0] == ("ok    settings: loaded; one tenant from the variables (embedded default: Monitor is the "
                        "local folder, App4Sales is the sandbox on loopback)")
    folder = tmp_path / "local" / "monitor-ftp"
    assert (f"note  monitor: embedded default: {folder} had no customers.xml; put the bundled sample there "
            "(as `monitor-pipeline demo` does)") in lines
    assert SANDBOX_STARTED.search(out), out
    assert f"ok    monitor: local folder file://{folder} (no server, no login)" in lines
    assert f"ok    monitor: folder file://{folder} lists 1 entry; customers.xml is there" in lines
    assert re.search(r"^ok    monitor: customers\.xml: [\d,]+ bytes, modified \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
                     out, re.M), out
    assert ("ok    monitor: customers.xml parses (nothing sent): 11 customers, 1 rejected (line 146, SE1003: "
            "missing CustomerName), 1 warning") in lines
    assert ("ok    app4sales: logged in to http://127.0.0.1:8765/demo/api/app4sales/ as 'demo' "
            "(administration demo)") in lines
    assert re.search(r"^ok    app4sales: customer index: \d+ customers? \(\d+ enabled\)$", out, re.M), out
    assert [line for line in lines if line.startswith("skip")] == [
        "skip  app4sales: scripts BeforeUpdateCustomers, UpdateCustomers: not checked — the API's only script call "
        "(POST scripts/NAME/run) runs the script; a sync logs and skips a script the administration does not have"]
    if "Started the App4Sales sandbox" in out:  # ours (not another one already on the port): it saw no call
        assert lines[-1] == "note  app4sales: embedded default: Stopped the App4Sales sandbox it had started"
        with sqlite3.connect(tmp_path / "local" / "sandbox.sqlite") as db:
            assert db.execute("SELECT kind FROM events").fetchall() == []

    again = _doctor(tmp_path)  # the sample is there now: left as it is
    assert again.returncode == 0 and "had no customers.xml" not in again.stdout, again.stdout


def test_a_bad_setting_is_one_line_naming_the_variable(tmp_path):
    done = _doctor(tmp_path, MONITOR_BATCH_SIZE="500", MONITOR_FTP_PASSWORD="Pw-never-shown-1")
    _assert_clean(done, "Pw-never-shown-1")
    assert done.returncode == 1
    assert done.stdout == "FAIL  settings: MONITOR_BATCH_SIZE=500 is out of range (1–100)\n"  # no sandbox started


def test_a_refused_connection_is_one_line_naming_host_and_port(tmp_path, sandbox):
    port = free_port()
    done = _doctor(tmp_path, MONITOR_FTP_URL=f"sftp://127.0.0.1:{port}/monitor", MONITOR_FTP_USERNAME="sync",
                   MONITOR_FTP_PASSWORD="Pw-never-shown-2", **sandbox.env())
    _assert_clean(done, "Pw-never-shown-2", sandbox.password)
    assert done.returncode == 1
    assert _fails(done.stdout) == [
        f"FAIL  monitor: cannot connect: connect: connection refused by 127.0.0.1:{port} "
        f"(sftp://sync@127.0.0.1:{port}/monitor): nothing is listening on that port, or a firewall rejects the "
        "connection"]
    assert re.search(r"^ok    app4sales: customer index: 0 customers", done.stdout, re.M), done.stdout  # checked anyway
    assert not SANDBOX_STARTED.search(done.stdout)  # APP4SALES_URL is set: no embedded sandbox


def _sftp_env(server, tmp_path: Path, sandbox, **more: str) -> dict[str, str]:
    return {"MONITOR_FTP_URL": server.url, "MONITOR_FTP_USERNAME": server.username,
            "MONITOR_FTP_PASSWORD": server.password, **sandbox.env(), **more}


@pytest.mark.parametrize("case", ["unknown", "changed", "pinned"])
def test_a_wrong_sftp_host_key_shows_the_fingerprint_and_how_to_pin_it(case, tmp_path, sftp_server_factory, sandbox):
    server = sftp_server_factory()
    write_demo_customers_xml(server.base_dir / "customers.xml")
    other = paramiko.ECDSAKey.generate(bits=256)
    known_hosts = tmp_path / "known_hosts"
    if case == "changed":
        known_hosts.write_text(known_hosts_line("127.0.0.1", server.port, other))
    more = {"MONITOR_SFTP_KNOWN_HOSTS": str(known_hosts)}
    if case == "pinned":
        more["MONITOR_SFTP_HOST_KEY"] = fingerprint(other)
    done = _doctor(tmp_path, **_sftp_env(server, tmp_path, sandbox, **more))
    _assert_clean(done, server.password, sandbox.password)
    assert done.returncode == 1
    fails = _fails(done.stdout)
    assert len(fails) == 1, done.stdout
    seen = server.host_key_fingerprint
    assert fails[0].startswith("FAIL  monitor: host key: "), fails
    assert seen in fails[0] and f"MONITOR_SFTP_HOST_KEY={seen}" in fails[0], fails
    if case == "unknown":
        assert f"is not trusted: its ecdsa-sha2-nistp256 host key {seen} is not in the known_hosts file" in fails[0]
        assert f"ssh-keyscan -p {server.port} 127.0.0.1 >> {known_hosts}" in fails[0]
    elif case == "changed":
        assert "HAS CHANGED" in fails[0] and f"ssh-keyscan -p {server.port} 127.0.0.1 >>" in fails[0]
    else:
        assert f"does not match the pinned MONITOR_SFTP_HOST_KEY={fingerprint(other)}" in fails[0]
        assert fails[0].endswith(f"If the administrator confirms {seen} is the server's key, pin it: "
                                 f"MONITOR_SFTP_HOST_KEY={seen}")
    assert not any(line.startswith("ok    monitor") for line in done.stdout.splitlines())  # stopped there
    assert server.connections == 1  # one attempt, no retries


def test_the_right_sftp_host_key_passes_every_monitor_check(tmp_path, sftp_server_factory, sandbox):
    server = sftp_server_factory()
    write_demo_customers_xml(server.base_dir / "customers.xml")
    done = _doctor(tmp_path, **_sftp_env(server, tmp_path, sandbox, MONITOR_SFTP_HOST_KEY=server.host_key_fingerprint))
    _assert_clean(done, server.password, sandbox.password)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert f"ok    monitor: connected to sftp://monitor@127.0.0.1:{server.port}/monitor" in lines
    assert f"ok    monitor: host key of 127.0.0.1:{server.port} matches the pinned MONITOR_SFTP_HOST_KEY" in lines
    assert "ok    monitor: logged in as 'monitor'" in lines
    assert any(line.startswith("ok    monitor: customers.xml parses (nothing sent): 11 customers") for line in lines)
    assert sandbox.admin_api().events() == []  # nothing was sent to App4Sales


def test_help(capsys):
    from monitor_pipeline import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["doctor", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--tenant NAME" in out and "--timeout SECONDS" in out and "exit status 0" in out


# --- the checks, in process -----------------------------------------------------------------------------------

def test_ftps_passes_with_its_ca_and_fails_clearly_without(env, ftp_server_factory, sandbox):
    server = ftp_server_factory("ftps")
    write_demo_customers_xml(server.base_dir / "customers.xml")
    env(MONITOR_FTP_URL=server.url, MONITOR_FTP_USERNAME=server.username, MONITOR_FTP_PASSWORD=server.password,
        MONITOR_FTP_CA_FILE=server.ca_file, **sandbox.env())
    lines = _lines()
    assert not [line for line in lines if line.startswith("FAIL")], lines
    assert f"ok    monitor: TLS certificate of 127.0.0.1:{server.port} verified" in lines
    folder = f"ftps://monitor@127.0.0.1:{server.port}/monitor"
    assert f"ok    monitor: folder {folder} lists 1 entry; customers.xml is there" in lines, lines

    os.environ.pop("MONITOR_FTP_CA_FILE")
    fails = [line for line in _lines() if line.startswith("FAIL")]
    assert len(fails) == 1 and fails[0].startswith("FAIL  monitor: TLS certificate verification failed: "), fails
    assert f"the TLS certificate of 127.0.0.1:{server.port} is not trusted" in fails[0]
    assert server.password not in fails[0]


def test_a_wrong_app4sales_password_is_a_401_line_without_the_password(env, ftp_server_factory, sandbox):
    server = ftp_server_factory("ftp")
    write_demo_customers_xml(server.base_dir / "customers.xml")
    env(MONITOR_FTP_URL=server.url, MONITOR_FTP_USERNAME=server.username, MONITOR_FTP_PASSWORD=server.password,
        **{**sandbox.env(), "APP4SALES_PASSWORD": "Wrong-pw-never-shown"})
    lines = _lines()
    fails = [line for line in lines if line.startswith("FAIL")]
    assert len(fails) == 1, lines
    assert fails[0].startswith("FAIL  app4sales: authentication: App4Sales GET customers failed (HTTP 401)"), fails
    assert "Wrong-pw-never-shown" not in "\n".join(lines)
    assert any(line.startswith("ok    monitor: customers.xml parses") for line in lines)


def test_an_unreachable_app4sales_is_one_line(env, ftp_server_factory):
    server = ftp_server_factory("ftp")
    write_demo_customers_xml(server.base_dir / "customers.xml")
    port = free_port()
    env(MONITOR_FTP_URL=server.url, MONITOR_FTP_USERNAME=server.username, MONITOR_FTP_PASSWORD=server.password,
        APP4SALES_URL=f"http://127.0.0.1:{port}/acme/api/app4sales/", APP4SALES_USERNAME="sync",
        APP4SALES_PASSWORD="Pw-never-shown-3")
    fails = [line for line in _lines() if line.startswith("FAIL")]
    assert len(fails) == 1, fails
    assert fails[0].startswith("FAIL  app4sales: App4Sales GET customers failed (no HTTP answer): ConnectionError")
    assert "gave up after 1 attempts" in fails[0] and f"(http://127.0.0.1:{port}/acme/api/app4sales/)" in fails[0]
    assert "Pw-never-shown-3" not in fails[0]


def test_a_missing_and_a_broken_customers_xml(env, ftp_server_factory, sandbox):
    server = ftp_server_factory("ftp")
    env(MONITOR_FTP_URL=server.url, MONITOR_FTP_USERNAME=server.username, MONITOR_FTP_PASSWORD=server.password,
        MONITOR_CUSTOMERS_FOLDER="export", **sandbox.env())
    fails = [line for line in _lines() if line.startswith("FAIL")]
    assert len(fails) == 1 and fails[0].startswith("FAIL  monitor: folder not found: "), fails

    (server.base_dir / "export").mkdir()
    fails = [line for line in _lines() if line.startswith("FAIL")]
    assert len(fails) == 1, fails
    assert fails[0].startswith(f"FAIL  monitor: no customers.xml at ftp://monitor@127.0.0.1:{server.port}/monitor/"
                               "export/customers.xml (Monitor has not exported it yet, or MONITOR_CUSTOMERS_FOLDER "
                               "names another folder)"), fails

    (server.base_dir / "export" / "customers.xml").write_text("<customers><customer><customercode>A1",
                                                                encoding="utf-8")
    fails = [line for line in _lines() if line.startswith("FAIL")]
    assert len(fails) == 1, fails
    assert fails[0].startswith("FAIL  monitor: customers.xml rejected, a sync would send nothing: "
                               f"ftp://monitor@127.0.0.1:{server.port}/monitor/export/customers.xml, line 1: "), fails


def _tenants_file(path: Path, north_url: str, south_url: str, app4sales_url: str) -> Path:
    path.write_text(f"""tenants:
  - name: north
    monitor: {{url: '{north_url}', username: monitor, password_env: NORTH_FTP_PASSWORD}}
    app4sales: {{url: '{app4sales_url}', username_env: TEST_A4S_USER, password_env: TEST_A4S_PASSWORD}}
  - name: south
    monitor: {{url: '{south_url}', username: monitor, password_env: NORTH_FTP_PASSWORD}}
    app4sales: {{url: '{app4sales_url}', username_env: TEST_A4S_USER, password_env: TEST_A4S_PASSWORD}}
""", encoding="utf-8")
    return path


def test_tenants_every_one_or_the_one_named(env, tmp_path, ftp_server_factory, sandbox):
    server = ftp_server_factory("ftp")
    write_demo_customers_xml(server.base_dir / "customers.xml")
    port = free_port()
    refused = f"ftp://127.0.0.1:{port}/monitor"
    tenants = _tenants_file(tmp_path / "tenants.yaml", server.url, refused, sandbox.base_url())
    env(MONITOR_TENANTS_FILE=str(tenants), NORTH_FTP_PASSWORD=server.password, TEST_A4S_USER=sandbox.username,
        TEST_A4S_PASSWORD=sandbox.password)

    lines = _lines()
    assert lines[0] == (f"ok    settings: loaded; 2 tenants in {tenants}; checking every one: north, south "
                        "(--tenant NAME checks one)")
    assert [line for line in lines if line.startswith("FAIL")] == [
        f"FAIL  [south] monitor: cannot connect: connect: connection refused by 127.0.0.1:{port} "
        f"(ftp://monitor@127.0.0.1:{port}/monitor): nothing is listening on that port, or a firewall rejects the "
        "connection"]
    assert any(line.startswith("ok    [north] monitor: customers.xml parses") for line in lines), lines
    assert any(line.startswith("ok    [south] app4sales: customer index") for line in lines), lines

    lines = _lines("north")
    assert lines[0] == f"ok    settings: loaded; tenant north of {tenants}"
    assert not [line for line in lines if line.startswith("FAIL") or "[south]" in line], lines

    assert _lines("west") == [f"FAIL  settings: --tenant west: no such tenant in {tenants} (it has: north, south)"]
    os.environ.pop("NORTH_FTP_PASSWORD")
    assert [line for line in _lines("north") if line.startswith("FAIL")] == [
        "FAIL  [north] settings: tenant 'north': Monitor password variable NORTH_FTP_PASSWORD is not set"]


def test_tenant_without_a_tenants_file(env):
    assert _lines("north") == [
        "FAIL  settings: --tenant north: there are no tenants (MONITOR_TENANTS_FILE is not set); leave --tenant "
        "out to check the one tenant of the variables"]
