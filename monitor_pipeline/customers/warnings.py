"""Collects row-level warnings (CustomerCode, Field, Message) as vectorized chunks.

A value quoted in a warning is cut to ``QUOTED_CHARS`` (100) characters plus ``…`` (``quoted``): a
50 MB ``<discount>`` must not become a 50 MB warning, and the whole message still fits a metadata cell.
``cut`` does the same for one string at ``VALUE_CHARS`` (200): names in error messages, metadata cells.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .columns import WARNING_COLUMNS
from .mapping import to_object

VALUE_CHARS = 200
"""At most this many characters of a value are shown (then ``…``) in errors, metadata and log lines."""
QUOTED_CHARS = 100
"""At most this many characters of a bad value are quoted (then ``…``) in a warning's message."""
ELLIPSIS = "…"


def cut(value, limit: int = VALUE_CHARS) -> str:
    """``str(value)``, cut to ``limit`` characters plus ``…`` when longer."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def cut_series(values: pd.Series, limit: int = VALUE_CHARS) -> pd.Series:
    """``cut`` of every (string) value, vectorized; missing values stay missing."""
    text = values.astype("str")
    long = text.str.len() > limit
    if not long.any():
        return text
    return text.where(~long, text.str.slice(0, limit) + ELLIPSIS)


def quoted(raw: pd.Series, limit: int = QUOTED_CHARS) -> pd.Series:
    """``'value'`` per row, the value cut as ``cut`` does (for messages that quote the bad value)."""
    return "'" + cut_series(raw, limit) + "'"


class WarningLog:
    def __init__(self):
        self._chunks: list[pd.DataFrame] = []
        self._stages: list[int] = []
        self.stage = 0          # tag of the chunks added from now on (see ``staged``)

    def _append(self, chunk: pd.DataFrame) -> None:
        self._chunks.append(chunk)
        self._stages.append(self.stage)

    def add(self, codes, mask, field: str, messages) -> None:
        """One warning per row where ``mask`` holds; ``messages`` is a str or a Series aligned with ``codes``."""
        mask = pd.Series(mask, index=getattr(codes, "index", None)).fillna(False).astype(bool)
        if not mask.any():
            return
        codes = pd.Series(codes, index=mask.index)[mask]
        msg = messages[mask] if isinstance(messages, pd.Series) else pd.Series(messages, index=codes.index)
        self._append(pd.DataFrame({"CustomerCode": codes.to_numpy(object), "Field": field,
                                   "Message": msg.to_numpy(object)}))

    def one(self, code, field: str, message: str) -> None:
        self._append(pd.DataFrame({"CustomerCode": [code], "Field": [field], "Message": [message]}))

    def add_frame(self, frame: pd.DataFrame) -> None:
        """Warnings already made (columns CustomerCode, Field, Message; others are ignored)."""
        if len(frame):
            self._append(frame[WARNING_COLUMNS])

    def invalid(self, codes: pd.Series, raw: pd.Series, invalid: pd.Series, field: str, element: str, what: str):
        """Warnings for values that are not a valid ``what`` (the value is quoted in the message)."""
        if invalid.any():
            self.add(codes, invalid, field, f"<{element}> " + quoted(raw) + f" is not a valid {what}; set to null")

    def staged(self) -> pd.DataFrame:
        """CustomerCode, Field, Message (objects, ``None`` for missing) and ``stage`` (int64) of every
        warning, in the order they were made."""
        if not self._chunks:
            return pd.DataFrame({"CustomerCode": pd.Series([], dtype=object), "Field": pd.Series([], dtype=object),
                                 "Message": pd.Series([], dtype=object), "stage": pd.Series([], dtype="int64")})
        out = pd.concat(self._chunks, ignore_index=True)
        stage = np.repeat(np.asarray(self._stages, dtype="int64"), [len(c) for c in self._chunks])
        return pd.DataFrame({**{c: to_object(out[c]) for c in WARNING_COLUMNS}, "stage": stage})

    def frame(self) -> pd.DataFrame:
        if not self._chunks:
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in WARNING_COLUMNS})
        out = pd.concat(self._chunks, ignore_index=True)
        return pd.DataFrame({c: to_object(out[c]) for c in WARNING_COLUMNS})
