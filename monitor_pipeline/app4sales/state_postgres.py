"""The sync state (SPEC §5 change detection, "one writer per administration") in PostgreSQL, for
deployments whose pods share no disk (``MONITOR_STATE_URL``, issue #12).

Same interface and semantics as the SQLite :class:`~monitor_pipeline.app4sales.state.SyncState` (read
its docstring first); what differs is where the rows live. Two tables, created when missing, shared by
every administration and tenant of the database, each row carrying its ``scope`` (:func:`state_scope`:
the administration, ``<tenant>/<administration>`` with tenants — two tenants never share rows):

- ``monitor_sync_state (scope, code, hash, dashboard_hash, synced_at, guid, PRIMARY KEY (scope, code))``:
  ``customer_state`` of the SQLite file.
- ``monitor_sync_lock (scope PRIMARY KEY, token, owner, acquired_at, renewed)``: ``sync_lock``, one
  row per scope at most.
- ``monitor_sync_hash_cache`` and ``monitor_exports (scope, code, …)``: ``hash_cache`` and ``exports``.

The counterpart of SQLite's ``BEGIN IMMEDIATE`` is ``pg_advisory_xact_lock`` on a 64-bit key of the
scope (:func:`scope_key`): every write transaction of a scope (taking, renewing, giving back the lease,
recording hashes) takes it first, so they run one at a time and the fencing check (is the lease still
this run's?) sees the latest lease, in the same transaction as the write it guards. The lease expires by
the database server's clock (``clock_timestamp()``), never by the pods' clocks, which may disagree.

Connections: SQLAlchemy Core, one engine per URL per process (:func:`engine_for`), ``pool_pre_ping``
(a connection the server or a failover dropped is replaced, not failed on), a connect timeout, a
``statement_timeout`` and a ``lock_timeout`` and TCP keepalives, so no wait on the database is unbounded.
A batch's hashes are one ``INSERT … SELECT … FROM unnest(…) ON CONFLICT DO UPDATE`` of all its rows (one
round trip, one parameter per column, whatever the number of rows).

The URL may carry a password, or leave it to libpq's ``PGPASSWORD``: it is rendered with the password
hidden everywhere (:func:`safe_url`), and every database error is re-raised as
:class:`StateStoreError` with the password scrubbed from its text.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert as pg_insert

from monitor_pipeline.app4sales.hash_cache import HashCache
from monitor_pipeline.app4sales.state import (DEFAULT_LEASE_SECONDS, ExportRecord, StateLockLostError,
                                              default_owner, wait_for_lease)
from monitor_pipeline.errors import ConfigError, PipelineError
from monitor_pipeline.lib.redact import redact

log = logging.getLogger(__name__)

DRIVERS = ("postgresql", "postgresql+psycopg2")
CONNECT_TIMEOUT_SECONDS = 10      # libpq connect_timeout (whole seconds)
STATEMENT_TIMEOUT_SECONDS = 60    # any one statement, the wait for a scope's advisory lock included
LOCK_TIMEOUT_SECONDS = 30         # any one wait for a lock (advisory, row or table)
POOL_TIMEOUT_SECONDS = 30         # a thread's wait for a pooled connection
_SCHEMA_KEY = "monitor_pipeline sync state schema"

metadata = sa.MetaData()
state_table = sa.Table(
    "monitor_sync_state", metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("hash", sa.Text),
    sa.Column("dashboard_hash", sa.Text),
    sa.Column("synced_at", sa.DateTime(timezone=True)),
    sa.Column("guid", sa.Text),
    sa.Column("payload", sa.LargeBinary),  # the last confirmed payload, packed (.changes.pack)
)
lock_table = sa.Table(
    "monitor_sync_lock", metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("renewed", sa.DateTime(timezone=True), nullable=False),
)

hash_cache_table = sa.Table(  # the payload hash cache (.hash_cache), one entry per scope
    "monitor_sync_hash_cache", metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

exports_table = sa.Table(  # the customers the export delivered (state.ExportRecord), per scope
    "monitor_exports", metadata,
    sa.Column("scope", sa.Text, primary_key=True),
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("guid", sa.Text, nullable=False),
    sa.Column("file", sa.Text, nullable=False),
    sa.Column("sha256", sa.Text),
    sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("arrived_at", sa.DateTime(timezone=True)),
    sa.Column("taken_at", sa.DateTime(timezone=True)),
)


class StateStoreError(PipelineError):
    """The state database could not be reached or refused a statement (the password never in the text).
    Transient: the same run may well work once the database is back."""

    transient = True


# --- the URL -------------------------------------------------------------------------------------

def is_state_url(location: object) -> bool:
    """Whether a state location is a database URL (else it is the SQLite state folder)."""
    return isinstance(location, str) and "://" in location


def parse_state_url(raw: str) -> sa.URL:
    """The SQLAlchemy URL of a PostgreSQL state database, its driver made explicit (psycopg2); a
    :class:`ConfigError` naming MONITOR_STATE_URL first otherwise (never echoing the URL, which may hold a
    password)."""
    try:
        url = sa.make_url(raw.strip())
    except (sa.exc.ArgumentError, ValueError, TypeError):
        raise ConfigError("MONITOR_STATE_URL is not a database URL; expected postgresql://user@host:port/database "
                          "(unset: SQLite files in the state folder)") from None
    if url.drivername.lower() not in DRIVERS:
        raise ConfigError(f"MONITOR_STATE_URL: {url.drivername}:// is not supported; the sync state goes to PostgreSQL "
                          f"(postgresql:// or postgresql+psycopg2://), or unset it for SQLite files in the state "
                          f"folder")
    if not url.database:
        raise ConfigError("MONITOR_STATE_URL names no database; expected postgresql://user@host:port/database")
    return url.set(drivername="postgresql+psycopg2")


def safe_url(url: sa.URL | str) -> str:
    """The URL as text with its password hidden (``***``); nothing else of it is secret."""
    url = sa.make_url(url) if isinstance(url, str) else url
    return url.render_as_string(hide_password=True)


def _secrets_of(url: sa.URL) -> tuple[str, ...]:
    found = [os.environ.get("PGPASSWORD") or ""]
    if url.password:
        password = str(url.password)
        found += [password, quote(password, safe=""), quote_plus(password)]
    return tuple(s for s in found if s)


# --- engines ---------------------------------------------------------------------------------------

_engines: dict[tuple[int, str], sa.Engine] = {}
_schema_ready: set[tuple[int, str]] = set()
_engines_lock = threading.Lock()


def engine_for(url: sa.URL) -> sa.Engine:
    """This process's engine of ``url`` (created on first use; a forked child makes its own)."""
    key = (os.getpid(), url.render_as_string(hide_password=False))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            ms = 1000
            defaults = {
                "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "application_name": "monitor_pipeline sync state",
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_SECONDS * ms} "
                           f"-c lock_timeout={LOCK_TIMEOUT_SECONDS * ms} "
                           f"-c idle_in_transaction_session_timeout={STATEMENT_TIMEOUT_SECONDS * ms}",
                "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
            }
            connect_args = {k: v for k, v in defaults.items() if k not in url.query}  # the URL's own win
            engine = sa.create_engine(url, pool_pre_ping=True, pool_timeout=POOL_TIMEOUT_SECONDS,
                                      hide_parameters=True, connect_args=connect_args)
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection of this process (tests; a process about to exit)."""
    with _engines_lock:
        for (pid, _), engine in list(_engines.items()):
            if pid == os.getpid():
                engine.dispose()
        _engines.clear()
        _schema_ready.clear()


# --- scopes ----------------------------------------------------------------------------------------

def state_scope(administration: str, tenant: str | None = None) -> str:
    """The rows' scope: the administration, ``<tenant>/<administration>`` with tenants (a tenant's name
    has no ``/``, tenants.py)."""
    return administration if tenant is None else f"{tenant}/{administration}"


def scope_key(scope: str) -> int:
    """The scope's ``pg_advisory_xact_lock`` key: 64 bits of its SHA-256, signed (PostgreSQL's bigint)."""
    digest = hashlib.sha256(b"monitor_pipeline sync state\0" + scope.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _unnest(**columns: list):
    """``unnest(:a, :b, …) AS rows(a, b, …)``: the rows of a batch as a table, each column one ``text[]``
    parameter (``bytea[]`` for ``payloads``) — one statement, whatever the number of rows."""
    params = [sa.bindparam(name, value, type_=ARRAY(sa.LargeBinary if name == "payloads" else sa.Text))
              for name, value in columns.items()]
    return sa.func.unnest(*params).table_valued(*columns).render_derived(name="batch")


def _since(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


class PostgresSyncState:
    """One scope's confirmed payload and dashboard hashes, and its lease, in PostgreSQL. Use as a context
    manager. The interface of :class:`~monitor_pipeline.app4sales.state.SyncState`."""

    def __init__(self, url: str | sa.URL, scope: str):
        self.url = parse_state_url(url) if isinstance(url, str) else url
        self.scope = scope
        self.path = f"{safe_url(self.url)} (scope {scope!r})"  # for messages, like SyncState.path
        self._secrets = _secrets_of(self.url)
        self._key = scope_key(scope)
        self._engine = engine_for(self.url)
        self._token: str | None = None
        self._renewer: threading.Thread | None = None
        self._stop_renewing = threading.Event()
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"PostgresSyncState({self.path})"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Database errors as :class:`StateStoreError`, naming the variable, the password scrubbed."""
        try:
            yield
        except sa.exc.SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            reason = " ".join(str(orig if orig is not None else exc).split())
            message = f"sync state database MONITOR_STATE_URL {self.path} failed: {reason}"
            raise StateStoreError(redact(message, *self._secrets)) from None

    def _ensure_schema(self) -> None:
        key = (os.getpid(), self.url.render_as_string(hide_password=False))
        if key in _schema_ready:
            return
        with self._errors(), self._engine.begin() as conn:
            # two processes creating the tables at once would collide in the catalog: one at a time
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(scope_key(_SCHEMA_KEY))))
            metadata.create_all(conn, checkfirst=True)
            # a table made before the change log (.changes) lacks the payload column
            conn.execute(sa.text("ALTER TABLE monitor_sync_state ADD COLUMN IF NOT EXISTS payload bytea"))
        _schema_ready.add(key)

    @contextmanager
    def _transaction(self, *, fenced: bool = False) -> Iterator[sa.Connection]:
        """One write transaction of the scope, after its advisory lock; ``fenced``: only while this object
        holds the lease (StateLockLostError)."""
        with self._errors(), self._engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(self._key)))
            if fenced and self._token is not None:
                # a statement of its own, after the lock: its snapshot sees a takeover committed meanwhile
                row = conn.execute(sa.select(lock_table.c.token, lock_table.c.owner)
                                   .where(lock_table.c.scope == self.scope)).first()
                if row is None or row.token != self._token:
                    raise StateLockLostError(
                        f"this run's lock of {self.scope} ({safe_url(self.url)}) was taken over by "
                        f"{row.owner if row else 'nobody'} (not renewed in time); nothing more is recorded — re-run")
            yield conn

    # --- the lease -----------------------------------------------------------------------------
    @contextmanager
    def lock(self, owner: str | None = None, *, timeout: float = 300.0, lease: float = DEFAULT_LEASE_SECONDS,
             poll: float = 0.5, on_wait=None) -> Iterator[None]:
        """Hold the scope's lease for the block; wait at most ``timeout`` s for it.

        ``on_wait(holder, since)`` is called once when the lease is held by someone else.
        """
        owner = owner or default_owner()
        token = secrets.token_hex(16)
        wait_for_lease(lambda: self._try_acquire(token, owner, lease), self.path, timeout=timeout, poll=poll,
                       on_wait=on_wait)
        self._token = token
        self._stop_renewing.clear()
        self._renewer = threading.Thread(target=self._renew, args=(token, lease), daemon=True,
                                         name=f"sync-lock-{self.scope}")
        self._renewer.start()
        try:
            yield
        finally:
            self._stop_renewing.set()
            self._renewer.join()
            self._renewer = None
            self._token = None
            try:
                with self._transaction() as conn:
                    conn.execute(sa.delete(lock_table).where(lock_table.c.scope == self.scope,
                                                             lock_table.c.token == token))
            except StateStoreError as exc:  # never hide the block's own error; the lease expires anyway
                log.warning("could not give back the sync lock of %s (it expires after %g s): %s",
                            self.scope, lease, exc)

    def _try_acquire(self, token: str, owner: str, lease: float) -> tuple[str, str] | None:
        """Take the lease if it is free or expired (by the server's clock); else ``(holder, since)``."""
        age = sa.extract("epoch", sa.func.clock_timestamp() - lock_table.c.renewed)
        with self._transaction() as conn:
            row = conn.execute(sa.select(lock_table.c.owner, lock_table.c.acquired_at, age.label("age"))
                               .where(lock_table.c.scope == self.scope)).first()
            if row is not None and float(row.age) <= lease:
                return row.owner, _since(row.acquired_at)
            now = sa.func.clock_timestamp()
            stmt = pg_insert(lock_table).values(scope=self.scope, token=token, owner=owner, acquired_at=now,
                                                renewed=now)
            conn.execute(stmt.on_conflict_do_update(index_elements=[lock_table.c.scope], set_={
                "token": stmt.excluded.token, "owner": stmt.excluded.owner,
                "acquired_at": stmt.excluded.acquired_at, "renewed": stmt.excluded.renewed}))
        return None

    def _renew(self, token: str, lease: float) -> None:
        while not self._stop_renewing.wait(lease / 4):
            try:
                with self._transaction() as conn:
                    conn.execute(sa.update(lock_table)
                                 .where(lock_table.c.scope == self.scope, lock_table.c.token == token)
                                 .values(renewed=sa.func.clock_timestamp()))
            except StateStoreError as exc:  # the next renewal tries again; fencing refuses writes of a lost lease
                log.warning("could not renew the sync lock of %s: %s", self.scope, exc)

    def lock_holder(self) -> str | None:
        with self._errors(), self._engine.connect() as conn:
            return conn.execute(sa.select(lock_table.c.owner).where(lock_table.c.scope == self.scope)).scalar()

    @classmethod
    def for_administration(cls, url: str | sa.URL, administration: str, tenant: str | None = None
                           ) -> "PostgresSyncState":
        return cls(url, state_scope(administration, tenant))

    # --- the rows --------------------------------------------------------------------------------
    def load(self) -> dict[str, tuple[str | None, str | None]]:
        """All rows as ``{code: (hash, dashboard_hash)}``."""
        query = sa.select(state_table.c.code, state_table.c.hash, state_table.c.dashboard_hash) \
            .where(state_table.c.scope == self.scope)
        with self._errors(), self._engine.connect() as conn:
            return {code: (h, d) for code, h, d in conn.execute(query)}

    def count(self) -> int:
        """How many customers the state holds (about how many the App4Sales index has)."""
        query = sa.select(sa.func.count()).select_from(state_table).where(state_table.c.scope == self.scope)
        with self._errors(), self._engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def save_hashes(self, rows: Iterable[tuple]) -> int:
        """Record confirmed payload hashes ``(code, hash)``, ``(code, hash, guid)`` or ``(code, hash, guid,
        payload)`` (packed; a row without one forgets the payload kept before); keeps each row's dashboard
        hash (and its guid when none is given)."""
        latest: dict[str, list] = {}
        count = 0
        for row in rows:  # one statement may touch a row once: a code given twice keeps its last hash
            count += 1
            guid = row[2] if len(row) > 2 else None
            kept = latest.pop(row[0], None)
            latest[row[0]] = [row[1], guid if guid is not None or kept is None else kept[1],
                              row[3] if len(row) > 3 else None]
        rows_ = _unnest(codes=list(latest), hashes=[v[0] for v in latest.values()],
                        guids=[v[1] for v in latest.values()], payloads=[v[2] for v in latest.values()])
        stmt = pg_insert(state_table).from_select(
            ["scope", "code", "hash", "guid", "payload", "synced_at"],
            sa.select(sa.literal(self.scope, sa.Text), rows_.c.codes, rows_.c.hashes, rows_.c.guids,
                      rows_.c.payloads, sa.func.now()))
        stmt = stmt.on_conflict_do_update(index_elements=[state_table.c.scope, state_table.c.code], set_={
            "hash": stmt.excluded.hash, "guid": sa.func.coalesce(stmt.excluded.guid, state_table.c.guid),
            "payload": stmt.excluded.payload, "synced_at": stmt.excluded.synced_at})
        with self._transaction(fenced=True) as conn:
            if latest:
                conn.execute(stmt)  # every row in one statement, one round trip
        return count

    def load_payloads(self, codes: Iterable[str]) -> dict[str, bytes]:
        """The last confirmed payloads (packed, :func:`.changes.pack`) of ``codes`` that have one."""
        wanted = list(codes)
        out: dict[str, bytes] = {}
        with self._errors(), self._engine.connect() as conn:
            for i in range(0, len(wanted), 5000):
                query = sa.select(state_table.c.code, state_table.c.payload).where(
                    state_table.c.scope == self.scope, state_table.c.payload.is_not(None),
                    state_table.c.code == sa.func.any(sa.bindparam("codes", wanted[i:i + 5000], type_=ARRAY(sa.Text))))
                out.update({code: bytes(blob) for code, blob in conn.execute(query)})
        return out

    def guids(self) -> dict[str, str]:
        """``{code: CustomerGuid}`` as App4Sales answered them."""
        query = sa.select(state_table.c.code, state_table.c.guid) \
            .where(state_table.c.scope == self.scope, state_table.c.guid.is_not(None))
        with self._errors(), self._engine.connect() as conn:
            return {code: guid for code, guid in conn.execute(query)}

    def save_dashboard_hashes(self, rows: Iterable[tuple[str, str | None]]) -> int:
        """Record the digests of dashboards App4Sales accepted ``(code, dashboard_hash)``."""
        latest: dict[str, str | None] = {}
        count = 0
        for code, digest in rows:
            count += 1
            latest.pop(code, None)
            latest[code] = digest
        rows_ = _unnest(codes=list(latest), digests=list(latest.values()))
        stmt = pg_insert(state_table).from_select(
            ["scope", "code", "dashboard_hash", "synced_at"],
            sa.select(sa.literal(self.scope, sa.Text), rows_.c.codes, rows_.c.digests, sa.func.now()))
        stmt = stmt.on_conflict_do_update(index_elements=[state_table.c.scope, state_table.c.code], set_={
            "dashboard_hash": stmt.excluded.dashboard_hash, "synced_at": stmt.excluded.synced_at})
        with self._transaction(fenced=True) as conn:
            if latest:
                conn.execute(stmt)
        return count

    def load_hash_cache(self, key: str) -> HashCache | None:
        """The payload hash cache when it was stored under ``key`` (:mod:`.hash_cache`); else None."""
        query = sa.select(hash_cache_table.c.data).where(hash_cache_table.c.scope == self.scope,
                                                         hash_cache_table.c.key == key)
        with self._errors(), self._engine.connect() as conn:
            data = conn.execute(query).scalar()
        return HashCache.decode(key, bytes(data)) if data is not None else None

    def save_hash_cache(self, cache: HashCache) -> None:
        """Replace the payload hash cache (one entry per scope)."""
        stmt = pg_insert(hash_cache_table).values(scope=self.scope, key=cache.key, data=cache.encode())
        stmt = stmt.on_conflict_do_update(index_elements=[hash_cache_table.c.scope],
                                          set_={"key": stmt.excluded.key, "data": stmt.excluded.data})
        with self._transaction(fenced=True) as conn:
            conn.execute(stmt)

    # --- exports (SyncState.record_export and the rest) --------------------------------------------
    def record_export(self, code: str, guid: str, file: str, sha256: str = "") -> None:
        """Record a delivered customer; delivering it again keeps its first export time and what was seen."""
        stmt = pg_insert(exports_table).values(scope=self.scope, code=code, guid=guid, file=file, sha256=sha256,
                                               exported_at=sa.func.now())
        stmt = stmt.on_conflict_do_update(index_elements=[exports_table.c.scope, exports_table.c.code], set_={
            "guid": stmt.excluded.guid, "file": stmt.excluded.file, "sha256": stmt.excluded.sha256})
        with self._transaction() as conn:
            conn.execute(stmt)

    def exports(self) -> list[ExportRecord]:
        """Every recorded export of the scope, oldest first."""
        t = exports_table.c
        query = sa.select(t.code, t.guid, t.file, t.sha256, t.exported_at, t.arrived_at, t.taken_at) \
            .where(t.scope == self.scope).order_by(t.exported_at, t.code)
        with self._errors(), self._engine.connect() as conn:
            return [ExportRecord(r.code, r.guid, r.file, r.exported_at, r.arrived_at, r.taken_at, r.sha256 or "")
                    for r in conn.execute(query)]

    def note_exports(self, arrived: Iterable[str] = (), taken: Iterable[str] = ()) -> None:
        """Note the exported codes found in customers.xml and those whose file is gone; times noted are kept."""
        t = exports_table.c
        with self._transaction() as conn:
            for column, codes in (("arrived_at", list(arrived)), ("taken_at", list(taken))):
                if codes:
                    conn.execute(sa.update(exports_table).where(
                        t.scope == self.scope, t[column].is_(None),
                        t.code == sa.func.any(sa.bindparam("codes", codes, type_=ARRAY(sa.Text))))
                        .values({column: sa.func.now()}))

    def clear(self) -> None:
        with self._transaction(fenced=True) as conn:
            conn.execute(sa.delete(state_table).where(state_table.c.scope == self.scope))
            conn.execute(sa.delete(hash_cache_table).where(hash_cache_table.c.scope == self.scope))

    def close(self) -> None:
        """Nothing to close of its own: the connections are the process's pool's (:func:`dispose_engines`)."""
        self._stop_renewing.set()

    def __enter__(self) -> "PostgresSyncState":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
