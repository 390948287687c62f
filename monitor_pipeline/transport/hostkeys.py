"""SFTP host key verification: known_hosts (hashed and ``[host]:port`` entries) or a pinned SHA256 fingerprint."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import shlex

import paramiko

from monitor_pipeline.transport.config import TransportConfig
from monitor_pipeline.transport.errors import HostKeyChangedError, HostKeyError

log = logging.getLogger("monitor_pipeline.transport")
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:…``: unpadded base64 of the SHA-256 of the public key blob."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def known_hosts_name(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def known_hosts_path(config: TransportConfig) -> str:
    return os.path.expanduser(config.known_hosts or DEFAULT_KNOWN_HOSTS)


def known_keys(config: TransportConfig, host: str, port: int) -> dict[str, paramiko.PKey]:
    """Keys known for ``host:port``, by key type ({} when none or when the file does not exist)."""
    path = known_hosts_path(config)
    if not os.path.isfile(path):
        return {}
    keys = paramiko.HostKeys()
    try:
        keys.load(path)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise HostKeyError(f"cannot read known_hosts file {path} (MONITOR_SFTP_KNOWN_HOSTS): {exc}") from exc
    found = keys.lookup(known_hosts_name(host, port))
    return dict(found) if found else {}


def _same_family(name: str) -> list[str]:
    return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if name == "ssh-rsa" else [name]


def preferred_key_types(available: tuple[str, ...], known: dict[str, paramiko.PKey]) -> tuple[str, ...]:
    """Put the host key types we already know first, so the server presents one we can check."""
    first = [t for name in known for t in _same_family(name) if t in available]
    return tuple(dict.fromkeys(first + list(available)))


def verify_host_key(config: TransportConfig, host: str, port: int, key: paramiko.PKey,
                    known: dict[str, paramiko.PKey]) -> None:
    """Raise ``HostKeyError`` unless the server's ``key`` is trusted: ``HostKeyChangedError`` when known_hosts
    has another key for the server, of its type or of another type (accepting unknown keys never covers it)."""
    seen = fingerprint(key)
    kind = key.get_name()
    where = f"sftp server {host}:{port}"
    if config.host_key:
        pinned = config.host_key.strip().rstrip("=")
        if seen == pinned:
            return
        raise HostKeyError(
            f"{where} presented the {kind} host key {seen}, which does not match the pinned "
            f"MONITOR_SFTP_HOST_KEY={pinned}. Refusing to connect: this may be a man-in-the-middle attack. If the "
            f"server's key really changed, confirm the new fingerprint with its administrator and update "
            f"MONITOR_SFTP_HOST_KEY.", fingerprint=seen)
    path = known_hosts_path(config)
    name = known_hosts_name(host, port)
    keyscan = f"ssh-keyscan {'-p ' + str(port) + ' ' if port != 22 else ''}{host} >> {shlex.quote(path)}"
    if kind in known:
        if known[kind] == key:
            return
        raise HostKeyChangedError(_changed(where, kind, seen, fingerprint(known[kind]), path, name, keyscan),
                                  fingerprint=seen)
    if known:
        others = ", ".join(f"{k} {fingerprint(v)}" for k, v in known.items())
        raise HostKeyChangedError(_changed(where, kind, seen, others, path, name, keyscan), fingerprint=seen)
    if config.sftp_insecure_accept_unknown_host_key:
        log.warning("MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY is set: accepting the UNVERIFIED %s host key %s "
                    "of %s; anyone on the network path could be impersonating the server", kind, seen, where)
        return
    missing = "" if os.path.isfile(path) else ", which does not exist"
    raise HostKeyError(
        f"{where} is not trusted: its {kind} host key {seen} is not in the known_hosts file {path}{missing}. "
        f"After confirming this fingerprint with the server's administrator, trust it either by adding the key "
        f"to that file, e.g. `{keyscan}` (or point MONITOR_SFTP_KNOWN_HOSTS at a file that has it), or by "
        f"pinning MONITOR_SFTP_HOST_KEY={seen}.", fingerprint=seen)


def _changed(where: str, kind: str, seen: str, expected: str, path: str, name: str, keyscan: str) -> str:
    return (f"WARNING: THE HOST KEY OF {where.upper()} HAS CHANGED! Refusing to connect: someone may be "
            f"intercepting the connection (man-in-the-middle attack), or the server's key was replaced. "
            f"known_hosts file {path} has {expected} for {name}; the server presented {kind} {seen}. "
            f"Only if the change is confirmed by the server's administrator: remove the old entry with "
            f"`ssh-keygen -R {shlex.quote(name)} -f {shlex.quote(path)}` and add the new one (`{keyscan}`), "
            f"or pin MONITOR_SFTP_HOST_KEY={seen}.")
