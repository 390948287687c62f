"""What the code location offers a data engineer, written out: a restructuring that drops, renames or
regroups an asset, check, job, sensor, schedule, resource, pool or run tag fails here."""

import inspect

import dagster as dg

from monitor_pipeline.definitions import build_defs

ASSETS = {  # asset → (group, pool of its step: none, the host slots limit connections, lib/host_slots.py)
    "customers_xml": ("customer_sync", None),
    "customers": ("customer_sync", None),
    "customer_addresses": ("customer_sync", None),
    "customer_contacts": ("customer_sync", None),
    "customer_dashboards": ("customer_sync", None),
    "customer_rejections": ("customer_sync", None),
    "customer_upsert_batches": ("customer_sync", None),
    "customer_changes": ("customer_sync", None),
}
RECORDED_ASSETS = {  # asset → group; declared, not computed: a job's runs record its materializations
    "monitor_customer_files": "customer_export",  # export_new_customer_job, one per delivered file
}
CHECKS = {
    ("customers", "no_duplicate_customer_code"), ("customers", "no_rejected_customers"),
    ("customer_contacts", "one_main_contact"), ("customer_addresses", "every_address_has_country"),
    ("customer_upsert_batches", "no_failed_customers"), ("customer_upsert_batches", "every_tenant_synced_recently"),
    ("customers", "exported_customers_arrived"),
}


def test_the_code_location_without_tenants(monkeypatch):
    for name in ("MONITOR_TENANTS_FILE", "MONITOR_FTP_URL", "APP4SALES_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MONITOR_SYNC_SCHEDULE", "0 * * * *")
    monkeypatch.setenv("MONITOR_CREATE_CUSTOMER", "true")
    defs = build_defs()
    repo = defs.get_repository_def()
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} == set(ASSETS) | set(RECORDED_ASSETS)
    for key, (group, pool) in ASSETS.items():
        assets_def = defs.resolve_assets_def(key)
        assert (assets_def.group_names_by_key[dg.AssetKey(key)], assets_def.op.pool) == (group, pool), key
        assert assets_def.partitions_def is None
    for key, group in RECORDED_ASSETS.items():
        assets_def = defs.resolve_assets_def(key)
        assert (assets_def.group_names_by_key[dg.AssetKey(key)], assets_def.is_executable) == (group, False), key
        assert assets_def.partitions_def is None
    assert {(c.asset_key.to_user_string(), c.name) for c in repo.asset_graph.asset_check_keys} == CHECKS
    assert {j.name for j in repo.get_all_jobs()} - {"__ASSET_JOB"} == {"customer_sync_job", "export_new_customer_job",
                                                                        "tenant_health_job"}
    assert {s.name for s in repo.sensor_defs} == {"customers_xml_sensor", "new_customer_sensor"}
    assert {s.name for s in repo.schedule_defs} == {"customer_sync_schedule", "tenant_health_schedule"}
    assert set(defs.resources) == {"app4sales", "connector_settings", "monitor_ftp", "monitor_storage", "tenancy"}
    for key in ASSETS:  # the assets take the tenant's resources from ``tenancy`` only
        parameters = set(inspect.signature(defs.resolve_assets_def(key).op.compute_fn.decorated_fn).parameters)
        assert parameters & {"monitor_ftp", "app4sales", "connector_settings"} == set(), (key, parameters)
        assert "tenancy" in parameters, key
    assert repo.get_job("customer_sync_job").tags == {
        "monitor_pipeline/app4sales_administration": "127.0.0.1:8765/demo"}
    deps = {k.to_user_string() for k in repo.asset_graph.get(dg.AssetKey("customer_upsert_batches")).parent_keys}
    assert deps == {"customers", "customer_addresses", "customer_contacts", "customer_dashboards", "customer_rejections"}
    changes = {k.to_user_string() for k in repo.asset_graph.get(dg.AssetKey("customer_changes")).parent_keys}
    assert changes == deps | {"customer_upsert_batches"}  # written by the upsert's step, after it
