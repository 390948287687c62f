"""What the last successful sync sent, per administration (SPEC §5 change detection).

One SQLite file per administration, ``<state_dir>/<administration>.sqlite``, table ``customer_state``:
``code`` → ``hash`` (payload hash confirmed by App4Sales), ``dashboard_hash`` (digest of the dashboard
last PUT successfully), ``synced_at`` (UTC ISO time of the last write). Rows are written only after
App4Sales confirmed them, so a failed run leaves exactly the unconfirmed customers to resend.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

SCHEMA_VERSION = 1
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def state_file_name(administration: str) -> str:
    """A safe file name for an administration (an odd name gets a short digest to stay unique)."""
    safe = _SAFE.sub("_", administration)
    if not safe.strip("._") or safe != administration:
        digest = hashlib.sha256(administration.encode("utf-8")).hexdigest()[:12]
        safe = f"{safe.strip('._')[:64] or 'administration'}-{digest}"
    return f"{safe}.sqlite"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class SyncState:
    """Per-administration store of confirmed payload and dashboard hashes. Use as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), timeout=30)
        with self._conn:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS customer_state ("
                " code TEXT PRIMARY KEY, hash TEXT, dashboard_hash TEXT, synced_at TEXT)")
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @classmethod
    def for_administration(cls, state_dir: str | Path, administration: str) -> "SyncState":
        return cls(Path(state_dir) / state_file_name(administration))

    def load(self) -> dict[str, tuple[str | None, str | None]]:
        """All rows as ``{code: (hash, dashboard_hash)}``."""
        rows = self._conn.execute("SELECT code, hash, dashboard_hash FROM customer_state")
        return {code: (h, d) for code, h, d in rows}

    def save_hashes(self, rows: Iterable[tuple[str, str]]) -> int:
        """Record confirmed payload hashes ``(code, hash)``; keeps each row's dashboard hash."""
        now = _now()
        data = [(code, h, now) for code, h in rows]
        with self._conn:
            self._conn.executemany(
                "INSERT INTO customer_state (code, hash, synced_at) VALUES (?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET hash = excluded.hash, synced_at = excluded.synced_at", data)
        return len(data)

    def save_dashboard_hashes(self, rows: Iterable[tuple[str, str | None]]) -> int:
        """Record the digests of dashboards App4Sales accepted ``(code, dashboard_hash)``."""
        now = _now()
        data = [(code, d, now) for code, d in rows]
        with self._conn:
            self._conn.executemany(
                "INSERT INTO customer_state (code, dashboard_hash, synced_at) VALUES (?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET dashboard_hash = excluded.dashboard_hash, "
                "synced_at = excluded.synced_at", data)
        return len(data)

    def clear(self) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM customer_state")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "SyncState":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
