"""The export in the lineage: ``export_new_customer_job`` records every delivery as a materialization of the
asset ``monitor_customer_files`` (group ``customer_export``) and every failed try as an observation of it,
read back from the Dagster instance the runs wrote to — against the real sandbox and real file servers (the
``target`` fixture of test_export_job.py: FTP, paramiko SFTP, OpenSSH sshd, ``file://``)."""

from __future__ import annotations

import hashlib

import dagster as dg
import pytest

from monitor_pipeline.app4sales.errors import App4SalesTransientError
from monitor_pipeline.defs.customer_export.asset import MONITOR_CUSTOMER_FILES
from monitor_pipeline.defs.customer_export.job import EXPORT_OP_NAME, build_export_new_customer_job, run_config_for
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline_tests.defs.customer_export.test_export_job import (  # noqa: F401 (fixtures)
    _dispose_instances, app4sales, feed_item, ftp_server, paramiko_server, run_export, sshd_server, target,
)
from monitor_pipeline_tests.defs.sensor_tenants import tenants_file
from monitor_pipeline_tests.resources import tenancy


def _values(metadata) -> dict:
    return {k: v.value for k, v in metadata.items()}


def materializations(instance: dg.DagsterInstance) -> list[dg.EventLogRecord]:
    return list(instance.fetch_materializations(MONITOR_CUSTOMER_FILES, limit=100).records)


def observations(instance: dg.DagsterInstance) -> list[dg.EventLogRecord]:
    return list(instance.fetch_observations(MONITOR_CUSTOMER_FILES, limit=100).records)


