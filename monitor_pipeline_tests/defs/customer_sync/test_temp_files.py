"""The temp folders of the download steps (``customers_xml-*``, ``extra-data-*``) are gone when the step
ends, after a successful run and after a failing one."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from monitor_pipeline_tests.defs.customer_sync.frames_harness import run_frames
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, sync, write_customers  # noqa: F401 (fixture)


@pytest.fixture
def temp_root(sync, tmp_path, monkeypatch) -> Path:
    """The folder ``tempfile`` hands out from now on. The ephemeral instance makes its own temp folder for
    local artifacts on first use; that one is made before, outside (the instance removes it on dispose)."""
    sync.instance.storage_directory()
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _with_extra_data(sync, csv: bytes) -> None:
    (sync.folder / "extra").mkdir()
    (sync.folder / "extra" / "extraCustomerData.csv").write_bytes(csv)
    sync.setenv(MONITOR_EXTRA_DATA_FOLDER="extra")


def test_nothing_is_left_after_a_successful_run(sync, temp_root):
    write_customers(sync.customers_xml, [customer_xml("A1", "Anna AB")])
    _with_extra_data(sync, b"CustomerCode;CustomerNote\nA1;call first\n")
    run = run_frames(sync)
    assert run.success, run.failure_message()
    assert run.metadata("customers_xml")["size_bytes"] == sync.customers_xml.stat().st_size
    assert run.metadata("customers")["row_count"] == 1
    assert sorted(temp_root.iterdir()) == []


def test_nothing_is_left_when_the_download_fails(sync, temp_root):
    run = run_frames(sync)  # no customers.xml in the folder
    assert not run.success
    assert "customers.xml" in run.failure_message()
    assert sorted(temp_root.iterdir()) == []


def test_nothing_is_left_when_the_extra_data_is_rejected(sync, temp_root):
    write_customers(sync.customers_xml, [customer_xml("A1", "Anna AB")])
    _with_extra_data(sync, b"CustomerCode;CustomerNote\nA1;call first;\n")
    run = run_frames(sync)
    assert not run.success
    assert "extraCustomerData.csv, line 2" in run.failure_message()
    assert sorted(temp_root.iterdir()) == []


def test_nothing_is_left_when_customers_xml_is_rejected(sync, temp_root):
    sync.customers_xml.write_bytes(b"<customers><customer>")
    run = run_frames(sync)
    assert not run.success
    assert "customers.xml rejected" in run.failure_message()
    assert sorted(temp_root.iterdir()) == []
