"""customers_xml: downloaded with size, mtime and SHA-256; refused while it is still being written."""

import hashlib
import os
from datetime import UTC, datetime

import pytest

from monitor_pipeline.transport.fetch import FileStillBeingWritten, download_when_stable, server_location
from monitor_pipeline.transport import TransportConfig, open_transport
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, sync, write_customers  # noqa: F401 (fixture)


def test_stable_file_is_downloaded_with_its_digest(tmp_path):
    folder = tmp_path / "monitor"
    folder.mkdir()
    data = b"<customers><customer/></customers>"
    (folder / "customers.xml").write_bytes(data)
    os.utime(folder / "customers.xml", (1_700_000_000, 1_700_000_000))
    with open_transport(TransportConfig(url=folder.as_uri())) as transport:
        fetched = download_when_stable(transport, "customers.xml", tmp_path / "out.xml", stability_seconds=0.01)
    assert (fetched.size, fetched.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert fetched.mtime == datetime.fromtimestamp(1_700_000_000, UTC)
    assert (tmp_path / "out.xml").read_bytes() == data


def test_file_growing_between_the_two_looks_is_refused(tmp_path):
    folder = tmp_path / "monitor"
    folder.mkdir()
    target = folder / "customers.xml"
    target.write_bytes(b"<customers>")

    def monitor_still_writing(_seconds):
        with open(target, "ab") as handle:
            handle.write(b"<customer>")

    with open_transport(TransportConfig(url=folder.as_uri())) as transport:
        with pytest.raises(FileStillBeingWritten) as info:
            download_when_stable(transport, "customers.xml", tmp_path / "out.xml", stability_seconds=5,
                                 sleep=monitor_still_writing)
    message = str(info.value)
    assert "customers.xml is still being written" in message and "size 11 → 21" in message
    assert folder.as_uri() in message
    assert not (tmp_path / "out.xml").exists()


def test_materialization_metadata(sync):
    write_customers(sync.customers_xml, [customer_xml("A1", "Alfa")])
    run = sync.run()
    assert run.success, run.failure_message()
    meta = run.metadata("customers_xml")
    data = sync.customers_xml.read_bytes()
    assert meta["size_bytes"] == len(data)
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["server_mtime"] == pytest.approx(sync.customers_xml.stat().st_mtime, abs=1)
    assert meta["source"] == f"{sync.folder.as_uri()}/customers.xml"


def test_missing_export_fails_naming_server_and_path(sync):
    sync.setenv(MONITOR_CUSTOMERS_FOLDER="export")
    (sync.folder / "export").mkdir()
    run = sync.run()
    assert not run.success
    message = run.failure_message()
    assert "customers.xml" in message and "export" in message and sync.folder.as_uri() in message


@pytest.mark.parametrize("url, username, tls, remote, expected", [
    ("sftp://ftp.example/base", "monitor", False, "extra/extraCustomerData.csv",
     "sftp://monitor@ftp.example:22/base/extra/extraCustomerData.csv"),
    ("sftp://ftp.example", "", False, "customers.xml", "sftp://ftp.example:22/~/customers.xml"),
    ("sftp://ftp.example:2222/~/monitor", "", False, "./customers.xml",
     "sftp://ftp.example:2222/~/monitor/customers.xml"),
    ("ftp://ftp.example/data/", "bob", True, "customers.xml", "ftp://bob@ftp.example:21/data/customers.xml (TLS)"),
    ("file:///srv/monitor", "", False, "customers.xml", "file:///srv/monitor/customers.xml"),
])
def test_server_location_names_scheme_user_host_port_and_path_never_the_password(url, username, tls, remote,
                                                                                 expected):
    config = TransportConfig(url=url, username=username, password="pa55-word", tls=tls)
    assert server_location(config, remote) == expected
