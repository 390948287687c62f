"""Transient failures: connection refused (retried, then a clear message), a server that starts late,
a server that never answers (timeouts), FTP 421, and an operation that reconnects after a drop."""

from __future__ import annotations

import threading
import time

import paramiko
import pytest

from monitor_pipeline.transport import TransientTransportError, TransportConfig, fingerprint, open_transport
from monitor_pipeline_tests.servers import ftp as ftp_server
from monitor_pipeline_tests.servers import sftp as sftp_server
from monitor_pipeline_tests.servers.ftp import start_ftp_server
from monitor_pipeline_tests.servers.net import SilentServer, free_port
from monitor_pipeline_tests.servers.sftp import start_sftp_server
from monitor_pipeline_tests.transport.conftest import fast_retry


@pytest.mark.parametrize("scheme", ["ftp", "ftps", "sftp"])
def test_connection_refused_is_retried_then_reported_clearly(scheme, tmp_path):
    port = free_port()
    sleeps: list[float] = []
    config = TransportConfig(url=f"{scheme}://127.0.0.1:{port}/base", username="u", password="pw-Zq9",
                             known_hosts=str(tmp_path / "kh"), connect_timeout=2)
    with pytest.raises(TransientTransportError) as info:
        open_transport(config, retry=fast_retry(attempts=3, sleeps=sleeps))
    message = str(info.value)
    assert "connection refused" in message and f"127.0.0.1:{port}" in message
    assert "gave up after 3 attempts" in message and "pw-Zq9" not in message
    assert len(sleeps) == 2 and info.value.transient


@pytest.mark.parametrize("kind", ["ftp", "sftp"])
def test_server_that_starts_late_is_reached_by_retrying(kind, tmp_path):
    port = free_port()
    started = []
    if kind == "ftp":
        config = TransportConfig(url=f"ftp://127.0.0.1:{port}/monitor", username=ftp_server.USERNAME,
                                 password=ftp_server.PASSWORD, connect_timeout=2)
        start = lambda: started.append(start_ftp_server(tmp_path / "root", port=port))  # noqa: E731
    else:
        host_key = paramiko.ECDSAKey.generate(bits=256)  # known before the server exists: pin it
        config = TransportConfig(url=f"sftp://127.0.0.1:{port}/monitor", username=sftp_server.USERNAME,
                                 password=sftp_server.PASSWORD, host_key=fingerprint(host_key), connect_timeout=2)
        start = lambda: started.append(start_sftp_server(tmp_path / "root", port=port, host_key=host_key))  # noqa
    sleeps: list[float] = []
    thread = threading.Thread(target=lambda: (time.sleep(0.3), start()), daemon=True)
    thread.start()
    try:
        with open_transport(config, retry=fast_retry(attempts=30, sleeps=sleeps)) as t:
            t.upload_atomic(b"late", "late.xml")
        assert (started[0].base_dir / "late.xml").read_bytes() == b"late"
        assert len(sleeps) >= 1  # the first attempts were refused and retried
    finally:
        thread.join(5)
        for server in started:
            server.stop()


@pytest.mark.parametrize("scheme", ["ftp", "sftp"])
def test_server_that_never_answers_times_out(scheme, tmp_path):
    silent = SilentServer()
    sleeps: list[float] = []
    config = TransportConfig(url=f"{scheme}://127.0.0.1:{silent.port}/x", username="u", password="p",
                             known_hosts=str(tmp_path / "kh"), connect_timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(TransientTransportError) as info:
            open_transport(config, retry=fast_retry(attempts=2, sleeps=sleeps))
    finally:
        silent.stop()
    assert time.monotonic() - started < 5
    assert f"127.0.0.1:{silent.port}" in str(info.value)
    assert "in time" in str(info.value) and "0.3s" in str(info.value)
    assert len(sleeps) == 1


def test_ftp_421_too_many_connections_is_transient(ftp_server_factory):
    server = ftp_server_factory("ftp", max_cons=2)  # the listener + one client
    first = open_transport(server.config(), retry=fast_retry())
    threading.Timer(0.4, first.close).start()
    sleeps: list[float] = []
    with open_transport(server.config(), retry=fast_retry(attempts=30, sleeps=sleeps)) as second:
        second.upload_atomic(b"2nd", "second.xml")
    assert len(sleeps) >= 1
    assert (server.base_dir / "second.xml").read_bytes() == b"2nd"


def test_ftp_421_gives_a_clear_final_error(ftp_server_factory):
    server = ftp_server_factory("ftp", max_cons=2)
    with open_transport(server.config(), retry=fast_retry()):
        with pytest.raises(TransientTransportError) as info:
            open_transport(server.config(), retry=fast_retry(attempts=2))
    assert "421" in str(info.value) and "gave up after 2 attempts" in str(info.value)


@pytest.mark.parametrize("kind", ["ftp", "ftps", "sftp"])
def test_operations_reconnect_after_the_server_drops_the_connection(kind, ftp_server_factory, sftp_server_factory,
                                                                    tmp_path):
    server = sftp_server_factory() if kind == "sftp" else ftp_server_factory(kind)
    (server.base_dir / "a.xml").write_bytes(b"0123456789")
    sleeps: list[float] = []
    with open_transport(server.config(), retry=fast_retry(attempts=4, sleeps=sleeps)) as t:
        assert t.stat("a.xml").size == 10
        server.drop_connections()
        time.sleep(0.1)
        assert t.stat("a.xml").size == 10           # reconnected and retried
        server.drop_connections()
        time.sleep(0.1)
        t.download("a.xml", tmp_path / "a.xml")     # a download too
        server.drop_connections()
        time.sleep(0.1)
        assert t.listdir() == ["a.xml"]
    assert (tmp_path / "a.xml").read_bytes() == b"0123456789"
    assert len(sleeps) == 3
