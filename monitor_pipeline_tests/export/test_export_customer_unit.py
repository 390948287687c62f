"""``export_new_customer`` with in-memory fakes: the order of steps, retries and what gets posted."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path

import pytest

from monitor_pipeline.export import ExportError, export_new_customer
from monitor_pipeline.transport import RemoteStat
from monitor_pipeline.transport.errors import RemoteExistsError
from monitor_pipeline.transport.errors import (RemoteNotFoundError, TransientTransportError, TransportAuthError,
                                               TransportError)

GUID = "0b9e0c1e-1111-4222-8333-444455556666"
XML = '<?xml version="1.0" encoding="utf-8"?>\n<NewCustomers><Customer><name>Malmö AB</name></Customer></NewCustomers>'


class FakeClient:
    def __init__(self, code="C00124", lookup_error: Exception | None = None, post_error: Exception | None = None):
        self.code, self.lookup_error, self.post_error = code, lookup_error, post_error
        self.posted: list[dict] = []

    def customer_code(self, guid):
        if self.lookup_error:
            raise self.lookup_error
        return self.code

    def post_result(self, guid, *, result=None, error=None):
        if self.post_error:
            raise self.post_error
        self.posted.append({"guid": guid, "result": result, "error": error})


class FakeTransport:
    """Files in a dict; ``upload_atomic`` refuses to overwrite like the real one with ``overwrite=False``.
    ``sneak_in``: a file another writer creates while our upload is in flight."""

    def __init__(self, failures: list[Exception] | None = None, files: dict[str, bytes] | None = None,
                 sneak_in: tuple[str, bytes] | None = None):
        self.failures = list(failures or [])
        self.files: dict[str, bytes] = dict(files or {})
        self.sneak_in = sneak_in
        self.opened = 0
        self.uploads: list[str] = []

    @contextmanager
    def open(self):
        self.opened += 1
        yield self

    def listdir(self, folder):
        names = [path.rsplit("/", 1)[1] for path in self.files if path.rsplit("/", 1)[0] == folder]
        if not names:
            raise RemoteNotFoundError(f"folder {folder!r} does not exist", path=folder, kind="folder")
        return sorted(names)

    def stat(self, path):
        return RemoteStat(size=len(self.files[path]), mtime=None)

    def download(self, path, local_path):
        Path(local_path).write_bytes(self.files[path])

    def upload_atomic(self, source, path, *, make_dirs=True, overwrite=True):
        assert make_dirs and not overwrite  # the export never overwrites (SPEC §6)
        if self.failures:
            raise self.failures.pop(0)
        if self.sneak_in:
            name, data = self.sneak_in
            self.files[name], self.sneak_in = data, None
        if path in self.files:
            raise RemoteExistsError(f"upload: file {path!r} appeared during the upload", path=path)
        self.uploads.append(path)
        self.files[path] = bytes(source)


def run(client, transport, xml=XML, **kwargs):
    sleeps: list[float] = []
    kwargs.setdefault("retry_attempts", 4)
    result = export_new_customer(client, transport.open, GUID, xml, sleep=sleeps.append, **kwargs)
    return result, sleeps


def test_success_uploads_bytes_unchanged_and_posts_success():
    client, transport = FakeClient(), FakeTransport()
    result, sleeps = run(client, transport)
    data = XML.encode("utf-8")
    assert transport.files == {"customers/C00124.xml": data}
    assert client.posted == [{"guid": GUID, "result": "SUCCESS_CUSTOMER:C00124", "error": None}]
    assert (result.customer_code, result.remote_path, result.bytes) == ("C00124", "customers/C00124.xml", len(data))
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.message == "SUCCESS_CUSTOMER:C00124" and result.attempts == 1 and sleeps == []


def test_transient_failures_are_retried_with_backoff():
    client = FakeClient()
    transport = FakeTransport([TransientTransportError("connection reset"), TransportError("421 busy", transient=True)])
    result, sleeps = run(client, transport, retry_backoff_seconds=1.0)
    assert result.attempts == 3 and transport.opened == 3
    assert len(sleeps) == 2 and sleeps[0] >= 1.0 and sleeps[1] >= 2.0
    assert client.posted[-1]["result"] == "SUCCESS_CUSTOMER:C00124"


def test_transient_failures_give_up_after_the_attempts_and_post_the_details():
    client = FakeClient()
    transport = FakeTransport([TransientTransportError(f"timeout {i}") for i in range(10)])
    with pytest.raises(ExportError) as info:
        run(client, transport, retry_attempts=3, server="ftp://127.0.0.1:2121")
    assert transport.opened == 3 and transport.files == {}
    error = client.posted[-1]["error"]
    assert client.posted[-1]["result"] is None
    assert "TransientTransportError: timeout 2" in error and "after 3 attempts" in error
    assert "ftp://127.0.0.1:2121" in error and "customers/C00124.xml" in error
    assert info.value.stage == "upload" and info.value.posted


def test_permanent_failure_is_not_retried_and_secrets_are_redacted():
    client = FakeClient()
    transport = FakeTransport([TransportAuthError("530 Login incorrect for s3cr3t-pw")])
    with pytest.raises(ExportError) as info:
        run(client, transport, secrets=["s3cr3t-pw"])
    assert transport.opened == 1
    error = client.posted[-1]["error"]
    assert error.startswith("Upload of customers/C00124.xml failed: TransportAuthError: 530 Login incorrect")
    assert "s3cr3t-pw" not in error and "s3cr3t-pw" not in str(info.value)


def test_unexpected_upload_exception_is_reported_too():
    client, transport = FakeClient(), FakeTransport([PermissionError(13, "Permission denied")])
    with pytest.raises(ExportError, match="PermissionError"):
        run(client, transport)
    assert "PermissionError" in client.posted[-1]["error"]


def test_lookup_error_aborts_before_upload():
    client = FakeClient(lookup_error=LookupError("404 unknown customer"))
    transport = FakeTransport()
    with pytest.raises(ExportError) as info:
        run(client, transport)
    assert transport.opened == 0
    assert "CustomerCode lookup" in client.posted[-1]["error"] and "404 unknown customer" in client.posted[-1]["error"]
    assert info.value.stage == "lookup"


@pytest.mark.parametrize("code", ["../etc/x", "a/b", "..", "", "CON", "nul.txt"])
def test_unsafe_code_aborts_before_upload(code):
    client, transport = FakeClient(code=code), FakeTransport()
    with pytest.raises(ExportError, match="not a|empty") as info:
        run(client, transport)
    assert transport.opened == 0 and info.value.stage == "validate"
    assert "CustomerCode" in client.posted[-1]["error"]


def test_malformed_xml_aborts_before_upload():
    client, transport = FakeClient(), FakeTransport()
    with pytest.raises(ExportError, match="not well-formed"):
        run(client, transport, xml="<NewCustomers><Customer></NewCustomers>")
    assert transport.opened == 0
    assert "not well-formed" in client.posted[-1]["error"]


def test_error_that_cannot_be_posted_still_raises_with_both_reasons():
    client = FakeClient(lookup_error=ConnectionError("refused"), post_error=ConnectionError("refused again"))
    with pytest.raises(ExportError) as info:
        run(client, FakeTransport())
    assert not info.value.posted
    assert "refused" in str(info.value) and "could not be reported" in str(info.value)


def test_success_that_cannot_be_posted_fails_after_upload():
    client, transport = FakeClient(post_error=ConnectionError("gone")), FakeTransport()
    with pytest.raises(ExportError, match="was uploaded") as info:
        run(client, transport)
    assert info.value.stage == "report"
    assert "customers/C00124.xml" in transport.files


def test_same_bytes_already_there_is_success_without_a_second_upload():
    """A re-executed run (or a retried attempt whose rename reply was lost) finds its own file."""
    data = XML.encode("utf-8")
    client, transport = FakeClient(), FakeTransport(files={"customers/C00124.xml": data})
    result, _ = run(client, transport)
    assert transport.uploads == [] and transport.files == {"customers/C00124.xml": data}
    assert not result.uploaded and result.message == "SUCCESS_CUSTOMER:C00124"
    assert client.posted == [{"guid": GUID, "result": "SUCCESS_CUSTOMER:C00124", "error": None}]


@pytest.mark.parametrize("existing, named", [
    ({"customers/C00124.xml": b"<other customer/>"}, "customers/C00124.xml"),
    ({"customers/c00124.XML": b"<x/>"}, "customers/c00124.XML"),      # the same file on a case-insensitive server
    ({"customers/c00124.xml": XML.encode("utf-8")}, "customers/c00124.xml"),  # even with the same bytes
])
def test_a_taken_name_is_a_collision_nothing_uploaded_error_posted(existing, named):
    client, transport = FakeClient(), FakeTransport(files=existing)
    with pytest.raises(ExportError) as info:
        run(client, transport)
    assert info.value.stage == "collision" and info.value.posted
    assert transport.uploads == [] and transport.files == existing
    assert [p["result"] for p in client.posted] == [None]
    error = client.posted[0]["error"]
    assert named in error and "left as it is" in error and "customers/C00124.xml" in error


def test_file_appearing_during_the_upload_is_never_replaced():
    client = FakeClient()
    transport = FakeTransport(sneak_in=("customers/C00124.xml", b"written by someone else"))
    with pytest.raises(ExportError) as info:
        run(client, transport)
    assert info.value.stage == "collision"
    assert transport.files == {"customers/C00124.xml": b"written by someone else"} and transport.uploads == []
    assert client.posted[-1]["result"] is None


def test_own_file_appearing_during_the_upload_counts_as_delivered():
    """E.g. a concurrent run of the same customer finished first: same bytes, so delivered once."""
    data = XML.encode("utf-8")
    client, transport = FakeClient(), FakeTransport(sneak_in=("customers/C00124.xml", data))
    result, _ = run(client, transport)
    assert not result.uploaded and transport.uploads == []
    assert [p["result"] for p in client.posted] == ["SUCCESS_CUSTOMER:C00124"]
