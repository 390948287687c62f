"""Export one new App4Sales customer to Monitor (SPEC §1 second flow, §6; seed "Create Customer").

``export_new_customer`` is plain Python (no Dagster) so it can be tested with any client and
transport. Steps, in order:

1. look up the App4Sales-generated CustomerCode — any error aborts the export;
2. check the code is a safe file name and the XML is well-formed (hardened parser);
3. upload the XML bytes unchanged to ``customers/<CustomerCode>.xml`` under the base folder,
   atomically (temporary name in the same folder, then rename; the folder is created if
   missing), retrying transient transfer failures with exponential backoff;
4. post ``SUCCESS_CUSTOMER:<CustomerCode>`` — or ``{"Error": …}`` with the exception's class and
   message — to App4Sales.

On failure the error is posted first, then ``ExportError`` is raised. Nothing is uploaded when
steps 1–2 fail. Messages never contain a password: the transport and client keep secrets out
of their errors, and ``secrets`` passed here are redacted as a second line of defence.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from monitor_pipeline.export.filenames import UnsafeFileNameError, validate_customer_code
from monitor_pipeline.export.xml_check import MalformedCustomerXmlError, check_well_formed, encode_customer_xml
from monitor_pipeline.lib.redact import redact
from monitor_pipeline.lib.retry import RetryPolicy
from monitor_pipeline.transport.errors import TransportError

EXPORT_FOLDER = "customers"
SUCCESS_PREFIX = "SUCCESS_CUSTOMER:"
MAX_ERROR_LENGTH = 2000


class NewCustomerClient(Protocol):
    """The three App4Sales calls the export needs (``App4SalesClient`` provides them)."""

    def customer_code(self, guid: str) -> str: ...

    def post_result(self, guid: str, *, result: str | None = None, error: str | None = None) -> Any: ...


TransportFactory = Callable[[], AbstractContextManager[Any]]


@dataclass(frozen=True)
class ExportResult:
    customer_guid: str
    customer_code: str
    remote_path: str  # relative to the base folder of the server
    bytes: int
    sha256: str
    message: str  # what was posted to App4Sales
    attempts: int  # upload attempts used


class ExportError(Exception):
    """The export failed. ``stage``: lookup, validate, upload or report; ``posted``: the error reached App4Sales."""

    def __init__(self, message: str, *, stage: str, customer_guid: str, customer_code: str | None = None,
                 posted: bool = False, post_error: str | None = None, cause: BaseException | None = None):
        super().__init__(message)
        self.message = message
        self.stage = stage
        self.customer_guid = customer_guid
        self.customer_code = customer_code
        self.posted = posted
        self.post_error = post_error
        self.cause = cause


def describe_exception(exc: BaseException, secrets: Iterable[str | None] = ()) -> str:
    """``ClassName: message``, secrets redacted.

    The underlying library error (``__cause__``, e.g. ftplib's ``error_perm: 550 …`` or paramiko's
    ``PermissionError``) is appended when its text is not already part of the message, so the
    server's own reply reaches App4Sales even when the transport summarised it.
    """
    text = str(exc).strip()
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    cause = exc.__cause__
    if cause is not None and cause is not exc:
        cause_text = str(cause).strip()
        if cause_text and cause_text not in text:
            described += f" (caused by {type(cause).__name__}: {cause_text})"
    return redact(described, *secrets)


def remote_path_for(code: str) -> str:
    return f"{EXPORT_FOLDER}/{validate_customer_code(code)}.xml"


def export_new_customer(
    client: NewCustomerClient,
    transport_factory: TransportFactory,
    guid: str,
    xml: str | bytes,
    *,
    retry_attempts: int = 4,
    retry_backoff_seconds: float = 1.0,
    retry_max_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    server: str = "",
    secrets: Sequence[str | None] = (),
    log: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export one customer; return what was done, or post the error and raise ``ExportError``.

    ``transport_factory()`` must return a context manager yielding a connected transport (e.g.
    ``MonitorFileTransport.open``); every upload attempt opens a fresh connection.
    ``retry_attempts`` counts upload attempts in all (≥ 1); only ``TransportError`` with
    ``transient=True`` is retried, waiting ``retry_backoff_seconds * 2**n`` (capped) in between.
    """
    say = log or (lambda message: None)
    where = f" on {server}" if server else ""

    def fail(stage: str, message: str, *, code: str | None = None, cause: BaseException | None = None) -> ExportError:
        message = redact(message, *secrets)
        if len(message) > MAX_ERROR_LENGTH:
            message = message[: MAX_ERROR_LENGTH - 1] + "…"
        posted, post_error = False, None
        try:
            client.post_result(guid, error=message)
            posted = True
        except Exception as exc:  # noqa: BLE001 - the original failure is what matters; report both
            post_error = describe_exception(exc, secrets)
        full = message if posted else f"{message} [the error could not be reported to App4Sales: {post_error}]"
        return ExportError(full, stage=stage, customer_guid=guid, customer_code=code, posted=posted,
                           post_error=post_error, cause=cause)

    # 1. CustomerCode lookup: any error aborts (seed: "If the lookup returns an error, the process is aborted").
    try:
        code = client.customer_code(guid)
    except Exception as exc:  # noqa: BLE001
        raise fail("lookup", f"CustomerCode lookup for customer {guid} failed, nothing uploaded: "
                             f"{describe_exception(exc, secrets)}", cause=exc) from exc

    # 2. Safe file name, well-formed XML.
    try:
        path = remote_path_for(code)
    except UnsafeFileNameError as exc:
        raise fail("validate", f"Customer {guid} not exported, nothing uploaded: {exc}", code=str(code),
                   cause=exc) from exc
    try:
        data = encode_customer_xml(xml)
        check_well_formed(data)
    except MalformedCustomerXmlError as exc:
        raise fail("validate", f"Customer {guid} ({code}) not exported, nothing uploaded: {exc}", code=code,
                   cause=exc) from exc

    # 3. Atomic upload with retries of transient failures.
    attempts = 0

    def upload() -> None:
        nonlocal attempts
        attempts += 1
        with transport_factory() as transport:
            transport.upload_atomic(data, path, make_dirs=True)

    def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
        say(f"upload attempt {attempt} of {path}{where} failed ({describe_exception(exc, secrets)}); "
            f"retrying in {wait:.1f}s")

    policy = RetryPolicy(attempts=max(1, retry_attempts), base=retry_backoff_seconds, cap=retry_max_seconds,
                         sleep=sleep)
    try:
        policy.call(upload, is_transient=lambda exc: isinstance(exc, TransportError) and bool(exc.transient),
                    on_retry=on_retry)
    except Exception as exc:  # noqa: BLE001 - every upload failure is reported with its details
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        raise fail("upload", f"Upload of {path}{where} failed{tries}: {describe_exception(exc, secrets)}",
                   code=code, cause=exc) from exc

    # 4. Report success.
    message = f"{SUCCESS_PREFIX}{code}"
    try:
        client.post_result(guid, result=message)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(
            redact(f"{path} was uploaded{where}, but reporting {message} to App4Sales failed: "
                   f"{describe_exception(exc, secrets)}", *secrets),
            stage="report", customer_guid=guid, customer_code=code, cause=exc) from exc
    return ExportResult(customer_guid=guid, customer_code=code, remote_path=path, bytes=len(data),
                        sha256=hashlib.sha256(data).hexdigest(), message=message, attempts=attempts)
