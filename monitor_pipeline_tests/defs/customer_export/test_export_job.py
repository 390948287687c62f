"""``export_new_customer_job`` against the real App4Sales sandbox and real file servers.

Every scenario runs over all four transports: pyftpdlib FTP, the paramiko SFTP server, OpenSSH
sshd (``internal-sftp``) and ``file://``. The servers come from ``monitor_pipeline_tests.servers``
(started once per module); each test starts from an empty base folder. Server variants (renames
refused, a case-insensitive FTP server) are started by the tests that need them.

"Nothing was uploaded" is checked on the server side: the FTP server's STOR count and the paramiko
server's opens for writing; for sshd and ``file://`` (and for all four) the target folder's own
mtime and entries, which any created, renamed or removed file (a temp file included) would change.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from monitor_pipeline_tests.resources import tenancy
from monitor_pipeline.defs.customer_export.job import EXPORT_OP_NAME, export_new_customer_job, run_config_for
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.transport import TransportConfig, open_transport

TRANSPORTS = ["ftp", "sftp-paramiko", "sftp-sshd", "file"]


@dataclass
class Target:
    kind: str
    base_dir: Path          # local folder behind the URL's base
    config: TransportConfig
    server: object | None = None

    def resource(self, **overrides) -> MonitorFileTransport:
        c = self.config
        fields = dict(url=c.url, username=c.username, password=c.password, active=c.active, ca_file=c.ca_file,
                      known_hosts=c.known_hosts, connect_timeout=c.connect_timeout, read_timeout=c.read_timeout)
        fields.update(overrides)
        return MonitorFileTransport(**fields)

    def files(self) -> list[str]:
        """Every file under the base folder, relative, temp files included."""
        return sorted(str(p.relative_to(self.base_dir)) for p in self.base_dir.rglob("*") if p.is_file())

    def write(self, rel: str, data: bytes) -> Path:
        """A file already in Monitor's folder (owned by the login user, so only our code's care protects it)."""
        path = self.base_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if self.kind == "sftp-sshd":
            self.server.give_to_user(self.base_dir)
        return path

    def watch(self, rel: str = "customers") -> FolderWatch:
        return FolderWatch(self, self.base_dir / rel)

    def uploads(self) -> int:
        """Uploads the server has received (STOR / SFTP opens for writing); 0 where it cannot count them."""
        if self.kind == "ftp":
            return self.server.count("STOR")
        if self.kind == "sftp-paramiko":
            return len(self.server.uploads())
        return 0


class FolderWatch:
    """Server-side evidence that nothing was written to a folder since the watch began: no upload
    command arrived and the folder's entries and mtime are unchanged (its mtime is first set to a
    fixed past time, so any entry created, renamed or removed since — a temp file too — shows)."""

    PAST_NS = 1_000_000_000 * 10**9

    def __init__(self, target: Target, folder: Path):
        self.target, self.folder = target, folder
        self.uploads_before = target.uploads()
        if folder.is_dir():
            os.utime(folder, ns=(self.PAST_NS, self.PAST_NS))
        self.before = self._state()

    def _state(self):
        if not self.folder.is_dir():
            return None
        entries = sorted((p.name, p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in self.folder.iterdir())
        return self.folder.stat().st_mtime_ns, entries

    def uploads(self) -> int:
        return self.target.uploads() - self.uploads_before

    def assert_untouched(self) -> None:
        assert self.uploads() == 0, f"{self.uploads()} upload(s) reached the server"
        assert self._state() == self.before, "the folder changed"


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@pytest.fixture(scope="module")
def ftp_server(tmp_path_factory):
    from monitor_pipeline_tests.servers.ftp import start_ftp_server
    server = start_ftp_server(tmp_path_factory.mktemp("export-ftp"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def paramiko_server(tmp_path_factory):
    from monitor_pipeline_tests.servers.sftp import start_sftp_server
    server = start_sftp_server(tmp_path_factory.mktemp("export-sftp"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sshd_server():
    from monitor_pipeline_tests.servers.sshd import SshdUnavailable, start_sshd
    try:
        server = start_sshd()
    except SshdUnavailable as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture(params=TRANSPORTS)
def target(request, tmp_path) -> Iterator[Target]:
    kind = request.param
    if kind == "file":
        base = tmp_path / "monitor"
        base.mkdir()
        yield Target(kind, base, TransportConfig(url=base.as_uri()))
        return
    if kind == "ftp":
        server = request.getfixturevalue("ftp_server")
        config = server.config()
    elif kind == "sftp-paramiko":
        server = request.getfixturevalue("paramiko_server")
        config = server.config()
    else:
        server = request.getfixturevalue("sshd_server")
        if server.password_auth_available:
            config = server.config()
        else:  # not root: log in with the key
            config = server.config(private_key=server.client_key)
    _empty(server.base_dir)
    yield Target(kind, server.base_dir, config, server)
    if kind == "sftp-sshd":
        for path in [server.base_dir, *server.base_dir.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    _empty(server.base_dir)


def app4sales(sandbox, **overrides) -> App4SalesApi:
    fields = dict(url=sandbox.base_url(), username=sandbox.username, password=sandbox.password,
                  retry_attempts=2, retry_backoff_seconds=0.01)
    fields.update(overrides)
    return App4SalesApi(**fields)


def feed_item(sandbox, guid: str) -> dict:
    with sandbox.client() as client:
        items = client.new_customers(after=0, take=1000)
    return next(item for item in items if item["CustomerGuid"] == guid)


_INSTANCES: list[dg.DagsterInstance] = []


@pytest.fixture(autouse=True)
def _dispose_instances():
    yield
    while _INSTANCES:
        _INSTANCES.pop().dispose()


def run_export(item: dict, monitor_ftp, app4sales_api, *, instance: dg.DagsterInstance | None = None, **op_config):
    """One run on ``instance`` (the caller disposes of it), else on an ephemeral one of its own."""
    run_config = run_config_for(item)
    run_config["ops"][EXPORT_OP_NAME]["config"].update({"retry_backoff_seconds": 0.0, **op_config})
    if instance is None:
        instance = dg.DagsterInstance.ephemeral()
        _INSTANCES.append(instance)
    result = export_new_customer_job.execute_in_process(
        run_config=run_config, resources=tenancy(monitor_ftp, app4sales_api),
        instance=instance, raise_on_error=False)
    return result, instance


def output_metadata(result) -> dict:
    outputs = [e for e in result.events_for_node(EXPORT_OP_NAME) if e.event_type_value == "STEP_OUTPUT"]
    assert len(outputs) == 1
    return {k: v.value for k, v in outputs[0].event_specific_data.metadata.items()}


def failure_message(result) -> str:
    failures = result.get_step_failure_events()
    assert failures, "the step did not fail"
    error = failures[0].step_failure_data.error
    return error.message if error is not None else ""


XML = ('<?xml version="1.0" encoding="utf-8"?>\r\n<NewCustomers>\n  <Customer>\n'
       '    <customerGuid>{guid}</customerGuid>\n    <name>Kaffe &amp; Bullar AB — Malmö</name>\n'
       '    <note><![CDATA[ 5 < 6 ]]></note>\t\n  </Customer>\n</NewCustomers>')


def test_export_uploads_the_feed_xml_byte_for_byte_and_reports_success(sandbox, target):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Kaffe & Bullar AB", xml=XML.format(guid="placeholder"))
    item = feed_item(sandbox, created["CustomerGuid"])
    code = created["CustomerCode"]

    result, instance = run_export(item, target.resource(), app4sales(sandbox))
    assert result.success

    uploaded = (target.base_dir / "customers" / f"{code}.xml").read_bytes()
    assert uploaded == item["Xml"].encode("utf-8")
    assert target.files() == [f"customers/{code}.xml"]  # no temp file left

    assert admin.get_result(created["CustomerGuid"])["Result"] == f"SUCCESS_CUSTOMER:{code}"
    assert admin.get_result(created["CustomerGuid"])["Error"] is None

    metadata = output_metadata(result)
    assert metadata["customer_guid"] == created["CustomerGuid"]
    assert metadata["customer_code"] == code
    assert metadata["remote_path"] == f"customers/{code}.xml"
    assert metadata["bytes"] == len(uploaded)
    assert metadata["sha256"] == hashlib.sha256(uploaded).hexdigest()
    assert metadata["message_posted"] == f"SUCCESS_CUSTOMER:{code}"
    assert instance.get_run_by_id(result.run_id).tags["customer_code"] == code
    assert target.config.password not in repr(metadata) if target.config.password else True


def test_existing_file_with_other_bytes_is_a_collision_and_left_as_it_is(sandbox, target):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Nordic Tools AB")
    item, code = feed_item(sandbox, created["CustomerGuid"]), created["CustomerCode"]
    existing = target.write(f"customers/{code}.xml", b"<NewCustomers>another customer's pending file</NewCustomers>")
    watch = target.watch()
    result, _ = run_export(item, target.resource(), app4sales(sandbox))
    assert not result.success
    posted = admin.get_result(created["CustomerGuid"])
    assert posted["Result"] is None and posted["Posts"] == 1
    assert f"customers/{code}.xml already exists on {target.config.describe()} with other content" in posted["Error"]
    assert "left as it is and nothing was uploaded" in posted["Error"]
    assert posted["Error"] in failure_message(result) and "(collision)" in failure_message(result)
    assert existing.read_bytes() == b"<NewCustomers>another customer's pending file</NewCustomers>"
    watch.assert_untouched()


def test_second_customer_with_the_same_code_never_replaces_the_first(sandbox, target):
    admin = sandbox.admin_api()
    first = admin.create_new_customer("First AB", xml="<NewCustomers><Customer>first</Customer></NewCustomers>")
    second = admin.create_new_customer("Second AB", xml="<NewCustomers><Customer>second</Customer></NewCustomers>")
    api = forced_code_api(sandbox, "DUP-1")
    assert run_export(feed_item(sandbox, first["CustomerGuid"]), target.resource(), api)[0].success
    watch = target.watch()
    result, _ = run_export(feed_item(sandbox, second["CustomerGuid"]), target.resource(), api)
    assert not result.success
    assert (target.base_dir / "customers" / "DUP-1.xml").read_bytes() == \
        b"<NewCustomers><Customer>first</Customer></NewCustomers>"
    watch.assert_untouched()
    assert admin.get_result(first["CustomerGuid"])["Result"] == "SUCCESS_CUSTOMER:DUP-1"
    posted = admin.get_result(second["CustomerGuid"])
    assert posted["Result"] is None and "customers/DUP-1.xml already exists" in posted["Error"]


def test_identical_bytes_already_there_is_success_without_a_second_upload(sandbox, target):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Delivered Before AB")
    item, code = feed_item(sandbox, created["CustomerGuid"]), created["CustomerCode"]
    target.write(f"customers/{code}.xml", item["Xml"].encode("utf-8"))
    watch = target.watch()
    result, _ = run_export(item, target.resource(), app4sales(sandbox))
    assert result.success
    watch.assert_untouched()
    posted = admin.get_result(created["CustomerGuid"])
    assert posted["Result"] == f"SUCCESS_CUSTOMER:{code}" and posted["Error"] is None and posted["Posts"] == 1
    metadata = output_metadata(result)
    assert metadata["already_delivered"] is True and metadata["message_posted"] == f"SUCCESS_CUSTOMER:{code}"


def test_name_equal_ignoring_case_is_a_collision_and_nothing_is_written(sandbox, target):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Lower Case AB")
    existing = target.write("customers/ABC123.xml", b"<NewCustomers>ABC123</NewCustomers>")
    watch = target.watch()
    result, _ = run_export(feed_item(sandbox, created["CustomerGuid"]), target.resource(),
                           forced_code_api(sandbox, "abc123"))
    assert not result.success
    watch.assert_untouched()
    assert target.files() == ["customers/ABC123.xml"]
    assert existing.read_bytes() == b"<NewCustomers>ABC123</NewCustomers>"
    error = admin.get_result(created["CustomerGuid"])["Error"]
    assert "customers/ABC123.xml already exists" in error and "same file as customers/abc123.xml" in error
    assert "case-insensitive" in error


def test_re_execution_after_a_failed_result_post_uploads_once_and_posts_success_once(sandbox, target):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Lost Answer AB")
    item, code = feed_item(sandbox, created["CustomerGuid"]), created["CustomerCode"]
    uploads_before = target.uploads()
    admin.add_fault("newcustomers/*/result", method="POST", status=503, times=2)  # both attempts of the client
    first, _ = run_export(item, target.resource(), app4sales(sandbox))
    assert not first.success
    assert f"customers/{code}.xml was uploaded" in failure_message(first) and "503" in failure_message(first)
    assert admin.get_result(created["CustomerGuid"])["Posts"] == 0
    assert target.files() == [f"customers/{code}.xml"]

    watch = target.watch()
    second, _ = run_export(item, target.resource(), app4sales(sandbox))  # re-executed with the same run config
    assert second.success
    watch.assert_untouched()
    if target.kind in ("ftp", "sftp-paramiko"):
        assert target.uploads() - uploads_before == 1
    assert (target.base_dir / "customers" / f"{code}.xml").read_bytes() == item["Xml"].encode("utf-8")
    posted = admin.get_result(created["CustomerGuid"])
    assert posted["Result"] == f"SUCCESS_CUSTOMER:{code}" and posted["Posts"] == 1
    assert output_metadata(second)["already_delivered"] is True


def test_unknown_guid_fails_the_run_and_uploads_nothing(sandbox, target):
    guid = str(uuid.uuid4())
    item = {"Sequence": 99, "CustomerGuid": guid, "Xml": "<NewCustomers/>"}
    result, _ = run_export(item, target.resource(), app4sales(sandbox))
    assert not result.success
    message = failure_message(result)
    assert "CustomerCode lookup" in message and "404" in message
    # the sandbox refuses a result for a GUID it does not know: the run says so
    assert "could not be reported" in message
    assert target.files() == []


def test_no_code_409_posts_the_error_and_uploads_nothing(sandbox, target):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("No Code AB", fail_code=True)
    item = feed_item(sandbox, created["CustomerGuid"])
    result, _ = run_export(item, target.resource(), app4sales(sandbox))
    assert not result.success
    posted = admin.get_result(created["CustomerGuid"])
    assert posted["Result"] is None
    assert "CustomerCode lookup" in posted["Error"] and "409" in posted["Error"]
    assert posted["Error"] in failure_message(result)
    assert target.files() == []


def forced_code_api(sandbox, code: str) -> App4SalesApi:
    return _ForcedCodeApi(url=sandbox.base_url(), username=sandbox.username, password=sandbox.password,
                          retry_attempts=2, retry_backoff_seconds=0.01, forced_code=code)


class _ForcedCodeApi(App4SalesApi):
    """The real sandbox client, except ``customer_code`` answers ``forced_code``.

    The sandbox generates codes itself (C00001…) and cannot be told to hand out an unsafe one,
    so this stub stands in for that single call; the error is still posted to the real sandbox.
    """

    forced_code: str

    def client(self, **kw):
        client = super().client(**kw)
        forced = self.forced_code
        client.customer_code = lambda guid: forced
        return client


@pytest.mark.parametrize("bad_code", ["../etc/x", "a/b", "..", "CON", "nul.txt", "Lpt9"])
def test_unsafe_customer_code_aborts_posts_the_error_and_uploads_nothing(sandbox, target, bad_code):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Traversal AB")
    item = feed_item(sandbox, created["CustomerGuid"])
    result, _ = run_export(item, target.resource(), forced_code_api(sandbox, bad_code))
    assert not result.success
    error = admin.get_result(created["CustomerGuid"])["Error"]
    assert "not a" in error and "file name" in error and repr(bad_code) in error
    assert target.files() == []
    assert not (target.base_dir.parent / "etc").exists()


def test_malformed_xml_aborts_posts_the_error_and_uploads_nothing(sandbox, target):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Broken AB", xml="<NewCustomers>\n<Customer>\n</NewCustomers>")
    item = feed_item(sandbox, created["CustomerGuid"])
    result, _ = run_export(item, target.resource(), app4sales(sandbox))
    assert not result.success
    error = admin.get_result(created["CustomerGuid"])["Error"]
    assert "not well-formed" in error and "line 3" in error
    assert target.files() == []


def test_doctype_xxe_is_refused(sandbox, target, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xml = f'<!DOCTYPE r [<!ENTITY x SYSTEM "{secret.as_uri()}">]><NewCustomers>&x;</NewCustomers>'
    admin = sandbox.admin_api()
    created = admin.create_new_customer("XXE AB", xml=xml)
    result, _ = run_export(feed_item(sandbox, created["CustomerGuid"]), target.resource(), app4sales(sandbox))
    assert not result.success
    assert "DOCTYPE" in admin.get_result(created["CustomerGuid"])["Error"]
    assert target.files() == []


def test_refused_upload_posts_the_transport_error_and_leaves_nothing(sandbox, target):
    """``customers`` exists as a file, so the folder cannot be created: a permanent refusal."""
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Blocked AB")
    item = feed_item(sandbox, created["CustomerGuid"])
    (target.base_dir / "customers").write_bytes(b"in the way")
    result, _ = run_export(item, target.resource(), app4sales(sandbox))
    assert not result.success
    error = admin.get_result(created["CustomerGuid"])["Error"]
    assert error.startswith(f"Upload of customers/{created['CustomerCode']}.xml")
    assert "Error:" in error  # the transport exception's class name, e.g. "TransportError: …"
    if target.config.password:
        assert target.config.password not in error and target.config.password not in failure_message(result)
    assert target.files() == ["customers"]


def test_read_only_target_folder_over_sshd(sandbox, sshd_server):
    """sshd serves as an unprivileged user, so folder permissions hold (root would ignore them)."""
    _empty(sshd_server.base_dir)
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Read Only AB")
    folder = sshd_server.base_dir / "customers"
    folder.mkdir()
    shutil.chown(folder, sshd_server.username)
    folder.chmod(0o555)
    config = sshd_server.config() if sshd_server.password_auth_available else sshd_server.config(
        private_key=sshd_server.client_key)
    target = Target("sftp-sshd", sshd_server.base_dir, config, sshd_server)
    try:
        result, _ = run_export(feed_item(sandbox, created["CustomerGuid"]), target.resource(), app4sales(sandbox))
        assert target.files() == []  # no file, no temp file
    finally:
        folder.chmod(0o755)
        _empty(sshd_server.base_dir)
    assert not result.success
    error = admin.get_result(created["CustomerGuid"])["Error"]
    assert error.startswith(f"Upload of customers/{created['CustomerCode']}.xml") and "Error:" in error
    assert "ermission" in error, error


def test_ftp_user_without_write_permission(sandbox, ftp_server):
    _empty(ftp_server.base_dir)
    authorizer = ftp_server._server.handler.authorizer
    if not authorizer.has_user("readonly"):
        ftp_server.call_in_server(lambda: authorizer.add_user("readonly", "ro-s3cret-pw", str(ftp_server.root),
                                                              perm="elr"))
    (ftp_server.base_dir / "customers").mkdir()
    admin = sandbox.admin_api()
    created = admin.create_new_customer("No Write AB")
    monitor_ftp = MonitorFileTransport(url=ftp_server.url, username="readonly", password="ro-s3cret-pw",
                                       connect_timeout=5.0, read_timeout=5.0)
    result, _ = run_export(feed_item(sandbox, created["CustomerGuid"]), monitor_ftp, app4sales(sandbox))
    assert not result.success
    error = admin.get_result(created["CustomerGuid"])["Error"]
    assert error.startswith(f"Upload of customers/{created['CustomerCode']}.xml") and "Error:" in error
    assert "550" in error, error  # the FTP server's own reply
    assert "does not exist" not in error and "RemoteNotFoundError" not in error, error  # a refusal, not a miss
    assert "ro-s3cret-pw" not in error
    assert [p for p in ftp_server.base_dir.rglob("*") if p.is_file()] == []
    _empty(ftp_server.base_dir)


def test_transient_failure_then_success_is_retried(sandbox, tmp_path, monkeypatch):
    """A transient transfer failure on the first attempt is retried on a fresh connection."""
    from monitor_pipeline.transport import TransientTransportError
    from monitor_pipeline.transport.local import LocalTransport

    admin = sandbox.admin_api()
    created = admin.create_new_customer("Flaky AB")
    calls = {"n": 0}
    real = LocalTransport.upload_atomic

    def flaky(self, source, path, **kwargs):
        calls["n"] += 1
        if calls["n"] <= 2:  # replaces the whole upload (the transport's own retries included)
            raise TransientTransportError("connection reset by peer (simulated)")
        return real(self, source, path, **kwargs)

    monkeypatch.setattr(LocalTransport, "upload_atomic", flaky)
    base = tmp_path / "monitor"
    base.mkdir()
    result, _ = run_export(feed_item(sandbox, created["CustomerGuid"]), MonitorFileTransport(url=base.as_uri()),
                           app4sales(sandbox))
    assert result.success
    assert output_metadata(result)["upload_attempts"] == 3
    assert admin.get_result(created["CustomerGuid"])["Result"] == f"SUCCESS_CUSTOMER:{created['CustomerCode']}"


def test_failed_run_can_be_re_executed_with_the_same_config(sandbox, tmp_path):
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Second Try AB")
    item = feed_item(sandbox, created["CustomerGuid"])
    base = tmp_path / "monitor"
    base.mkdir()
    (base / "customers").write_bytes(b"in the way")
    first, _ = run_export(item, MonitorFileTransport(url=base.as_uri()), app4sales(sandbox))
    assert not first.success and admin.get_result(created["CustomerGuid"])["Error"]
    (base / "customers").unlink()
    second, _ = run_export(item, MonitorFileTransport(url=base.as_uri()), app4sales(sandbox))
    assert second.success
    posted = admin.get_result(created["CustomerGuid"])
    assert posted["Result"] == f"SUCCESS_CUSTOMER:{created['CustomerCode']}" and posted["Posts"] == 2


REFUSING_RENAMES = ["ftp-RNFR", "ftp-RNTO", "sftp-posix-rename", "sftp-rename"]


@pytest.fixture(params=REFUSING_RENAMES)
def refusing_target(request, ftp_server_factory, sftp_server_factory) -> Target:
    """A server that refuses every rename: FTP RNFR or RNTO answers 550; SFTP rename and posix-rename
    answer "permission denied" (posix-rename advertised or not)."""
    if request.param.startswith("ftp"):
        server = ftp_server_factory("ftp", refuse_rename=request.param.split("-")[1])
        return Target("ftp", server.base_dir, server.config(), server)
    server = sftp_server_factory(refuse_rename=True, advertise_posix_rename=request.param == "sftp-posix-rename")
    return Target("sftp-paramiko", server.base_dir, server.config(), server)


def test_server_refusing_renames_posts_its_answer_and_never_destroys_a_file(sandbox, refusing_target):
    target = refusing_target
    detail = "550" if target.kind == "ftp" else "ermission"
    admin = sandbox.admin_api()
    new = admin.create_new_customer("Refused AB")
    pending = admin.create_new_customer("Pending AB")
    existing = target.write(f"customers/{pending['CustomerCode']}.xml", b"<NewCustomers>pending</NewCustomers>")

    # a new name: the temp file is written, the rename into place refused
    result, _ = run_export(feed_item(sandbox, new["CustomerGuid"]), target.resource(), app4sales(sandbox))
    assert not result.success
    posted = admin.get_result(new["CustomerGuid"])
    assert posted["Result"] is None
    assert posted["Error"].startswith(f"Upload of customers/{new['CustomerCode']}.xml") and detail in posted["Error"]
    assert target.config.password not in posted["Error"]
    assert target.files() == [f"customers/{pending['CustomerCode']}.xml"]  # no temp file, no new file

    # a name taken by another file: it is never deleted to make room
    watch = target.watch()
    result, _ = run_export(feed_item(sandbox, pending["CustomerGuid"]), target.resource(), app4sales(sandbox))
    assert not result.success
    assert existing.read_bytes() == b"<NewCustomers>pending</NewCustomers>"
    watch.assert_untouched()
    posted = admin.get_result(pending["CustomerGuid"])
    assert posted["Result"] is None and f"customers/{pending['CustomerCode']}.xml already exists" in posted["Error"]


def test_case_insensitive_ftp_server_never_gets_abc123_written_over_ABC123(sandbox, ftp_server_factory):
    server = ftp_server_factory("ftp", case_insensitive=True)
    target = Target("ftp", server.base_dir, server.config(), server)
    existing = target.write("customers/ABC123.xml", b"<NewCustomers>ABC123</NewCustomers>")
    with open_transport(server.config()) as t:  # on this server abc123.xml *is* ABC123.xml
        assert t.stat("customers/abc123.xml").size == existing.stat().st_size
    admin = sandbox.admin_api()
    created = admin.create_new_customer("Lower Case AB")
    watch = target.watch()
    result, _ = run_export(feed_item(sandbox, created["CustomerGuid"]), target.resource(),
                           forced_code_api(sandbox, "abc123"))
    assert not result.success
    watch.assert_untouched()
    assert existing.read_bytes() == b"<NewCustomers>ABC123</NewCustomers>"
    error = admin.get_result(created["CustomerGuid"])["Error"]
    assert "customers/ABC123.xml already exists" in error and "case-insensitive" in error
