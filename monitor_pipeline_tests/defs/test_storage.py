"""``monitor_storage`` (MonitorStorage): frames as Parquet and the raw file as itself, in a local folder or on
an object store (moto's S3 server on loopback, reached through s3fs with only the standard AWS variables,
``AWS_ENDPOINT_URL`` included: nothing passes the endpoint explicitly)."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from monitor_pipeline.resources.storage import BLOCK, MonitorStorage, StoredFile, _upload
from monitor_pipeline_tests.servers.s3 import SECRET_ACCESS_KEY

FRAME = pd.DataFrame({"CustomerCode": ["A1", "B2", "C3"], "CustomerName": ["Alfa AB", "Beta", "Gåsa ÅÄÖ"],
                      "Score": [1.5, None, 3.0]})
TENANTS = dg.StaticPartitionsDefinition(["acme", "beta.se"])


@pytest.fixture
def temp_root(tmp_path, monkeypatch) -> Path:
    """The folder ``tempfile`` hands out during the test (after the ephemeral instance made its own)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _assets(raw_bytes: bytes, seen: dict, partitions: dg.PartitionsDefinition | None = None):
    @dg.asset(io_manager_key="monitor_storage", partitions_def=partitions)
    def frame() -> pd.DataFrame:
        return FRAME

    @dg.asset(io_manager_key="monitor_storage", partitions_def=partitions)
    def raw():
        """Like customers_xml: the file in a temp folder the storage takes it from, gone after the step."""
        with tempfile.TemporaryDirectory(prefix="raw-") as folder:
            path = Path(folder) / "customers.xml"
            path.write_bytes(raw_bytes)
            yield dg.Output(path)

    @dg.asset(partitions_def=partitions, io_manager_key="monitor_storage")
    def reader(frame: pd.DataFrame, raw: StoredFile) -> None:
        seen["frame"] = frame
        seen["location"] = raw.location
        with raw.local_path() as local:
            seen["local"] = local
            seen["sha256"] = hashlib.sha256(local.read_bytes()).hexdigest()
        seen["local_exists_after"] = local.exists()

    return [frame, raw, reader]


def _materialize(storage: MonitorStorage, assets, partition: str | None = None, instance=None):
    return dg.materialize(assets, resources={"monitor_storage": storage}, partition_key=partition,
                          instance=instance, raise_on_error=False)