def latest(instance: dg.DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(MONITOR_CUSTOMER_FILES)
    assert event is not None, "no materialization of monitor_customer_files"
    return _values(event.asset_materialization.metadata)


def test_a_delivery_is_a_materialization_with_the_code_guid_path_size_and_result(sandbox, target):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Lineage AB")
    item, code = feed_item(sandbox, created["CustomerGuid"]), created["CustomerCode"]
    result, instance = run_export(item, target.resource(), app4sales(sandbox))
    assert result.success
    on_server = (target.base_dir / "customers" / f"{code}.xml").read_bytes()

    event = instance.get_latest_materialization_event(MONITOR_CUSTOMER_FILES)
    assert event is not None and event.run_id == result.run_id
    assert event.asset_materialization.partition is None
    metadata = latest(instance)
    assert metadata["customer_code"] == code
    assert metadata["customer_guid"] == created["CustomerGuid"]
    assert metadata["remote_path"] == f"customers/{code}.xml"
    assert metadata["bytes"] == len(on_server) > 0
    assert metadata["sha256"] == hashlib.sha256(on_server).hexdigest()
    assert metadata["message_posted"] == f"SUCCESS_CUSTOMER:{code}" == admin.get_result(created["CustomerGuid"])["Result"]
    assert (metadata["delivered"], metadata["uploaded"], metadata["already_delivered"]) == (1, 1, False)
    assert (metadata["upload_attempts"], metadata["step_try"], metadata["feed_sequence"]) == (1, 1, item["Sequence"])
    plotted = event.asset_materialization.metadata
    for name in ("bytes", "upload_attempts", "delivered"):  # numbers the UI's Plots tab can draw
        assert isinstance(plotted[name], dg.IntMetadataValue), name
    assert isinstance(plotted["remote_path"], dg.PathMetadataValue)
    if target.config.password:
        assert target.config.password not in repr(metadata)
    assert len(materializations(instance)) == 1 and observations(instance) == []


def test_a_re_executed_run_that_finds_the_same_bytes_records_already_delivered(sandbox, target):
    """The first run uploads but cannot post its result: an observation (stage report) naming the file it
    left, no materialization. The re-executed run finds the same bytes: the materialization says so."""
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Delivered Twice AB")
    item, code = feed_item(sandbox, created["CustomerGuid"]), created["CustomerCode"]
    admin.add_fault("newcustomers/*/result", method="POST", status=503, times=2)  # both attempts of the client
    instance = dg.DagsterInstance.ephemeral()
    try:
        first, _ = run_export(item, target.resource(), app4sales(sandbox), instance=instance)
        assert not first.success
        assert materializations(instance) == []
        [seen] = observations(instance)
        failed = _values(seen.asset_observation.metadata)
        assert (failed["stage"], failed["delivered"], failed["customer_code"]) == ("report", 0, code)
        assert failed["file_in_place"] == f"customers/{code}.xml" and "503" in failed["error"]

        second, _ = run_export(item, target.resource(), app4sales(sandbox), instance=instance)
        assert second.success
        event = instance.get_latest_materialization_event(MONITOR_CUSTOMER_FILES)
        assert event.run_id == second.run_id
        metadata = latest(instance)
        assert (metadata["delivered"], metadata["uploaded"], metadata["already_delivered"]) == (1, 0, True)
        assert metadata["bytes"] == len(item["Xml"].encode("utf-8"))
        assert metadata["sha256"] == hashlib.sha256(item["Xml"].encode("utf-8")).hexdigest()
        assert metadata["message_posted"] == f"SUCCESS_CUSTOMER:{code}"
        assert len(materializations(instance)) == 1 and len(observations(instance)) == 1
    finally:
        instance.dispose()


def test_a_collision_records_an_observation_with_the_error_and_no_materialization(sandbox, target):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Collision AB")
    item, code = feed_item(sandbox, created["CustomerGuid"]), created["CustomerCode"]
    target.write(f"customers/{code}.xml", b"<NewCustomers>someone else's file</NewCustomers>")
    result, instance = run_export(item, target.resource(), app4sales(sandbox))
    assert not result.success

    assert instance.get_latest_materialization_event(MONITOR_CUSTOMER_FILES) is None
    assert materializations(instance) == []
    [record] = observations(instance)
    assert record.run_id == result.run_id and record.partition_key is None
    metadata = _values(record.asset_observation.metadata)
    assert metadata["stage"] == "collision"
    assert metadata["error"] == admin.get_result(created["CustomerGuid"])["Error"]
    assert f"customers/{code}.xml already exists" in metadata["error"]
    assert (metadata["customer_code"], metadata["customer_guid"]) == (code, created["CustomerGuid"])
    assert (metadata["delivered"], metadata["error_posted_to_app4sales"], metadata["will_retry"]) == (0, True, False)
    assert "file_in_place" not in metadata and "remote_path" not in metadata  # the file there is not ours
    if target.config.password:
        assert target.config.password not in repr(metadata)


@pytest.fixture
def two_tenants(sandbox, monkeypatch, tmp_path, ftp_server_factory):
    """north and south, each with its own App4Sales administration on the sandbox and its own FTP server."""
    servers, urls = {}, {}
    for name in ("north", "south"):
        servers[name] = ftp_server_factory("ftp")
        monkeypatch.setenv(f"{name.upper()}_APP4SALES_PASSWORD", sandbox.password)
        monkeypatch.setenv(f"{name.upper()}_FTP_PASSWORD", servers[name].password)
        urls[name] = {"monitor": servers[name].url, "app4sales": sandbox.base_url(f"{sandbox.admin}-{name[0]}"),
                      "app4sales_username": sandbox.username}
    path = tenants_file(tmp_path / "tenants.yaml", urls)
    return servers, urls, str(path)


def test_with_tenants_the_events_are_for_the_runs_partition(sandbox, two_tenants):
    servers, urls, path = two_tenants
    partitions = dg.StaticPartitionsDefinition(["north", "south"])
    job = build_export_new_customer_job(partitions, None)
    resources = tenancy(app4sales=App4SalesApi(url=sandbox.base_url(), username=sandbox.username,
                                               password=sandbox.password, retry_attempts=2,
                                               retry_backoff_seconds=0.01), tenants_file=path)
    south = sandbox.admin_api(f"{sandbox.admin}-s")
    north = sandbox.admin_api(f"{sandbox.admin}-n")
    delivered, collided = south.create_new_customer("Syd AB"), north.create_new_customer("Nord AB")
    (servers["north"].base_dir / "customers").mkdir(parents=True)
    (servers["north"].base_dir / "customers" / f"{collided['CustomerCode']}.xml").write_bytes(b"<other/>")

    def feed(admin_name: str, guid: str) -> dict:
        with sandbox.client(admin_name) as client:
            return next(i for i in client.new_customers(after=0, take=1000) if i["CustomerGuid"] == guid)

    instance = dg.DagsterInstance.ephemeral()
    try:
        ok = job.execute_in_process(run_config=_config(feed(f"{sandbox.admin}-s", delivered["CustomerGuid"])),
                                    resources=resources, instance=instance, partition_key="south",
                                    raise_on_error=False)
        assert ok.success
        assert (servers["south"].base_dir / "customers" / f"{delivered['CustomerCode']}.xml").exists()
        event = instance.get_latest_materialization_event(MONITOR_CUSTOMER_FILES)
        assert event.run_id == ok.run_id and event.asset_materialization.partition == "south"
        assert latest(instance)["customer_code"] == delivered["CustomerCode"]
        assert instance.get_materialized_partitions(MONITOR_CUSTOMER_FILES) == {"south"}

        bad = job.execute_in_process(run_config=_config(feed(f"{sandbox.admin}-n", collided["CustomerGuid"])),
                                     resources=resources, instance=instance, partition_key="north",
                                     raise_on_error=False)
        assert not bad.success
        assert instance.get_materialized_partitions(MONITOR_CUSTOMER_FILES) == {"south"}
        [record] = observations(instance)
        assert record.partition_key == "north" and record.run_id == bad.run_id
        assert _values(record.asset_observation.metadata)["stage"] == "collision"
    finally:
        instance.dispose()


def _config(item: dict) -> dict:
    config = run_config_for(item)
    config["ops"][EXPORT_OP_NAME]["config"]["retry_backoff_seconds"] = 0.0
    return config


def test_the_definitions_put_the_asset_in_group_customer_export_partitioned_like_the_job(tmp_path, monkeypatch):
    from monitor_pipeline.definitions import build_defs

    for name in ("MONITOR_TENANTS_FILE", "MONITOR_FTP_URL", "APP4SALES_URL"):
        monkeypatch.delenv(name, raising=False)
    defs = build_defs()
    spec = defs.resolve_assets_def(MONITOR_CUSTOMER_FILES).specs_by_key[MONITOR_CUSTOMER_FILES]
    assert (spec.group_name, spec.kinds, spec.partitions_def) == ("customer_export", {"ftp", "xml"}, None)
    assert "customers/" in spec.description and "<" not in spec.description

    path = tenants_file(tmp_path / "tenants.yaml", {"north": {}, "south": {}})
    monkeypatch.setenv("MONITOR_TENANTS_FILE", str(path))
    defs = build_defs()
    assets_def = defs.resolve_assets_def(MONITOR_CUSTOMER_FILES)
    job = defs.resolve_job_def("export_new_customer_job")
    assert assets_def.group_names_by_key[MONITOR_CUSTOMER_FILES] == "customer_export"
    assert assets_def.partitions_def == job.partitions_def
    assert assets_def.partitions_def.get_partition_keys() == ["north", "south"]


class _NoSlotApi(App4SalesApi):
    """The real sandbox client, except no connection slot of the App4Sales host is free: ``session`` raises
    what ``App4SalesApi.session`` raises when the wait for one runs out, before any call is made."""

    def session(self, *args, **kwargs):
        raise App4SalesTransientError("connection slots", None, "all 1 slots of 127.0.0.1 held by run x (simulated)")


def test_a_step_failing_outside_the_export_is_observed_too(sandbox, tmp_path):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("No Slot AB")
    base = tmp_path / "monitor"
    base.mkdir()
    api = _NoSlotApi(url=sandbox.base_url(), username=sandbox.username, password=sandbox.password)
    result, instance = run_export(feed_item(sandbox, created["CustomerGuid"]), MonitorFileTransport(url=base.as_uri()),
                                  api)
    assert not result.success
    assert materializations(instance) == []
    [record] = observations(instance)
    metadata = _values(record.asset_observation.metadata)
    assert (metadata["stage"], metadata["delivered"], metadata["will_retry"]) == ("step", 0, False)
    assert metadata["error"].startswith("App4SalesTransientError: App4Sales connection slots failed")
    assert sandbox.password not in metadata["error"]
    assert admin.get_result(created["CustomerGuid"])["Posts"] == 0 and list(base.rglob("*")) == []
