"""Run the download and normalization part of ``customer_sync_job`` (``customers_xml`` and the four
frames, with their checks) from the real definitions: the steps these tests are about, without the
upsert into App4Sales."""

from __future__ import annotations

import dagster as dg

from monitor_pipeline.definitions import build_defs
from monitor_pipeline_tests.defs.customer_sync.harness import SyncHarness, SyncRun

FRAME_STEPS = [dg.AssetKey(name) for name in
               ("customers_xml", "customers", "customer_addresses", "customer_contacts", "customer_dashboards",
                "customer_rejections")]


def run_frames(sync: SyncHarness, run_config: dict | None = None) -> SyncRun:
    job = build_defs().resolve_job_def("customer_sync_job")
    return SyncRun(job.execute_in_process(instance=sync.instance, run_config=run_config, raise_on_error=False,
                                          asset_selection=FRAME_STEPS))


def step_failure(run: SyncRun) -> tuple[str, dict]:
    """(description, metadata) of the run's one failed step's ``dg.Failure``."""
    failures = [e.step_failure_data for e in run.result.all_events if e.is_step_failure]
    assert len(failures) == 1, [f.error.message for f in failures]
    user = failures[0].user_failure_data
    assert user is not None, f"not a dg.Failure: {failures[0].error.message}"
    return user.description, {k: v.value for k, v in user.metadata.items()}
