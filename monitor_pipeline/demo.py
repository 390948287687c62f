"""What ``monitor-pipeline demo`` prints: the sync's counts, where the frames are, an export arriving."""

from __future__ import annotations

import time

import dagster as dg

from monitor_pipeline.lib import defaults


QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run_sync_demo(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = defs.resolve_job_def("customer_sync_job")
    print("Running customer_sync_job (customers_xml → frames → customer_upsert_batches) …")
    return job.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == dg.AssetKey(asset):
            return {k: v.value for k, v in materialization.metadata.items()}
    return {}


def _observed(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    """The metadata of the last observation of ``asset`` in the run (a dry run's plan), or {}."""
    found = {}
    for event in result.get_asset_observation_events():
        observation = event.asset_observation_data.asset_observation
        if observation.asset_key == dg.AssetKey(asset):
            found = {k: v.value for k, v in observation.metadata.items()}
    return found


def print_sync_summary(result: dg.ExecuteInProcessResult, defs: dg.Definitions) -> None:
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(f"FAILED {event.step_key}: {event.step_failure_data.error.message.strip()}")
        print(f"Run {result.run_id} failed; see it in the UI (make dev) for the full log.")
        return
    raw = _metadata(result, "customers_xml")
    print(f"customers_xml: {raw.get('size_bytes')} bytes, sha256 {str(raw.get('sha256'))[:12]}… → {raw.get('path')}")
    for frame in ("customers", "customer_addresses", "customer_contacts", "customer_dashboards", "customer_rejections"):
        meta = _metadata(result, frame)
        rows = meta.get("row_count")
        print(f"{frame:>20}: {rows} {'row' if rows == 1 else 'rows'} → {meta.get('path')}")
    plan = _observed(result, "customer_upsert_batches")
    if plan.get("dry_run"):
        print("App4Sales, dry run (nothing sent): " + ", ".join(
            f"{k.removeprefix('would_').replace('_', ' ')} {plan.get(k)}" for k in
            ("would_create", "would_update", "would_reactivate", "would_deactivate", "unchanged")))
        if plan.get("refused") not in (None, "no"):
            print(f"A real run would be refused: {plan['refused']}")
        for row in plan["plan"].records[:20]:
            print(f"  {row.data['Reason']:>12}  {row.data['CustomerCode']}")
        return
    upsert = _metadata(result, "customer_upsert_batches")
    print("App4Sales: " + ", ".join(f"{k} {upsert.get(k)}" for k in
                                    ("created", "updated", "reactivated", "unchanged", "failed", "unconfirmed", "requests")))
    changes = _metadata(result, "customer_changes")
    if changes:
        print(f"Change log (customer_changes): {changes.get('row_count')} rows for {changes.get('customers')} customers "
              f"→ {changes.get('path', 'the storage')}")
    print_acknowledgment(result)


def print_acknowledgment(result: dg.ExecuteInProcessResult) -> None:
    """The check ``exported_customers_arrived``: did Monitor create the customers the export delivered?"""
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.check_name != "exported_customers_arrived":
            continue
        meta = {k: v.value for k, v in evaluation.metadata.items()}
        if not meta.get("exports"):
            return
        print(f"Exported customers (check exported_customers_arrived): {meta['exports']} exported, "
              f"{meta['arrived']} arrived in customers.xml, {meta['pending']} pending, {meta['overdue']} overdue, "
              f"{meta['taken_by_monitor']} files taken by Monitor"
              + ("" if evaluation.passed else f" — WARNING: {evaluation.description}"))


def run_export_demo(defs: dg.Definitions, instance: dg.DagsterInstance, extras) -> int:
    """Create a customer as a sales rep would, tick the export sensor once, run what it requests."""
    name = f"Fika & Bullar AB (demo {time.strftime('%Y-%m-%d %H:%M:%S')})"  # one new customer per demo, told apart
    created = extras.create_new_customer(name=name)
    print(f"A sales rep created {created['CustomerCode']} {name!r} ({created['CustomerGuid']}) in App4Sales "
          "— every `make demo` creates one more, to show the export")
    sensor = defs.resolve_sensor_def("new_customer_sensor")
    job = defs.resolve_job_def("export_new_customer_job")
    cursor_key = "monitor_pipeline_demo_export_cursor"
    cursor = instance.run_storage.get_cursor_values({cursor_key}).get(cursor_key)
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources) as context:
        tick = sensor.evaluate_tick(context)
    if tick.skip_message:
        print(f"Export sensor skipped: {tick.skip_message}")
        return 1
    for request in tick.run_requests:
        started = time.monotonic()
        # Tagged as the sensor's own run for this key, so the daemon (`make dev`) never exports it again.
        tags = {**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": sensor.name}
        result = job.execute_in_process(run_config={**request.run_config, **QUIET}, instance=instance, tags=tags,
                                        raise_on_error=False)
        state = "succeeded" if result.success else "FAILED"
        print(f"export_new_customer_job for {request.run_key} {state} in {time.monotonic() - started:.1f} s")
    if tick.cursor is not None:
        instance.run_storage.set_cursor_values({cursor_key: tick.cursor})
    target = defaults.default_ftp_folder() / "customers" / f"{created['CustomerCode']}.xml"
    if not target.exists():
        print(f"Expected {target} but it is not there")
        return 1
    print(f"Arrived in Monitor's folder: {target} ({target.stat().st_size} bytes); "
          f"App4Sales got: {extras.get_result(created['CustomerGuid'])}")
    return 0


def where_to_look(sandbox_still_running: bool) -> None:
    """The last lines: where to see what the demo did — never a link to a server that has stopped."""
    page = f"http://{defaults.SANDBOX_HOST}:{defaults.SANDBOX_PORT}/{defaults.SANDBOX_ADMINISTRATION}/"
    if sandbox_still_running:
        print(f"Browse the sandbox: {page} (login {defaults.SANDBOX_USERNAME} / {defaults.SANDBOX_PASSWORD})")
    else:
        print(f"The sandbox stopped with the demo; its data stays in {defaults.sandbox_db()}. "
              f"`make sandbox` (or `make dev`) serves it at {page} (login {defaults.SANDBOX_USERNAME} / "
              f"{defaults.SANDBOX_PASSWORD}).")
    print("Run `make demo` again: the second sync sends nothing.")
