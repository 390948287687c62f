"""``customer_sync_job`` runs its steps in one process unless the run config asks for multiprocess (issue:
little fixed cost per run). ``execute_in_process`` ignores executors, so these go through ``execute_job``
on a persistent instance, as ``dagster job execute`` and the run launcher do."""

from __future__ import annotations

import dagster as dg
import pytest

from monitor_pipeline.definitions import build_defs

from .harness import customer_xml, sync, write_customers  # noqa: F401  (fixture)


def customer_sync_job() -> dg.JobDefinition:
    return build_defs().resolve_job_def("customer_sync_job")


def _step_pids(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    return {entry.step_key: entry.dagster_event.pid for entry in instance.all_logs(run_id)
            if entry.dagster_event is not None and entry.dagster_event.event_type == dg.DagsterEventType.STEP_START}


@pytest.mark.parametrize("run_config, one_process", [(None, True), ({"execution": {"config": {"multiprocess": {}}}}, False)],
                         ids=["default-in-process", "multiprocess-by-config"])
def test_steps_run_in_one_process_by_default(sync, tmp_path, run_config, one_process):  # noqa: F811
    write_customers(sync.customers_xml, [customer_xml("K1", "Kafé Ett"), customer_xml("K2", "Kafé Två")])
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home)) as instance:
        with dg.execute_job(dg.reconstructable(customer_sync_job), instance=instance, run_config=run_config) as result:
            assert result.success
            pids = _step_pids(instance, result.run_id)
    # the health check over every tenant and the exports' acknowledgment are steps of their own
    assert set(pids) == {"customers_xml", "customer_frames", "customer_upsert_batches",
                         "customer_upsert_batches_every_tenant_synced_recently",
                         "customers_exported_customers_arrived"}
    assert (len(set(pids.values())) == 1) is one_process
    assert sync.sandbox.admin_api().get_customer("K2")["CustomerName"] == "Kafé Två"
