"""What the last successful sync sent, per administration (SPEC §5 change detection), and the lock
that makes each administration's upsert one writer at a time (SPEC §5 "one writer per administration").

One SQLite file per administration, ``<state_dir>/<administration>.sqlite``:

- table ``customer_state``: ``code`` → ``hash`` (payload hash App4Sales confirmed), ``guid`` (the
  CustomerGuid App4Sales answered for it), ``dashboard_hash`` (digest of the dashboard last PUT
  successfully), ``synced_at`` (UTC ISO time of the last write). Rows are written only after App4Sales
  confirmed them, so a failed run leaves exactly the unconfirmed customers to resend.
- table ``exports``: the customers the export delivered to Monitor's ``customers/`` folder (``code``,
  ``guid``, ``file``, ``sha256``, ``exported_at``), and what later syncs saw of them: ``arrived_at`` (the code
  first appeared in customers.xml: Monitor created the customer) and ``taken_at`` (the file was first seen
  gone from ``customers/``: Monitor took it). :mod:`monitor_pipeline.export.acknowledgment` reads them.
- table ``sync_lock``: at most one row, the lease of the run that is upserting into the administration.
  :meth:`SyncState.lock` takes it (waiting up to ``timeout`` seconds, then :class:`StateLockedError`
  naming the holder), a thread renews it every ``lease / 4`` seconds, and it is given back when the
  upsert ends. A holder that died (its process killed, its machine gone) stops renewing: after
  ``lease`` seconds without renewal the lease is free for the next run. Every write of a locked
  state checks, in the same transaction, that the lease is still this run's (fencing): a run that lost
  its lease fails with :class:`StateLockLostError` instead of recording over a newer run.

The lease lives in the state database itself, not in a Dagster run tag, so every way of starting a
sync (the UI, a sensor, a backfill, ``dagster job execute``, a script calling ``run_sync``) obeys it.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from monitor_pipeline.app4sales.hash_cache import HashCache

SCHEMA_VERSION = 5  # 3: the payload hash cache (hash_cache); 4: the last confirmed payload (changes); 5: exports
DEFAULT_LEASE_SECONDS = 60.0
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class StateLockedError(Exception):
    """Another run holds the administration's lease and did not give it back within the wait."""

    def __init__(self, path: Path | str, holder: str, since: str, waited: float):
        self.holder, self.since, self.waited = holder, since, waited
        super().__init__(f"another sync holds its lock: {holder} (since {since}); "
                         f"waited {waited:g} s (MONITOR_SYNC_LOCK_TIMEOUT) — nothing was sent. State: {path}")


class StateLockLostError(Exception):
    """This run's lease was taken over (it was not renewed in time); it must not record anything more."""


@dataclass(frozen=True)
class ExportRecord:
    """One customer the export delivered, and what the syncs since saw of it (times in UTC)."""

    code: str
    guid: str
    file: str  # relative to Monitor's base folder: customers/<CustomerCode>.xml
    exported_at: datetime
    arrived_at: datetime | None = None  # first sync whose customers.xml had the code
    taken_at: datetime | None = None  # first sync that found the file gone from customers/
    sha256: str = ""


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def state_file_name(administration: str) -> str:
    """A safe file name for an administration (an odd name gets a short digest to stay unique)."""
    safe = _SAFE.sub("_", administration)
    if not safe.strip("._") or safe != administration:
        digest = hashlib.sha256(administration.encode("utf-8")).hexdigest()[:12]
        safe = f"{safe.strip('._')[:64] or 'administration'}-{digest}"
    return f"{safe}.sqlite"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_owner() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def wait_for_lease(try_acquire, where, *, timeout: float, poll: float, on_wait=None) -> None:
    """Call ``try_acquire()`` (None when the lease was taken, else ``(holder, since)``) until it succeeds;
    StateLockedError naming the holder after ``timeout`` s. ``on_wait(holder, since)`` is called once.
    The wait of both state backends (SQLite files, PostgreSQL)."""
    started = time.monotonic()
    told = False
    while True:
        holder = try_acquire()
        if holder is None:
            return
        waited = time.monotonic() - started
        if waited >= timeout:
            raise StateLockedError(where, holder[0], holder[1], round(timeout, 3))
        if not told and on_wait is not None:
            on_wait(*holder)
            told = True
        time.sleep(min(poll, max(0.0, timeout - waited)))


