"""Dry run (``customer_upsert_batches`` config ``dry_run: true``) against the sandbox: plans, sends nothing."""

import dagster as dg

from monitor_pipeline.app4sales.state import state_file_name
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, sync, write_customers  # noqa: F401 (fixture)

DRY = {"ops": {"customer_upsert_batches": {"config": {"dry_run": True}}}}
UPSERT = dg.AssetKey("customer_upsert_batches")


def _observation(run) -> dict:
    events = [e for e in run.result.get_asset_observation_events()
              if e.asset_observation_data.asset_observation.asset_key == UPSERT]
    assert len(events) == 1, events
    return {k: v.value for k, v in events[0].asset_observation_data.asset_observation.metadata.items()}


def _plan_rows(meta: dict) -> list[tuple[str, str]]:
    return [(r.data["CustomerCode"], r.data["Reason"]) for r in meta["plan"].records]


def _customers(sync) -> list[dict]:
    return sorted(sync.sandbox.client().list_customers(), key=lambda c: c["CustomerCode"])


def test_dry_run_sends_nothing_and_reports_the_plan_the_next_real_run_carries_out(sync, tmp_path):
    sync.setenv(MONITOR_DEACTIVATE_MISSING="true", MONITOR_DEACTIVATE_MAX_FRACTION="0.5")
    api = sync.sandbox.admin_api()
    api.register_script("BeforeUpdateCustomers")
    api.register_script("UpdateCustomers")
    customers = [customer_xml(f"D{i}", f"Kund {i}") for i in range(6)]
    write_customers(sync.customers_xml, customers)
    assert sync.run().success
    sync.sandbox.client().deactivate_customers(["D3"])
    changed = customers[:5] + [customer_xml("D9", "Kund 9")]   # D5 gone, D9 new
    changed[1] = customer_xml("D1", "Kund 1 renamed")          # D1 changed; D3 inactive → reactivated
    write_customers(sync.customers_xml, changed)

    events_before, index_before = api.events(), _customers(sync)
    state = tmp_path / "state" / state_file_name(sync.sandbox.admin)
    state_before = state.read_bytes()
    run = sync.run(DRY)
    assert run.success, run.failure_message()

    assert api.events() == events_before  # no batch, script, dashboard or deactivation reached the sandbox
    assert _customers(sync) == index_before and api.get_customer("D1")["CustomerName"] == "Kund 1"
    assert state.read_bytes() == state_before  # the state is not written
    assert run.metadata() == {}  # not materialized: a dry run is no sync for the freshness policy
    meta = _observation(run)
    assert (meta["would_create"], meta["would_update"], meta["would_reactivate"], meta["would_deactivate"],
            meta["unchanged"]) == (1, 1, 1, 1, 3)
    assert meta["refused"] == "no" and meta["dry_run"] is True
    assert _plan_rows(meta) == [("D1", "changed"), ("D3", "reactivated"), ("D9", "new"), ("D5", "deactivated")]
    checks = run.result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed, c.metadata["dry_run"].value) for c in checks
            if c.asset_key == UPSERT] == [("no_failed_customers", True, True)]

    real = sync.run()
    assert real.success, real.failure_message()
    done = real.metadata()
    assert (done["created"], done["updated"], done["reactivated"], done["deactivated"]) == (1, 1, 1, 1)
    assert api.get_customer("D1")["CustomerName"] == "Kund 1 renamed"


def test_dry_run_of_an_administration_never_synced_creates_no_state(sync, tmp_path):
    write_customers(sync.customers_xml, [customer_xml(f"F{i}", f"Kund {i}") for i in range(3)])
    run = sync.run(DRY)
    assert run.success, run.failure_message()
    assert _plan_rows(_observation(run)) == [("F0", "new"), ("F1", "new"), ("F2", "new")]
    assert not (tmp_path / "state" / state_file_name(sync.sandbox.admin)).exists()
    assert sync.sandbox.client().list_customers() == [] and sync.sandbox.admin_api().events() == []
    assert sync.run().metadata()["created"] == 3  # and the real run after it sends them


def test_dry_run_reports_a_refusal_instead_of_failing(sync):
    sync.setenv(MONITOR_DEACTIVATE_MISSING="true")
    write_customers(sync.customers_xml, [customer_xml(f"M{i:02d}", f"Kund {i}") for i in range(20)])
    assert sync.run().success
    write_customers(sync.customers_xml, [customer_xml(f"M{i:02d}", f"Kund {i}") for i in range(10)])
    run = sync.run(DRY)
    assert run.success, run.failure_message()
    meta = _observation(run)
    assert meta["would_deactivate"] == 10
    assert "refusing to deactivate 10 of 20" in meta["refused"] and "a real run would send nothing" in meta["refused"]
    assert sync.sandbox.admin_api().events("deactivate") == []
    assert not sync.run().success  # the real run is refused, as the dry run said
