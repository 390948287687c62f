"""Transport settings (SPEC §2): ``TransportConfig`` and parsing of ``MONITOR_FTP_URL``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib.env import env_bool, env_float, env_required, env_str

SCHEMES = ("ftp", "ftps", "sftp", "file")
DEFAULT_PORTS = {"ftp": 21, "ftps": 21, "sftp": 22}
_PINNED_KEY = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")

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
    username: str
    display_path: str  # the URL's path as written (decoded), for describe()


@lru_cache(maxsize=64)
def parse_url(url: str) -> ParsedURL:
    var = VARIABLES["url"]
    if not url or not url.strip():
        raise ConfigError(f"{var} is not set")
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{var} is malformed ({exc}); expected e.g. sftp://host:22/data/monitor") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f"'{scheme}'" if scheme else "none"
        raise ConfigError(f"{var} has an unknown scheme ({shown}); use ftp://, ftps://, sftp:// or file:///dir")
    if parts.password is not None:
        raise ConfigError(f"{var} must not contain a password; set it in MONITOR_FTP_PASSWORD")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ConfigError(f"{var} must not contain '?' or '#' (query/fragment): {url}")
    path = unquote(parts.path)
    if "\x00" in path or "\n" in path or "\r" in path:
        raise ConfigError(f"{var} contains control characters in its path")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"{var}={url} names a host; a file URL is file:///absolute/folder")
        if not path.startswith("/"):
            raise ConfigError(f"{var}={url} is not an absolute folder; use file:///absolute/folder")
        return ParsedURL("file", "", 0, os.path.normpath(path), "", path)
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
    return ParsedURL(scheme, host, port or DEFAULT_PORTS[scheme], base,
                     unquote(parts.username or ""), path.rstrip("/") if path != "/" else "/")


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
        return self.username or self.parsed.username

    def validate(self) -> None:
        parsed = self.parsed  # raises ConfigError naming MONITOR_FTP_URL
        if self.username and parsed.username and self.username != parsed.username:
            raise ConfigError(f"MONITOR_FTP_USERNAME ({self.username!r}) differs from the user in MONITOR_FTP_URL "
                              f"({parsed.username!r}); set only one")
        for name in ("ca_file", "private_key"):
            value = getattr(self, name)
            if value and not os.path.isfile(os.path.expanduser(value)):
                raise ConfigError(f"{VARIABLES[name]}={value} is not a readable file")
        if self.host_key and not _PINNED_KEY.match(self.host_key.strip()):
            raise ConfigError(f"{VARIABLES['host_key']}={self.host_key!r} is not an OpenSSH SHA256 fingerprint "
                              "(expected SHA256: followed by 43 base64 characters, as `ssh-keygen -lf` prints it)")
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ConfigError(f"{VARIABLES[name]}={value!r} must be a positive number of seconds")
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
