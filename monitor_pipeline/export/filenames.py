"""A CustomerCode used as a file name must be a safe single path segment (SPEC §4, §6)."""

from __future__ import annotations

import re

MAX_LENGTH = 64
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
# Windows device names (SPEC §6): ``CON.xml`` or ``nul.1.xml`` on a Windows/SMB-backed server opens the
# device, not a file. Windows compares the part before the first dot, in any case. COM0/LPT0 are listed
# as reserved by current Windows documentation too.
WINDOWS_DEVICE_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{port}{n}" for port in ("COM", "LPT") for n in range(10)])


class UnsafeFileNameError(ValueError):
    """The CustomerCode cannot be used as ``<code>.xml``: nothing is uploaded."""


def windows_device_name(code: str) -> str | None:
    """The Windows device name ``<code>.xml`` would open (``"CON"`` for ``con.txt``), or None."""
    stem = code.split(".", 1)[0].upper()
    return stem if stem in WINDOWS_DEVICE_NAMES else None


def validate_customer_code(code: object) -> str:
    """Return ``code`` unchanged when it is a safe file-name segment, else raise ``UnsafeFileNameError``.

    Safe: only ASCII letters, digits, ``.``, ``_`` and ``-``; not ``.`` or ``..``; 1–64 characters;
    not a Windows device name (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM0``–``COM9``, ``LPT0``–``LPT9``,
    any case, also before a dot: ``con.txt``). No trimming or normalising: what App4Sales returned is
    what would name the file.
    """
    if not isinstance(code, str):
        raise UnsafeFileNameError(f"CustomerCode must be a string, got {type(code).__name__}")
    shown = repr(code if len(code) <= 80 else code[:80] + "…")
    if code == "":
        raise UnsafeFileNameError("CustomerCode is empty; it cannot name the export file")
    if len(code) > MAX_LENGTH:
        raise UnsafeFileNameError(
            f"CustomerCode {shown} is {len(code)} characters long; a file name allows at most {MAX_LENGTH}")
    if code in (".", ".."):
        raise UnsafeFileNameError(f"CustomerCode {shown} is not a usable file name")
    if not _SAFE_SEGMENT.fullmatch(code):
        bad = sorted({ch for ch in code if not _SAFE_SEGMENT.fullmatch(ch)})
        raise UnsafeFileNameError(
            f"CustomerCode {shown} is not a safe file name: it contains {', '.join(repr(c) for c in bad)}; "
            "only A-Z, a-z, 0-9, '.', '_' and '-' are allowed")
    device = windows_device_name(code)
    if device is not None:
        raise UnsafeFileNameError(
            f"CustomerCode {shown} is not a safe file name: {code}.xml would be the Windows device {device} "
            "(CON, PRN, AUX, NUL, COM0-COM9 and LPT0-LPT9 are reserved in any case, also before a dot)")
    return code
