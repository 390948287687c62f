"""SFTP specifics against the in-process paramiko server: host key checks (unknown, changed, pinned,
hashed and [host]:port known_hosts entries), rename strategies, key types, bad credentials."""

from __future__ import annotations

import logging

import paramiko
import pytest

from monitor_pipeline.transport import (HostKeyChangedError, HostKeyError, TransportAuthError, fingerprint,
                                       open_transport)
from monitor_pipeline_tests.servers.keys import known_hosts_line, write_private_key
from monitor_pipeline_tests.transport.conftest import fast_retry


def connect(server, **overrides):
    return open_transport(server.config(**overrides), retry=fast_retry())


def test_unknown_host_key_is_refused_with_instructions(sftp_server, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostKeyError) as info:
        connect(sftp_server, known_hosts=str(empty))
    message = str(info.value)
    assert sftp_server.host_key_fingerprint in message
    assert f"ssh-keyscan -p {sftp_server.port} 127.0.0.1 >> {empty}" in message
    assert f"MONITOR_SFTP_HOST_KEY={sftp_server.host_key_fingerprint}" in message
    assert "CHANGED" not in message and not info.value.transient


def test_missing_known_hosts_file_is_named(sftp_server, tmp_path):
    missing = tmp_path / "nope" / "known_hosts"
    with pytest.raises(HostKeyError, match=f"{missing}, which does not exist"):
        connect(sftp_server, known_hosts=str(missing))


def test_changed_host_key_is_refused_loudly(sftp_server, tmp_path):
    impostor = paramiko.ECDSAKey.generate(bits=256)
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts_line("127.0.0.1", sftp_server.port, impostor))
    with pytest.raises(HostKeyError) as info:
        connect(sftp_server, known_hosts=str(kh))
    message = str(info.value)
    assert "HAS CHANGED" in message and "man-in-the-middle" in message
    assert fingerprint(impostor) in message and sftp_server.host_key_fingerprint in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sftp_server.port}'" in message


def test_changed_key_is_refused_even_with_insecure_accept_unknown(sftp_server, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts_line("127.0.0.1", sftp_server.port, paramiko.ECDSAKey.generate(bits=256)))
    with pytest.raises(HostKeyError, match="HAS CHANGED"):
        connect(sftp_server, known_hosts=str(kh), sftp_insecure_accept_unknown_host_key=True)


@pytest.mark.parametrize("known_type, server_type", [
    ("ed25519", "ecdsa"), ("ed25519", "rsa"), ("ecdsa", "ed25519"),  # known_hosts has another key type
    ("ecdsa", "ecdsa"), ("ed25519", "ed25519"),                      # the same type, another key
])
def test_changed_host_key_is_refused_with_accept_unknown_whatever_the_key_types(
        sftp_server_factory, tmp_path, caplog, known_type, server_type):
    """A host known_hosts has *any* key for is not unknown: a key it does not list is a changed key, also
    of another type, and MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY never accepts it (SPEC §2)."""
    server_key = write_private_key(tmp_path / "host_key", server_type, shared=server_type == "rsa")
    server = sftp_server_factory(host_key=server_key)
    recorded = write_private_key(tmp_path / "recorded_key", known_type)
    assert recorded.asbytes() != server_key.asbytes()
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts_line("127.0.0.1", server.port, recorded))
    with caplog.at_level(logging.WARNING, logger="monitor_pipeline.transport"):
        with pytest.raises(HostKeyChangedError) as info:
            connect(server, known_hosts=str(kh), sftp_insecure_accept_unknown_host_key=True)
    assert not info.value.transient and server.ops == []  # refused before any file operation
    assert fingerprint(recorded) in str(info.value) and fingerprint(server_key) in str(info.value)
    assert "accepting the UNVERIFIED" not in caplog.text


def test_insecure_accept_unknown_host_key_connects_and_warns(sftp_server, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="monitor_pipeline.transport"):
        with connect(sftp_server, known_hosts=str(tmp_path / "none"), sftp_insecure_accept_unknown_host_key=True) as t:
            t.upload_atomic(b"x", "a.xml")
    assert "MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY" in caplog.text
    assert sftp_server.host_key_fingerprint in caplog.text


def test_pinned_fingerprint_is_accepted_without_known_hosts(sftp_server, tmp_path):
    with connect(sftp_server, known_hosts=str(tmp_path / "none"), host_key=sftp_server.host_key_fingerprint) as t:
        t.upload_atomic(b"pinned", "p.xml")
    assert (sftp_server.base_dir / "p.xml").read_bytes() == b"pinned"


