"""Export one new App4Sales customer to Monitor (SPEC §1 second flow, §6; seed "Create Customer").

``export_new_customer`` is plain Python (no Dagster) so it can be tested with any client and
transport. Steps, in order:

1. look up the App4Sales-generated CustomerCode — any error aborts the export;
2. check the code is a safe file name and the XML is well-formed (hardened parser);
3. look at the target folder first: a file is never destroyed or replaced (SPEC §6).
   ``customers/<CustomerCode>.xml`` with the same bytes means "already delivered" (a re-executed
   run, a lost reply): success, no second upload. With other bytes, or another file whose name
   equals it ignoring case (``ABC123.xml`` for ``abc123``), it is a collision: nothing is uploaded;
4. otherwise upload the XML bytes unchanged to ``customers/<CustomerCode>.xml`` under the base
   folder, atomically (temporary name in the same folder, then a rename that does not replace a
   file that appeared meanwhile; the folder is created if missing), retrying transient transfer
   failures with exponential backoff;
5. record the delivery (``on_delivered``: the export acknowledgment), then post
   ``SUCCESS_CUSTOMER:<CustomerCode>`` — or ``{"Error": …}`` with the exception's class and message — to
   App4Sales. A retry after that finds the file there, or the record of it once Monitor has taken the file:
   it is never uploaded twice.

On failure the error is posted first, then ``ExportError`` is raised. Nothing is uploaded when
steps 1–3 fail. Messages never contain a password: the transport and client keep secrets out
of their errors, and ``secrets`` passed here are redacted as a second line of defence.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from monitor_pipeline.export.filenames import UnsafeFileNameError, validate_customer_code
from monitor_pipeline.export.xml_check import MalformedCustomerXmlError, check_well_formed, encode_customer_xml
from monitor_pipeline.lib.redact import redact
from monitor_pipeline.lib.retry import RetryPolicy
from monitor_pipeline.transport.errors import RemoteExistsError, RemoteNotFoundError, TransportError

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
    uploaded: bool = True  # False: the same bytes were already there (delivered before), nothing uploaded


class ExportCollisionError(Exception):
    """The target name is taken by another file (other bytes, or a name equal ignoring case): the
    export would destroy it, so nothing is uploaded and the file is left as it is (SPEC §6)."""


class ExportError(Exception):
    """The export failed. ``stage``: lookup, validate, collision, upload or report; ``posted``: the error
    reached App4Sales; ``transient``: trying the whole export again later may work (the upload's server was
    away; the result could not be posted, and a retry finds the same bytes there and posts it)."""

    def __init__(self, message: str, *, stage: str, customer_guid: str, customer_code: str | None = None,
                 posted: bool = False, post_error: str | None = None, cause: BaseException | None = None,
                 transient: bool = False):
        super().__init__(message)
        self.transient = transient
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


def _same_bytes(transport: Any, path: str, data: bytes) -> bool:
    """Does ``path`` hold exactly ``data``? The size first; only an equal size is downloaded and compared."""
    if transport.stat(path).size != len(data):
        return False
    with tempfile.TemporaryDirectory(prefix="monitor-export-") as folder:
        local = Path(folder) / "existing.xml"
        transport.download(path, local)
        return local.read_bytes() == data


def folder_listing(transport: Any, folder: str) -> list[str]:
    """The names in ``folder``; none when the folder does not exist (yet)."""
    try:
        return list(transport.listdir(folder))
    except RemoteNotFoundError as exc:
        if exc.kind == "folder":
            return []
        raise


def already_delivered(transport: Any, path: str, data: bytes, where: str = "") -> bool:
    """True when ``path`` already holds ``data``; False when neither it nor a case variant exists.

    Raises ``ExportCollisionError`` when the name is taken: by a file with other bytes, or by a file
    whose name equals it ignoring case (the same file on a case-insensitive server, SPEC §6).
    """
    folder, name = path.rsplit("/", 1)
    names = folder_listing(transport, folder)  # no folder yet: nothing can collide
    if name in names:
        if _same_bytes(transport, path, data):
            return True
        raise ExportCollisionError(
            f"{path} already exists{where} with other content than this customer's XML ({len(data)} bytes); "
            "it was left as it is and nothing was uploaded")
    variants = [other for other in names if other != name and other.casefold() == name.casefold()]
    if variants:
        raise ExportCollisionError(
            f"{folder}/{variants[0]} already exists{where}, which is the same file as {path} on a "
            "case-insensitive server; it was left as it is and nothing was uploaded")
    return False


def deliver(transport: Any, path: str, data: bytes, where: str = "",
            delivered_before: Callable[[], bool] | None = None) -> bool:
    """Upload ``data`` to ``path`` unless it is already there; True when uploaded now.

    The upload never replaces a file. When the target turns up during the upload (our own rename
    whose reply was lost and was retried, or a concurrent run of the same customer), the folder is
    looked at again: the same bytes are a delivery, other bytes a collision. ``delivered_before()``
    True: these bytes were delivered by an earlier try and Monitor has taken the file since; it is not
    uploaded a second time (Monitor would import the customer twice).
    """
    if already_delivered(transport, path, data, where):
        return False
    if delivered_before is not None and delivered_before():
        return False
    try:
        transport.upload_atomic(data, path, make_dirs=True, overwrite=False)
    except RemoteExistsError:
        if already_delivered(transport, path, data, where):
            return False
        raise
    return True


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
    report_transient: bool = True,
    delivered_before: Callable[[str, str], bool] | None = None,
    on_delivered: Callable[[str, str, str], None] | None = None,
) -> ExportResult:
    """Export one customer; return what was done, or post the error and raise ``ExportError``.

    ``transport_factory()`` must return a context manager yielding a connected transport (e.g.
    ``MonitorFileTransport.open``); every upload attempt opens a fresh connection.
    ``retry_attempts`` counts upload attempts in all (≥ 1); only ``TransportError`` with
    ``transient=True`` is retried, waiting ``retry_backoff_seconds * 2**n`` (capped) in between.
    ``report_transient=False``: an upload that still fails transiently after them raises
    ``ExportError(transient=True)`` *without* posting the error (the caller will try the export again
    later: a Dagster retry, :mod:`monitor_pipeline.defs.retries`); App4Sales hears only the final outcome.

    ``delivered_before(code, sha256)``: whether an earlier try recorded delivering exactly these bytes (then a
    file gone from the folder was taken by Monitor, and is not uploaded again). ``on_delivered(code, path,
    sha256)`` records a delivery before its success is posted; if it fails, the success is still posted (the
    file is there) and ``ExportError`` stage ``record`` is raised, not transient: trying again could upload
    the file a second time once Monitor has taken it.
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

    # 3./4. Never replace a file (nor deliver one twice); atomic upload with retries of transient failures.
    attempts = 0
    sha256 = hashlib.sha256(data).hexdigest()
    before = None if delivered_before is None else (lambda: delivered_before(code, sha256))

    def upload() -> bool:
        nonlocal attempts
        attempts += 1
        with transport_factory() as transport:
            return deliver(transport, path, data, where, delivered_before=before)

    def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
        say(f"upload attempt {attempt} of {path}{where} failed ({describe_exception(exc, secrets)}); "
            f"retrying in {wait:.1f}s")

    policy = RetryPolicy(attempts=max(1, retry_attempts), base=retry_backoff_seconds, cap=retry_max_seconds,
                         sleep=sleep)
    transient = lambda exc: isinstance(exc, TransportError) and bool(exc.transient)  # noqa: E731
    try:
        uploaded = policy.call(upload, is_transient=transient, on_retry=on_retry)
    except ExportCollisionError as exc:
        raise fail("collision", f"Customer {guid} ({code}) not exported: {exc}", code=code, cause=exc) from exc
    except Exception as exc:  # noqa: BLE001 - every upload failure is reported with its details
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if transient(exc) and not report_transient:
            raise ExportError(redact(f"Upload of {path}{where} failed{tries}: {describe_exception(exc, secrets)}; "
                                     "not reported to App4Sales yet (the export will be tried again)", *secrets),
                              stage="upload", customer_guid=guid, customer_code=code, cause=exc,
                              transient=True) from exc
        raise fail("upload", f"Upload of {path}{where} failed{tries}: {describe_exception(exc, secrets)}",
                   code=code, cause=exc) from exc
    if not uploaded:
        say(f"{path}{where}: this customer's XML was delivered before (the same bytes are there, or an earlier "
            "try recorded delivering them and Monitor has taken the file); not uploaded again")

    # 5. Record the delivery (the acknowledgment), then report success.
    record_error = None
    if on_delivered is not None:
        try:
            on_delivered(code, path, sha256)
        except Exception as exc:  # noqa: BLE001 - the file is delivered all the same: report it, then fail
            record_error = describe_exception(exc, secrets)
    message = f"{SUCCESS_PREFIX}{code}"
    try:
        client.post_result(guid, result=message)
    except Exception as exc:  # noqa: BLE001
        done = "was uploaded" if uploaded else "was already delivered"
        raise ExportError(
            redact(f"{path} {done}{where}, but reporting {message} to App4Sales failed: "
                   f"{describe_exception(exc, secrets)}", *secrets),
            stage="report", customer_guid=guid, customer_code=code, cause=exc,
            transient=bool(getattr(exc, "transient", False)) or isinstance(exc, OSError)) from exc
    if record_error is not None:
        raise ExportError(
            redact(f"{path} was {'uploaded' if uploaded else 'already delivered'}{where} and {message} posted, but "
                   f"the delivery could not be recorded for check exported_customers_arrived: {record_error}. "
                   "Do not re-execute: the customer is delivered; the check will not watch it", *secrets)[:MAX_ERROR_LENGTH],
            stage="record", customer_guid=guid, customer_code=code, transient=False)
    return ExportResult(customer_guid=guid, customer_code=code, remote_path=path, bytes=len(data),
                        sha256=sha256, message=message, attempts=attempts, uploaded=uploaded)