def _paths(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {e.asset_key.to_user_string(): e.materialization.metadata["path"].value
            for e in result.get_asset_materialization_events() if "path" in e.materialization.metadata}


def test_frame_and_raw_file_round_trip_on_s3(s3_bucket, tmp_path, temp_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw_bytes = b'<?xml version="1.0"?>\n<customers>' + b"<customer/>" * (13 * 1024 * 1024 // 11) + b"</customers>"
    assert len(raw_bytes) > BLOCK  # uploaded in parts, never read into memory whole
    seen: dict = {}
    storage = MonitorStorage(base_dir=s3_bucket.url("monitor/prod"))
    result = _materialize(storage, _assets(raw_bytes, seen))
    assert result.success

    assert s3_bucket.keys() == ["monitor/prod/frame.parquet", "monitor/prod/raw.xml"]
    assert s3_bucket.get("monitor/prod/raw.xml") == raw_bytes
    assert s3_bucket.head("monitor/prod/raw.xml")["ETag"].strip('"').endswith("-2")  # a two-part upload
    stored = pq.read_table(io.BytesIO(s3_bucket.get("monitor/prod/frame.parquet"))).to_pandas()
    pd.testing.assert_frame_equal(stored, FRAME)
    pd.testing.assert_frame_equal(seen["frame"], FRAME)
    assert _paths(result) == {"frame": s3_bucket.url("monitor/prod/frame.parquet"),
                              "raw": s3_bucket.url("monitor/prod/raw.xml")}
    assert seen["location"] == s3_bucket.url("monitor/prod/raw.xml")
    assert seen["sha256"] == hashlib.sha256(raw_bytes).hexdigest()
    assert seen["local"].is_relative_to(temp_root) and not seen["local_exists_after"]
    assert sorted(temp_root.iterdir()) == []  # the upload's and the download's temp folders are gone
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]  # nothing stored locally (the cwd is tmp_path)
    assert storage.base_path.storage_options == {"use_listings_cache": False}  # no endpoint passed: botocore
    assert "endpoint_url" not in storage.base_path.fs.client_kwargs             # reads AWS_ENDPOINT_URL itself
    assert storage.exists(storage.path_for(["frame"], ".parquet"))
    assert not storage.exists(storage.path_for(["missing"], ".parquet"))


def test_partitions_on_s3_are_one_object_each(s3_bucket):
    seen: dict = {}
    storage = MonitorStorage(base_dir=s3_bucket.url("p"))
    assets = _assets(b"<customers/>", seen, TENANTS)
    for tenant in ("acme", "beta.se"):
        assert _materialize(storage, assets, tenant).success
        assert seen["location"] == s3_bucket.url(f"p/raw/{tenant}.xml")
    assert s3_bucket.keys() == ["p/frame/acme.parquet", "p/frame/beta.se.parquet", "p/raw/acme.xml",
                                "p/raw/beta.se.xml"]
    assert s3_bucket.pending_uploads() == []


def test_local_layout_is_the_folder_a_data_engineer_opens(tmp_path, temp_root):
    base = tmp_path / "storage"
    storage = MonitorStorage(base_dir=str(base))
    seen: dict = {}
    result = _materialize(storage, _assets(b"<customers/>", seen))
    assert result.success
    assert _paths(result) == {"frame": str(base / "frame.parquet"), "raw": str(base / "raw.xml")}
    assert sorted(p.name for p in base.iterdir()) == ["frame.parquet", "raw.xml"]  # no temp file left
    assert seen["local"] == base / "raw.xml" and seen["local_exists_after"]  # the stored file itself
    pd.testing.assert_frame_equal(pd.read_parquet(base / "frame.parquet"), FRAME)
    assert sorted(temp_root.iterdir()) == []
    assert storage.path_for(["customers"], ".parquet", "acme") == base / "customers" / "acme.parquet"
    assert isinstance(storage.path_for(["customers"], ".parquet"), Path)

    assert _materialize(storage, _assets(b"<customers/>", seen, TENANTS), "acme").success
    assert (base / "frame" / "acme.parquet").is_file() and (base / "raw" / "acme.xml").is_file()


def test_a_failed_upload_leaves_no_object_and_no_open_upload(s3_bucket):
    target = MonitorStorage(base_dir=s3_bucket.url("x")).path_for(["customers_xml"], ".xml")

    def write_then_fail(out):
        out.write(b"<customers>" + b"x" * (BLOCK + 1024))  # one part is uploaded already
        raise OSError("connection to Monitor lost")

    with pytest.raises(OSError, match="connection to Monitor lost"):
        _upload(target, write_then_fail)
    assert s3_bucket.keys() == [] and s3_bucket.pending_uploads() == []


def test_a_missing_bucket_fails_the_step_naming_the_url_never_the_credentials(s3_bucket):
    missing = s3_bucket.url().replace("monitor-test-", "monitor-gone-") + "/prod"
    result = _materialize(MonitorStorage(base_dir=missing), _assets(b"<customers/>", {}))
    assert not result.success
    failures = [e.step_failure_data for e in result.all_events if e.is_step_failure]
    messages = [f.user_failure_data.description for f in failures if f.user_failure_data]
    assert len(messages) == 2, [f.error.message for f in failures]  # frame and raw
    for message in messages:
        assert missing in message and "MONITOR_STORAGE_URL" in message and "bucket" in message.lower(), message
        assert SECRET_ACCESS_KEY not in message and os.environ["AWS_ACCESS_KEY_ID"] not in message
    buckets = [b["Name"] for b in s3_bucket.client.list_buckets()["Buckets"]]
    assert missing.split("/")[2] not in buckets  # not created on the way (s3fs's mkdir would)
