"""The customer export job, App4Sales → Monitor (SPEC §6): one run per new customer.

The sensor ``new_customer_sensor`` puts the feed item in the run config, so a failed run can be
re-executed from the UI with exactly the same input. The op looks up the CustomerCode, checks
it and the XML, uploads ``customers/<CustomerCode>.xml`` atomically and reports the result to
App4Sales (``monitor_pipeline.export.export_new_customer``). A failure is posted to App4Sales
first, then fails the run with the same message.

Lineage (:mod:`monitor_pipeline.defs.customer_export.asset`, docs/export-asset.md): a delivered file — uploaded,
or the same bytes found already there — is recorded as a materialization of ``monitor_customer_files``
(group ``customer_export``; the run's partition, its tenant, when partitioned); every failed try as an
observation of it with the stage and the error.

A file in Monitor's folder is never replaced (SPEC §6): re-executing a run whose upload had
succeeded (e.g. its result post failed) finds the same bytes there, uploads nothing and posts
SUCCESS; another file under that name (other bytes, or the name in another case) fails the run
with stage ``collision`` and is left as it is.

Acknowledgment (:mod:`monitor_pipeline.export.acknowledgment`): a delivered customer is recorded in the sync
state of its administration (code, GUID, file, sha256, time) before SUCCESS is posted, so that check
``exported_customers_arrived`` of the later syncs can tell whether Monitor created it, and so that a retry
never uploads it a second time once Monitor has taken the file. A delivery that could not be recorded is
still reported as SUCCESS, then fails the step without a retry (stage ``record``).

Retries (:mod:`monitor_pipeline.defs.retries`): inside the op, ``retry_attempts`` (4) upload attempts,
each on a fresh connection of one try (``MonitorFileTransport.one_attempt``: the transport does not retry
again inside them), backoff 2 s doubling. An upload still failing transiently after them, or a result that
could not be posted, fails the step with ``allow_retries=True``: Dagster runs it again after
``MONITOR_STEP_RETRY_DELAY`` (60 s), at most ``MONITOR_STEP_RETRIES`` (2) times. The error is posted to
App4Sales only by the last try, so App4Sales hears one outcome, not an error followed by a success.
"""

# No ``from __future__ import annotations``: Dagster reads the op's annotations at decoration time.
import dagster as dg
from pydantic import Field

from monitor_pipeline.defs.customer_export.asset import MONITOR_CUSTOMER_FILES, delivered, failed, failed_export
from monitor_pipeline.export import ExportError, export_new_customer
from monitor_pipeline.export.acknowledgment import record_delivery, was_delivered
from monitor_pipeline.export.export_customer import MAX_ERROR_LENGTH, describe_exception
from monitor_pipeline.defs.retries import retries_left
from monitor_pipeline.resources.tenancy import MonitorTenancy, tenant_of

EXPORT_OP_NAME = "export_new_customer"
EXPORT_JOB_NAME = "export_new_customer_job"
FLOW_TAGS = {"flow": "customer_export"}


class ExportNewCustomerConfig(dg.Config):
    """One item of the App4Sales new-customer feed (``GET newcustomers``)."""

    customer_guid: str = Field(description="CustomerGuid of the new customer")
    sequence: int = Field(default=0, description="Sequence of the feed item (informational)")
    xml: str = Field(description="the customer's XML exactly as the feed gave it; uploaded unchanged")
    retry_attempts: int = Field(default=4, ge=1, le=20, description=(
        "upload attempts within one try of the step, each on a fresh connection of one try (the transport does "
        "not retry inside them); after them the step's retry policy takes over (MONITOR_STEP_RETRIES)"))
    retry_backoff_seconds: float = Field(default=2.0, ge=0.0, description="first wait; doubles each retry, max 30 s")


def run_config_for(item: dict) -> dict:
    """The run config of ``export_new_customer_job`` for one feed item (its tenant is the run's partition)."""
    config = {
        "customer_guid": str(item["CustomerGuid"]),
        "sequence": int(item.get("Sequence") or 0),
        "xml": item.get("Xml") or "",
    }
    return {"ops": {EXPORT_OP_NAME: {"config": config}}}


def delivery_record(settings, administration: str, guid: str) -> dict:
    """``delivered_before`` and ``on_delivered`` of ``export_new_customer``: the deliveries in the sync state of the
    administration (:mod:`monitor_pipeline.export.acknowledgment`)."""
    where = (settings.state_url or settings.state_dir, administration, settings.state_tenant)

    def delivered_before(code: str, sha256: str) -> bool:
        try:
            return was_delivered(*where, code=code, sha256=sha256)
        except Exception as exc:  # noqa: BLE001 - not knowing must not mean uploading a second time
            raise RuntimeError(f"the sync state could not be read to tell whether this customer was delivered "
                               f"before, nothing uploaded: {exc}") from exc

    def on_delivered(code: str, path: str, sha256: str) -> None:
        record_delivery(*where, code=code, guid=guid, file=path, sha256=sha256)

    return {"delivered_before": delivered_before, "on_delivered": on_delivered}


def _tag_run(context: dg.OpExecutionContext, tags: dict[str, str]) -> None:
    try:
        context.instance.add_run_tags(context.run_id, tags)
    except Exception as exc:  # noqa: BLE001 - tags are a convenience; never fail the export for them
        context.log.debug(f"could not tag the run: {exc}")


