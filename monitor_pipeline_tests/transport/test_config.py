"""TransportConfig: environment parsing, validation naming the variable, describe() without secrets."""

from __future__ import annotations

import pytest

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.transport import TransportConfig, parse_url

PIN = "SHA256:" + "A" * 43


def test_from_env_reads_every_variable(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    key = tmp_path / "id_ed25519"
    key.write_text("x")
    config = TransportConfig.from_env({
        "MONITOR_FTP_URL": "sftp://files.example.com:2222/data/monitor",
        "MONITOR_FTP_USERNAME": "monitor", "MONITOR_FTP_PASSWORD": " pa ss ",
        "MONITOR_FTP_ACTIVE": "yes", "MONITOR_FTP_TLS": "false", "MONITOR_FTP_CA_FILE": str(ca),
        "MONITOR_FTP_TLS_INSECURE_SKIP_VERIFY": "0", "MONITOR_SFTP_KNOWN_HOSTS": "/etc/kh",
        "MONITOR_SFTP_HOST_KEY": PIN, "MONITOR_SFTP_PRIVATE_KEY": str(key),
        "MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY": "no",
        "MONITOR_FTP_CONNECT_TIMEOUT": "3.5", "MONITOR_FTP_READ_TIMEOUT": "20",
    })
    assert config == TransportConfig(
        url="sftp://files.example.com:2222/data/monitor", username="monitor", password=" pa ss ", active=True,
        tls=False, ca_file=str(ca), known_hosts="/etc/kh", host_key=PIN, private_key=str(key),
        connect_timeout=3.5, read_timeout=20.0)


def test_defaults():
    config = TransportConfig.from_env({"MONITOR_FTP_URL": "ftp://h"})
    assert (config.active, config.tls, config.ca_file, config.known_hosts, config.host_key) == (
        False, False, None, None, None)
    assert (config.connect_timeout, config.read_timeout, config.retry_attempts) == (15.0, 60.0, 4)
    assert config.parsed.port == 21


@pytest.mark.parametrize("env, variable", [
    ({}, "MONITOR_FTP_URL"),
    ({"MONITOR_FTP_URL": "http://h/x"}, "MONITOR_FTP_URL"),
    ({"MONITOR_FTP_URL": "ftp://h:99999/x"}, "MONITOR_FTP_URL"),
    ({"MONITOR_FTP_URL": "ftp://h:abc/x"}, "MONITOR_FTP_URL"),
    ({"MONITOR_FTP_URL": "sftp:///data"}, "MONITOR_FTP_URL"),
    ({"MONITOR_FTP_URL": "file://host/dir"}, "MONITOR_FTP_URL"),
    ({"MONITOR_FTP_URL": "file:relative/dir"}, "MONITOR_FTP_URL"),
    ({"MONITOR_FTP_URL": "sftp://h/../etc"}, "MONITOR_FTP_URL"),
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_TLS": "maybe"}, "MONITOR_FTP_TLS"),
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_ACTIVE": "2"}, "MONITOR_FTP_ACTIVE"),
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_TLS_INSECURE_SKIP_VERIFY": "sure"},
     "MONITOR_FTP_TLS_INSECURE_SKIP_VERIFY"),
    ({"MONITOR_FTP_URL": "sftp://h", "MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY": "x"},
     "MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY"),
    ({"MONITOR_FTP_URL": "sftp://h", "MONITOR_SFTP_HOST_KEY": "MD5:aa:bb"}, "MONITOR_SFTP_HOST_KEY"),
    ({"MONITOR_FTP_URL": "sftp://h", "MONITOR_SFTP_PRIVATE_KEY": "/nonexistent/key"}, "MONITOR_SFTP_PRIVATE_KEY"),
    ({"MONITOR_FTP_URL": "ftps://h", "MONITOR_FTP_CA_FILE": "/nonexistent/ca.pem"}, "MONITOR_FTP_CA_FILE"),
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_CONNECT_TIMEOUT": "soon"}, "MONITOR_FTP_CONNECT_TIMEOUT"),
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_READ_TIMEOUT": "0"}, "MONITOR_FTP_READ_TIMEOUT"),
])
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as info:
        TransportConfig.from_env(env)
    assert variable in str(info.value)


def test_password_in_url_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as info:
        TransportConfig(url="ftp://user:hunter2@h/x").validate()
    assert "MONITOR_FTP_URL" in str(info.value) and "hunter2" not in str(info.value)


@pytest.mark.parametrize("url, base, port", [
    ("sftp://h/data/monitor", "/data/monitor", 22),
    ("sftp://h/data/monitor/", "/data/monitor", 22),
    ("sftp://h:2222/~/monitor", "~/monitor", 2222),
    ("sftp://h/~", "~", 22),
    ("sftp://h", "~", 22),
    ("sftp://h/", "/", 22),
    ("ftp://h/My%20Drop", "/My Drop", 21),
    ("ftps://h:990/x", "/x", 990),
    ("file:///srv/drop/", "/srv/drop", 0),
])
def test_base_folder_is_read_as_curl_does(url, base, port):
    parsed = parse_url(url)
    assert (parsed.base, parsed.port) == (base, port)


def test_describe_and_repr_never_show_the_password():
    config = TransportConfig(url="sftp://h.example:2222/base", username="svc", password="top-secret-pw")
    assert config.describe() == "sftp://svc@h.example:2222/base"
    assert "top-secret-pw" not in repr(config)
    assert TransportConfig(url="ftp://h/x", tls=True).describe() == "ftp://h:21/x (TLS)"
    assert TransportConfig(url="ftps://[::1]:2121/x", username="u").describe() == "ftps://u@[::1]:2121/x"
    assert TransportConfig(url="file:///srv/drop").describe() == "file:///srv/drop"
    assert TransportConfig(url="sftp://u@h").effective_username == "u"


def test_use_tls():
    assert TransportConfig(url="ftps://h").use_tls
    assert TransportConfig(url="ftp://h", tls=True).use_tls
    assert not TransportConfig(url="ftp://h").use_tls
