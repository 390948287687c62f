"""Compact JSON text with one C encoder built once: ``json.dumps`` builds a new one on every call, which is
most of its cost for the small records the payload hashes (``app4sales/payload.py``) and the sandbox's
stored customers (``sandbox/store.py``) encode by the hundred thousand."""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring_ascii
from typing import Any


def _no_default(value):
    raise TypeError(f"{type(value).__name__} is not JSON serializable: {value!r}")


def compact_encoder(*, sort_keys: bool, allow_nan: bool) -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"), sort_keys=…, allow_nan=…)`` (ASCII), as a function."""
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C accelerator
        return json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), allow_nan=allow_nan).encode
    encoder = c_make_encoder(None, _no_default, encode_basestring_ascii, None, ":", ",", sort_keys, False, allow_nan)

    def dumps(value: Any) -> str:
        return "".join(encoder(value, 0))

    return dumps
