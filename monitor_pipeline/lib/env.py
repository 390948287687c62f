"""Typed reads of environment variables, each error naming the variable (SPEC §2)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib import booleans

# The SPEC §3 boolean words, plus on/off for settings.
TRUE_WORDS = frozenset({*booleans.TRUE_WORDS, "on"})
FALSE_WORDS = frozenset({*booleans.FALSE_WORDS, "off"})


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    value = _raw(name, environ)
    return default if value is None else value


def env_required(name: str, environ: Mapping[str, str] | None = None) -> str:
    value = _raw(name, environ)
    if value is None:
        raise ConfigError(f"{name} is not set")
    return value


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    word = value.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no)")


def _number(name: str, default, environ, parse, what: str, low, high):
    """``parse`` of the variable (``default`` when unset), within ``low``..``high`` when given."""
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = parse(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not {what}") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise ConfigError(f"{name}={number} is out of range ({low}–{high})")
    return number


def env_int(name: str, default: int, environ: Mapping[str, str] | None = None, *, low: int | None = None,
            high: int | None = None) -> int:
    return _number(name, default, environ, int, "a whole number", low, high)


def env_float(name: str, default: float, environ: Mapping[str, str] | None = None, *, low: float | None = None,
              high: float | None = None) -> float:
    return _number(name, default, environ, float, "a number", low, high)


def env_json_object(name: str, environ: Mapping[str, str] | None = None) -> dict:
    value = _raw(name, environ)
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"{name} must be a JSON object, got {type(parsed).__name__}")
    return parsed


def env_at_least(name: str, default: float, low: float, environ: Mapping[str, str] | None = None, *,
                 unit: str = "") -> float:
    """A finite number ≥ ``low`` (``default`` when unset); the error names the variable and the bound."""
    value = env_float(name, default, environ)
    if not math.isfinite(value):
        raise ConfigError(f"{name}={value} is not a finite number")
    if value < low:
        raise ConfigError(f"{name}={value:g} must be at least {low:g}{unit}")
    return value
