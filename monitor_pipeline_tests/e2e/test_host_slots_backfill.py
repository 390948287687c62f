"""An asset backfill as the lineage page launches it (an asset selection over two tenants, runs without
the host tags of dagster.yaml's queue limits), run by a real daemon: with MONITOR_FTP_HOST_CONNECTIONS=1
the tenants' shared FTP server never has two connections open, and both runs succeed."""

import pytest

from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, write_customers
from monitor_pipeline_tests.defs.test_tenants import tenants_yaml
from monitor_pipeline_tests.e2e.dagster_processes import dagster_home, dagster_processes
from monitor_pipeline_tests.e2e.test_tenant_backfill import backfill_runs
from monitor_pipeline_tests.servers.ftp import start_ftp_server

pytestmark = pytest.mark.e2e

ASSETS = ["customers_xml", "customers", "customer_addresses", "customer_contacts", "customer_dashboards",
          "customer_rejections", "customer_upsert_batches"]


def test_an_asset_backfill_over_two_tenants_on_one_ftp_host_keeps_its_limit(tmp_path, sandbox):
    ftp = start_ftp_server(tmp_path / "ftp-root", base="")
    admins = {"north": sandbox.admin + "-n", "south": sandbox.admin + "-s"}
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(tenants_yaml(ftp, sandbox, admins), encoding="utf-8")
    for name in admins:
        (ftp.root / name).mkdir()
        write_customers(ftp.root / name / "customers.xml", [customer_xml(f"{name[0].upper()}{i}", name) for i in range(5)])
    env = {"DAGSTER_HOME": str(dagster_home(tmp_path)), "MONITOR_TENANTS_FILE": str(tenants),
           "MONITOR_STATE_DIR": str(tmp_path / "state"), "MONITOR_STORAGE_DIR": str(tmp_path / "storage"),
           "MONITOR_FTP_HOST_CONNECTIONS": "1", "MONITOR_STABILITY_SECONDS": "3",
           "MONITOR_SYNC_SCHEDULE": "off", "MONITOR_CREATE_CUSTOMER": "false",
           "NORTH_FTP_PASSWORD": ftp.password, "SOUTH_FTP_PASSWORD": ftp.password,
           "NORTH_APP4SALES_PASSWORD": sandbox.password, "SOUTH_APP4SALES_PASSWORD": sandbox.password}
    try:
        with dagster_processes(env, tmp_path) as port:
            runs = backfill_runs(port, {"partitionNames": ["north", "south"],
                                        "assetSelection": [{"path": [name]} for name in ASSETS]})
    finally:
        ftp.stop()
    assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"], (tmp_path / "daemon.log").read_text()[-4000:]
    tags = [{t["key"]: t["value"] for t in r["tags"]} for r in runs]
    assert sorted(t["dagster/partition"] for t in tags) == ["north", "south"]
    # the backfill's runs hold theirs ≥ 3 s (the stability wait); the sensor's looks (and the runs it may
    # request) connect too: never two at once, whoever connects
    downloads = [(opened, closed) for opened, closed in ftp.control_intervals if closed - opened >= 2.5]
    assert len(downloads) >= 2 and ftp.max_control_connections == 1, ftp.control_intervals
    for name, admin in admins.items():
        assert len(sandbox.client(admin).list_customers()) == 5, name
