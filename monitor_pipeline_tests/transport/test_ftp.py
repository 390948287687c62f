"""FTP specifics: passive vs active, FTPS protecting control and data connections, certificate
verification, servers that refuse to rename over a file, bad credentials."""

from __future__ import annotations

import ftplib
import logging
import ssl

import pytest

from monitor_pipeline.transport import (TLSVerificationError, TransportAuthError, TransportError, open_transport)
from monitor_pipeline.transport import ftp as ftp_module
from monitor_pipeline_tests.servers.certs import make_tls_files
from monitor_pipeline_tests.transport.conftest import fast_retry


def exercise(server) -> None:
    with open_transport(server.config(), retry=fast_retry()) as t:
        t.upload_atomic(b"payload", "in/a.xml")
        assert t.listdir("in") == ["a.xml"]
        assert t.stat("in/a.xml").size == 7


@pytest.mark.parametrize("kind, expected, unexpected", [
    ("ftp", {"EPSV", "PASV"}, {"PORT", "EPRT"}),
    ("ftp-active", {"PORT", "EPRT"}, {"PASV", "EPSV"}),
])
def test_passive_by_default_active_on_request(ftp_server_factory, kind, expected, unexpected):
    server = ftp_server_factory(kind)
    exercise(server)
    used = set(server.commands)
    assert used & expected, server.commands
    assert not used & unexpected, server.commands
    assert server.data_connections_tls and not any(server.data_connections_tls)  # plain FTP really is plain


def test_ftps_protects_control_and_data_connections(ftps_server, tmp_path):
    server = ftps_server
    exercise(server)
    # every data connection (STOR, MLSD, …) the server accepted was TLS-wrapped
    assert len(server.data_connections_tls) >= 2 and all(server.data_connections_tls)
    assert {"AUTH", "PBSZ", "PROT"} <= set(server.commands)
    assert server.commands.index("AUTH") < server.commands.index("USER")  # TLS before the password is sent
    # and the server refuses clear data connections, so those transfers cannot have been clear
    ctx = ssl.create_default_context(cafile=server.ca_file)
    raw = ftplib.FTP_TLS(context=ctx, timeout=5)
    raw.connect(server.host, server.port)
    raw.login(server.username, server.password)
    raw.voidcmd("PBSZ 0")
    raw.prot_c()
    with pytest.raises(ftplib.error_perm, match="TLS required on the data channel"):
        raw.nlst("/")
    raw.close()


def test_ftps_data_connections_reuse_the_tls_session(ftps_server, monkeypatch):
    seen = []
    original = ftp_module._ReusingFTP_TLS.ntransfercmd

    def spy(self, cmd, rest=None):
        conn, size = original(self, cmd, rest)
        seen.append((cmd.split()[0], isinstance(conn, ssl.SSLSocket), conn.session_reused))
        return conn, size

    monkeypatch.setattr(ftp_module._ReusingFTP_TLS, "ntransfercmd", spy)
    exercise(ftps_server)
    assert seen and all(tls and reused for _, tls, reused in seen), seen


def test_plain_client_against_tls_only_server_says_tls_is_required(ftps_server):
    config = ftps_server.config(url=ftps_server.url.replace("ftps://", "ftp://"), ca_file=None)
    with pytest.raises(TransportError) as info:
        open_transport(config, retry=fast_retry())
    message = str(info.value)
    assert "TLS" in message and "MONITOR_FTP_TLS" in message and f"127.0.0.1:{ftps_server.port}" in message
    assert ftps_server.password not in message


def test_ftp_url_with_tls_flag_is_ftps(ftps_server):
    config = ftps_server.config(url=ftps_server.url.replace("ftps://", "ftp://"), tls=True)
    with open_transport(config, retry=fast_retry()) as t:
        assert t.listdir() == []
    assert all(ftps_server.data_connections_tls) and ftps_server.data_connections_tls


def test_untrusted_certificate_is_refused(ftps_server):
    with pytest.raises(TLSVerificationError) as info:
        open_transport(ftps_server.config(ca_file=None), retry=fast_retry())  # system store: self-made CA unknown
    message = str(info.value)
    assert f"127.0.0.1:{ftps_server.port}" in message and "not trusted" in message
    assert "MONITOR_FTP_CA_FILE" in message
    assert not info.value.transient
    assert "USER" not in ftps_server.commands  # the password was never sent


def test_certificate_for_another_host_is_refused(ftp_server_factory, tmp_path):
    other = make_tls_files(tmp_path / "other", hostnames=("files.example.com",), ips=())
    server = ftp_server_factory("ftps", tls_files=other)
    with pytest.raises(TLSVerificationError) as info:
        open_transport(server.config(), retry=fast_retry())  # CA trusted, but the name does not match
    assert "mismatch" in str(info.value).lower()


def test_skip_verify_is_explicit_and_warns(ftps_server, caplog):
    with caplog.at_level(logging.WARNING, logger="monitor_pipeline.transport"):
        with open_transport(ftps_server.config(ca_file=None, tls_insecure_skip_verify=True),
                            retry=fast_retry()) as t:
            t.upload_atomic(b"x", "a.xml")
    assert "MONITOR_FTP_TLS_INSECURE_SKIP_VERIFY" in caplog.text and "NOT verified" in caplog.text
    assert (ftps_server.base_dir / "a.xml").read_bytes() == b"x"


def test_server_refusing_to_rename_over_a_file_gets_the_old_file_moved_aside(ftp_server_factory):
    """Overwrite mode never deletes the target first: old file renamed aside, new one in, aside removed."""
    server = ftp_server_factory("ftp", refuse_overwrite=True)
    (server.base_dir / "a.xml").write_bytes(b"old")
    with open_transport(server.config(), retry=fast_retry()) as t:
        t.upload_atomic(b"new", "a.xml")
        t.upload_atomic(b"fresh", "b.xml")
    assert (server.base_dir / "a.xml").read_bytes() == b"new"
    assert (server.base_dir / "b.xml").read_bytes() == b"fresh"
    assert sorted(p.name for p in server.base_dir.iterdir()) == ["a.xml", "b.xml"]
    assert server.commands.count("DELE") == 1  # only the aside copy of the old target, after the new one is in
    assert server.commands.count("RNTO") == 4  # refused once, old file aside, new file in; plus b.xml


@pytest.mark.parametrize("kind", ["ftp", "ftps"])
def test_bad_credentials(ftp_server_factory, kind):
    server = ftp_server_factory(kind)
    sleeps: list[float] = []
    with pytest.raises(TransportAuthError) as info:
        open_transport(server.config(password="wrong-pw-Zq9"), retry=fast_retry(sleeps=sleeps))
    message = str(info.value)
    assert f"127.0.0.1:{server.port}" in message and "'monitor'" in message
    assert "wrong-pw-Zq9" not in message and "wrong-pw-Zq9" not in repr(info.value)
    assert server.password not in message
    assert sleeps == [] and server.commands.count("PASS") == 1  # permanent: not retried


def test_home_relative_base(ftp_server_factory):
    server = ftp_server_factory("ftp")
    config = server.config(url=f"ftp://127.0.0.1:{server.port}/~/monitor")
    with open_transport(config, retry=fast_retry()) as t:
        t.upload_atomic(b"home", "h.xml")
    assert (server.base_dir / "h.xml").read_bytes() == b"home"
