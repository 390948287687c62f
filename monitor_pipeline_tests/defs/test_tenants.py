"""Tenants: a two-tenant file makes every customer-sync asset partitioned; each tenant syncs its own data."""

import textwrap

import dagster as dg
import pytest

from monitor_pipeline.definitions import build_defs
from monitor_pipeline.errors import ConfigError
from monitor_pipeline.tenants import load_tenants
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, write_customers
from monitor_pipeline_tests.servers.ftp import start_ftp_server


@pytest.fixture
def ftp(tmp_path):
    server = start_ftp_server(tmp_path / "ftp-root", base="")
    yield server
    server.stop()


def tenants_yaml(ftp, sandbox, admins: dict[str, str]) -> str:
    entries = []
    for name, admin in admins.items():
        entries.append(textwrap.dedent(f"""\
          - name: {name}
            monitor:
              url: ftp://{ftp.host}:{ftp.port}/{name}
              username: {ftp.username}
              password_env: {name.upper()}_FTP_PASSWORD
            app4sales:
              url: {sandbox.base_url(admin)}
              username: {sandbox.username}
              password_env: {name.upper()}_APP4SALES_PASSWORD
            settings:
              batch_size: 50
        """))
    return "tenants:\n" + "".join(textwrap.indent(e, "  ") for e in entries)


@pytest.fixture
def two_tenants(tmp_path, ftp, sandbox, monkeypatch):
    admins = {"north": sandbox.admin + "-n", "south": sandbox.admin + "-s"}
    path = tmp_path / "tenants.yaml"
    path.write_text(tenants_yaml(ftp, sandbox, admins), encoding="utf-8")
    for name in admins:
        (ftp.root / name).mkdir()
        monkeypatch.setenv(f"{name.upper()}_FTP_PASSWORD", ftp.password)
        monkeypatch.setenv(f"{name.upper()}_APP4SALES_PASSWORD", sandbox.password)
    write_customers(ftp.root / "north" / "customers.xml", [customer_xml(f"N{i:03d}", f"Nord {i}") for i in range(120)])
    write_customers(ftp.root / "south" / "customers.xml", [customer_xml(f"S{i:03d}", f"Syd {i}") for i in range(40)])
    for name, value in {"MONITOR_TENANTS_FILE": str(path), "MONITOR_STABILITY_SECONDS": "0",
                        "MONITOR_STORAGE_DIR": str(tmp_path / "storage"),
                        "MONITOR_STATE_DIR": str(tmp_path / "state")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MONITOR_FTP_URL", raising=False)
    return admins


def test_backfill_over_both_tenants_keeps_each_tenants_data_in_its_own_administration(two_tenants, sandbox):
    defs = build_defs()
    job = defs.resolve_job_def("customer_sync_job")
    assert job.partitions_def.get_partition_keys() == ["north", "south"]
    assert defs.resolve_assets_def("customers").partitions_def == job.partitions_def
    with dg.DagsterInstance.ephemeral() as instance:
        for tenant in ("north", "south"):
            result = job.execute_in_process(partition_key=tenant, instance=instance, raise_on_error=False)
            assert result.success, tenant
            tags = instance.get_run_by_id(result.run_id).tags
            assert tags["monitor_pipeline/ftp_host"] == "127.0.0.1"
            assert tags["monitor_pipeline/tenant"] == tenant
            assert tags["monitor_pipeline/app4sales_administration"] == f"127.0.0.1:{sandbox.port}/{two_tenants[tenant]}"
        materialized = instance.get_materialized_partitions(dg.AssetKey("customer_upsert_batches"))
    north = {c["CustomerCode"] for c in sandbox.client(two_tenants["north"]).list_customers()}
    south = {c["CustomerCode"] for c in sandbox.client(two_tenants["south"]).list_customers()}
    assert north == {f"N{i:03d}" for i in range(120)}
    assert south == {f"S{i:03d}" for i in range(40)}
    batches = sandbox.admin_api(two_tenants["north"]).events("batch")
    assert sorted(len(b["codes"]) for b in batches) == [20, 50, 50]  # the tenant's own batch_size (in flight together)
    assert materialized == {"north", "south"}


def test_an_export_is_acknowledged_in_its_own_tenant_only(two_tenants, sandbox, ftp):
    """The export of a north customer is north's: north's exported_customers_arrived counts it (pending), south's
    sees no export; the file went to north's folder."""
    from monitor_pipeline.defs.customer_export.job import EXPORT_JOB_NAME, run_config_for

    created = sandbox.admin_api(two_tenants["north"]).create_new_customer("Nordisk Kaffe AB")
    with sandbox.client(two_tenants["north"]) as client:
        item = next(i for i in client.new_customers(after=0, take=100) if i["CustomerGuid"] == created["CustomerGuid"])
    defs = build_defs()
    check = dg.AssetCheckKey(dg.AssetKey("customers"), "exported_customers_arrived")
    with dg.DagsterInstance.ephemeral() as instance:
        export = defs.resolve_job_def(EXPORT_JOB_NAME).execute_in_process(
            run_config=run_config_for(item), partition_key="north", instance=instance, raise_on_error=False)
        assert export.success
        counts = {}
        for tenant in ("north", "south"):
            result = defs.resolve_job_def("customer_sync_job").execute_in_process(
                partition_key=tenant, instance=instance, raise_on_error=False)
            assert result.success, tenant
            [evaluation] = [e for e in result.get_asset_check_evaluations() if e.asset_check_key == check]
            assert evaluation.passed
            counts[tenant] = (evaluation.metadata["exports"].value, evaluation.metadata["pending"].value)
    assert counts == {"north": (1, 1), "south": (0, 0)}
    assert [p.name for p in (ftp.root / "north" / "customers").iterdir()] == [f"{created['CustomerCode']}.xml"]
    assert not (ftp.root / "south" / "customers").exists()


def test_a_tenants_missing_secret_is_named(two_tenants, monkeypatch):
    monkeypatch.delenv("SOUTH_FTP_PASSWORD")
    job = build_defs().resolve_job_def("customer_sync_job")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(partition_key="south", instance=instance, raise_on_error=False)
    assert not result.success
    failures = [e.step_failure_data.error for e in result.all_events if e.is_step_failure]
    causes = "\n".join((f.cause.message if f.cause else "") + f.message for f in failures)
    assert "tenant 'south': Monitor password variable SOUTH_FTP_PASSWORD is not set" in causes


def test_without_a_tenants_file_nothing_is_partitioned(monkeypatch):
    monkeypatch.delenv("MONITOR_TENANTS_FILE", raising=False)
    defs = build_defs()
    assert defs.resolve_job_def("customer_sync_job").partitions_def is None
    assert defs.resolve_assets_def("customers_xml").partitions_def is None


@pytest.mark.parametrize("content, expected", [
    ("tenants: []", "tenants"),
    ("tenants:\n  - name: a/b\n    monitor: {url: 'file:///x'}\n    app4sales: {url: 'http://h/a/api/app4sales/'}", "name"),
    ("tenants:\n  - name: a\n    monitor: {url: 'file:///x', pasword_env: X}\n    app4sales: {url: 'http://h/'}", "pasword_env"),
    ("tenants: [", "not valid YAML"),
])
def test_bad_tenants_file_is_a_clear_error(tmp_path, content, expected):
    path = tmp_path / "tenants.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected) as info:
        load_tenants(path)
    assert "MONITOR_TENANTS_FILE" in str(info.value) and str(path) in str(info.value)
