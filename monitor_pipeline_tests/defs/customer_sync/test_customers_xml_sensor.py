"""customers_xml_sensor: one request per new settled version; none while growing; none when unchanged."""

import json
import os

import dagster as dg
import pytest

from monitor_pipeline.resources import MonitorFileTransport
from monitor_pipeline_tests.resources import tenancy
from monitor_pipeline.defs.customer_sync.sensor import build_customers_xml_sensor
from monitor_pipeline.transport import TransportAuthError


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "monitor"
    path.mkdir()
    return path


def tick(sensor, folder, cursor):
    resources = tenancy(MonitorFileTransport(url=folder.as_uri()), state_dir=str(folder.parent / "state"))
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


def _ftp_tick(url: str, password: str, tmp_path):
    resources = tenancy(MonitorFileTransport(url=url, username="monitor", password=password,
                                             connect_timeout=2, read_timeout=2), state_dir=str(tmp_path / "state"))
    with dg.build_sensor_context(cursor=None, resources=resources) as context:
        return build_customers_xml_sensor().evaluate_tick(context)


def test_unreachable_server_skips_the_tick_with_the_reason(tmp_path):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _ftp_tick(f"ftp://127.0.0.1:{port}/monitor", "pw", tmp_path)
    assert result.run_requests == []
    assert "not reachable" in result.skip_message and str(port) in result.skip_message


def test_bad_credentials_fail_the_tick_without_the_password(tmp_path):
    from monitor_pipeline_tests.servers.ftp import start_ftp_server

    server = start_ftp_server(tmp_path / "ftp")
    try:
        with pytest.raises(Exception) as info:
            _ftp_tick(server.url, "wrong-Secret-42", tmp_path)
    finally:
        server.stop()
    chain, error = [], info.value
    while error is not None:
        chain.append(error)
        error = error.__cause__
    assert any(isinstance(e, TransportAuthError) for e in chain), chain
    assert all("wrong-Secret-42" not in str(e) for e in chain)
