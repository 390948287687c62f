"""Transport settings (SPEC §2): ``TransportConfig`` and parsing of ``MONITOR_FTP_URL``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib.env import env_at_least, env_bool, env_float, env_required, env_str

SCHEMES = ("ftp", "ftps", "sftp", "file")
DEFAULT_PORTS = {"ftp": 21, "ftps": 21, "sftp": 22}
_PINNED_KEY = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")
_SCHEME_PREFIX = re.compile(r"\A([A-Za-z][A-Za-z0-9+.-]*)://")
_PORT = re.compile(r"\A(?P<head>[A-Za-z][A-Za-z0-9+.-]*://(?:\[[^\]/]*\]|[^/:\[\]]*)):(?P<port>[^/]*)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Minimum transfer rate (SPEC §2), as curl's --speed-limit/--speed-time. 1 KiB/s over 30 s is far below
# any working link (a LAN or WAN file server moves 100s of KiB/s), so only a server or network that is
# stalling trips it; 30 s (curl's default --speed-time) spans the bursts of TCP buffers and SSH packets,
# and with the 60 s read timeout a trickle is cut within 90 s per attempt, about when a silence would be.
DEFAULT_MIN_RATE = 1024.0    # bytes per second; 0 switches the minimum off
DEFAULT_RATE_WINDOW = 30.0   # seconds

# Environment variable behind each field, so validate() names the variable even when the
# config was built from Dagster resource fields.
VARIABLES = {
    "url": "MONITOR_FTP_URL",
    "username": "MONITOR_FTP_USERNAME",
    "password": "MONITOR_FTP_PASSWORD",
    "active": "MONITOR_FTP_ACTIVE",
    "tls": "MONITOR_FTP_TLS",
    "ca_file": "MONITOR_FTP_CA_FILE",
    "tls_insecure_skip_verify": "MONITOR_FTP_TLS_INSECURE_SKIP_VERIFY",
    "known_hosts": "MONITOR_SFTP_KNOWN_HOSTS",
    "host_key": "MONITOR_SFTP_HOST_KEY",
    "private_key": "MONITOR_SFTP_PRIVATE_KEY",
    "sftp_insecure_accept_unknown_host_key": "MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY",
    "connect_timeout": "MONITOR_FTP_CONNECT_TIMEOUT",
    "read_timeout": "MONITOR_FTP_READ_TIMEOUT",
    "min_rate": "MONITOR_FTP_MIN_RATE",
    "rate_window": "MONITOR_FTP_RATE_WINDOW",
}


@dataclass(frozen=True)
class ParsedURL:
    """``MONITOR_FTP_URL`` taken apart.

    ``base`` is where relative paths start: an absolute path (``/data/monitor``), or for remote
    schemes ``~`` / ``~/monitor`` meaning the login's home folder (also used when the URL has no
    path at all). For ``file`` it is an absolute local folder.
    """

    scheme: str
    host: str
    port: int
    base: str
    display_path: str  # the URL's path as written (decoded), for describe()


def shown_url(url: str) -> str:
    """``url`` as an error may show it (SPEC §2: a password never appears): everything between the scheme
    and the last ``@`` — the user info, whatever ``#``, ``?``, ``/`` or ``@`` the password holds — becomes
    ``***``; control characters are escaped."""
    match = _SCHEME_PREFIX.match(url)
    prefix, rest = (url[:match.end()], url[match.end():]) if match else ("", url)
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return _CONTROL.sub(lambda c: f"\\x{ord(c.group()):02x}", prefix + rest)


def _mask_port(url: str) -> str:
    """The port as ``***``: where it is malformed, it may be a password whose ``@host`` was forgotten."""
    return _PORT.sub(r"\g<head>:***", url, count=1)


def refuse_credentials(url: str, variable: str, instead: str) -> None:
    """ConfigError naming ``variable`` when ``url`` holds user info: any ``@`` after the scheme (a password
    may contain ``/``, ``?``, ``#`` or ``@``, so nothing else tells where it ends)."""
    match = _SCHEME_PREFIX.match(url)
    rest = url[match.end():] if match else url
    if match and match.group(1).lower() == "file" and rest.startswith("/"):
        return  # file:///folder has no authority: an '@' there is part of a folder name
    if "@" in rest:
        raise ConfigError(f"{variable} must not contain a user name or password (user:password@host): "
                          f"{shown_url(url)}. Set {instead} instead (an '@' in a folder name is written %40)")


@lru_cache(maxsize=64)
def parse_url(url: str, variable: str = VARIABLES["url"],
              credentials: str = "MONITOR_FTP_USERNAME and MONITOR_FTP_PASSWORD") -> ParsedURL:
    """Take ``url`` apart; a ConfigError naming ``variable`` otherwise. No message shows a URL's user info
    (``shown_url``), also when the URL is malformed: a password may hold any character. User info is
    refused: the credentials go in ``credentials``."""
    var = variable
    if not url or not url.strip():
        raise ConfigError(f"{var} is not set")
    url = url.strip()
    match = _SCHEME_PREFIX.match(url)
    refuse_credentials(url, var, credentials)
    if _CONTROL.search(url):
        raise ConfigError(f"{var} contains control characters: {shown_url(url)}")
    if "?" in url or "#" in url:
        cut = min(i for i in (url.find("?"), url.find("#")) if i >= 0)
        shown = shown_url(_mask_port(url[:cut]))  # a password with '#' whose host was forgotten looks like a port
        raise ConfigError(f"{var} must not contain '?' or '#' (a query or fragment): {shown}… "
                          "(in a folder name they are written %3F and %23)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        problem = ("an invalid port (a whole number 1–65535)" if "port" in str(exc).lower()
                   else "a malformed host (an IPv6 address is written in brackets, as in sftp://[2001:db8::1]/)")
        raise ConfigError(f"{var} has {problem}: {shown_url(_mask_port(url))}; "
                          "expected e.g. sftp://host:22/data/monitor") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f"an unknown scheme ('{scheme}')" if match else "no scheme"
        raise ConfigError(f"{var} has {shown}; use ftp://, ftps://, sftp:// or file:///dir")
    path = unquote(parts.path)
    if "\x00" in path or "\n" in path or "\r" in path:
        raise ConfigError(f"{var} contains control characters in its path")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"{var}={url} names a host; a file URL is file:///absolute/folder")
        if not path.startswith("/"):
            raise ConfigError(f"{var}={url} is not an absolute folder; use file:///absolute/folder")
        return ParsedURL("file", "", 0, os.path.normpath(path), path)
    host = parts.hostname or ""
    if not host:
        raise ConfigError(f"{var}={url} has no host; expected {scheme}://host[:port][/base]")
    if any(seg == ".." for seg in path.split("/")):
        raise ConfigError(f"{var}={url}: '..' is not allowed in the base folder")
    if path in ("", "/~", "/~/") or path == "~":
        base = "~"
    elif path.startswith("/~/"):
        base = "~/" + path[3:].strip("/")
    else:
        base = "/" + path.strip("/")
    return ParsedURL(scheme, host, port or DEFAULT_PORTS[scheme], base, path.rstrip("/") if path != "/" else "/")