class SyncState:
    """Per-administration store of confirmed payload and dashboard hashes. Use as a context manager."""

    def __init__(self, path: str | Path, *, read_only: bool = False):
        """``read_only``: open an existing file for reading only (a dry run, :func:`.state_store.peek_state`):
        no table is created or migrated, and every write fails."""
        self.path = Path(path)
        self.read_only = read_only
        self._token: str | None = None
        self._renewer: threading.Thread | None = None
        self._stop_renewing = threading.Event()
        if read_only:
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                                         isolation_level=None, check_same_thread=False)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._connect()
        with self._transaction():
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS customer_state ("
                " code TEXT PRIMARY KEY, hash TEXT, dashboard_hash TEXT, synced_at TEXT, guid TEXT)")
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(customer_state)")}
            if "guid" not in columns:  # a version 1 state
                self._conn.execute("ALTER TABLE customer_state ADD COLUMN guid TEXT")
            if "payload" not in columns:  # before the change log (.changes): no payloads kept
                self._conn.execute("ALTER TABLE customer_state ADD COLUMN payload BLOB")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS sync_lock (id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL,"
                " owner TEXT NOT NULL, acquired_at TEXT NOT NULL, renewed REAL NOT NULL)")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS hash_cache (id INTEGER PRIMARY KEY CHECK (id = 1), key TEXT NOT NULL,"
                " data BLOB NOT NULL)")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS exports (code TEXT PRIMARY KEY, guid TEXT NOT NULL, file TEXT NOT NULL,"
                " sha256 TEXT, exported_at TEXT NOT NULL, arrived_at TEXT, taken_at TEXT)")
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode: every transaction is an explicit BEGIN IMMEDIATE (_transaction). The rollback
        # journal, not WAL: WAL needs every process on one host (shared memory), and the state directory may
        # be a volume several machines mount (README "Running in production"); WAL measured no faster here.
        return sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection | None = None, *, fenced: bool = False) -> Iterator[None]:
        """One write transaction; ``fenced``: only while this object holds the lease (StateLockLostError)."""
        conn = conn or self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if fenced and self._token is not None:
                row = conn.execute("SELECT token, owner FROM sync_lock WHERE id = 1").fetchone()
                if row is None or row[0] != self._token:
                    raise StateLockLostError(
                        f"this run's lock of {self.path.name} was taken over by "
                        f"{row[1] if row else 'nobody'} (not renewed in time); nothing more is recorded — re-run")
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- the lease -----------------------------------------------------------------------------
    @contextmanager
    def lock(self, owner: str | None = None, *, timeout: float = 300.0, lease: float = DEFAULT_LEASE_SECONDS,
             poll: float = 0.5, on_wait=None) -> Iterator[None]:
        """Hold the administration's lease for the block; wait at most ``timeout`` s for it.

        ``on_wait(holder, since)`` is called once when the lease is held by someone else.
        """
        owner = owner or default_owner()
        token = secrets.token_hex(16)
        wait_for_lease(lambda: self._try_acquire(token, owner, lease), self.path, timeout=timeout, poll=poll,
                       on_wait=on_wait)
        self._token = token
        self._stop_renewing.clear()
        self._renewer = threading.Thread(target=self._renew, args=(token, lease), daemon=True,
                                         name=f"sync-lock-{self.path.stem}")
        self._renewer.start()
        try:
            yield
        finally:
            self._stop_renewing.set()
            self._renewer.join()
            self._renewer = None
            self._token = None
            with self._transaction():
                self._conn.execute("DELETE FROM sync_lock WHERE id = 1 AND token = ?", (token,))

    def _try_acquire(self, token: str, owner: str, lease: float) -> tuple[str, str] | None:
        """Take the lease if it is free or expired; else ``(holder, since)``."""
        with self._transaction():
            row = self._conn.execute("SELECT owner, acquired_at, renewed FROM sync_lock WHERE id = 1").fetchone()
            if row is not None and time.time() - row[2] <= lease:
                return row[0], row[1]
            self._conn.execute("INSERT OR REPLACE INTO sync_lock (id, token, owner, acquired_at, renewed) "
                               "VALUES (1, ?, ?, ?, ?)", (token, owner, _now(), time.time()))
        return None

    def _renew(self, token: str, lease: float) -> None:
        conn = self._connect()
        try:
            while not self._stop_renewing.wait(lease / 4):
                with self._transaction(conn):
                    conn.execute("UPDATE sync_lock SET renewed = ? WHERE id = 1 AND token = ?", (time.time(), token))
        finally:
            conn.close()

    def lock_holder(self) -> str | None:
        row = self._conn.execute("SELECT owner FROM sync_lock WHERE id = 1").fetchone()
        return row[0] if row else None

    @classmethod
    def for_administration(cls, state_dir: str | Path, administration: str) -> "SyncState":
        return cls(Path(state_dir) / state_file_name(administration))

    def load(self) -> dict[str, tuple[str | None, str | None]]:
        """All rows as ``{code: (hash, dashboard_hash)}``."""
        rows = self._conn.execute("SELECT code, hash, dashboard_hash FROM customer_state")
        return {code: (h, d) for code, h, d in rows}

    def count(self) -> int:
        """How many customers the state holds (about how many the App4Sales index has)."""
        return self._conn.execute("SELECT count(*) FROM customer_state").fetchone()[0]

    def save_hashes(self, rows: Iterable[tuple]) -> int:
        """Record confirmed payload hashes ``(code, hash)``, ``(code, hash, guid)`` or ``(code, hash, guid,
        payload)`` (:func:`.changes.pack`; a row without one forgets the payload kept before); keeps each row's
        dashboard hash."""
        now = _now()
        data = [(row[0], row[1], row[2] if len(row) > 2 else None, row[3] if len(row) > 3 else None, now)
                for row in rows]
        with self._transaction(fenced=True):
            self._conn.executemany(
                "INSERT INTO customer_state (code, hash, guid, payload, synced_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET hash = excluded.hash, guid = coalesce(excluded.guid, guid), "
                "payload = excluded.payload, synced_at = excluded.synced_at", data)
        return len(data)

    def load_payloads(self, codes: Iterable[str]) -> dict[str, bytes]:
        """The last confirmed payloads (packed, :func:`.changes.pack`) of ``codes`` that have one."""
        wanted = list(codes)
        out: dict[str, bytes] = {}
        try:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i:i + 500]
                out.update(self._conn.execute(
                    f"SELECT code, payload FROM customer_state WHERE payload IS NOT NULL AND code IN "
                    f"({','.join('?' * len(chunk))})", chunk))
        except sqlite3.OperationalError:
            if not self.read_only:  # read only, a state older than the change log has no such column
                raise
        return out

    def guids(self) -> dict[str, str]:
        """``{code: CustomerGuid}`` as App4Sales answered them."""
        return dict(self._conn.execute("SELECT code, guid FROM customer_state WHERE guid IS NOT NULL"))

    def save_dashboard_hashes(self, rows: Iterable[tuple[str, str | None]]) -> int:
        """Record the digests of dashboards App4Sales accepted ``(code, dashboard_hash)``."""
        now = _now()
        data = [(code, d, now) for code, d in rows]
        with self._transaction(fenced=True):
            self._conn.executemany(
                "INSERT INTO customer_state (code, dashboard_hash, synced_at) VALUES (?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET dashboard_hash = excluded.dashboard_hash, "
                "synced_at = excluded.synced_at", data)
        return len(data)

    def load_hash_cache(self, key: str) -> HashCache | None:
        """The payload hash cache when it was stored under ``key`` (:mod:`.hash_cache`); else None."""
        try:
            row = self._conn.execute("SELECT data FROM hash_cache WHERE id = 1 AND key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            if not self.read_only:  # read only, a state older than the cache has no such table yet
                raise
            return None
        return HashCache.decode(key, row[0]) if row else None

    def save_hash_cache(self, cache: HashCache) -> None:
        """Replace the payload hash cache (one entry per administration)."""
        data = cache.encode()
        with self._transaction(fenced=True):
            self._conn.execute("INSERT OR REPLACE INTO hash_cache (id, key, data) VALUES (1, ?, ?)", (cache.key, data))

    # --- exports (the acknowledgment of the export, monitor_pipeline.export.acknowledgment) ------------
    def record_export(self, code: str, guid: str, file: str, sha256: str = "") -> None:
        """Record a delivered customer; delivering it again (a re-executed run) keeps its first export time and
        what the syncs saw of it. Needs no lease: the export is not the sync's writer."""
        with self._transaction():
            self._conn.execute(
                "INSERT INTO exports (code, guid, file, sha256, exported_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(code) DO UPDATE SET guid = excluded.guid, file = excluded.file, "
                "sha256 = excluded.sha256", (code, guid, file, sha256, _now()))

    def exports(self) -> list[ExportRecord]:
        """Every recorded export, oldest first (none in a read-only state older than the exports)."""
        try:
            rows = self._conn.execute("SELECT code, guid, file, sha256, exported_at, arrived_at, taken_at "
                                      "FROM exports ORDER BY exported_at, code").fetchall()
        except sqlite3.OperationalError:
            if not self.read_only:
                raise
            return []
        return [ExportRecord(code, guid, file, _time(exported), _time(arrived), _time(taken), sha or "")
                for code, guid, file, sha, exported, arrived, taken in rows]

    def note_exports(self, arrived: Iterable[str] = (), taken: Iterable[str] = ()) -> None:
        """Note the exported codes a sync found in customers.xml (``arrived``) and whose file it found gone
        from ``customers/`` (``taken``); a time already noted is kept."""
        now = _now()
        with self._transaction():
            self._conn.executemany("UPDATE exports SET arrived_at = ? WHERE code = ? AND arrived_at IS NULL",
                                   [(now, code) for code in arrived])
            self._conn.executemany("UPDATE exports SET taken_at = ? WHERE code = ? AND taken_at IS NULL",
                                   [(now, code) for code in taken])

    def clear(self) -> None:
        with self._transaction(fenced=True):
            self._conn.execute("DELETE FROM customer_state")
            self._conn.execute("DELETE FROM hash_cache")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "SyncState":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
