"""The retry budget, in one place: short retries inside a step for blips, Dagster's ``RetryPolicy`` for
outages, and never a third layer multiplying them.

1. **Inside a step, for blips** (seconds):

   - each App4Sales call: 5 tries, 0.5 s doubling up to 30 s, a server's ``Retry-After`` honoured up to
     30 s (``App4SalesSettings.retry_attempts``); only connection errors, timeouts, 429 and 5xx;
   - each FTP/FTPS/SFTP connect and transfer: 4 tries on a fresh connection, 0.5 s doubling
     (``TransportConfig.retry_attempts``);
   - the export's upload: ``retry_attempts`` (4) attempts, each on a fresh connection of **one** try
     (``MonitorFileTransport.one_attempt``), so the transport's own tries do not multiply them;
   - a sensor's look: one try (``one_attempt``); the next tick is the retry, with backoff per tenant
     (:mod:`monitor_pipeline.defs.tenant_looks`).

2. **The step again, for outages** (minutes): a step that failed transiently — ``dg.Failure`` with
   ``allow_retries=True`` (a server away after the tries above, App4Sales' 5xx/429, no connection slot
   free in time, another run holding the administration's lock) or an unexpected exception — is run again
   ``MONITOR_STEP_RETRIES`` times (2), after ``MONITOR_STEP_RETRY_DELAY`` (60 s), then 3×, 7× that (Dagster's
   exponential backoff). A permanent failure (a malformed customers.xml, bad credentials, a rejected
   batch, a file collision in Monitor's folder) is ``allow_retries=False`` and fails the run at once: a
   retry would only repeat it. Retrying a sync step is safe: what App4Sales confirmed is recorded, so the
   retry sends only what is still missing. The export's op posts its error to App4Sales only when no retry
   is left (``export_new_customer(..., report_transient=False)`` before that).

Worst case, the defaults, per try of a step (the README's "Retries" adds them up):
``customers_xml`` ≤ 300 s waiting for an FTP connection slot + 4 × (15 s connect + the transfer) + 4 s,
a transfer failing once it averages under 1024 B/s over 30 s or pauses 60 s; each App4Sales call of
``customer_upsert_batches`` ≤ 5 × 120 s + 4 × 30 s (the step stops at the first call that fails that way),
after ≤ 300 s for the administration's lock and ≤ 300 s for connection slots.
"""

from __future__ import annotations

import dagster as dg

from monitor_pipeline.deployment import DeploymentSettings


def step_retry_policy(deployment: DeploymentSettings) -> dg.RetryPolicy | None:
    """The ``RetryPolicy`` of every step that talks to a server (None: ``MONITOR_STEP_RETRIES=0``)."""
    if deployment.step_retries == 0:
        return None
    return dg.RetryPolicy(max_retries=deployment.step_retries, delay=deployment.step_retry_delay,
                          backoff=dg.Backoff.EXPONENTIAL)


def retries_left(context: dg.OpExecutionContext, policy: dg.RetryPolicy | None) -> int:
    """How many more times Dagster will run this step if it fails transiently now."""
    return 0 if policy is None else max(0, policy.max_retries - context.retry_number)
