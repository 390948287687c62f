"""Settings declared once: a pydantic field carries its environment variable, default, bounds and doc.

Every setting of SPEC §2 is one :func:`setting` in the model of its domain (``TransportConfig``,
``MonitorFolders``, ``NormalizeOptions``, ``App4SalesSettings``, ``SyncOptions``, ``ExportSettings``,
``DeploymentSettings``). From that one declaration come:

- :meth:`Settings.from_env` — the only reader of those variables (production and tests use it);
  an unset or blank variable means the default, and every error names the variable;
- the Dagster resources, which inherit the models (``class MonitorFileTransport(ConfigurableResource,
  TransportConfig)``), so the UI shows the same fields with the same descriptions;
- the tenants file's ``monitor:`` and ``settings:`` sections (:func:`tenant_model`: the fields marked
  ``tenant=True``);
- the README's settings table, which a test compares with :func:`declared_variables`.
"""

from __future__ import annotations

import json
import math
import os
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib import booleans

# The SPEC §3 boolean words, plus on/off for settings.
TRUE_WORDS = frozenset({*booleans.TRUE_WORDS, "on"})
FALSE_WORDS = frozenset({*booleans.FALSE_WORDS, "off"})


def setting(default: Any = ..., variable: str | None = None, description: str = "", *, secret: bool = False,
            tenant: bool = False, unit: str = "", default_factory: Callable[[], Any] | None = None,
            **constraints: Any) -> Any:
    """A settings field: ``variable`` is the environment variable (None: not read from the environment),
    ``secret`` keeps it out of reprs and makes the resources pass it as a Dagster ``EnvVar``, ``tenant``
    lets the tenants file set it per tenant, ``unit`` completes range messages; ``constraints`` are
    pydantic's (``ge``, ``le``, ``gt``)."""
    extra = {"env": variable, "secret": secret, "tenant": tenant, "unit": unit}
    doc = f"{variable}: {description}" if variable and description else (description or variable or None)
    default_kw = {"default_factory": default_factory} if default_factory is not None else {"default": default}
    return Field(**default_kw, description=doc, repr=not secret, json_schema_extra=extra, **constraints)


def field_extra(info: FieldInfo) -> dict:
    """What :func:`setting` recorded on a field: ``env``, ``secret``, ``tenant``, ``unit`` (empty otherwise)."""
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def variable_of(model: type[BaseModel], name: str) -> str:
    """The environment variable of field ``name`` (the field name itself when it has none)."""
    info = model.model_fields.get(name)
    return (field_extra(info).get("env") if info else None) or name


