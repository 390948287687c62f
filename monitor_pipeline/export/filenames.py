"""A CustomerCode used as a file name must be a safe single path segment (SPEC §4)."""

from __future__ import annotations

import re

MAX_LENGTH = 64
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


class UnsafeFileNameError(ValueError):
    """The CustomerCode cannot be used as ``<code>.xml``: nothing is uploaded."""


def validate_customer_code(code: object) -> str:
    """Return ``code`` unchanged when it is a safe file-name segment, else raise ``UnsafeFileNameError``.

    Safe: only ASCII letters, digits, ``.``, ``_`` and ``-``; not ``.`` or ``..``; 1–64 characters.
    No trimming or normalising: what App4Sales returned is what would name the file.
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
    return code
