"""customers_xml_sensor: one request per new settled version; none while growing; none when unchanged."""

import json
import os

import dagster as dg
import pytest

from monitor_pipeline.resources import ConnectorSettings, MonitorFileTransport
from monitor_pipeline.sensors.customers_xml_sensor import build_customers_xml_sensor


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "monitor"
    path.mkdir()
    return path


def tick(sensor, folder, cursor):
    resources = {"monitor_ftp": MonitorFileTransport(url=folder.as_uri()),
                 "connector_settings": ConnectorSettings(state_dir=str(folder.parent / "state"))}
    with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
        return sensor.evaluate_tick(context)


def write(path, data: bytes, mtime: int):
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def test_new_version_requested_once_after_it_settles(folder):
    sensor = build_customers_xml_sensor()
    write(folder / "customers.xml", b"<customers/>", 1_700_000_000)
    first = tick(sensor, folder, None)
    assert first.run_requests == []
    second = tick(sensor, folder, first.cursor)
    assert len(second.run_requests) == 1
    request = second.run_requests[0]
    assert request.run_key == "customers.xml|2023-11-14T22:13:20+00:00|12"
    third = tick(sensor, folder, second.cursor)
    assert third.run_requests == []
    assert "already synced" in third.skip_message
    assert json.loads(third.cursor)["default"]["requested"] == json.loads(second.cursor)["default"]["requested"]


def test_growing_file_is_not_requested(folder):
    sensor = build_customers_xml_sensor()
    target = folder / "customers.xml"
    write(target, b"<customers>", 1_700_000_000)
    cursor = tick(sensor, folder, None).cursor
    write(target, b"<customers><customer>", 1_700_000_005)
    growing = tick(sensor, folder, cursor)
    assert growing.run_requests == []
    assert "waiting one more tick" in growing.skip_message
    settled = tick(sensor, folder, growing.cursor)
    assert [r.run_key for r in settled.run_requests] == ["customers.xml|2023-11-14T22:13:25+00:00|21"]


def test_changed_version_after_a_sync_is_requested_again(folder):
    sensor = build_customers_xml_sensor()
    target = folder / "customers.xml"
    write(target, b"<customers/>", 1_700_000_000)
    cursor = tick(sensor, folder, tick(sensor, folder, None).cursor).cursor
    write(target, b"<customers></customers>", 1_700_000_100)
    cursor = tick(sensor, folder, cursor).cursor
    again = tick(sensor, folder, cursor)
    assert len(again.run_requests) == 1
    assert again.run_requests[0].run_key.endswith("|23")


def test_missing_file_skips_with_reason(folder):
    result = tick(build_customers_xml_sensor(), folder, None)
    assert result.run_requests == []
    assert "No customers.xml yet" in result.skip_message
