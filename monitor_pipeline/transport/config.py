"""Transport settings (SPEC §2): ``TransportConfig`` (the server), ``MonitorFolders`` (where the files are)
and the parsing of ``MONITOR_FTP_URL``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from pydantic import model_validator

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib import defaults
from monitor_pipeline.lib.settings import Settings, setting, variable_of

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
def parse_url(url: str, variable: str | None = None,
              credentials: str = "MONITOR_FTP_USERNAME and MONITOR_FTP_PASSWORD") -> ParsedURL:
    """Take ``url`` apart; a ConfigError naming ``variable`` otherwise. No message shows a URL's user info
    (``shown_url``), also when the URL is malformed: a password may hold any character. User info is
    refused: the credentials go in ``credentials``."""
    var = variable or variable_of(TransportConfig, "url")
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


class TransportConfig(Settings):
    """How to reach Monitor's file server (SPEC §2). Fields marked ``tenant`` may differ per tenant."""

    url: str = setting("", "MONITOR_FTP_URL", "ftp://host[:port][/base], ftps://…, sftp://…, or file:///dir "
                       "(unset: the embedded default's local folder)",
                       tenant=True)
    username: str = setting("", "MONITOR_FTP_USERNAME", "login name (never in the URL)")
    password: str = setting("", "MONITOR_FTP_PASSWORD", "login password", secret=True)
    active: bool = setting(False, "MONITOR_FTP_ACTIVE", "FTP active mode (passive by default)", tenant=True)
    tls: bool = setting(False, "MONITOR_FTP_TLS", "explicit TLS on ftp:// (same as ftps://)", tenant=True)
    ca_file: str | None = setting(None, "MONITOR_FTP_CA_FILE", "CA bundle that signs the FTPS server's certificate",
                                  tenant=True)
    tls_insecure_skip_verify: bool = setting(False, "MONITOR_FTP_TLS_INSECURE_SKIP_VERIFY",
                                             "accept any FTPS certificate (testing only)")
    known_hosts: str | None = setting(None, "MONITOR_SFTP_KNOWN_HOSTS", "OpenSSH known_hosts file", tenant=True)
    host_key: str | None = setting(None, "MONITOR_SFTP_HOST_KEY", "pinned SFTP host key, SHA256:… as ssh-keygen -lf "
                                   "prints it", tenant=True)
    private_key: str | None = setting(None, "MONITOR_SFTP_PRIVATE_KEY", "SSH private key file", tenant=True)
    sftp_insecure_accept_unknown_host_key: bool = setting(False, "MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY",
                                                          "accept an unknown SFTP host key (testing only)")
    connect_timeout: float = setting(15.0, "MONITOR_FTP_CONNECT_TIMEOUT", "seconds for the whole connect (TCP, "
                                     "TLS/SSH handshake, login)", gt=0, unit=" s")
    read_timeout: float = setting(60.0, "MONITOR_FTP_READ_TIMEOUT", "longest pause of a transfer", gt=0, unit=" s")
    min_rate: float = setting(DEFAULT_MIN_RATE, "MONITOR_FTP_MIN_RATE", "bytes/s a transfer must average over "
                              "the rate window (0: no minimum)", ge=0, unit=" B/s (0: no minimum)")
    rate_window: float = setting(DEFAULT_RATE_WINDOW, "MONITOR_FTP_RATE_WINDOW", "seconds the minimum rate is "
                                 "averaged over", gt=0, unit=" s")
    retry_attempts: int = setting(4, None, "tries of each connect and transfer, reconnecting", ge=1)
    host_connections: int = setting(2, "MONITOR_FTP_HOST_CONNECTIONS", "connections at most to the file server's "
                                    "host:port at once, over all runs and tenants (lib/host_slots.py)",
                                    ge=1, le=64)  # not per tenant: tenants sharing a host share its limit

    @model_validator(mode="before")
    @classmethod
    def _embedded_default(cls, data: object) -> object:
        """Without ``MONITOR_FTP_URL``: the embedded default's local folder."""
        if isinstance(data, dict) and not data.get("url"):
            return {**data, "url": defaults.default_ftp_url()}
        return data

    @model_validator(mode="after")
    def _checked(self) -> TransportConfig:
        self.validate()
        return self

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
        """ConfigError naming the variable: the URL, the files named, the pinned key's form (the bounds of
        the numbers are the fields' own)."""
        parse_url(self.url)  # raises ConfigError naming MONITOR_FTP_URL
        for name in ("ca_file", "private_key"):
            value = getattr(self, name)
            if isinstance(value, str) and value and not os.path.isfile(os.path.expanduser(value)):
                raise ConfigError(f"{variable_of(TransportConfig, name)}={value} is not a readable file")
        if isinstance(self.host_key, str) and self.host_key and not _PINNED_KEY.match(self.host_key.strip()):
            raise ConfigError(f"MONITOR_SFTP_HOST_KEY={self.host_key!r} is not an OpenSSH SHA256 fingerprint "
                              "(expected SHA256: followed by 43 base64 characters, as `ssh-keygen -lf` prints it)")

    @property
    def slot_host(self) -> str | None:
        """``host:port`` whose connection slots a connection takes (None: a local folder takes none)."""
        p = self.parsed
        if p.scheme == "file":
            return None
        return f"[{p.host}]:{p.port}" if ":" in p.host else f"{p.host}:{p.port}"

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


class MonitorFolders(Settings):
    """Where customers.xml and extraCustomerData.csv are in Monitor's folder (SPEC §2), and how long the
    file must stand still before it is read."""

    customers_folder: str = setting("", "MONITOR_CUSTOMERS_FOLDER", "folder of customers.xml, relative to the "
                                    "base folder", tenant=True)
    extra_data_folder: str | None = setting(None, "MONITOR_EXTRA_DATA_FOLDER", "folder of extraCustomerData.csv; "
                                            "unset = no extra data", tenant=True)
    stability_seconds: float = setting(3.0, "MONITOR_STABILITY_SECONDS", "wait between the two looks at "
                                       "customers.xml that prove it is not being written", ge=0, unit=" s")

    def customers_xml_path(self) -> str:
        return str(PurePosixPath(self.customers_folder.strip("/") or ".") / "customers.xml")

    def extra_data_path(self) -> str | None:
        if self.extra_data_folder is None:
            return None
        return str(PurePosixPath(self.extra_data_folder.strip("/") or ".") / "extraCustomerData.csv")
