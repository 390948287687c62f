"""``customer_sync_job`` with its state on PostgreSQL (``MONITOR_STATE_URL``, issue #12), against the
App4Sales sandbox: the change detection works across runs with no state file anywhere, the tenants keep
their own rows, and the URL's password shows up nowhere in the run; unset, the SQLite files as before."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from benchmarks.generate import generate
from monitor_pipeline.app4sales.state import SyncState
from monitor_pipeline.app4sales.state_postgres import dispose_engines
from monitor_pipeline.definitions import build_defs
from monitor_pipeline_tests.defs import test_tenants
from monitor_pipeline_tests.defs.customer_sync import harness

sync = harness.sync  # the fixtures this module uses, bound to their names (no unused imports)
ftp, two_tenants = test_tenants.ftp, test_tenants.two_tenants


@pytest.fixture
def state_url(postgres_db_url):
    yield postgres_db_url
    dispose_engines()


def _rows(url: str) -> list[tuple[str, int]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT scope, count(*) FROM monitor_sync_state GROUP BY scope "
                                        "ORDER BY scope")).all()
    finally:
        engine.dispose()


def _everything_said(result: dg.ExecuteInProcessResult) -> str:
    """Every event's message and metadata of a run, as text."""
    parts = []
    for event in result.all_events:
        parts.append(event.message or "")
        parts.append(repr(event.event_specific_data))
    for record in result.dagster_run.run_config, result.dagster_run.tags:
        parts.append(repr(record))
    return "\n".join(parts)


def test_the_state_on_postgresql_sends_everything_once_and_then_nothing(sync, state_url, postgres_server, tmp_path):
    generate(sync.customers_xml, 120, nested=False, seed=3)
    sync.setenv(MONITOR_STATE_URL=state_url)
    first = sync.run()
    assert first.success, first.failure_message()
    assert (first.metadata()["sent"], first.metadata()["created"]) == (120, 120)
    batches = len(sync.sandbox.admin_api().events("batch"))
    second = sync.run()
    assert second.success, second.failure_message()
    assert (second.metadata()["sent"], second.metadata()["unchanged"], second.metadata()["batches"]) == (0, 120, 0)
    assert len(sync.sandbox.admin_api().events("batch")) == batches
    assert [count for _, count in _rows(state_url)] == [120]
    assert list(tmp_path.rglob("*.sqlite")) == []  # no state file, anywhere
    for run in (first, second):
        said = _everything_said(run.result)
        assert postgres_server.password not in said and "St%40te" not in said


def test_without_the_url_an_existing_state_file_is_read_as_before(sync, tmp_path):
    """A state file written before MONITOR_STATE_URL existed (by SyncState itself) keeps working: the run
    reads it and sends nothing that it records as confirmed."""
    generate(sync.customers_xml, 60, nested=False, seed=4)
    sync.monkeypatch.delenv("MONITOR_STATE_URL", raising=False)
    assert sync.run().success
    # the administration's state, beside the connection slots of the hosts (lib/host_slots.py)
    state_files = [p for p in (tmp_path / "state").glob("*.sqlite") if p.name != "host_slots.sqlite"]
    assert len(state_files) == 1
    with SyncState(state_files[0]) as st:
        stored = st.load()
        st.clear()
        st.save_hashes([(code, hashes[0]) for code, hashes in stored.items()][:40])  # as an older run left it
    again = sync.run()
    assert again.success, again.failure_message()
    assert (again.metadata()["sent"], again.metadata()["unchanged"]) == (20, 40)
    with SyncState(state_files[0]) as st:
        assert st.count() == 60


def test_each_tenant_keeps_its_own_rows_on_postgresql(two_tenants, state_url, monkeypatch, tmp_path):
    monkeypatch.setenv("MONITOR_STATE_URL", state_url)
    job = build_defs().resolve_job_def("customer_sync_job")
    with dg.DagsterInstance.ephemeral() as instance:
        for tenant in ("north", "south"):
            result = job.execute_in_process(partition_key=tenant, instance=instance, raise_on_error=False)
            assert result.success, tenant
    assert _rows(state_url) == [(f"north/{two_tenants['north']}", 120), (f"south/{two_tenants['south']}", 40)]
    assert list(tmp_path.rglob("*.sqlite")) == []
