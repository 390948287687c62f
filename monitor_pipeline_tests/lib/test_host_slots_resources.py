"""The resources take the host slots where they connect: ``MonitorFileTransport.open`` one FTP slot,
``App4SalesApi.session`` up to the calls in flight it asks for. Outside a run's step (a sensor's look)
a full host is one look, a transient error at once: the tick is not held up and nothing is sent."""

from __future__ import annotations

import time

import pytest

from monitor_pipeline.app4sales.errors import App4SalesTransientError
from monitor_pipeline.lib.host_slots import host_slots
from monitor_pipeline.resources import App4SalesApi, MonitorFileTransport
from monitor_pipeline.transport import TransportError


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("MONITOR_STATE_URL", raising=False)
    monkeypatch.setenv("MONITOR_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def _transport(ftp, **kw) -> MonitorFileTransport:
    return MonitorFileTransport(url=ftp.url, username=ftp.username, password=ftp.password, connect_timeout=5.0,
                                read_timeout=5.0, **kw)


def test_open_holds_one_slot_of_its_host_while_connected(ftp_server_factory, state_dir):
    ftp = ftp_server_factory("ftp")
    transport = _transport(ftp, host_connections=2)
    slots = host_slots()
    host = f"127.0.0.1:{ftp.port}"
    with transport.open():
        assert [n for _, n in slots.holders("ftp", host)] == [1]
        with transport.open():
            assert ftp.control_connections == 2 and len(slots.holders("ftp", host)) == 2
            started = time.monotonic()
            with pytest.raises(TransportError) as info:
                with transport.open():
                    pytest.fail("a third connection with MONITOR_FTP_HOST_CONNECTIONS=2")
            assert time.monotonic() - started < 2, "outside a step: one look, no wait"
    assert info.value.transient
    assert "2 of 2 held by pid " in str(info.value) and "MONITOR_FTP_HOST_CONNECTIONS=2" in str(info.value)
    assert ftp.max_control_connections == 2 and len(ftp.control_intervals) == 2, "the third never connected"
    assert slots.holders("ftp", host) == []
    assert (state_dir / "host_slots.sqlite").is_file()


def test_a_local_folder_takes_no_slot(tmp_path):
    with MonitorFileTransport(url=tmp_path.as_uri(), host_connections=1).open():
        with MonitorFileTransport(url=tmp_path.as_uri(), host_connections=1).open():
            pass


def test_session_caps_calls_in_flight_at_the_slots_granted(sandbox):
    api = App4SalesApi(url=sandbox.base_url(), username=sandbox.username, password=sandbox.password,
                       host_connections=4)
    assert api.slot_host == f"127.0.0.1:{sandbox.port}"
    slots = host_slots()
    with slots.acquire("app4sales", api.slot_host, 3, limit=4, owner="run other"):
        with api.session(4) as client:
            assert client.window.maximum == 1  # the one slot left
            assert client.list_customers() == []
        with pytest.raises(App4SalesTransientError, match="MONITOR_APP4SALES_HOST_CONNECTIONS=4"):
            with api.session(2, minimum=2):
                pytest.fail("2 slots granted with 1 free")
    with api.session(8) as client:
        assert client.window.maximum == 4


def test_the_limits_are_the_deployments_for_every_tenant(tmp_path, monkeypatch):
    """MONITOR_FTP_HOST_CONNECTIONS and MONITOR_APP4SALES_HOST_CONNECTIONS hold for every tenant (a
    limit of a host, not of a tenant: tenants on one host share it); a tenants file cannot set them."""
    from monitor_pipeline.errors import ConfigError
    from monitor_pipeline.resources import ConnectorSettings
    from monitor_pipeline.resources.tenancy import MonitorTenancy
    from monitor_pipeline.tenants import load_tenants

    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n"
                    "  - name: north\n"
                    "    monitor: {url: 'ftp://ftp.north:2121/m', password_env: NORTH_PW}\n"
                    "    app4sales: {url: 'https://a4s.example/ADM/api/app4sales/', username: u, password_env: NORTH_PW}\n"
                    "  - name: south\n"
                    "    monitor: {url: 'sftp://ftp.south/m', password_env: NORTH_PW}\n"
                    "    app4sales: {url: 'https://a4s.example:443/SOUTH/api/app4sales/', username: u, "
                    "password_env: NORTH_PW}\n", encoding="utf-8")
    monkeypatch.setenv("NORTH_PW", "pw")
    monkeypatch.setenv("MONITOR_FTP_HOST_CONNECTIONS", "1")
    monkeypatch.setenv("MONITOR_APP4SALES_HOST_CONNECTIONS", "3")
    tenancy = MonitorTenancy(MonitorFileTransport.from_env(), App4SalesApi.from_env(),
                             ConnectorSettings(state_dir=str(tmp_path)), str(path))
    north, south = tenancy.for_tenant("north"), tenancy.for_tenant("south")
    assert (north.monitor_ftp.host_connections, north.monitor_ftp.transport_config().slot_host) == (1, "ftp.north:2121")
    assert (south.monitor_ftp.host_connections, south.monitor_ftp.transport_config().slot_host) == (1, "ftp.south:22")
    assert north.app4sales.slot_host == south.app4sales.slot_host == "a4s.example:443"  # one host, one count
    assert north.app4sales.host_connections == south.app4sales.host_connections == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("password_env: NORTH_PW}", "password_env: NORTH_PW, host_connections: 4}", 1))
    with pytest.raises(ConfigError, match="host_connections"):
        load_tenants(bad)


def test_a_slots_database_that_is_away_is_a_transient_error_before_any_connection(ftp_server_factory, monkeypatch):
    """MONITOR_STATE_URL naming a PostgreSQL where nothing listens: open() fails at once with a transient
    TransportError (a sensor skips its tick), the FTP server saw no connection, no password is shown."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MONITOR_STATE_URL", f"postgresql://slots:Pw-n0t-shown@127.0.0.1:{port}/state")
    ftp = ftp_server_factory("ftp")
    with pytest.raises(TransportError) as info:
        with _transport(ftp).open():
            pytest.fail("connected without a slot")
    message = str(info.value)
    assert info.value.transient and "database of the connection slots could not be used" in message
    assert "Pw-n0t-shown" not in message and ftp.control_intervals == []
