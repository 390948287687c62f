"""What a sync changes, field by field: the change log (asset ``customer_changes``) and the mass-change guard.

The state keeps, per customer, the payload App4Sales last confirmed (compressed JSON, :func:`pack`), next
to its hash. A customer the run sends is compared with it field by field (:func:`customer_changes`):

- one row per changed field: ``Field`` is a path — ``CustomerName``, ``FreeFields.Segment`` for a value
  inside an object, ``Addresses[del].City`` for an address (by its AddressType), ``Contacts[Jan Berg].Email``
  for a contact (by its FullName); a second address or contact with the same key is ``[del#2]``. An address
  or contact that appears or disappears is one row for the whole record (``Contacts[Jan Berg]``, its JSON as
  the old or the new value). Values are text: JSON for lists, ``true``/``false``, numbers as JSON writes them.
- one row without a ``Field`` when there is nothing to compare or nothing differs: a new customer (its name
  as ``NewValue``), a deactivated one, a customer last synced before payloads were kept, or one sent
  though equal (reactivated, full refresh, only its dashboard or GUID differing).
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping

import pandas as pd

from monitor_pipeline.lib.json_text import compact_encoder

CHANGE_COLUMNS = ("CustomerCode", "Reason", "Field", "OldValue", "NewValue")

#: The plan's reasons (sync.SyncPlan.reasons) as the change log names them.
REASONS = {"new": "new", "changed": "changed", "inactive": "reactivated", "full_refresh": "full refresh"}

_KEYED = {"Addresses": "AddressType", "Contacts": "FullName"}
# an address's or contact's key in a Field path: up to the last "]" before a "." or the end (a contact's
# FullName may hold a "]" itself)
_RECORD_KEY = re.compile(r"^(Addresses|Contacts)\[.*\](?=\.|$)")
_encode = compact_encoder(sort_keys=False, allow_nan=True)  # one C encoder: pack runs once per confirmed customer


def pack(payload: Mapping) -> bytes:
    """The payload as kept in the state: compact JSON, zlib level 1 (about a third of the JSON's size)."""
    return zlib.compress(_encode(payload).encode("ascii"), 1)


def unpack(blob: bytes | None) -> dict | None:
    return None if blob is None else json.loads(zlib.decompress(blob))


def _text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _flatten_value(out: dict, path: str, value) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten_value(out, f"{path}.{key}", inner)
    else:
        out[path] = value


def _records(name: str, records: Iterable[Mapping]) -> dict[str, Mapping]:
    """Addresses or contacts by their key (AddressType, FullName), ``#n`` added to a repeated one."""
    key_field, seen, out = _KEYED[name], Counter(), {}
    for position, record in enumerate(records or (), start=1):
        key = record.get(key_field) or f"#{position}"
        seen[key] += 1
        out[f"{name}[{key}{'' if seen[key] == 1 else f'#{seen[key]}'}]"] = record
    return out


def flatten(payload: Mapping) -> tuple[dict[str, object], dict[str, Mapping]]:
    """``(fields, records)``: every scalar by its path, and every address and contact by its key."""
    fields: dict[str, object] = {}
    records: dict[str, Mapping] = {}
    for key, value in payload.items():
        if key in _KEYED:
            records.update(_records(key, value))
        else:
            _flatten_value(fields, key, value)
    return fields, records


def field_changes(old: Mapping, new: Mapping) -> list[tuple[str, str | None, str | None]]:
    """``(Field, OldValue, NewValue)`` for every difference between two payloads, in payload order."""
    old_fields, old_records = flatten(old)
    new_fields, new_records = flatten(new)
    rows = [(path, _text(old_fields.get(path)), _text(new_fields.get(path)))
            for path in dict.fromkeys([*new_fields, *old_fields])
            if old_fields.get(path) != new_fields.get(path)]
    for key in dict.fromkeys([*old_records, *new_records]):
        before, after = old_records.get(key), new_records.get(key)
        if before is None or after is None:
            rows.append((key, _text(before), _text(after)))
            continue
        for path in dict.fromkeys([*after, *before]):
            if before.get(path) != after.get(path):
                rows.append((f"{key}.{path}", _text(before.get(path)), _text(after.get(path))))
    return rows


def customer_changes(code: str, reason: str, old: Mapping | None, new: Mapping | None) -> list[tuple]:
    """The change-log rows (:data:`CHANGE_COLUMNS`) of one customer the run sends or deactivates."""
    label = REASONS.get(reason, reason)
    if reason == "new" or new is None or old is None:
        name = new.get("CustomerName") if reason == "new" and new is not None else None
        return [(code, label, None, None, name)]
    rows = field_changes(old, new)
    return [(code, label, *row) for row in rows] or [(code, label, None, None, None)]


def changes_frame(rows: Iterable[tuple]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(CHANGE_COLUMNS), dtype="string")


def folded_field(field: str) -> str:
    """A Field path with its address or contact key folded (``Addresses[del].City`` → ``Addresses[*].City``)."""
    return _RECORD_KEY.sub(r"\1[*]", field)


def field_counts(changes: pd.DataFrame) -> dict[str, int]:
    """Customers per changed field, most first; an address or contact counts under its kind
    (:func:`folded_field`), so that "the delivery city of 900 customers" reads as one field."""
    fields = changes["Field"].dropna().str.replace(_RECORD_KEY, r"\1[*]", regex=True)
    counted = pd.DataFrame({"code": changes.loc[fields.index, "CustomerCode"], "field": fields}).drop_duplicates()
    return {str(k): int(v) for k, v in counted["field"].value_counts().items()}
