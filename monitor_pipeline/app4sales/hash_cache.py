"""The payload hash cache: an unchanged customers.xml is not hashed again (issue #11, the unchanged re-sync).

Planning a sync hashes every customer's payload (:meth:`~.payload.CustomerTable.hashes`): at 20,000
customers that is about a third of a second of CPU, more than reading the App4Sales index over a WAN. Most
runs see the very frames of the run before (a scheduled sync of an unchanged customers.xml), so the hashes
of the last plan are kept in the sync state and used again when nothing they depend on has changed:

- **The frames.** ``customer_frames`` tags every frame it stores with its *input key*
  (:data:`FRAMES_KEY_ATTR` in ``DataFrame.attrs``, written into the Parquet file with it): the SHA-256 of
  customers.xml, the extra data, the normalize settings and the normalizer's source
  (:mod:`monitor_pipeline.defs.customer_sync.frames_reuse`). Equal keys mean equal frames. Frames without the
  tag, or whose four tags differ, are hashed as always.
- **The code that hashes**: the key includes the source of :mod:`.payload` and of this module, so a release
  that changes a payload never reuses hashes of the old one.
- **What the index and the price lists decide** (the resolved CustomerGuid, the deduplicated UsesPriceField):
  the cache holds both columns as they were hashed, and is used only when this run resolves them to exactly
  the same values. A customer re-created in App4Sales with another GUID, or a changed price list, therefore
  makes the run hash everything again.
- As a last guard the frames' row counts and the CustomerCode column must equal the cached ones.

The cache is a computation, not a record of what App4Sales confirmed: the sync still compares each hash with
the state's *confirmed* hash of that customer, and sends whatever differs. One entry per administration (and
tenant), in the state's database (:meth:`~.state.SyncState.save_hash_cache`), written after a run that had to
hash; a damaged entry is ignored.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from monitor_pipeline.app4sales import payload as _payload_module

#: The ``DataFrame.attrs`` entry ``customer_frames`` tags its frames with (the frames' input key).
FRAMES_KEY_ATTR = "monitor_pipeline.input_key"
_FORMAT = 1


def _code_version() -> str:
    digest = hashlib.sha256(b"payload hash cache %d\0" % _FORMAT)
    for source in (Path(_payload_module.__file__), Path(__file__)):
        digest.update(source.read_bytes())
    return digest.hexdigest()


CODE_VERSION = _code_version()


def tag_frames(frames, key: str) -> None:
    """Tag each frame of ``frames`` (DataFrames, in place) with the input key they were made from."""
    for frame in frames:
        if frame is not None:
            frame.attrs[FRAMES_KEY_ATTR] = key


def frames_key(customers: pd.DataFrame, addresses: pd.DataFrame | None, contacts: pd.DataFrame | None,
               dashboards: pd.DataFrame | None) -> str | None:
    """The cache key of these four frames, or None when they are not all tagged with the same input key."""
    frames = (customers, addresses, contacts, dashboards)
    keys = {frame.attrs.get(FRAMES_KEY_ATTR) if isinstance(frame, pd.DataFrame) else None for frame in frames}
    if len(keys) != 1 or None in keys or not isinstance(next(iter(keys)), str):
        return None
    rows = ",".join(str(len(frame)) for frame in frames)
    return hashlib.sha256(f"{CODE_VERSION}\0{next(iter(keys))}\0{rows}".encode()).hexdigest()


@dataclass
class HashCache:
    """The hashes of one plan, every customer in table order, and what they were hashed with."""
    key: str
    codes: list[str]
    guids: list[str]               # the resolved CustomerGuid column
    prices: list[str | None]       # the UsesPriceField column after price deduplication
    digests: list[str | None]      # the dashboards' digests
    hashes: list[str]

    def encode(self) -> bytes:
        body = json.dumps([_FORMAT, self.codes, self.guids, self.prices, self.digests, self.hashes],
                          separators=(",", ":"))
        return zlib.compress(body.encode("utf-8"), 1)

    @classmethod
    def decode(cls, key: str, data: bytes) -> "HashCache | None":
        """The entry stored as ``data``; None if it is damaged or of another format (then the run hashes)."""
        try:
            fmt, codes, guids, prices, digests, hashes = json.loads(zlib.decompress(data))
        except (ValueError, TypeError, zlib.error):
            return None
        columns = (codes, guids, prices, digests, hashes)
        if fmt != _FORMAT or not all(isinstance(c, list) and len(c) == len(codes) for c in columns):
            return None
        return cls(key, codes, guids, prices, digests, hashes)
