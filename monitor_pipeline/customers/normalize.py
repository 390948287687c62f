"""``normalize_customers``: customers.xml -> customer, address, contact, dashboard frames (SPEC §3/§4).

The orchestration, on top of the other modules: read the extra customer data, open and check the
document (:mod:`.parse`), decide whether a large file is parsed in two processes (:mod:`.split`) or
in one pass, have the raw tables mapped (:mod:`.frames`) and put the parts together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from . import split
from .extra_data import read_extra_data
from .frames import Part, map_part, release_memory
from .parse import open_document, read_raw
from .settings import NormalizeSettings
from .split import SplitParts
from .warnings import WarningLog


@dataclass
class NormalizedCustomers:
    """Frames of SPEC §3. String columns are ``object`` dtype with ``None`` for missing (never NaN);
    VatLiable/HidePrices/IsMainAddress/IsMainContactPerson are nullable ``boolean``; Discount is
    ``float64`` (NaN = missing); Dashboard holds ``bytes``."""

    customers: pd.DataFrame
    addresses: pd.DataFrame
    contacts: pd.DataFrame
    dashboards: pd.DataFrame
    rejected: pd.DataFrame
    warnings: pd.DataFrame
    source_format: dict = field(default_factory=dict)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Row-wise concat with a fresh RangeIndex; empty pieces are left out (their dtypes are the same)."""
    used = [f for f in frames if len(f)] or frames[:1]
    if len(used) == 1:
        return used[0].reset_index(drop=True)
    return pd.concat(used, ignore_index=True)


def _assemble(parts: list[Part], pos_shifts: list[int], line_shifts: list[int]) -> NormalizedCustomers:
    """One result from the parts of consecutive stretches of the file (shifts: the parsed positions
    and lines of each part -> those of the whole file)."""
    rejected = []
    for part, dp, dl in zip(parts, pos_shifts, line_shifts):
        r = part.rejected
        if len(r) and (dp or dl):
            r = r.assign(Position=r["Position"] + dp, Line=r["Line"] + dl)
        rejected.append(r)
    warnings = WarningLog()
    dups = [p.dups.assign(**{"@pos": p.dups["@pos"] + dp, "@line": p.dups["@line"] + dl}) if dp or dl else p.dups
            for p, dp, dl in zip(parts, pos_shifts, line_shifts)]
    d = _concat(dups) if len(dups) > 1 else dups[0]
    if len(d):
        warnings.add(d["customercode"], pd.Series(True, index=d.index), "CustomerCode",
                     "duplicated CustomerCode: the customer at position " + d["@pos"].astype("str")
                     + " (line " + d["@line"].astype("str") + ") is ignored, the last occurrence is kept")
    staged = [p.warnings for p in parts if len(p.warnings)]
    if staged:
        w = staged[0] if len(staged) == 1 else pd.concat(staged, ignore_index=True)
        if len(staged) > 1:
            w = w.sort_values("stage", kind="stable")
        warnings.add_frame(w)
    source_format = {k: sum(p.source_format[k] for p in parts) for k in parts[0].source_format}
    big = {}
    for name in ("customers", "addresses", "contacts", "dashboards"):
        # one frame at a time, each piece released once joined: less memory at the peak
        pieces = []
        for p in parts:
            piece = getattr(p, name)
            setattr(p, name, None)
            pieces.append(piece() if callable(piece) else piece)
        big[name] = _concat(pieces)
        del pieces, piece
        release_memory()
    return NormalizedCustomers(**big, rejected=_concat(rejected), warnings=warnings.frame(),
                               source_format=source_format)


def normalize_customers(source: str | Path | BinaryIO | bytes,
                        settings: NormalizeSettings | None = None) -> NormalizedCustomers:
    """Parse and normalize customers.xml. Raises CustomersXmlError when the file cannot be used at all
    (SPEC §4) and ExtraDataError when extraCustomerData.csv is unreadable; row-level problems are
    reported in ``rejected`` / ``warnings``.

    A large file on disk is split in two at a root-level ``<customer>`` and the halves are parsed in
    parallel (see :mod:`.split`); any problem there (bad input included) falls back to the single
    streaming pass, so errors and results are exactly those of the single pass. A split file is also
    mapped per half, each half in its own process; only duplicates across the halves and the
    concatenation are done here. With extra customer data (which may change LanguageCode, hence
    address countries) the halves' raw tables are mapped here in one go."""
    settings = settings or NormalizeSettings()
    extra = read_extra_data(settings.extra_data)
    language_map = settings.merged_language_map()
    options = None
    if extra is None:
        options = {"language_map": language_map,
                   "default_action_price_list_code": settings.default_action_price_list_code}
    with open_document(source) as doc:
        raw = None
        if doc.path is not None and doc.spelling:
            # looked up on the module at each call (tests replace it)
            raw = split.parse_split(doc.path, doc.stream, doc.prefix, doc.spelling, doc.tags, options)
            if raw is None:
                doc.rewind()
        if raw is None:
            raw = read_raw(doc)
    if isinstance(raw, SplitParts):
        part_a, part_b, n_a, lines = raw.part_a, raw.part_b, raw.n_a, raw.lines
        del raw
        return _assemble([part_a, part_b], [0, n_a], [0, lines])
    part = map_part(raw, language_map=language_map,
                    default_action_price_list_code=settings.default_action_price_list_code,
                    extra=extra, customer_item_filter=settings.customer_item_filter)
    del raw
    return _assemble([part], [0], [0])
