"""new_customer_sensor over two tenants whose first App4Sales does not answer (issue #12): the other
tenant's export runs are requested in the same tick, within the per-tenant deadline; the silent one keeps
its Sequence, is named, and backs off."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from monitor_pipeline.defs.customer_export.sensor import build_new_customer_sensor
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.tenants import load_tenants
from monitor_pipeline_tests.defs.sensor_tenants import Clock, tenants_file, tick
from monitor_pipeline_tests.resources import tenancy
from monitor_pipeline_tests.servers.hostile import HangingServer

SECONDS = 2.0
MARGIN = 3.0
POLL = 30


@pytest.fixture
def admins(sandbox, monkeypatch) -> dict[str, str]:
    for name in ("north", "south"):
        monkeypatch.setenv(f"{name.upper()}_APP4SALES_PASSWORD", sandbox.password)
        monkeypatch.setenv(f"{name.upper()}_FTP_PASSWORD", "unused")
    return {"north": sandbox.admin + "-n", "south": sandbox.admin + "-s"}


def setup(tmp_path: Path, sandbox, urls: dict[str, str], clock: Clock, name: str = "tenants.yaml"):
    path = tenants_file(tmp_path / name, {tenant: {"app4sales": url, "app4sales_username": sandbox.username}
                                          for tenant, url in urls.items()})
    sensor = build_new_customer_sensor(True, POLL, tenants=load_tenants(path), tenant_seconds=SECONDS, clock=clock)
    return sensor, tenancy(app4sales=App4SalesApi(url=sandbox.base_url(), username=sandbox.username,
                                                  password=sandbox.password), tenants_file=str(path))


def test_a_feed_that_hangs_does_not_hold_up_the_other_tenants_exports(tmp_path, sandbox, admins):
    north, south = sandbox.admin_api(admins["north"]), sandbox.admin_api(admins["south"])
    north.create_new_customer("Nord AB")
    created = south.create_new_customer("Syd AB")
    north.add_fault("newcustomers", "GET", delay=8, times=2)  # App4Sales takes the call, answers too late
    clock = Clock()
    sensor, resources = setup(tmp_path, sandbox, {t: sandbox.base_url(a) for t, a in admins.items()}, clock)
    try:
        with dg.instance_for_test() as instance:
            first = tick(sensor, resources, None, instance)
        assert first.seconds < SECONDS + MARGIN, first.seconds
        assert [r.run_key for r in first.requests] == [f"south:{created['CustomerGuid']}"]
        # the backlog of the tenant that answered, in its partition; none for the silent one
        assert [(e.partition, e.metadata["feed_backlog"].value) for e in first.result.asset_events] == [("south", 1)]
        warned = first.log_text("warning")
        assert "north: App4Sales new-customer feed unavailable" in warned and "within 2 s" in warned
        assert "unreachable 1 time in a row, next look in 30 s" in warned
        cursor = json.loads(first.cursor)
        assert cursor["north"] == 0 and cursor["south"] == created["Sequence"]
        assert cursor["_backoff"]["north"]["failures"] == 1

        clock.advance(POLL)
        second = tick(sensor, resources, first.cursor)  # nothing new for south: the skip reason names north
        assert second.requests == [] and second.seconds < SECONDS + MARGIN
        assert "north: App4Sales new-customer feed unavailable" in second.skip
        assert "unreachable 2 times in a row, next look in 60 s" in second.skip
        clock.advance(POLL)
        third = tick(sensor, resources, second.cursor)
        assert "north: unreachable 2 times, next look in 30 s" in third.skip  # not looked at
    finally:
        north.clear_faults()
    clock.advance(POLL)
    back = tick(sensor, resources, third.cursor)
    assert [r.partition_key for r in back.requests] == ["north"]
    assert "_backoff" not in json.loads(back.cursor)


def test_a_server_that_never_answers_http(tmp_path, sandbox, admins):
    created = sandbox.admin_api(admins["south"]).create_new_customer("Syd AB")
    clock = Clock()
    with HangingServer() as hung:
        sensor, resources = setup(tmp_path, sandbox, {"north": f"http://127.0.0.1:{hung.port}/north/api/app4sales/",
                                                      "south": sandbox.base_url(admins["south"])}, clock)
        result = tick(sensor, resources, None)
    assert result.seconds < SECONDS + MARGIN, result.seconds
    assert [r.run_key for r in result.requests] == [f"south:{created['CustomerGuid']}"]
    assert "north: App4Sales new-customer feed unavailable" in result.log_text("warning")
    assert hung.connections == 1  # one attempt


def test_a_rejected_login_of_one_tenant_does_not_hide_the_others_exports(tmp_path, sandbox, admins, monkeypatch):
    monkeypatch.setenv("NORTH_APP4SALES_PASSWORD", "wrong-password")
    created = sandbox.admin_api(admins["south"]).create_new_customer("Syd AB")
    clock = Clock()
    sensor, resources = setup(tmp_path, sandbox, {t: sandbox.base_url(a) for t, a in admins.items()}, clock)
    result = tick(sensor, resources, None)
    assert [r.run_key for r in result.requests] == [f"south:{created['CustomerGuid']}"]
    assert "north: App4SalesAuthError" in result.log_text("error")
    assert json.loads(result.cursor)["_backoff"]["north"]["permanent"] is True
    assert "wrong-password" not in result.log_text() + result.cursor