class Settings(BaseModel):
    """Base of the settings models: frozen, unknown fields refused, every error a ``ConfigError`` naming
    the variable (``MONITOR_BATCH_SIZE=500 is out of range (1–100)``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(_message(type(self), exc)) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, secret: Callable[[str], Any] | None = None,
                 **given: Any):
        """The model from the environment (``os.environ`` unless ``environ``); ``given`` fields win.

        ``secret(variable)`` stands for a set secret variable's value (the resources pass
        ``dagster.EnvVar``, resolved only when a run starts)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            extra = field_extra(info)
            variable = extra.get("env")
            if name in given or not variable:
                continue
            raw = env.get(variable)
            if raw is None or raw.strip() == "":
                continue
            if extra.get("secret"):
                values[name] = secret(variable) if secret else raw  # a password may start or end with a space
            else:
                values[name] = _parse(variable, raw.strip(), info.annotation)
        return cls(**values, **given)

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Field name → environment variable, for the fields read from the environment."""
        return {name: field_extra(info)["env"] for name, info in cls.model_fields.items()
                if field_extra(info).get("env")}

    def values(self, model: type[BaseModel]) -> dict[str, Any]:
        """This object's values of ``model``'s fields (e.g. a resource's ``TransportConfig`` part)."""
        return {name: getattr(self, name) for name in model.model_fields if name in type(self).model_fields}


def _kind(annotation: Any) -> Any:
    """``int``/``float``/``bool``/``str``/``dict`` behind ``X | None`` and ``Annotated``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is dict or annotation is dict:
        return dict
    if origin is not None and args:
        return _kind(args[0])
    return annotation


def _parse(variable: str, raw: str, annotation: Any) -> Any:
    kind = _kind(annotation)
    if kind is bool:
        word = raw.lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
        raise ConfigError(f"{variable}={raw!r} is not a boolean (use true/false, 1/0, yes/no)")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{variable}={raw!r} is not a whole number") from None
    if kind is float:
        try:
            number = float(raw)
        except ValueError:
            raise ConfigError(f"{variable}={raw!r} is not a number") from None
        if not math.isfinite(number):
            raise ConfigError(f"{variable}={raw!r} is not a finite number")
        return number
    if kind is dict:
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{variable} is not valid JSON: {exc.msg} at position {exc.pos}") from None
        if not isinstance(parsed, dict):
            raise ConfigError(f"{variable} must be a JSON object, got {type(parsed).__name__}")
        return parsed
    return raw


def field_bounds(info: FieldInfo) -> dict[str, Any]:
    """The field's ``ge``/``le``/``gt``/``lt`` bounds."""
    found = {}
    for item in info.metadata:
        for key in ("ge", "le", "gt", "lt"):
            if getattr(item, key, None) is not None:
                found[key] = getattr(item, key)
    return found


def _message(model: type[BaseModel], exc: ValidationError) -> str:
    """The first problem, naming the variable (the field name where there is none)."""
    error = exc.errors()[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):  # a validator's own message, which names its variable
        return str(cause)
    name = str(error["loc"][0]) if error["loc"] else ""
    if not name:  # a whole-model problem: never echo the input, which holds the secrets
        return f"{model.__name__}: {error['msg']}"
    info = model.model_fields.get(name)
    variable = variable_of(model, name)
    secret = bool(info and field_extra(info).get("secret"))
    value = "***" if secret else error.get("input")
    shown = value if isinstance(value, (int, float, str)) and not isinstance(value, bool) else repr(value)
    if error["type"] == "extra_forbidden":
        return f"{name} is not a setting of {model.__name__}"
    if info is not None and error["type"] in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        b, unit = field_bounds(info), field_extra(info).get("unit", "")
        if "ge" in b and "le" in b:
            return f"{variable}={shown} is out of range ({b['ge']:g}–{b['le']:g}{unit})"
        if "ge" in b:
            return f"{variable}={shown} must be at least {b['ge']:g}{unit}"
        if "gt" in b:
            return f"{variable}={shown} must be greater than {b['gt']:g}{unit}"
    return f"{variable}={shown}: {error['msg']}"


def declared_variables(models: Iterable[type[Settings]]) -> dict[str, str]:
    """Environment variable → ``Model.field`` over ``models``; a variable declared twice is an error."""
    found: dict[str, str] = {}
    for model in models:
        for name, variable in model.variables().items():
            if variable in found:
                raise ConfigError(f"{variable} is declared twice: {found[variable]} and {model.__name__}.{name}")
            found[variable] = f"{model.__name__}.{name}"
    return found


def tenant_model(name: str, models: Iterable[type[Settings]], base: type[BaseModel], **more: Any) -> type[BaseModel]:
    """A model of the fields marked ``tenant=True`` in ``models`` (same types, defaults and bounds), plus
    ``more`` (``name=(type, default)``): a section of the tenants file. Each source model's own validators
    run on its part, so a tenant's value is refused exactly where the variable's would be."""
    models = list(models)
    fields: dict[str, Any] = {}
    owners: dict[type[Settings], list[str]] = {}
    for model in models:
        for field_name, info in model.model_fields.items():
            if field_extra(info).get("tenant") and field_name not in more:
                fields[field_name] = (info.annotation, info)
                owners.setdefault(model, []).append(field_name)
    fields.update(more)

    def _as_in_source_models(self):
        for model, names in owners.items():
            try:
                model.model_validate({n: getattr(self, n) for n in names})
            except ValidationError as exc:
                raise ValueError(_message(model, exc)) from None
        return self

    return create_model(name, __base__=base, __validators__={"_as_in_source_models": model_validator(
        mode="after")(_as_in_source_models)}, **fields)
