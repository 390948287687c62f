"""customers_xml_sensor over two tenants whose first Monitor server hangs (issue #12): the tick ends within
the per-tenant deadline, the other tenant's run is requested in the same tick, the hung one is named,
keeps its state and is looked at less and less often until it answers again."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from tempfile import mkdtemp

import dagster as dg
import pytest

from monitor_pipeline.defs.customer_sync.sensor import build_customers_xml_sensor
from monitor_pipeline.defs.tenant_looks import backoff_seconds, in_words
from monitor_pipeline.resources import MonitorFileTransport
from monitor_pipeline.tenants import load_tenants
from monitor_pipeline_tests.defs.sensor_tenants import Clock, tenants_file, tick
from monitor_pipeline_tests.resources import tenancy
from monitor_pipeline_tests.servers.ftp import start_ftp_server
from monitor_pipeline_tests.servers.hostile import HangingServer

SECONDS = 2.0        # the per-tenant deadline of these tests (MONITOR_SENSOR_TENANT_SECONDS)
MARGIN = 3.0         # what a tick may take beyond it (the tick's grace second, thread start, a loaded machine)
INTERVAL = 60        # the sensor's minimum interval: the unit of the backoff


@pytest.fixture
def ftp(tmp_path, monkeypatch):
    server = start_ftp_server(tmp_path / "ftp-root", base="")
    for name in ("north", "south"):
        (server.root / name).mkdir()
        monkeypatch.setenv(f"{name.upper()}_FTP_PASSWORD", server.password)
        monkeypatch.setenv(f"{name.upper()}_APP4SALES_PASSWORD", "unused")
    write(server.root / "south" / "customers.xml", b"<customers/>", 1_700_000_000)
    yield server
    server.stop()


def write(path, data: bytes, mtime: int) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def resources(tmp_path, monitor_urls: dict[str, str], file_name: str = "tenants.yaml") -> dict:
    path = tenants_file(tmp_path / file_name, {name: {"monitor": url} for name, url in monitor_urls.items()})
    return tenancy(MonitorFileTransport(), state_dir=str(tmp_path / "state"), tenants_file=str(path))


def sensor(clock: Clock, seconds: float = SECONDS):
    """The sensor of a deployment with the tenants north and south (their servers: the resources')."""
    tenants = load_tenants(tenants_file(Path(mkdtemp()) / "tenants.yaml", {"north": {}, "south": {}}))
    return build_customers_xml_sensor(tenants, minimum_interval_seconds=INTERVAL, tenant_seconds=seconds, clock=clock)


def times(n: int) -> str:
    return "1 time" if n == 1 else f"{n} times"


def backoff(cursor: str) -> dict:
    return json.loads(cursor).get("_backoff", {})


@pytest.mark.parametrize("greeting", [b"", b"220 Monitor FTP ready\r\n"], ids=["no-greeting", "greeting-then-silence"])
def test_a_hung_server_holds_up_neither_the_tick_nor_the_other_tenant(tmp_path, ftp, greeting):
    clock = Clock()
    with HangingServer(greeting) as hung:
        peers = resources(tmp_path, {"north": f"ftp://127.0.0.1:{hung.port}/", "south": f"{ftp.url}/south"})
        watch = sensor(clock)

        first = tick(watch, peers, None)
        assert first.seconds < SECONDS + MARGIN, first.seconds
        assert first.requests == []
        assert "north: not reachable" in first.skip and "unreachable 1 time in a row, next look in 60 s" in first.skip
        assert "south: customers.xml" in first.skip and "waiting one more tick" in first.skip
        state = json.loads(first.cursor)
        assert state["south"]["candidate"].endswith("|12")
        assert state["_backoff"]["north"]["failures"] == 1 and "north" not in state  # nothing seen yet, nothing lost
        assert hung.connections == 1

        clock.advance(INTERVAL)  # north is due again, and fails again; south's version has settled
        second = tick(watch, peers, first.cursor)
        assert second.seconds < SECONDS + MARGIN, second.seconds
        assert [(r.partition_key, r.run_key) for r in second.requests] == [
            ("south", "south|customers.xml|2023-11-14T22:13:20+00:00|12")]
        assert "north: not reachable" in second.log_text("warning")  # no skip reason beside run requests
        assert "unreachable 2 times in a row, next look in 2 min" in second.log_text("warning")
        assert backoff(second.cursor)["north"]["failures"] == 2
        assert hung.connections == 2


def test_backoff_grows_is_shown_and_resets_when_the_server_answers(tmp_path, ftp):
    clock = Clock()
    watch = sensor(clock, seconds=1.0)  # six failing looks: keep them short
    with HangingServer() as hung:
        peers = resources(tmp_path, {"north": f"ftp://127.0.0.1:{hung.port}/", "south": f"{ftp.url}/south"})
        cursor = tick(watch, peers, None).cursor  # north's first failure: looked at again one interval later
        for failures in range(2, 7):
            waited = backoff_seconds(failures - 1, INTERVAL)  # 60, 120, 240, 480, 600 s
            for _ in range(int(waited // INTERVAL) - 1):  # the ticks in between: north is not looked at
                clock.advance(INTERVAL)
                quiet = tick(watch, peers, cursor)
                assert hung.connections == failures - 1  # not looked at
                assert f"north: unreachable {times(failures - 1)}, next look in " in quiet.skip
                assert "(last: not reachable (connect ftp://monitor@127.0.0.1" in quiet.skip
                assert backoff(quiet.cursor)["north"]["failures"] == failures - 1
                cursor = quiet.cursor
            clock.advance(INTERVAL)
            failing = tick(watch, peers, cursor)
            assert hung.connections == failures
            record = backoff(failing.cursor)["north"]
            assert record["failures"] == failures and record["permanent"] is False
            assert record["next_look"] == datetime.fromtimestamp(clock.now + backoff_seconds(failures, INTERVAL),
                                                                 timezone.utc).isoformat(timespec="seconds")
            said = failing.skip + failing.log_text("warning")
            assert (f"unreachable {failures} times in a row, next look in "
                    f"{in_words(backoff_seconds(failures, INTERVAL))}") in said
            cursor = failing.cursor
        assert record["failures"] == 6 and "next look in 10 min" in said  # the cap
        assert json.loads(cursor)["south"]["requested"].endswith("|12")  # south went on all along

    # north's server answers again (the tenants file now points at a working one): looked at when due, reset
    write(ftp.root / "north" / "customers.xml", b"<customers></customers>", 1_700_000_100)
    answering = resources(tmp_path, {"north": f"{ftp.url}/north", "south": f"{ftp.url}/south"}, "tenants-2.yaml")
    clock.advance(600)
    back = tick(watch, answering, cursor)
    assert "_backoff" not in json.loads(back.cursor)
    assert json.loads(back.cursor)["north"]["candidate"].endswith("|23")
    assert "north: customers.xml" in back.skip and "waiting one more tick" in back.skip
    clock.advance(INTERVAL)
    settled = tick(watch, answering, back.cursor)
    assert [r.partition_key for r in settled.requests] == ["north"]


def test_a_candidate_version_survives_a_failing_tick(tmp_path, ftp):
    """A version seen once stays the candidate while the server is away; when it is back with the same
    version, that version is settled and requested at once."""
    clock = Clock()
    watch = sensor(clock)
    write(ftp.root / "north" / "customers.xml", b"<customers/>", 1_700_000_000)
    working = resources(tmp_path, {"north": f"{ftp.url}/north", "south": f"{ftp.url}/south"})
    seen = tick(watch, working, None)
    candidate = json.loads(seen.cursor)["north"]["candidate"]
    with HangingServer() as hung:
        hanging = resources(tmp_path, {"north": f"ftp://127.0.0.1:{hung.port}/", "south": f"{ftp.url}/south"},
                            "tenants-hung.yaml")
        clock.advance(INTERVAL)
        away = tick(watch, hanging, seen.cursor)
    assert json.loads(away.cursor)["north"] == {"candidate": candidate}
    assert [r.partition_key for r in away.requests] == ["south"]
    clock.advance(INTERVAL)
    back = tick(watch, working, away.cursor)
    assert [r.partition_key for r in back.requests] == ["north"]
    assert "_backoff" not in json.loads(back.cursor)


def test_a_permanent_error_of_one_tenant_does_not_hide_the_others_runs(tmp_path, ftp, monkeypatch):
    monkeypatch.setenv("NORTH_FTP_PASSWORD", "wrong-Secret-42")  # the real server refuses north's login
    clock = Clock()
    watch = sensor(clock)
    peers = resources(tmp_path, {"north": f"{ftp.url}/north", "south": f"{ftp.url}/south"})
    first = tick(watch, peers, None)
    assert "north: TransportAuthError" in first.skip and "failed 1 time in a row" in first.skip
    assert "north: TransportAuthError" in first.log_text("error")
    assert backoff(first.cursor)["north"]["permanent"] is True
    clock.advance(INTERVAL)
    second = tick(watch, peers, first.cursor)
    assert [r.partition_key for r in second.requests] == ["south"]
    assert "north: TransportAuthError" in second.log_text("error")
    assert "wrong-Secret-42" not in first.skip + second.log_text() + first.cursor + second.cursor
    clock.advance(INTERVAL)
    third = tick(watch, peers, second.cursor)  # north backs off; its reason says what failed
    assert "north: failed 2 times, next look in" in third.skip and "TransportAuthError" in third.skip


def test_the_deadline_caps_the_servers_own_timeouts(tmp_path, ftp):
    """A look makes one attempt whose connect timeout is the deadline, not the 15 s × 4 attempts of a run."""
    clock = Clock()
    with HangingServer() as hung:
        peers = resources(tmp_path, {"north": f"ftp://127.0.0.1:{hung.port}/", "south": f"{ftp.url}/south"})
        result = tick(sensor(clock, seconds=1.0), peers, None)
    assert result.seconds < 1.0 + MARGIN
    assert "connect timeout 1s" in result.skip and hung.connections == 1


def test_the_deployments_sensors_take_their_deadline_from_the_setting(tmp_path, ftp, monkeypatch):
    """build_defs: both sensors look at each tenant for MONITOR_SENSOR_TENANT_SECONDS; the file sensor's run
    request for the answering tenant resolves against the real job (partition and tags)."""
    from monitor_pipeline.definitions import build_defs

    with HangingServer() as hung:
        hanging = f"127.0.0.1:{hung.port}"
        path = tenants_file(tmp_path / "tenants.yaml", {
            "north": {"monitor": f"ftp://{hanging}/", "app4sales": f"http://{hanging}/north/api/app4sales/"},
            "south": {"monitor": f"{ftp.url}/south"}})
        for name, value in {"MONITOR_TENANTS_FILE": str(path), "MONITOR_SENSOR_TENANT_SECONDS": "1",
                            "MONITOR_STORAGE_DIR": str(tmp_path / "storage"),
                            "MONITOR_STATE_DIR": str(tmp_path / "state")}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("MONITOR_FTP_URL", raising=False)
        defs = build_defs()
        repository = defs.get_repository_def()
        bound = {"resources": defs.resources, "repository_def": repository}
        cursor = None
        for _ in range(2):
            with dg.build_sensor_context(cursor=cursor, **bound) as context:
                context.resources  # noqa: B018 - built before the clock starts
                started = time.monotonic()
                data = repository.get_sensor_def("customers_xml_sensor").evaluate_tick(context)
                assert time.monotonic() - started < 1 + MARGIN
            cursor = data.cursor
        assert [(r.partition_key, r.tags["monitor_pipeline/tenant"]) for r in data.run_requests] == [
            ("south", "south")]
        assert backoff(cursor)["north"]["failures"] == 1  # the second tick came before its next look

        with dg.DagsterInstance.ephemeral() as instance, \
                dg.build_sensor_context(instance=instance, **bound) as context:  # as the daemon's tick has one
            context.resources  # noqa: B018
            started = time.monotonic()
            export = repository.get_sensor_def("new_customer_sensor").evaluate_tick(context)
            assert time.monotonic() - started < 1 + MARGIN
        assert "north: App4Sales new-customer feed unavailable" in export.skip_message
        assert "south: App4Sales new-customer feed unavailable" in export.skip_message  # nothing listens on :9