def build_export_new_customer_op(retry_policy: dg.RetryPolicy | None = None) -> dg.OpDefinition:
    """The export op; ``retry_policy``: Dagster's retry of a try that failed transiently."""

    def _export(context: dg.OpExecutionContext, config: ExportNewCustomerConfig, monitor_ftp, app4sales,
                tenant_settings, server: str, secrets: list, event: dict):
        """The export on one App4Sales connection slot; an ``ExportError`` is observed, logged and raised as
        ``dg.Failure`` (``allow_retries`` when it is transient and a try is left)."""
        guid = config.customer_guid
        with app4sales.session() as client:  # one of the App4Sales host's connection slots; the upload takes an FTP one
            last_try = retries_left(context, retry_policy) == 0
            try:
                return export_new_customer(
                    client, monitor_ftp.one_attempt().open, guid, config.xml,
                    retry_attempts=config.retry_attempts, retry_backoff_seconds=config.retry_backoff_seconds,
                    server=server, secrets=secrets, log=context.log.warning, report_transient=last_try,
                    **delivery_record(tenant_settings, app4sales.administration, guid),
                )
            except ExportError as exc:
                if exc.customer_code:
                    _tag_run(context, {"customer_code": exc.customer_code[:200]})
                retry = exc.transient and not last_try
                (context.log.warning if retry else context.log.error)(
                    exc.message + (f" — the step is tried again ({retries_left(context, retry_policy)} tries left)"
                                   if retry else ""))
                context.log_event(failed_export(exc, will_retry=retry, **event))
                raise dg.Failure(
                    description=f"Customer export failed ({exc.stage}): {exc.message}",
                    metadata={
                        "customer_guid": guid,
                        "customer_code": exc.customer_code or "",
                        "stage": exc.stage,
                        "error_posted_to_app4sales": exc.posted,
                        "message": exc.message,
                        "step_try": context.retry_number + 1,
                    },
                    allow_retries=retry,
                ) from None

    @dg.op(
        name=EXPORT_OP_NAME,
        # {CustomerCode}, not <CustomerCode>: the UI renders descriptions as Markdown, where <…> is HTML
        description="Upload one new App4Sales customer's XML to Monitor as `customers/{CustomerCode}.xml`, report "
                    "`SUCCESS_CUSTOMER:{CustomerCode}` (or the error) back to App4Sales and record the delivery "
                    f"as a materialization of {MONITOR_CUSTOMER_FILES.to_user_string()} (a failure as an "
                    "observation of it).",
        tags=FLOW_TAGS,
        out=dg.Out(dict, description="customer_guid, customer_code, remote_path, bytes, sha256, message, uploaded"),
        retry_policy=retry_policy,
    )
    def export_new_customer_op(
        context: dg.OpExecutionContext,
        config: ExportNewCustomerConfig,
        tenancy: dg.ResourceParam[MonitorTenancy],
    ) -> dict:
        guid = config.customer_guid
        tenant = tenancy.for_context(context)
        monitor_ftp, app4sales = tenant.monitor_ftp, tenant.app4sales
        try:
            server = monitor_ftp.description
        except Exception:  # noqa: BLE001 - only used in messages
            server = ""
        context.log.info(f"Exporting new customer {guid} (feed sequence {config.sequence}) to {server or 'Monitor'}")
        secrets = [monitor_ftp.password, app4sales.password]
        event = dict(partition=tenant_of(context), server=server, sequence=config.sequence,
                     step_try=context.retry_number + 1)
        try:
            result = _export(context, config, monitor_ftp, app4sales, tenant.settings, server, secrets, event)
        except dg.Failure:
            raise
        except Exception as exc:  # outside the export itself (e.g. no App4Sales connection slot in time)
            error = describe_exception(exc, secrets)[:MAX_ERROR_LENGTH]
            context.log_event(failed(guid=guid, stage="step", error=error,
                                     will_retry=retries_left(context, retry_policy) > 0, **event))
            raise
        _tag_run(context, {"customer_code": result.customer_code})
        done = "Uploaded" if result.uploaded else "Already delivered (same bytes there, not uploaded again):"
        context.log.info(f"{done} {result.remote_path} ({result.bytes} bytes) and posted {result.message}")
        context.log_event(delivered(result, **event))
        context.add_output_metadata({
            "customer_guid": result.customer_guid,
            "customer_code": result.customer_code,
            "remote_path": result.remote_path,
            "server": server,
            "bytes": result.bytes,
            "sha256": result.sha256,
            "message_posted": result.message,
            "upload_attempts": result.attempts,
            "already_delivered": not result.uploaded,
        })
        return {
            "customer_guid": result.customer_guid, "customer_code": result.customer_code,
            "remote_path": result.remote_path, "bytes": result.bytes, "sha256": result.sha256,
            "message": result.message, "uploaded": result.uploaded,
        }

    return export_new_customer_op


def build_export_new_customer_job(partitions_def: dg.PartitionsDefinition | None = None,
                                  retry_policy: dg.RetryPolicy | None = None) -> dg.JobDefinition:
    """``export_new_customer_job``; with tenants partitioned like the sync, one partition per tenant."""
    export_new_customer_op = build_export_new_customer_op(retry_policy)

    @dg.job(
        name=EXPORT_JOB_NAME,
        description="Customer export, App4Sales → Monitor: upload one new customer's XML as "
                    "`customers/{CustomerCode}.xml`, report the result to App4Sales and record the delivery in "
                    f"the asset {MONITOR_CUSTOMER_FILES.to_user_string()} (group customer_export). Launched by "
                    "new_customer_sensor, one run per customer"
                    + (" (the tenant is the run's partition)." if partitions_def else "."),
        tags=FLOW_TAGS,
        executor_def=dg.in_process_executor,
        partitions_def=partitions_def,
    )
    def export_new_customer_job() -> None:
        export_new_customer_op()

    return export_new_customer_job


export_new_customer_job = build_export_new_customer_job()
