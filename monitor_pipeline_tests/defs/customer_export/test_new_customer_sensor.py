"""``new_customer_sensor`` against the real App4Sales sandbox over HTTP."""

from __future__ import annotations

import socket

import dagster as dg
import pytest

from monitor_pipeline_tests.resources import tenancy
from monitor_pipeline.app4sales.errors import App4SalesAuthError
from monitor_pipeline.errors import ConfigError
from monitor_pipeline.defs.customer_export.job import EXPORT_OP_NAME
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.defs.customer_export.sensor import (
    build_new_customer_sensor,
    new_customer_sensor,
    new_customer_sensor_from_env,
)


def api(sandbox, **kw) -> App4SalesApi:
    kw.setdefault("retry_attempts", 2)
    kw.setdefault("retry_backoff_seconds", 0.01)
    kw.setdefault("username", sandbox.username)
    kw.setdefault("password", sandbox.password)
    return App4SalesApi(url=kw.pop("url", sandbox.base_url()), **kw)


def tick(sensor, cursor, resource):
    with dg.DagsterInstance.ephemeral() as instance, \
            dg.build_sensor_context(cursor=cursor, resources=tenancy(app4sales=resource), instance=instance) as context:
        return sensor(context)  # closed here: its resources' ephemeral instance is not left to the GC


def feed(sandbox) -> list[dict]:
    with sandbox.client() as client:
        return client.new_customers(after=0, take=1000)


def test_requests_one_run_per_customer_and_advances_the_cursor(sandbox):
    admin = sandbox.admin_api()
    created = [admin.create_new_customer(f"Kund {i} AB") for i in range(3)]
    items = {item["CustomerGuid"]: item for item in feed(sandbox)}

    result = tick(new_customer_sensor, None, api(sandbox))
    assert isinstance(result, dg.SensorResult)
    assert result.cursor == str(created[-1]["Sequence"])
    assert [r.run_key for r in result.run_requests] == [c["CustomerGuid"] for c in created]
    for request, customer in zip(result.run_requests, created):
        config = request.run_config["ops"][EXPORT_OP_NAME]["config"]
        assert config == {"customer_guid": customer["CustomerGuid"], "sequence": customer["Sequence"],
                          "xml": items[customer["CustomerGuid"]]["Xml"]}
        assert request.tags["customer_guid"] == customer["CustomerGuid"]
        assert request.tags["sequence"] == str(customer["Sequence"])

    # second tick from the returned cursor: nothing new, cursor kept
    again = tick(new_customer_sensor, result.cursor, api(sandbox))
    assert not (again.run_requests or []) and again.cursor == result.cursor
    assert "no new customers" in again.skip_reason.skip_message

    # a new customer: exactly that one
    newer = admin.create_new_customer("Senare AB")
    third = tick(new_customer_sensor, again.cursor, api(sandbox))
    assert [r.run_key for r in third.run_requests] == [newer["CustomerGuid"]]
    assert third.cursor == str(newer["Sequence"])


def test_empty_feed_skips_with_cursor_zero(sandbox):
    result = tick(new_customer_sensor, None, api(sandbox))
    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests and result.cursor == "0"


def test_pages_through_the_feed_bounded_per_tick(sandbox):
    admin = sandbox.admin_api()
    created = [admin.create_new_customer(f"Page {i}") for i in range(7)]
    sensor = build_new_customer_sensor(True, 1, page_size=2, max_items_per_tick=5)
    first = tick(sensor, "0", api(sandbox))
    assert [r.run_key for r in first.run_requests] == [c["CustomerGuid"] for c in created[:5]]
    assert first.cursor == str(created[4]["Sequence"])
    second = tick(sensor, first.cursor, api(sandbox))
    assert [r.run_key for r in second.run_requests] == [c["CustomerGuid"] for c in created[5:]]
    assert second.cursor == str(created[6]["Sequence"])


def test_more_than_one_page_of_100(sandbox):
    admin = sandbox.admin_api()
    created = [admin.create_new_customer(f"Bulk {i}") for i in range(130)]
    result = tick(new_customer_sensor, "0", api(sandbox))
    assert len(result.run_requests) == 130 and len({r.run_key for r in result.run_requests}) == 130
    assert result.cursor == str(created[-1]["Sequence"])


