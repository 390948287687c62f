"""Asset ``customer_upsert_batches``: the frames upserted into App4Sales (SPEC §5).

The materialization says what App4Sales confirmed, customer by customer (``sync.confirmed_results``):
``created``/``updated``/``reactivated`` count confirmed customers only; ``failed`` are the ones App4Sales
rejected, ``unconfirmed`` the ones its answer did not confirm. Both are left out of the state, so the
next run sends them again, and either makes the ``no_failed_customers`` check fail, naming them.
``customers_in_app4sales``: the customers the administration has after the run (enabled or not), the index
the sync reads anyway plus the ones it created, so it costs no call. ``hashes_reused``: the frames were the
last plan's, so their payload hashes came from the state's cache instead of being computed
(:mod:`monitor_pipeline.app4sales.hash_cache`).
The upsert holds the administration's lock (``MONITOR_SYNC_LOCK_TIMEOUT``) for its whole length.
Run config ``dry_run: true`` plans and sends nothing (:mod:`.dry_run`); so does a run that selects only
``customer_changes``, the change log this step also writes (:mod:`.change_log`). Run config
``approve_mass_change: true`` lets through a run the mass-change guard would refuse
(``MONITOR_MAX_CHANGE_FRACTION``, :func:`monitor_pipeline.app4sales.sync.check_mass_change`).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import dagster as dg
import pandas as pd

from monitor_pipeline.app4sales.client import App4SalesClient
from monitor_pipeline.app4sales.errors import App4SalesError
from monitor_pipeline.app4sales.state import default_owner
from monitor_pipeline.app4sales.settings import SyncOptions, SyncSettings
from monitor_pipeline.app4sales.sync import SyncError, run_sync
from monitor_pipeline.defs.customer_sync.change_log import ASSET as CHANGES, DESCRIPTION as CHANGES_DESCRIPTION, \
    KEY as CHANGES_KEY, changes_output
from monitor_pipeline.defs.customer_sync.dry_run import UPSERT, dry_run
from monitor_pipeline.lib.log_relay import LogRelay
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.resources.tenancy import MonitorTenancy

GROUP = "customer_sync"


class UpsertConfig(dg.Config):
    full_refresh: bool = False
    """Send every customer, not only the new, changed and inactive ones."""
    approve_mass_change: bool = False
    """Send even when more than MONITOR_MAX_CHANGE_FRACTION of the customers already in App4Sales would be
    updated (the mass-change guard refuses such a run otherwise, sending nothing)."""
    dry_run: bool = False
    """Plan against the live App4Sales index and send nothing (no batch, script, dashboard or deactivation, no
    state written): the plan is recorded as an observation of this asset, not as a materialization."""


def build_customer_upsert_batches(partitions_def: dg.PartitionsDefinition | None = None,
                                  retry_policy: dg.RetryPolicy | None = None) -> dg.AssetsDefinition:
    inputs = {dg.AssetKey(name) for name in ("customers", "customer_addresses", "customer_contacts",
                                             "customer_dashboards", "customer_rejections")}

    @dg.multi_asset(
        name="customer_upsert_batches",
        outs={
            "customer_upsert_batches": dg.AssetOut(
                dagster_type=dg.Nothing,
                is_required=False,  # a dry run does not materialize it (dry_run.py)
                group_name=GROUP,
                kinds={"app4sales", "http"},
                freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26),
                                                                warn_window=timedelta(hours=2)),
                description="Customers upserted into App4Sales in batches of MONITOR_BATCH_SIZE: only new, changed "
                            "or inactive ones (reactivated), scripts BeforeUpdateCustomers/UpdateCustomers around them."),
            CHANGES: dg.AssetOut(is_required=False, group_name=GROUP, io_manager_key="monitor_storage",
                                 kinds={"pandas", "parquet"}, description=CHANGES_DESCRIPTION),
        },
        internal_asset_deps={"customer_upsert_batches": inputs,
                             CHANGES: inputs | {UPSERT}},
        can_subset=True,  # customer_changes alone is a dry run: it plans and sends nothing (dry_run.py)
        partitions_def=partitions_def,
        retry_policy=retry_policy,
        check_specs=[dg.AssetCheckSpec("no_failed_customers", asset="customer_upsert_batches",
                                       description="Every customer sent was confirmed by App4Sales' answer "
                                                   "(none rejected, none left unconfirmed).")],
    )
    def customer_upsert_batches(context: dg.AssetExecutionContext, config: UpsertConfig, customers: pd.DataFrame,
                                customer_addresses: pd.DataFrame, customer_contacts: pd.DataFrame,
                                customer_dashboards: pd.DataFrame, customer_rejections: pd.DataFrame,
                                tenancy: dg.ResourceParam[MonitorTenancy]):
        tenant = tenancy.for_context(context)
        frames = (customers, customer_addresses, customer_contacts, customer_dashboards)
        present = customer_rejections["CustomerCode"].dropna().tolist()  # in the file, so never "absent"
        if config.dry_run or UPSERT not in context.selected_asset_keys:
            yield from dry_run(context, config, frames, tenant.app4sales, tenant.settings, present_codes=present)
            return
        yield from upsert_customers(context, config, frames, tenant.app4sales, tenant.settings, present_codes=present)

    return customer_upsert_batches


def granted_concurrency(settings: SyncSettings, granted: int, log) -> SyncSettings:
    """``settings`` with the batches in flight capped at the connection slots granted."""
    if granted >= settings.upsert_concurrency:
        return settings
    log.info(f"{granted} batches in flight at most, not {settings.upsert_concurrency} (MONITOR_UPSERT_CONCURRENCY): "
             f"the connection slots of the App4Sales host this run was granted (MONITOR_APP4SALES_HOST_CONNECTIONS, "
             "shared by every run on that host)")
    return settings.model_copy(update={"upsert_concurrency": granted})


def upsert_customers(context: dg.AssetExecutionContext, config: UpsertConfig, frames: tuple[pd.DataFrame, ...],
                     app4sales: App4SalesApi, connector_settings: ConnectorSettings,
                     present_codes: list[str] = ()) -> Iterator:
    """The materialization of ``customer_upsert_batches`` (with its check) and the change log."""
    customers, customer_addresses, customer_contacts, customer_dashboards = frames
    settings = SyncSettings(**connector_settings.values(SyncOptions), full_refresh=config.full_refresh,
                            approve_mass_change=config.approve_mass_change)

    log = LogRelay(context.log)  # the client's and the sync's worker threads write the run log through it

    @contextmanager
    def connect() -> Iterator[App4SalesClient]:
        # Opened once the administration's lock is held (a run waiting for another's lock holds no slot):
        # min(MONITOR_UPSERT_CONCURRENCY, MONITOR_APP4SALES_HOST_CONNECTIONS) of the host's slots, at least one,
        # waited for as long as the lock; run_sync keeps the batches in flight at the grant.
        with app4sales.session(settings.upsert_concurrency, slot_wait=connector_settings.sync_lock_timeout,
                               logger=log) as client:
            granted_concurrency(settings, client.window.maximum, context.log)
            context.log.info(f"Syncing {len(customers):,} customers into App4Sales administration "
                             f"'{client.administration}'{' (full refresh)' if config.full_refresh else ''}")
            yield client

    try:
        result = run_sync(None, customers, customer_addresses, customer_contacts, customer_dashboards,
                          connect=connect, administration=app4sales.administration,
                          state_dir=connector_settings.state_dir, state_url=connector_settings.state_url,
                          tenant=connector_settings.state_tenant, settings=settings, present_codes=present_codes,
                          owner=f"Dagster run {context.run.run_id} ({default_owner()})",
                          lock_timeout=connector_settings.sync_lock_timeout, log=log)
    except (SyncError, App4SalesError) as exc:
        stopped = getattr(exc, "result", None)
        if stopped is not None and stopped.changes and CHANGES_KEY in context.selected_asset_keys:
            # confirmed before the stop and recorded: the next run does not send them, so they are logged now
            yield changes_output(stopped.changes, dry_run=False, partial=True)
        raise dg.Failure(description=str(exc), allow_retries=exc.transient) from None

    for failure in result.failures[:50]:
        context.log.error(f"{failure['CustomerCode']}: {failure['message']}")
    if result.unconfirmed:
        context.log.error(f"{len(result.unconfirmed)} customers were sent but App4Sales' answer did not confirm them; "
                          f"they are not recorded and the next run sends them again: "
                          + ", ".join(u["CustomerCode"] for u in result.unconfirmed[:20])
                          + (" …" if len(result.unconfirmed) > 20 else ""))
    for code, count in result.unknown_price_lists:
        context.log.warning(f"Price list {code!r} is unknown to App4Sales ({count} customers)")
    context.log.info(f"Created {result.created}, updated {result.updated}, reactivated {result.reactivated}, "
                     f"unchanged {result.unchanged}, deactivated {result.deactivated}, failed {result.failed}, "
                     f"unconfirmed {len(result.unconfirmed)}; {result.batches} batches in {result.batch_phase_s:.1f} s "
                     f"({settings.upsert_concurrency} in flight at most), {result.requests} requests, "
                     f"{result.throttled} answered 429/503")
    problems = result.failures + result.unconfirmed
    sent = result.created + result.updated + result.reactivated
    yield dg.MaterializeResult(
        asset_key="customer_upsert_batches",
        metadata={
            "created": result.created, "updated": result.updated, "reactivated": result.reactivated,
            "unchanged": result.unchanged, "deactivated": result.deactivated, "failed": result.failed,
            "unconfirmed": len(result.unconfirmed),
            "sent": sent,
            "dashboards_sent": result.dashboards_sent, "batches": result.batches, "requests": result.requests,
            "duration_s": dg.MetadataValue.float(round(result.duration_s, 3)),
            "batch_phase_s": dg.MetadataValue.float(round(result.batch_phase_s, 3)),
            "customers_per_s": dg.MetadataValue.float(
                round(sent / result.batch_phase_s, 1) if result.batch_phase_s > 0 else 0.0),
            "concurrency": settings.upsert_concurrency,
            "throttled": result.throttled,
            "scripts_run": ", ".join(result.scripts_run) or "none",
            "scripts_skipped": ", ".join(result.scripts_skipped) or "none",
            "unknown_price_lists": len(result.unknown_price_lists),
            "full_refresh": config.full_refresh,
            "customers_in_app4sales": result.customers_in_app4sales,
            "hashes_reused": result.hashes_reused,
        },
        check_results=[dg.AssetCheckResult(
            check_name="no_failed_customers", passed=not problems,
            metadata={"failed": result.failed, "unconfirmed": len(result.unconfirmed),
                      "examples": "; ".join(f"{f['CustomerCode']}: {f['message']}" for f in problems[:5])[:1000]},
        )],
    )
    if CHANGES_KEY in context.selected_asset_keys:
        yield changes_output(result.changes, dry_run=False)
