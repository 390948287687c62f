"""SSH key material generated at test time (OpenSSH private key format, readable by paramiko and sshd)."""

from __future__ import annotations

from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


_SHARED: dict[str, object] = {}


def write_private_key(path: Path, kind: str = "ed25519", passphrase: bytes | None = None, *,
                      shared: bool = False) -> paramiko.PKey:
    """Write a new ``ed25519``/``rsa``/``ecdsa`` private key (mode 0600) and return it as a paramiko key.
    ``shared=True`` reuses one key per type for the whole process (RSA generation is slow)."""
    if shared and kind in _SHARED:
        key = _SHARED[kind]
    elif kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif kind == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(kind)
    if shared:
        _SHARED[kind] = key
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption))
    path.chmod(0o600)
    return paramiko.PKey.from_path(path, password=passphrase)


def public_line(key: paramiko.PKey, comment: str = "") -> str:
    return f"{key.get_name()} {key.get_base64()}{' ' + comment if comment else ''}"


def known_hosts_line(host: str, port: int, key: paramiko.PKey, *, hashed: bool = False) -> str:
    name = host if port == 22 else f"[{host}]:{port}"
    if hashed:
        name = paramiko.HostKeys.hash_host(name)
    return f"{name} {public_line(key)}\n"
