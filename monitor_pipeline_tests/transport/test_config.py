"""TransportConfig: environment parsing, validation naming the variable, describe() without secrets;
no part of a URL's user info in any message, also for malformed URLs (SPEC §2)."""

from __future__ import annotations

import pytest

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib import defaults
from monitor_pipeline.tenants import load_tenants
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
        "MONITOR_FTP_MIN_RATE": "512", "MONITOR_FTP_RATE_WINDOW": "45",
    })
    assert config == TransportConfig(
        url="sftp://files.example.com:2222/data/monitor", username="monitor", password=" pa ss ", active=True,
        tls=False, ca_file=str(ca), known_hosts="/etc/kh", host_key=PIN, private_key=str(key),
        connect_timeout=3.5, read_timeout=20.0, min_rate=512.0, rate_window=45.0)


def test_defaults():
    config = TransportConfig.from_env({"MONITOR_FTP_URL": "ftp://h"})
    assert (config.active, config.tls, config.ca_file, config.known_hosts, config.host_key) == (
        False, False, None, None, None)
    assert (config.connect_timeout, config.read_timeout, config.retry_attempts) == (15.0, 60.0, 4)
    assert (config.min_rate, config.rate_window) == (1024.0, 30.0)  # as curl --speed-limit 1024 --speed-time 30
    assert TransportConfig.from_env({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_MIN_RATE": "0"}).min_rate == 0
    assert config.parsed.port == 21


def test_without_a_url_the_embedded_default_folder():
    """One reader for production and tests: MONITOR_FTP_URL unset is the embedded default's local folder
    (the test-only reader this replaced required it, which production never did)."""
    assert TransportConfig.from_env({}).url == defaults.default_ftp_url()
    assert TransportConfig.from_env({"MONITOR_FTP_URL": "  "}).scheme == "file"


@pytest.mark.parametrize("env, variable", [
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
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_MIN_RATE": "-1"}, "MONITOR_FTP_MIN_RATE"),
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_MIN_RATE": "1k"}, "MONITOR_FTP_MIN_RATE"),
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_MIN_RATE": "nan"}, "MONITOR_FTP_MIN_RATE"),
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_RATE_WINDOW": "0"}, "MONITOR_FTP_RATE_WINDOW"),
    ({"MONITOR_FTP_URL": "ftp://h", "MONITOR_FTP_RATE_WINDOW": "inf"}, "MONITOR_FTP_RATE_WINDOW"),
])
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as info:
        TransportConfig.from_env(env)
    assert variable in str(info.value)


def test_password_in_url_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as info:
        TransportConfig(url="ftp://user:hunter2@h/x").validate()
    assert "MONITOR_FTP_URL" in str(info.value) and "hunter2" not in str(info.value)


# (URL, what of it must never be shown). The user is "monitor", the password holds "Tail77".
HOSTILE_URLS = [
    ("ftp://monitor:1234#Tail77@files.example.com/", ("monitor", "1234", "Tail77")),     # '#' in the password
    ("ftp://monitor:12?Tail77@files.example.com/in", ("monitor", "Tail77")),             # '?'
    ("sftp://monitor:pa/Tail77@files.example.com/data", ("monitor", "pa/", "Tail77")),   # '/'
    ("sftp://monitor:1/Tail77@files.example.com/data", ("monitor", "Tail77")),           # '/' after digits
    ("sftp://monitor:pa@Tail77@files.example.com/data", ("monitor", "Tail77")),          # '@'
    ("ftps://monitor:Tail77#@files.example.com/", ("monitor", "Tail77")),
    ("ftp://monitor:Tail77:x@files.example.com/", ("monitor", "Tail77")),
    ("ftp://monitor:Tail77@files.example.com:99999/", ("monitor", "Tail77")),            # bad port
    ("ftp://monitor:Tail77@files.example.com:21x/", ("monitor", "Tail77")),
    ("ftps://monitor:Tail77@[::1/x", ("monitor", "Tail77")),                             # IPv6 bracket unclosed
    ("ftps://monitor:Tail77@[not:an:addr]/x", ("monitor", "Tail77")),
    ("ftps://[monitor:Tail77@::1]/x", ("monitor", "Tail77")),
    ("http://monitor:Tail77@files.example.com/", ("monitor", "Tail77")),                 # unknown scheme
    ("monitor:Tail77@files.example.com/x", ("monitor", "Tail77")),                       # no scheme
    ("monitor:Tail77@files.example.com:21", ("monitor", "Tail77")),
    ("//monitor:Tail77@files.example.com/", ("monitor", "Tail77")),
    ("sftp://Tail77@files.example.com/", ("Tail77",)),                                   # user only
    ("sftp://monitor%3ATail77@files.example.com/", ("monitor", "Tail77")),              # percent-encoded
    ("file://monitor:Tail77@localhost/srv/drop", ("monitor", "Tail77")),
    ("ftp://monitor:Tail\n77@files.example.com/", ("monitor", "Tail")),                 # control character
    ("ftp://monitor:Tail77", ("Tail77",)),                                               # "@host" forgotten
    ("ftp://monitor:Tail77/base", ("Tail77",)),
    ("ftp://monitor:77#Tail77/", ("77", "Tail77")),
    ("ftp://monitor:77?Tail77", ("77", "Tail77")),
]


@pytest.mark.parametrize("url, secrets", HOSTILE_URLS, ids=[u for u, _ in HOSTILE_URLS])
def test_no_part_of_the_user_info_is_ever_shown(url, secrets):
    for attempt in (lambda: TransportConfig.from_env({"MONITOR_FTP_URL": url}),
                    lambda: TransportConfig(url=url).validate(), lambda: parse_url(url)):
        with pytest.raises(ConfigError) as info:
            attempt()
        message = str(info.value)
        assert "MONITOR_FTP_URL" in message
        for secret in secrets:
            assert secret not in message, message
        if "@" in url:  # credentials are refused, shown as ***, and sent where they belong
            assert "must not contain a user name or password" in message and "***@" in message, message
            assert "MONITOR_FTP_USERNAME and MONITOR_FTP_PASSWORD" in message


def test_credentials_refused_with_the_url_shown_masked():
    with pytest.raises(ConfigError) as info:
        parse_url("sftp://monitor:1234#Tail77@files.example.com:2222/data/monitor")
    assert str(info.value).startswith("MONITOR_FTP_URL must not contain a user name or password (user:password@host): "
                                      "sftp://***@files.example.com:2222/data/monitor. Set MONITOR_FTP_USERNAME and "
                                      "MONITOR_FTP_PASSWORD instead")


@pytest.mark.parametrize("monitor, app4sales, field", [
    ("sftp://north:1234#Tail77@files.example.com/monitor", "https://h.example/north/api/app4sales/", "monitor.url"),
    ("ftp://north:Tail77@files.example.com:99x/", "https://h.example/north/api/app4sales/", "monitor.url"),
    ("ftps://[north:Tail77@::1]/x", "https://h.example/north/api/app4sales/", "monitor.url"),
    ("file:///srv/drop", "https://sync:pa/Tail77@h.example/north/api/app4sales/", "app4sales.url"),
])
def test_tenants_file_urls_never_show_user_info(tmp_path, monitor, app4sales, field):
    """The tenants file names the variables holding secrets (password_env); a URL with credentials is
    refused at load like MONITOR_FTP_URL, and the message (also a run tag: the App4Sales host) shows none."""
    path = tmp_path / "tenants.yaml"
    path.write_text(f"tenants:\n  - name: north\n    monitor: {{url: '{monitor}'}}\n"
                    f"    app4sales: {{url: '{app4sales}'}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_tenants(path)
    message = str(info.value)
    assert f"tenants.0.{field}" in message and "MONITOR_TENANTS_FILE" in message
    assert "Tail77" not in message and "north:" not in message and "sync" not in message, message


def test_an_at_sign_in_a_folder_is_written_percent_40():
    assert parse_url("sftp://files.example.com/data/%40monitor").base == "/data/@monitor"
    assert parse_url("file:///home/anna@corp/drop").base == "/home/anna@corp/drop"  # no authority: a folder


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
    with pytest.raises(ConfigError, match="must not contain a user name"):  # the user is MONITOR_FTP_USERNAME
        TransportConfig(url="sftp://u@h").validate()


def test_use_tls():
    assert TransportConfig(url="ftps://h").use_tls
    assert TransportConfig(url="ftp://h", tls=True).use_tls
    assert not TransportConfig(url="ftp://h").use_tls
