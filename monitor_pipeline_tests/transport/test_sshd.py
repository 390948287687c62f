"""Against a real OpenSSH sshd: which authentication sshd accepted, host key handling with the
fingerprint/keyscan formats OpenSSH uses, bad credentials."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from monitor_pipeline.transport import HostKeyError, TransportAuthError, open_transport
from monitor_pipeline_tests.transport.conftest import fast_retry

pytestmark = pytest.mark.sshd


def connect(server, **overrides):
    return open_transport(server.config(**overrides), retry=fast_retry())


def test_password_auth_is_what_sshd_accepted(sshd_server):
    if not sshd_server.password_auth_available:
        pytest.skip("sshd password login needs root; run as root after .ci/install-sshd.sh")
    with connect(sshd_server) as t:
        t.upload_atomic(b"pw", "pw.xml")
    assert (sshd_server.base_dir / "pw.xml").read_bytes() == b"pw"
    assert f"Accepted password for {sshd_server.username}" in sshd_server.log()


def test_key_auth_is_what_sshd_accepted(sshd_server):
    with connect(sshd_server, password="", private_key=sshd_server.client_key) as t:
        t.upload_atomic(b"key", "key.xml")
    assert (sshd_server.base_dir / "key.xml").read_bytes() == b"key"
    assert f"Accepted publickey for {sshd_server.username}" in sshd_server.log()
    assert "Accepted password" not in sshd_server.log()


def test_bad_password_is_refused_without_leaking_it(sshd_server):
    with pytest.raises(TransportAuthError) as info:
        connect(sshd_server, password="wrong-pw-Zq9")
    message = str(info.value)
    assert f"127.0.0.1:{sshd_server.port}" in message and repr(sshd_server.username) in message
    assert "wrong-pw-Zq9" not in message and "wrong-pw-Zq9" not in repr(info.value)


def test_unknown_host_key_then_trusted_with_the_suggested_keyscan(sshd_server, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    with pytest.raises(HostKeyError) as info:
        connect(sshd_server, password="", private_key=sshd_server.client_key, known_hosts=str(known_hosts))
    message = str(info.value)
    suggestion = f"ssh-keyscan -p {sshd_server.port} 127.0.0.1 >> {known_hosts}"
    assert suggestion in message and sshd_server.host_key_fingerprint in message
    assert shutil.which("ssh-keyscan"), "openssh-client (ssh-keyscan) comes with openssh-server"
    subprocess.run(suggestion, shell=True, check=True, capture_output=True, timeout=20)  # do what it says
    with connect(sshd_server, password="", private_key=sshd_server.client_key, known_hosts=str(known_hosts)) as t:
        assert t.listdir() == []


def test_pinned_fingerprint_matches_ssh_keygen(sshd_server, tmp_path):
    assert shutil.which("ssh-keygen")
    listed = subprocess.run(["ssh-keygen", "-lf", str(sshd_server.workdir / "ssh_host_ed25519_key")],
                            check=True, capture_output=True, text=True).stdout.split()[1]
    assert listed == sshd_server.host_key_fingerprint
    with connect(sshd_server, password="", private_key=sshd_server.client_key,
                 known_hosts=str(tmp_path / "none"), host_key=listed) as t:
        t.upload_atomic(b"pinned", "p.xml")
    assert (sshd_server.base_dir / "p.xml").read_bytes() == b"pinned"


def test_host_key_mismatch_is_refused(sshd_server, sftp_server):
    # known_hosts says [127.0.0.1]:PORT has the paramiko test server's key: sshd's differs
    known_hosts = sshd_server.workdir / "wrong_known_hosts"
    entry = open(sftp_server.known_hosts).read().replace(f"[127.0.0.1]:{sftp_server.port}",
                                                          f"[127.0.0.1]:{sshd_server.port}")
    known_hosts.write_text(entry)
    with pytest.raises(HostKeyError) as info:
        connect(sshd_server, password="", private_key=sshd_server.client_key, known_hosts=str(known_hosts))
    message = str(info.value)
    assert "HAS CHANGED" in message and sshd_server.host_key_fingerprint in message
    assert sftp_server.host_key_fingerprint in message
