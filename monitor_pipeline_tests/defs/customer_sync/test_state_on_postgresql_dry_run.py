"""A dry run (``dry_run: true``) with the state on PostgreSQL (``MONITOR_STATE_URL``): it reads the confirmed
state there, sends nothing and writes no row."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from monitor_pipeline.app4sales.state_postgres import dispose_engines
from monitor_pipeline_tests.defs.customer_sync import harness

sync = harness.sync  # the fixture, bound to its name
DRY = {"ops": {"customer_upsert_batches": {"config": {"dry_run": True}}}}


@pytest.fixture
def state_url(postgres_db_url):
    yield postgres_db_url
    dispose_engines()


def _state(url: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM monitor_sync_state ORDER BY 1, 2")).all()]
    finally:
        engine.dispose()


def test_dry_run_on_postgresql_plans_from_its_state_and_writes_nothing(sync, state_url):
    sync.setenv(MONITOR_STATE_URL=state_url)
    customers = [harness.customer_xml(f"P{i}", f"Kund {i}") for i in range(4)]
    harness.write_customers(sync.customers_xml, customers)
    assert sync.run().success
    customers[2] = harness.customer_xml("P2", "Kund 2 renamed")
    harness.write_customers(sync.customers_xml, customers + [harness.customer_xml("P7", "Kund 7")])
    rows, events = _state(state_url), sync.sandbox.admin_api().events()
    run = sync.run(DRY)
    assert run.success, run.failure_message()
    observed = [e.asset_observation_data.asset_observation.metadata for e in run.result.get_asset_observation_events()]
    plan = [(r.data["CustomerCode"], r.data["Reason"]) for r in observed[-1]["plan"].records]
    assert plan == [("P2", "changed"), ("P7", "new")]  # P0, P1, P3 unchanged: the state on PostgreSQL was read
    assert _state(state_url) == rows and sync.sandbox.admin_api().events() == events
