"""customer_sync_job with ``MONITOR_STORAGE_URL=s3://bucket/prefix`` (moto's S3 server on loopback, the
App4Sales sandbox): the frames and customers.xml live in the bucket only, an unchanged export reuses the
frames there, and a frame deleted from the bucket makes the next run parse again."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from monitor_pipeline_tests.defs.customer_sync.frames_harness import run_frames, step_failure
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, sync, write_customers  # noqa: F401 (fixture)

PREFIX = "monitor/prod"
FRAMES = ("customers", "customer_addresses", "customer_contacts", "customer_dashboards", "customer_rejections")


@pytest.fixture
def on_s3(sync, s3_bucket, tmp_path, monkeypatch):
    """The sync harness with its storage in ``s3_bucket`` under PREFIX, DAGSTER_HOME (whose folder would be
    the default storage) in tmp_path, and the temp folder watched."""
    monkeypatch.delenv("MONITOR_STORAGE_DIR")
    sync.setenv(MONITOR_STORAGE_URL=s3_bucket.url(PREFIX), DAGSTER_HOME=str(tmp_path / "home"))
    sync.instance.storage_directory()  # the ephemeral instance's own temp folder, made before the watch
    temp_root = tmp_path / "tmp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    sync.temp_root = temp_root
    return s3_bucket


def _nothing_local(sync, tmp_path: Path) -> None:
    assert not (tmp_path / "home").exists() and not (tmp_path / "storage").exists()
    assert sorted(sync.temp_root.iterdir()) == []


def test_the_frames_live_in_the_bucket_and_an_unchanged_export_reuses_them(sync, on_s3, tmp_path):
    write_customers(sync.customers_xml, [customer_xml(f"S{i}", f"Kund {i}") for i in range(6)])
    first = sync.run()
    assert first.success, first.failure_message()
    assert first.metadata("customers")["reparsed"] is True
    assert first.metadata()["created"] == 6
    assert on_s3.keys() == sorted([f"{PREFIX}/customers_xml.xml"] + [f"{PREFIX}/{name}.parquet" for name in FRAMES]
                                  + [f"{PREFIX}/customer_changes.parquet"])
    assert on_s3.get(f"{PREFIX}/customers_xml.xml") == sync.customers_xml.read_bytes()
    for name in FRAMES:
        assert first.metadata(name)["path"] == on_s3.url(f"{PREFIX}/{name}.parquet")
    assert first.metadata("customers_xml")["path"] == on_s3.url(f"{PREFIX}/customers_xml.xml")
    _nothing_local(sync, tmp_path)

    second = sync.run()
    assert second.success, second.failure_message()
    assert second.metadata("customers")["reparsed"] is False
    assert second.metadata("customers")["row_count"] == 6
    assert (second.metadata()["sent"], second.metadata()["unchanged"]) == (0, 6)
    _nothing_local(sync, tmp_path)


def test_a_frame_deleted_from_the_bucket_is_made_again(sync, on_s3, tmp_path):
    write_customers(sync.customers_xml, [customer_xml(f"D{i}", f"Kund {i}") for i in range(3)])
    assert sync.run().metadata("customers")["reparsed"] is True
    on_s3.delete(f"{PREFIX}/customer_contacts.parquet")
    again = sync.run()
    assert again.success, again.failure_message()
    assert again.metadata("customers")["reparsed"] is True  # not reused: one of its frames is gone
    assert again.metadata()["sent"] == 0
    assert f"{PREFIX}/customer_contacts.parquet" in on_s3.keys()
    _nothing_local(sync, tmp_path)


def test_a_rejected_customers_xml_names_its_stored_copy_by_url(sync, on_s3, tmp_path):
    sync.customers_xml.write_bytes(b"<customers><customer>")
    run = run_frames(sync)
    description, metadata = step_failure(run)
    assert "customers.xml rejected" in description
    assert metadata["local_copy"] == on_s3.url(f"{PREFIX}/customers_xml.xml")
    _nothing_local(sync, tmp_path)


def test_a_missing_bucket_fails_the_download_step_clearly(sync, on_s3, tmp_path):
    gone = on_s3.url(PREFIX).replace("monitor-test-", "monitor-gone-")
    sync.setenv(MONITOR_STORAGE_URL=gone)
    write_customers(sync.customers_xml, [customer_xml("M1", "Kund")])
    run = run_frames(sync)
    description, metadata = step_failure(run)
    assert description.startswith(f"The asset storage {gone} (MONITOR_STORAGE_URL) could not write customers_xml")
    assert "bucket does not exist" in description and metadata["storage"] == gone
    _nothing_local(sync, tmp_path)
