"""TenantLooks, the sensors' way of looking at many tenants in one tick: a look still stuck after the deadline
neither holds up the tick nor piles up across ticks; the backoff schedule."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest

from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.errors import ConfigError
from monitor_pipeline.defs.tenant_looks import Outcome, TenantLooks, backoff_seconds, in_words
from monitor_pipeline_tests.defs.sensor_tenants import Clock

SECONDS = 0.5


def test_a_stuck_look_is_left_behind_and_never_started_twice():
    release = threading.Event()
    calls: list[str] = []

    def look(tenant, seconds, log):
        calls.append(tenant)
        if tenant == "north":
            release.wait(30)  # a look that ignores its deadline (a DNS lookup, a call without a timeout)
        return Outcome(state={"seen": tenant}, reason=f"{tenant}: fine")

    clock = Clock()
    looks = TenantLooks("test_sensor", SECONDS, 10, clock)
    threads_before = threading.active_count()
    try:
        with dg.build_sensor_context() as context:
            started = time.monotonic()
            first = looks.tick(context, ["north", "south"], look, backoff={}, is_transient=lambda e: True)
            assert time.monotonic() - started < SECONDS + TenantLooks.GRACE_SECONDS + 1.5
            assert first.states == {"south": {"seen": "south"}}  # north's state is not touched
            assert "north: no answer within 0.5 s (MONITOR_SENSOR_TENANT_SECONDS)" in first.reasons[0]
            assert first.reasons[1] == "south: fine"
            assert looks.still_running() == ["north"]

            for _ in range(3):  # due again, but its look is still running: not started again
                clock.advance(60)
                later = looks.tick(context, ["north", "south"], look, backoff=first.backoff,
                                   is_transient=lambda e: True)
                assert later.reasons[0].startswith("north: still waiting for the previous look (started ")
                assert "north" not in later.states and later.backoff == first.backoff
            assert calls.count("north") == 1 and calls.count("south") == 4
            assert threading.active_count() <= threads_before + 1  # only the one stuck look

            release.set()
            deadline = time.monotonic() + 5
            while looks.still_running() and time.monotonic() < deadline:
                time.sleep(0.02)
            clock.advance(60)
            again = looks.tick(context, ["north", "south"], look, backoff=first.backoff, is_transient=lambda e: True)
            assert again.states["north"] == {"seen": "north"} and again.backoff == {}  # its late result is not used
            assert calls.count("north") == 2
    finally:
        release.set()


def test_permanent_errors_are_named_or_raised():
    def look(tenant, seconds, log):
        if tenant == "north":
            raise PermissionError("login refused")
        log.warning(f"{tenant}: a warning from the look's thread")
        return Outcome(state=1)

    looks = TenantLooks("test_sensor", SECONDS, 10, Clock())
    with dg.build_sensor_context() as context:
        found = looks.tick(context, ["north", "south"], look, backoff={}, is_transient=lambda e: False)
        assert found.reasons == found.errors == [
            "north: PermissionError: login refused — failed 1 time in a row, next look in 10 s"]
        assert found.backoff["north"]["permanent"] is True and found.states == {"south": 1}
        without_north = looks.tick(context, ["south"], look, backoff=found.backoff, is_transient=lambda e: False)
        assert without_north.backoff == {}  # a tenant no longer in the file leaves no record behind
        with pytest.raises(PermissionError):
            TenantLooks("single", SECONDS, 10, Clock()).tick(context, ["north"], look, backoff=None,
                                                              is_transient=lambda e: False, raise_permanent=True)


def test_backoff_doubles_from_one_interval_up_to_ten_minutes():
    assert [backoff_seconds(n, 60) for n in range(1, 8)] == [60, 120, 240, 480, 600, 600, 600]
    assert [backoff_seconds(n, 1) for n in (1, 2, 3, 10, 11)] == [1, 2, 4, 512, 600]
    assert backoff_seconds(3, 900) == 900  # never less than one interval
    assert (in_words(45), in_words(240), in_words(600)) == ("45 s", "4 min", "10 min")


def test_the_deadline_setting():
    assert DeploymentSettings.from_env({}).sensor_tenant_seconds == 20
    assert DeploymentSettings.from_env({"MONITOR_SENSOR_TENANT_SECONDS": "7.5"}).sensor_tenant_seconds == 7.5
    for value, message in (("0", r"MONITOR_SENSOR_TENANT_SECONDS=0(\.0)? is out of range \(1–40 s\)"),
                           ("60", r"MONITOR_SENSOR_TENANT_SECONDS=60(\.0)? is out of range \(1–40 s\)")):
        with pytest.raises(ConfigError, match=message):
            DeploymentSettings.from_env({"MONITOR_SENSOR_TENANT_SECONDS": value})
