"""A customers.xml or extraCustomerData.csv that cannot be used fails the step with a ``dg.Failure`` whose
description names the file on the server (scheme, host, base folder, path; never a password) and the line."""

from __future__ import annotations

import pytest

from monitor_pipeline_tests.defs.customer_sync.frames_harness import run_frames, step_failure
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, sync, write_customers  # noqa: F401 (fixture)


def test_extra_data_row_with_a_trailing_delimiter_fails_naming_file_and_line(sync):
    write_customers(sync.customers_xml, [customer_xml("A1", "Anna AB"), customer_xml("B2", "Bertil AB")])
    (sync.folder / "extra").mkdir()
    (sync.folder / "extra" / "extraCustomerData.csv").write_bytes(
        b"CustomerCode;CustomerName;CustomerNote\nB2;Bertil;\nA1;anna;VIP customer;\n")
    sync.setenv(MONITOR_EXTRA_DATA_FOLDER="extra")
    run = run_frames(sync)
    assert not run.success
    description, metadata = step_failure(run)
    assert description == ("extraCustomerData.csv rejected, nothing will be sent to App4Sales: "
                           f"{sync.folder.as_uri()}/extra/extraCustomerData.csv, line 3: 4 fields, but the header "
                           "has 3 (a ';' at the end of the line?)")
    assert metadata == {"server": sync.folder.as_uri(), "path": "extra/extraCustomerData.csv", "line": 3}


def test_extra_data_duplicated_column_fails_on_sftp_naming_server_path_never_the_password(sync, sftp_server):
    (sftp_server.base_dir / "extra").mkdir()
    write_customers(sftp_server.base_dir / "customers.xml", [customer_xml("A1", "Anna AB")])
    (sftp_server.base_dir / "extra" / "extraCustomerData.csv").write_bytes(
        b"CustomerCode;FixedItemFilter;CustomerNote;itemfilter\nA1;F1;x;F2\n")
    sync.setenv(MONITOR_FTP_URL=sftp_server.url, MONITOR_FTP_USERNAME=sftp_server.username,
                MONITOR_FTP_PASSWORD=sftp_server.password, MONITOR_SFTP_KNOWN_HOSTS=sftp_server.known_hosts,
                MONITOR_EXTRA_DATA_FOLDER="extra")
    run = run_frames(sync)
    assert not run.success
    description, metadata = step_failure(run)
    server = f"sftp://monitor@127.0.0.1:{sftp_server.port}/monitor"
    assert description == ("extraCustomerData.csv rejected, nothing will be sent to App4Sales: "
                           f"{server}/extra/extraCustomerData.csv, line 1: column 4 'itemfilter' repeats column 2 "
                           "'FixedItemFilter' (FixedItemFilter is another name for ItemFilter); each column may "
                           "occur once")
    assert metadata == {"server": server, "path": "extra/extraCustomerData.csv", "line": 1}
    assert sftp_server.password not in run.failure_message() + repr(metadata)


@pytest.mark.parametrize("xml, line, problem", [
    (b'<?xml version="1.0"?>\n<customers>\n<customer><customercode>A1</customercode>\n<customername>x</customer>\n',
     4, "Opening and ending tag mismatch"),
    (b'<?xml version="1.0"?>\n<kunder>\n</kunder>\n', 2, "root element is <kunder>, expected <customers>"),
])
def test_bad_customers_xml_fails_naming_the_server_path_not_the_local_copy(sync, xml, line, problem):
    (sync.folder / "export").mkdir()
    (sync.folder / "export" / "customers.xml").write_bytes(xml)
    sync.setenv(MONITOR_CUSTOMERS_FOLDER="export")
    run = run_frames(sync)
    assert not run.success
    description, metadata = step_failure(run)
    prefix = ("customers.xml rejected, nothing will be sent to App4Sales: "
              f"{sync.folder.as_uri()}/export/customers.xml, line {line}: ")
    assert description.startswith(prefix) and problem in description, description
    local_copy = metadata.pop("local_copy")
    assert local_copy.endswith("customers_xml.xml") and local_copy not in description
    assert metadata == {"server": sync.folder.as_uri(), "path": "export/customers.xml", "line": line}


def test_extra_data_that_cannot_be_downloaded_fails_naming_the_server_path(sync):
    write_customers(sync.customers_xml, [customer_xml("A1", "Anna AB")])
    (sync.folder / "extra" / "extraCustomerData.csv").mkdir(parents=True)  # a folder where the file should be
    sync.setenv(MONITOR_EXTRA_DATA_FOLDER="extra")
    run = run_frames(sync)
    assert not run.success
    description, _metadata = step_failure(run)
    assert description == ("extraCustomerData.csv could not be downloaded: download 'extra/extraCustomerData.csv' "
                           f"on {sync.folder.as_uri()}: is a folder, not a file")
