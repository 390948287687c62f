"""download / stat / list / atomic upload, against every backend (file, FTP passive/active, FTPS,
paramiko SFTP with password and key, OpenSSH sshd with password and key); and uploads that never
destroy a file (SPEC §6) against servers that refuse renames or cannot rename over a file."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone

import pytest

from monitor_pipeline.transport import RemoteNotFoundError, TransportError, UnsafePathError, open_transport
from monitor_pipeline.transport.errors import RemoteExistsError
from monitor_pipeline.transport.sftp import SFTPTransport
from monitor_pipeline_tests.transport.conftest import fast_retry

PART = re.compile(r"^\.a\.xml\.[0-9a-f]{12}\.part$")
STAMP = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def payload(size: int) -> bytes:
    return os.urandom(size)


def test_download_streams_exact_bytes_and_reports_stat(backend, tmp_path):
    data = payload(700_001)  # several chunks, odd size
    backend.mkdir("customers")
    backend.write("customers/customers.xml", data, mtime=STAMP.timestamp())
    out = tmp_path / "local" / "customers.xml"

    with backend.open() as t:
        stat = t.download("customers/customers.xml", out)

    assert out.read_bytes() == data
    assert stat.size == len(data)
    assert stat.mtime == STAMP and stat.mtime.tzinfo is not None
    assert sorted(os.listdir(out.parent)) == ["customers.xml"]  # no local temp file left behind


def test_stat_size_and_mtime(backend):
    backend.write("x.csv", b"a;b\n1;2\n", mtime=STAMP.timestamp())
    with backend.open() as t:
        stat = t.stat("x.csv")
    assert stat.size == 8
    assert abs((stat.mtime - STAMP).total_seconds()) < 1
    assert stat.mtime.utcoffset().total_seconds() == 0


def test_listdir_names_only_sorted(backend):
    for name in ("b.xml", "a.xml", "C.txt"):
        backend.write(name, b"1")
    backend.mkdir("sub")
    backend.write("sub/inner.xml", b"2")
    backend.mkdir("empty")
    with backend.open() as t:
        assert t.listdir() == ["C.txt", "a.xml", "b.xml", "empty", "sub"]
        assert t.listdir("sub") == ["inner.xml"]
        assert t.listdir("empty") == []


def test_upload_atomic_creates_file_with_exact_bytes(backend, tmp_path):
    data = payload(600_000)
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    with backend.open() as t:
        t.upload_atomic(source, "customers/a.xml")          # a Path
        t.upload_atomic(b"<x/>", "customers/b.xml")          # bytes
        with open(source, "rb") as fh:
            t.upload_atomic(fh, "customers/c.xml")           # a binary file object
        assert t.stat("customers/a.xml").size == len(data)
    folder = backend.base_dir / "customers"
    assert (folder / "a.xml").read_bytes() == data
    assert (folder / "b.xml").read_bytes() == b"<x/>"
    assert (folder / "c.xml").read_bytes() == data
    assert sorted(os.listdir(folder)) == ["a.xml", "b.xml", "c.xml"]  # no temp files


def test_upload_over_existing_target_replaces_it_atomically(backend):
    folder = backend.mkdir("customers")
    backend.write("customers/a.xml", b"old content")
    old_inode = os.stat(folder / "a.xml").st_ino
    with backend.open() as t:
        t.upload_atomic(b"new content, longer than the old", "customers/a.xml")
    assert (folder / "a.xml").read_bytes() == b"new content, longer than the old"
    # renamed into place (a new file), not truncated and rewritten in place
    assert os.stat(folder / "a.xml").st_ino != old_inode
    assert os.listdir(folder) == ["a.xml"]


class FailingSource:
    """A source file object that fails at an exact byte, noting what the target folder held then."""

    def __init__(self, data: bytes, fail_at: int, folder):
        self.data, self.fail_at, self.folder, self.pos = data, fail_at, folder, 0
        self.seen_at_failure: list[str] | None = None

    def read(self, size: int = -1) -> bytes:
        if self.pos >= self.fail_at:
            self.seen_at_failure = sorted(os.listdir(self.folder))
            raise OSError(f"simulated read fault at byte {self.pos}")
        end = self.fail_at if size < 0 else min(self.pos + size, self.fail_at)
        chunk, self.pos = self.data[self.pos:end], end
        return chunk


@pytest.mark.parametrize("existing", [None, b"previous version"])
def test_interrupted_upload_leaves_no_target_and_no_temp_file(backend, existing):
    folder = backend.mkdir("customers")
    if existing is not None:
        backend.write("customers/a.xml", existing)
    source = FailingSource(payload(1_000_000), fail_at=300_000, folder=folder)
    with backend.open() as t:
        with pytest.raises(OSError, match="simulated read fault at byte 300000"):
            t.upload_atomic(source, "customers/a.xml")
        # while the source was being sent, the data went to a temp name in the target folder
        assert source.seen_at_failure is not None
        temps = [n for n in source.seen_at_failure if PART.match(n)]
        assert len(temps) == 1, source.seen_at_failure
        assert ("a.xml" in source.seen_at_failure) == (existing is not None)
        # afterwards: the target is exactly as before, the temp file is gone
        if existing is None:
            assert os.listdir(folder) == []
        else:
            assert os.listdir(folder) == ["a.xml"]
            assert (folder / "a.xml").read_bytes() == existing
        # and the transport is still usable
        t.upload_atomic(b"after", "customers/a.xml")
    assert (folder / "a.xml").read_bytes() == b"after"
    assert os.listdir(folder) == ["a.xml"]


def test_make_dirs_creates_missing_folders(backend):
    with backend.open() as t:
        t.upload_atomic(b"deep", "x/y/z.xml")
        with pytest.raises(RemoteNotFoundError) as info:
            t.upload_atomic(b"nope", "missing/z.xml", make_dirs=False)
    assert (backend.base_dir / "x" / "y" / "z.xml").read_bytes() == b"deep"
    assert info.value.kind == "folder" and "'missing'" in str(info.value)
    assert not (backend.base_dir / "missing").exists()


def test_missing_file_and_missing_folder_are_told_apart(backend, tmp_path):
    backend.mkdir("customers")
    with backend.open() as t:
        with pytest.raises(RemoteNotFoundError) as missing_file:
            t.download("customers/customers.xml", tmp_path / "downloads" / "out.xml")
        with pytest.raises(RemoteNotFoundError) as missing_folder:
            t.stat("archive/customers.xml")
        with pytest.raises(RemoteNotFoundError) as missing_listing:
            t.listdir("archive")
    assert missing_file.value.kind == "file"
    assert "file 'customers/customers.xml' does not exist" in str(missing_file.value)
    assert missing_folder.value.kind == "folder"
    assert "folder 'archive'" in str(missing_folder.value) and "does not exist" in str(missing_folder.value)
    assert missing_listing.value.kind == "folder"
    for exc in (missing_file.value, missing_folder.value, missing_listing.value):
        assert backend.config.describe() in str(exc)
        assert not exc.transient
    assert os.listdir(tmp_path / "downloads") == []  # neither the file nor a local temp file


def test_paths_may_not_escape_the_base(backend):
    with backend.open() as t:
        for bad in ("../etc/passwd", "customers/../../x", "/etc/passwd", "a\\..\\b"):
            with pytest.raises(UnsafePathError):
                t.stat(bad)
            with pytest.raises(UnsafePathError):
                t.upload_atomic(b"x", bad)
    assert os.listdir(backend.base_dir) == []


def test_make_dirs_creates_a_missing_base_folder(backend):
    backend.base_dir.rmdir()
    with backend.open() as t:
        with pytest.raises(RemoteNotFoundError) as info:
            t.listdir()
        assert info.value.kind == "folder" and "the base folder" in str(info.value)
        t.upload_atomic(b"first", "customers/C1.xml")
    assert (backend.base_dir / "customers" / "C1.xml").read_bytes() == b"first"


class Hook:
    """A source file object that runs ``hook()`` once, when ``at`` bytes have been read (mid-upload)."""

    def __init__(self, data: bytes, at: int, hook):
        self.data, self.at, self.hook, self.pos, self.fired = data, at, hook, 0, False

    def read(self, size: int = -1) -> bytes:
        if self.pos >= self.at and not self.fired:
            self.fired = True
            self.hook()
        end = len(self.data) if size < 0 else min(self.pos + size, len(self.data))
        chunk, self.pos = self.data[self.pos:end], end
        return chunk


def test_listdir_hides_our_temp_files_even_mid_upload(backend):
    folder = backend.mkdir("customers")
    backend.write("customers/.old.xml.0123456789ab.part", b"left by a killed upload")  # our pattern: hidden
    backend.write("customers/.b.part", b"someone else's dot file")                       # not ours: shown
    seen: dict[str, list[str]] = {}

    def look() -> None:
        seen["disk"] = sorted(os.listdir(folder))
        with backend.open() as other:  # a second connection while the first one is still writing
            seen["listdir"] = other.listdir("customers")

    with backend.open() as t:
        t.upload_atomic(Hook(payload(600_000), 300_000, look), "customers/a.xml")
        assert len([n for n in seen["disk"] if PART.match(n)]) == 1  # the in-flight temp file was there…
        assert seen["listdir"] == [".b.part"]                          # …and not listed
        assert t.listdir("customers") == [".b.part", "a.xml"]
        assert t.listdir("customers", include_temp=True) == [".b.part", ".old.xml.0123456789ab.part", "a.xml"]


def test_upload_without_overwrite_never_replaces_an_existing_file(backend):
    folder = backend.mkdir("customers")
    backend.write("customers/a.xml", b"another customer's pending file")
    inode = os.stat(folder / "a.xml").st_ino
    with backend.open() as t:
        with pytest.raises(RemoteExistsError) as info:
            t.upload_atomic(b"mine", "customers/a.xml", overwrite=False)
        t.upload_atomic(b"fresh", "customers/b.xml", overwrite=False)
    message = str(info.value)
    assert "'customers/a.xml' already exists" in message and "not overwritten" in message
    assert backend.config.describe() in message and not info.value.transient
    assert info.value.path == "customers/a.xml"
    assert (folder / "a.xml").read_bytes() == b"another customer's pending file"
    assert os.stat(folder / "a.xml").st_ino == inode
    assert (folder / "b.xml").read_bytes() == b"fresh"
    assert sorted(os.listdir(folder)) == ["a.xml", "b.xml"]  # no temp file


def test_file_appearing_during_an_upload_is_not_replaced(backend):
    folder = backend.mkdir("customers")
    source = Hook(payload(600_000), 300_000, lambda: backend.write("customers/a.xml", b"arrived meanwhile"))
    with backend.open() as t:
        with pytest.raises(RemoteExistsError, match="appeared during the upload"):
            t.upload_atomic(source, "customers/a.xml", overwrite=False)
    assert source.fired
    assert (folder / "a.xml").read_bytes() == b"arrived meanwhile"
    assert os.listdir(folder) == ["a.xml"]


@pytest.mark.parametrize("backend", ["sftp-password", "sshd-key"], indirect=True)
def test_sftp_no_replace_upload_ends_with_a_rename_that_cannot_replace(backend, monkeypatch):
    """A file created after our last check, just before the rename, survives: the export's final rename
    is SSH_FXP_RENAME (which refuses an existing target), not posix-rename (which would replace it)."""
    folder = backend.mkdir("customers")
    real = SFTPTransport._rename

    def rival_first(self, src, dst):
        if dst.endswith("/customers/a.xml"):
            backend.write("customers/a.xml", b"rival")
        real(self, src, dst)

    monkeypatch.setattr(SFTPTransport, "_rename", rival_first)
    with backend.open() as t:
        assert "posix-rename@openssh.com" in t.sftp.server_extensions  # it is offered, and not used
        with pytest.raises(RemoteExistsError, match="appeared during the upload"):
            t.upload_atomic(b"mine", "customers/a.xml", overwrite=False)
    assert (folder / "a.xml").read_bytes() == b"rival"
    assert os.listdir(folder) == ["a.xml"]
    if hasattr(backend.server, "ops"):
        assert [op for op, *_ in backend.server.ops if "rename" in op] == ["rename"]


REFUSING = ["ftp-RNFR", "ftp-RNTO", "sftp-posix-rename", "sftp-rename"]


@pytest.fixture(params=REFUSING)
def refusing_server(request, ftp_server_factory, sftp_server_factory):
    """A server on which every rename is refused: FTP RNFR or RNTO answers 550, SFTP rename and
    posix-rename answer "permission denied" (with and without posix-rename advertised)."""
    if request.param.startswith("ftp"):
        return ftp_server_factory("ftp", refuse_rename=request.param.split("-")[1])
    return sftp_server_factory(refuse_rename=True, advertise_posix_rename=request.param == "sftp-posix-rename")


def test_refused_rename_leaves_the_existing_target_untouched_and_no_temp_file(refusing_server):
    server = refusing_server
    folder = server.base_dir / "customers"
    folder.mkdir()
    (folder / "a.xml").write_bytes(b"previous version")
    with open_transport(server.config(), retry=fast_retry()) as t:
        with pytest.raises(TransportError) as replacing:
            t.upload_atomic(b"new version", "customers/a.xml")
        with pytest.raises(TransportError) as creating:
            t.upload_atomic(b"new file", "customers/b.xml", overwrite=False)
    assert (folder / "a.xml").read_bytes() == b"previous version"
    assert os.listdir(folder) == ["a.xml"]  # no temp file, no b.xml
    detail = "550" if server.url.startswith("ftp") else "permission denied"
    for info, name in ((replacing, "a.xml"), (creating, "b.xml")):
        message = str(info.value)
        assert f"'customers/{name}'" in message and detail in message, message  # the server's own answer
        assert not isinstance(info.value, RemoteExistsError) and not info.value.transient
        assert server.password not in message


@pytest.mark.parametrize("kind", ["ftp", "sftp"])
def test_server_that_cannot_rename_over_a_file_gets_the_old_one_moved_aside_never_deleted_first(
        kind, ftp_server_factory, sftp_server_factory):
    """IIS-like FTP (RNTO onto a file refused) and SFTP without posix-rename: the old file is renamed
    aside, the new one into place, and only then the aside copy is removed."""
    if kind == "ftp":
        server = ftp_server_factory("ftp", refuse_overwrite=True)
    else:
        server = sftp_server_factory(advertise_posix_rename=False)
    (server.base_dir / "a.xml").write_bytes(b"old")
    with open_transport(server.config(), retry=fast_retry()) as t:
        t.upload_atomic(b"new", "a.xml")
    assert (server.base_dir / "a.xml").read_bytes() == b"new"
    assert os.listdir(server.base_dir) == ["a.xml"]
    if kind == "ftp":
        steps = [(cmd, arg) for cmd, arg in server.arguments if cmd in ("RNFR", "RNTO", "DELE")]
    else:
        steps = [(op, *paths) for op, *paths in server.ops if op in ("rename", "posix_rename", "remove")]
    removed = [step[-1] for step in steps if step[0] in ("DELE", "remove")]
    assert len(removed) == 1 and re.fullmatch(r".*/\.a\.xml\.[0-9a-f]{12}\.replaced", removed[0]), steps
    assert not any(step[-1].endswith("/a.xml") for step in steps if step[0] in ("DELE", "remove"))
    assert steps[-1][0] in ("DELE", "remove")  # removed only after the new file was in place