def test_wrong_pinned_fingerprint_is_refused(sftp_server):
    other = fingerprint(paramiko.ECDSAKey.generate(bits=256))
    with pytest.raises(HostKeyError) as info:
        connect(sftp_server, host_key=other)
    assert "does not match the pinned MONITOR_SFTP_HOST_KEY" in str(info.value)
    assert sftp_server.host_key_fingerprint in str(info.value)


def test_hashed_known_hosts_entry(sftp_server, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("# comment\n" + known_hosts_line("127.0.0.1", sftp_server.port, sftp_server.host_key, hashed=True))
    assert kh.read_text().splitlines()[1].startswith("|1|")
    with connect(sftp_server, known_hosts=str(kh)) as t:
        assert t.listdir() == []


def test_known_hosts_entry_for_port_22_does_not_vouch_for_another_port(sftp_server, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(known_hosts_line("127.0.0.1", 22, sftp_server.host_key))  # "127.0.0.1 ecdsa-… AAAA…"
    with pytest.raises(HostKeyError, match="not in the known_hosts file"):
        connect(sftp_server, known_hosts=str(kh))


def test_fingerprint_matches_openssh_format(sftp_server):
    fp = sftp_server.host_key_fingerprint
    assert fp.startswith("SHA256:") and len(fp) == 7 + 43 and not fp.endswith("=")
    assert fp == sftp_server.host_key.fingerprint  # paramiko's own OpenSSH-compatible rendering


@pytest.mark.parametrize("advertise, rename_op", [(True, "posix_rename"), (False, "rename")])
def test_replace_uses_posix_rename_when_offered(sftp_server_factory, advertise, rename_op):
    server = sftp_server_factory(advertise_posix_rename=advertise)
    (server.base_dir / "a.xml").write_bytes(b"old")
    with connect(server) as t:
        t.upload_atomic(b"new", "a.xml")
    assert (server.base_dir / "a.xml").read_bytes() == b"new"
    assert [p.name for p in server.base_dir.iterdir()] == ["a.xml"]
    ops = [op for op, *_ in server.ops if op in ("rename", "posix_rename", "remove")]
    if advertise:
        assert ops == ["posix_rename"]
    else:  # SFTPv3 rename refuses to overwrite: tried, the old file renamed aside, the new one in, aside removed
        assert ops == ["rename", "rename", "rename", "remove"]


def test_rsa_key_auth(sftp_server):
    with connect(sftp_server, password="", private_key=sftp_server.client_key_rsa) as t:
        t.upload_atomic(b"rsa", "r.xml")
    assert (sftp_server.base_dir / "r.xml").read_bytes() == b"rsa"


def test_encrypted_key_uses_password_as_passphrase(sftp_server, tmp_path):
    key = write_private_key(tmp_path / "enc_key", "ed25519", passphrase=b"key-phrase")
    sftp_server.authorized_blobs.add(key.asbytes())
    with connect(sftp_server, password="key-phrase", private_key=str(tmp_path / "enc_key")) as t:
        assert t.listdir() == []
    with pytest.raises(TransportAuthError, match="is encrypted"):
        connect(sftp_server, password="", private_key=str(tmp_path / "enc_key"))


def test_unauthorized_key_is_refused(sftp_server, tmp_path):
    write_private_key(tmp_path / "stranger", "ecdsa")
    with pytest.raises(TransportAuthError) as info:
        connect(sftp_server, password="", private_key=str(tmp_path / "stranger"))
    assert f"127.0.0.1:{sftp_server.port}" in str(info.value) and "publickey" in str(info.value)


def test_bad_password(sftp_server):
    sleeps: list[float] = []
    with pytest.raises(TransportAuthError) as info:
        open_transport(sftp_server.config(password="wrong-pw-Zq9"), retry=fast_retry(sleeps=sleeps))
    message = str(info.value)
    assert f"127.0.0.1:{sftp_server.port}" in message and "'monitor'" in message
    assert "wrong-pw-Zq9" not in message and "wrong-pw-Zq9" not in repr(info.value)
    assert sleeps == [] and sftp_server.connections == 1  # permanent: not retried


def test_home_relative_base(sftp_server):
    with connect(sftp_server, url=f"sftp://127.0.0.1:{sftp_server.port}/~/monitor") as t:
        t.upload_atomic(b"home", "h.xml")
    assert (sftp_server.base_dir / "h.xml").read_bytes() == b"home"