@dataclass(frozen=True)
class TransportConfig:
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    active: bool = False
    tls: bool = False
    ca_file: str | None = None
    tls_insecure_skip_verify: bool = False
    known_hosts: str | None = None
    host_key: str | None = None
    private_key: str | None = None
    sftp_insecure_accept_unknown_host_key: bool = False
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    min_rate: float = DEFAULT_MIN_RATE
    rate_window: float = DEFAULT_RATE_WINDOW
    retry_attempts: int = 4

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TransportConfig:
        env = os.environ if environ is None else environ
        config = cls(
            url=env_required("MONITOR_FTP_URL", env),
            username=env_str("MONITOR_FTP_USERNAME", "", env) or "",
            # not stripped: a password may legitimately start or end with a space
            password=env.get("MONITOR_FTP_PASSWORD", "") or "",
            active=env_bool("MONITOR_FTP_ACTIVE", False, env),
            tls=env_bool("MONITOR_FTP_TLS", False, env),
            ca_file=env_str("MONITOR_FTP_CA_FILE", None, env),
            tls_insecure_skip_verify=env_bool("MONITOR_FTP_TLS_INSECURE_SKIP_VERIFY", False, env),
            known_hosts=env_str("MONITOR_SFTP_KNOWN_HOSTS", None, env),
            host_key=env_str("MONITOR_SFTP_HOST_KEY", None, env),
            private_key=env_str("MONITOR_SFTP_PRIVATE_KEY", None, env),
            sftp_insecure_accept_unknown_host_key=env_bool("MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY", False,
                                                           env),
            connect_timeout=env_float("MONITOR_FTP_CONNECT_TIMEOUT", 15.0, env),
            read_timeout=env_float("MONITOR_FTP_READ_TIMEOUT", 60.0, env),
            min_rate=env_at_least("MONITOR_FTP_MIN_RATE", DEFAULT_MIN_RATE, 0, env, unit=" B/s (0: no minimum)"),
            rate_window=env_at_least("MONITOR_FTP_RATE_WINDOW", DEFAULT_RATE_WINDOW, 0.1, env, unit=" s"),
        )
        config.validate()
        return config

    @property
    def parsed(self) -> ParsedURL:
        return parse_url(self.url)

    @property
    def scheme(self) -> str:
        return self.parsed.scheme

    @property
    def use_tls(self) -> bool:
        return self.scheme == "ftps" or (self.scheme == "ftp" and self.tls)

    @property
    def effective_username(self) -> str:
        """The login name: MONITOR_FTP_USERNAME (a URL never carries one)."""
        return self.username

    def validate(self) -> None:
        parse_url(self.url)  # raises ConfigError naming MONITOR_FTP_URL
        for name in ("ca_file", "private_key"):
            value = getattr(self, name)
            if value and not os.path.isfile(os.path.expanduser(value)):
                raise ConfigError(f"{VARIABLES[name]}={value} is not a readable file")
        if self.host_key and not _PINNED_KEY.match(self.host_key.strip()):
            raise ConfigError(f"{VARIABLES['host_key']}={self.host_key!r} is not an OpenSSH SHA256 fingerprint "
                              "(expected SHA256: followed by 43 base64 characters, as `ssh-keygen -lf` prints it)")
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                raise ConfigError(f"{VARIABLES[name]}={value!r} must be a positive number of seconds")
        if not _is_number(self.min_rate) or not self.min_rate >= 0:
            raise ConfigError(f"{VARIABLES['min_rate']}={self.min_rate!r} must be a number of bytes per second "
                              "(0 switches the minimum off)")
        if not _is_number(self.rate_window) or not self.rate_window > 0:
            raise ConfigError(f"{VARIABLES['rate_window']}={self.rate_window!r} must be a positive number of seconds")
        if not isinstance(self.retry_attempts, int) or self.retry_attempts < 1:
            raise ConfigError(f"retry_attempts={self.retry_attempts!r} must be a whole number ≥ 1")

    def describe(self) -> str:
        """``sftp://user@host:2222/base`` — never the password."""
        p = self.parsed
        if p.scheme == "file":
            return f"file://{p.base}"
        host = f"[{p.host}]" if ":" in p.host else p.host
        user = f"{self.effective_username}@" if self.effective_username else ""
        path = "" if p.display_path in ("", "/") and p.base == "~" else p.display_path
        suffix = " (TLS)" if p.scheme == "ftp" and self.tls else ""
        return f"{p.scheme}://{user}{host}:{p.port}{path}{suffix}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN
