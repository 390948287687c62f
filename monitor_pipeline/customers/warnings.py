"""Collects row-level warnings (CustomerCode, Field, Message) as vectorized chunks."""

from __future__ import annotations

import pandas as pd

from .columns import WARNING_COLUMNS
from .mapping import to_object


class WarningLog:
    def __init__(self):
        self._chunks: list[pd.DataFrame] = []

    def add(self, codes, mask, field: str, messages) -> None:
        """One warning per row where ``mask`` holds; ``messages`` is a str or a Series aligned with ``codes``."""
        mask = pd.Series(mask, index=getattr(codes, "index", None)).fillna(False).astype(bool)
        if not mask.any():
            return
        codes = pd.Series(codes, index=mask.index)[mask]
        msg = messages[mask] if isinstance(messages, pd.Series) else pd.Series(messages, index=codes.index)
        self._chunks.append(pd.DataFrame({"CustomerCode": codes.to_numpy(object), "Field": field,
                                          "Message": msg.to_numpy(object)}))

    def one(self, code, field: str, message: str) -> None:
        self._chunks.append(pd.DataFrame({"CustomerCode": [code], "Field": [field], "Message": [message]}))

    def invalid(self, codes: pd.Series, raw: pd.Series, invalid: pd.Series, field: str, element: str, what: str):
        """Warnings for values that are not a valid ``what`` (the value is quoted in the message)."""
        if invalid.any():
            self.add(codes, invalid, field, f"<{element}> " + ("'" + raw.astype("str") + "'") + f" is not a valid {what}; set to null")

    def frame(self) -> pd.DataFrame:
        if not self._chunks:
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in WARNING_COLUMNS})
        out = pd.concat(self._chunks, ignore_index=True)
        return pd.DataFrame({c: to_object(out[c]) for c in WARNING_COLUMNS})
