"""``customer_upsert_batches`` with run config ``dry_run: true``: see what a sync would change, send nothing.

    ops: {customer_upsert_batches: {config: {dry_run: true}}}

The plan is made exactly as a real run makes it (:func:`monitor_pipeline.app4sales.sync.preview_sync`): the
live App4Sales index (and price lists) against the state of the last confirmed sync. Then nothing is sent:
no script, no batch, no dashboard, no deactivation; the state is not written and its lock not taken.

A run that selects ``customer_changes`` without ``customer_upsert_batches`` (materialize the change log
alone, in the UI) is a dry run too: it writes what a sync would change.

So that a dry run never looks like a sync, the asset is **not materialized**: the plan is an
``AssetObservation`` of ``customer_upsert_batches`` (the asset's Events tab lists it as "Observed"; the
freshness policy and ``every_tenant_synced_recently``, which look at materializations, are untouched).
Its metadata: ``would_create``, ``would_update``, ``would_reactivate``, ``would_deactivate``,
``would_send_dashboards``, ``unchanged``, ``refused`` (what the deactivation guard would say, or "no"), and
``plan``: a table of the customers the run would send or deactivate (``CustomerCode``, ``Reason``).
The ``no_failed_customers`` check is reported passed, with ``dry_run: true`` in its metadata: nothing was
sent, so no customer could fail.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from monitor_pipeline.app4sales.errors import App4SalesError
from monitor_pipeline.app4sales.settings import SyncOptions, SyncSettings
from monitor_pipeline.app4sales.sync import SyncError, SyncPreview, preview_sync
from monitor_pipeline.defs.customer_sync.change_log import KEY as CHANGES_KEY, changes_output
from monitor_pipeline.defs.customer_sync.frame_metadata import table_entries
from monitor_pipeline.lib.log_relay import LogRelay
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.connector_settings import ConnectorSettings

UPSERT = dg.AssetKey("customer_upsert_batches")
PLAN_ROWS = 100  # rows of the "plan" table (within frame_metadata's byte budget)

#: The plan's reasons as the table and the change log name them.
REASONS = {"new": "new", "changed": "changed", "inactive": "reactivated", "full_refresh": "full refresh"}


def plan_frame(preview: SyncPreview) -> pd.DataFrame:
    """One row per customer the run would send (file order), then one per customer it would deactivate."""
    plan = preview.plan
    rows = [(code, REASONS.get(reason, reason)) for code, reason in plan.reasons.items()]
    rows += [(code, "deactivated") for code in plan.to_deactivate]
    return pd.DataFrame(rows, columns=["CustomerCode", "Reason"], dtype="string")


def preview_metadata(preview: SyncPreview) -> dict:
    plan = preview.plan
    counts = plan.reason_counts()
    return {
        "dry_run": True,
        "would_create": counts.get("new", 0),
        "would_update": counts.get("changed", 0) + counts.get("full_refresh", 0),
        "would_reactivate": counts.get("inactive", 0),
        "would_deactivate": len(plan.to_deactivate),
        "would_send_dashboards": len(plan.dashboards),
        "unchanged": plan.unchanged,
        "customers_in_file": plan.total,
        "customers_in_app4sales": preview.index_customers,
        "unknown_price_lists": len(plan.unknown_price_lists),
        "refused": preview.refused or "no",
        **table_entries("plan", plan_frame(preview), rows=PLAN_ROWS,
                        descriptions={"Reason": "new, changed, reactivated, full refresh or deactivated"}),
    }


def dry_run(context: dg.AssetExecutionContext, config, frames: tuple[pd.DataFrame, ...], app4sales: App4SalesApi,
            connector_settings: ConnectorSettings, present_codes: list[str] = ()) -> Iterator:
    """The observation of the plan and the check result (see the module docstring)."""
    customers, addresses, contacts, dashboards = frames
    settings = SyncSettings(**connector_settings.values(SyncOptions), full_refresh=config.full_refresh,
                            approve_mass_change=config.approve_mass_change)
    log = LogRelay(context.log)
    try:
        with app4sales.session(settings.upsert_concurrency, slot_wait=connector_settings.sync_lock_timeout,
                               logger=log) as client:
            preview = preview_sync(client, customers, addresses, contacts, dashboards,
                                   state_dir=connector_settings.state_dir, state_url=connector_settings.state_url,
                                   tenant=connector_settings.state_tenant, settings=settings,
                                   present_codes=present_codes)
    except (SyncError, App4SalesError) as exc:
        raise dg.Failure(description=f"dry run: {exc}", allow_retries=exc.transient) from None
    finally:
        log.flush()
    metadata = preview_metadata(preview)
    for code, count in preview.plan.unknown_price_lists:
        context.log.warning(f"Price list {code!r} is unknown to App4Sales ({count} customers)")
    if preview.refused:
        context.log.warning(f"Dry run: a real run would be refused: {preview.refused}")
    context.log.info(f"Dry run against App4Sales administration '{app4sales.administration}', nothing sent: would "
                     f"create {metadata['would_create']}, update {metadata['would_update']}, reactivate "
                     f"{metadata['would_reactivate']}, deactivate {metadata['would_deactivate']}; "
                     f"{metadata['unchanged']} unchanged")
    partition = context.partition_key if context.has_partition_key else None
    yield dg.AssetObservation(asset_key=UPSERT, partition=partition, metadata=metadata)
    if dg.AssetCheckKey(UPSERT, "no_failed_customers") in context.selected_asset_check_keys:
        yield dg.AssetCheckResult(asset_key=UPSERT, check_name="no_failed_customers", passed=True,
                                  description="Dry run: nothing was sent, so no customer could fail.",
                                  metadata={"dry_run": True, "failed": 0, "unconfirmed": 0})
    if CHANGES_KEY in context.selected_asset_keys:
        yield changes_output(preview.changes, dry_run=True)