def test_feed_unavailable_skips_and_keeps_the_cursor(sandbox):
    admin = sandbox.admin_api()
    admin.create_new_customer("Waiting AB")
    admin.add_fault("newcustomers", "GET", status=503, times=20)
    result = tick(new_customer_sensor, "0", api(sandbox))
    assert isinstance(result, dg.SkipReason)
    assert "unavailable" in result.skip_message and "cursor stays at 0" in result.skip_message
    admin.clear_faults()
    later = tick(new_customer_sensor, "0", api(sandbox))
    assert len(later.run_requests) == 1


def test_feed_server_down_skips(sandbox):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/demo/api/app4sales/"
    result = tick(new_customer_sensor, "5", api(sandbox, url=url, connect_timeout=1.0))
    assert isinstance(result, dg.SkipReason)
    assert "cursor stays at 5" in result.skip_message


def test_bad_credentials_fail_the_tick(sandbox):
    with pytest.raises(Exception) as info:
        tick(new_customer_sensor, "0", api(sandbox, password="wrong-password"))
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, App4SalesAuthError) for e in chain), chain
    assert "wrong-password" not in str(info.value)


def test_bad_cursor_is_a_clear_error(sandbox):
    with pytest.raises(Exception, match="not a feed Sequence"):
        tick(new_customer_sensor, "abc", api(sandbox))


def test_settings_from_env():
    default = new_customer_sensor_from_env({})
    assert default.name == "new_customer_sensor"
    assert default.default_status == dg.DefaultSensorStatus.RUNNING
    assert default.minimum_interval_seconds == 30
    assert default.job_name == "export_new_customer_job"
    off = new_customer_sensor_from_env({"MONITOR_CREATE_CUSTOMER": "false", "MONITOR_EXPORT_POLL_SECONDS": "5"})
    assert off.default_status == dg.DefaultSensorStatus.STOPPED and off.minimum_interval_seconds == 5
    with pytest.raises(ConfigError, match="MONITOR_CREATE_CUSTOMER"):
        new_customer_sensor_from_env({"MONITOR_CREATE_CUSTOMER": "maybe"})
    with pytest.raises(ConfigError, match="MONITOR_EXPORT_POLL_SECONDS"):
        new_customer_sensor_from_env({"MONITOR_EXPORT_POLL_SECONDS": "0"})


def test_each_rise_and_fall_of_the_backlog_is_observed_on_the_export_asset(sandbox):
    """``feed_backlog`` (``defs/customer_export/feed_backlog.py``): the customers found this tick plus the
    export runs still queued or running, observed on monitor_customer_files whenever it changes."""
    from dagster._core.test_utils import create_run_for_test

    from monitor_pipeline.defs.customer_export.asset import MONITOR_CUSTOMER_FILES
    from monitor_pipeline.defs.customer_export.job import EXPORT_JOB_NAME

    def backlog_tick(instance, cursor):
        with dg.build_sensor_context(cursor=cursor, instance=instance,
                                     resources=tenancy(app4sales=api(sandbox))) as context:
            result = new_customer_sensor(context)
        for event in result.asset_events:  # what the daemon does with them
            assert event.asset_key == MONITOR_CUSTOMER_FILES
            instance.report_runless_asset_event(event)
        return result, [{k: v.value for k, v in e.metadata.items()} for e in result.asset_events]

    admin = sandbox.admin_api()
    with dg.instance_for_test() as instance:
        assert backlog_tick(instance, None)[1] == []  # nothing ever found, nothing to report
        for i in range(2):
            admin.create_new_customer(f"Kund {i} AB")
        first, seen = backlog_tick(instance, None)
        assert len(first.run_requests) == 2
        assert seen == [{"feed_backlog": 2, "feed_new_customers": 2, "exports_in_progress": 0}]

        running = create_run_for_test(instance, job_name=EXPORT_JOB_NAME, status=dg.DagsterRunStatus.STARTED)
        create_run_for_test(instance, job_name=EXPORT_JOB_NAME, status=dg.DagsterRunStatus.SUCCESS)
        create_run_for_test(instance, job_name="customer_sync_job", status=dg.DagsterRunStatus.STARTED)
        second, seen = backlog_tick(instance, first.cursor)
        assert not second.run_requests
        assert seen == [{"feed_backlog": 1, "feed_new_customers": 0, "exports_in_progress": 1}]
        assert backlog_tick(instance, first.cursor)[1] == []  # unchanged: not observed again

        instance.delete_run(running.run_id)
        assert backlog_tick(instance, first.cursor)[1] == [
            {"feed_backlog": 0, "feed_new_customers": 0, "exports_in_progress": 0}]
        assert backlog_tick(instance, first.cursor)[1] == []
