"""Connection slots per host: a counting semaphore per (kind, host), kept as leases in a shared database.

No FTP host and no App4Sales host gets more connections at once than its limit, however the runs were
started (a sensor's or a schedule's run, a backfill from the lineage page, ``dagster job execute``): the
slots are taken where the connection is made (``MonitorFileTransport.open``, ``App4SalesApi.session``),
not by the run queue, which a run outside the queue or without the run tags never passes.

- :meth:`HostSlots.acquire` grants up to ``wanted`` slots, at least ``minimum``, once that many are free
  (checked and taken in one serialized transaction); it waits up to ``timeout`` and then raises
  :class:`HostSlotsBusy`, naming the host, the limit's variable and who holds the slots. Nothing has
  been sent to the host then.
- A lease lasts ``lease`` seconds; a daemon thread renews it every ``lease / 4`` while it is held, and
  it is released when the ``with`` ends, also on an exception. A process killed while holding slots
  (a pod gone, ``kill -9``) stops renewing: its lease expires and the slots are free again.
- The database is the sync state's: ``MONITOR_STATE_URL`` when that is set (PostgreSQL), else the SQLite
  file ``host_slots.sqlite`` in the state folder (:func:`deployment_slots`). On SQLite the
  check-and-take runs in ``BEGIN IMMEDIATE`` (one writer at a time, the SQLAlchemy recipe for pysqlite);
  on PostgreSQL under ``pg_advisory_xact_lock`` on a key of kind and host, and a lease's time is the
  server's clock, so the machines' clocks need not agree.

Waiting is not first come, first served: whoever looks when a slot is free gets it (every wait is
bounded by its timeout).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

LEASE_SECONDS = 60.0      # a killed holder's slots are free again this long after its last renewal
POLL_SECONDS = 0.5        # between two looks while waiting
WAIT_SECONDS = 300.0      # how long a run waits for a slot by default (as MONITOR_SYNC_LOCK_TIMEOUT's default)
FILE_NAME = "host_slots.sqlite"

_log = logging.getLogger(__name__)

_metadata = sa.MetaData()
leases = sa.Table(
    "monitor_host_slot_leases", _metadata,
    sa.Column("lease_id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("host", sa.String(300), nullable=False),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("owner", sa.String(500), nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),   # seconds since the epoch, the database's clock
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index("ix_monitor_host_slot_leases_kind_host", "kind", "host"),
)


class HostSlotsError(Exception):
    """No slots were granted; nothing was sent to the host. Trying again later may help."""

    transient = True


class HostSlotsBusy(HostSlotsError, TimeoutError):
    """No slot came free within the timeout (other runs hold them)."""

    def __init__(self, message: str, *, kind: str, host: str, limit: int, holders: list[tuple[str, int]]):
        super().__init__(message)
        self.kind, self.host, self.limit, self.holders = kind, host, limit, holders


class HostSlotsUnavailable(HostSlotsError):
    """The slots' database could not be used (unreachable, locked for too long)."""


@contextmanager
def _database(what: str) -> Iterator[None]:
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise HostSlotsUnavailable(f"the database of the connection slots could not be used to {what}: "
                                   f"{type(getattr(exc, 'orig', None) or exc).__name__}: "
                                   f"{cause[0] if cause else ''}. Nothing was sent") from None


@dataclass(frozen=True)
class Grant:
    """Slots held: ``slots`` of ``limit`` on ``host``."""

    kind: str
    host: str
    slots: int
    limit: int
    lease_id: str


def lock_key(kind: str, host: str) -> int:
    """The signed 64-bit key of ``pg_advisory_xact_lock`` for ``kind`` and ``host``."""
    return int.from_bytes(hashlib.sha256(f"monitor_pipeline host slots {kind} {host}".encode()).digest()[:8],
                          "big", signed=True)


def holders_text(holders: list[tuple[str, int]]) -> str:
    """``run 1f2e… (customers_xml, pid 7 on pod-a), run 9a8b… (…) ×2``: who holds how many."""
    return ", ".join(owner + (f" ×{slots}" if slots > 1 else "") for owner, slots in holders) or "nobody (just released)"


class HostSlots:
    """The slots of every host, in the database at ``url`` (a SQLAlchemy URL: ``sqlite:////path/file`` or
    ``postgresql+psycopg2://…``). Thread-safe; one per process and URL is enough (:func:`host_slots`)."""

    def __init__(self, url: str, *, lease: float = LEASE_SECONDS, poll: float = POLL_SECONDS):
        if lease <= 0 or poll <= 0:
            raise ValueError("lease and poll must be positive")
        self.url, self.lease, self.poll = url, lease, poll
        self.engine = sa.create_engine(url, **_engine_options(url))
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            _begin_immediate(self.engine)
        self._create_tables()

    def close(self) -> None:
        self.engine.dispose()

    # -- the check-and-take ------------------------------------------------------------------------------

    @contextmanager
    def acquire(self, kind: str, host: str, wanted: int, *, limit: int, minimum: int = 1, timeout: float = WAIT_SECONDS,
                owner: str, setting: str = "the limit",
                on_wait: Callable[[str], None] | None = None) -> Iterator[int]:
        """Hold up to ``wanted`` (at least ``minimum``) of the ``limit`` slots of ``host`` for the ``with``;
        yields the number granted. ``setting`` names the limit in messages (``MONITOR_FTP_HOST_CONNECTIONS``);
        ``on_wait(message)`` is called once when the slots are not free at the first look."""
        grant = self.take(kind, host, wanted, limit=limit, minimum=minimum, timeout=timeout, owner=owner,
                          setting=setting, on_wait=on_wait)
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(grant, stop), daemon=True,
                                   name=f"host-slots-{kind}-{host}")
        renewer.start()
        try:
            yield grant.slots
        finally:
            stop.set()
            renewer.join(min(self.lease, 10.0))
            self.release(grant)

    def take(self, kind: str, host: str, wanted: int, *, limit: int, minimum: int = 1, timeout: float = WAIT_SECONDS,
             owner: str, setting: str = "the limit", on_wait: Callable[[str], None] | None = None) -> Grant:
        """Take the slots (see :meth:`acquire`) without renewing them; :meth:`release` gives them back."""
        if limit < 1:
            raise ValueError(f"{setting}: the limit must be at least 1, not {limit}")
        minimum = max(1, minimum)
        if minimum > limit:
            raise ValueError(f"{minimum} slots asked for, but {setting} allows only {limit} to {host}")
        wanted = max(minimum, min(wanted, limit))
        deadline = time.monotonic() + max(0.0, timeout)
        told = False
        while True:
            with _database(f"take a slot of {host}"):
                granted, holders = self._try_take(kind, host, wanted, minimum, limit, owner)
            if granted:
                return granted
            held = sum(slots for _, slots in holders)
            state = f"{held} of {limit} held by {holders_text(holders)}"
            left = deadline - time.monotonic()
            if left <= 0:
                raise HostSlotsBusy(
                    f"no connection slot to {host} came free within {timeout:g} s ({setting}={limit}): {state}. "
                    "Nothing was sent; try again when those runs have finished, or raise the limit if the "
                    "server takes more connections", kind=kind, host=host, limit=limit, holders=holders)
            if not told:
                told = True
                message = f"waiting for a connection slot to {host}: {state} ({setting}={limit})"
                (on_wait or _log.info)(message)
            time.sleep(min(self.poll, left))

    def release(self, grant: Grant) -> None:
        """Give the slots back (a database that is away: logged, the lease then expires by itself)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(leases).where(leases.c.lease_id == grant.lease_id))
        except sa.exc.SQLAlchemyError as exc:
            _log.warning(f"could not release the connection slots of {grant.host} ({exc.__class__.__name__}); "
                         f"they are free again when the lease expires, within {self.lease:g} s")

    def holders(self, kind: str, host: str) -> list[tuple[str, int]]:
        """(owner, slots) of the live leases on ``host``."""
        with self.engine.begin() as conn:
            now = self._now(conn)
            rows = conn.execute(sa.select(leases.c.owner, leases.c.slots).where(
                leases.c.kind == kind, leases.c.host == host, leases.c.expires_at > now)
                .order_by(leases.c.acquired_at)).all()
        return [(owner, slots) for owner, slots in rows]

    def _try_take(self, kind: str, host: str, wanted: int, minimum: int, limit: int,
                  owner: str) -> tuple[Grant | None, list[tuple[str, int]]]:
        with self.engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite: one check-and-take at a time
            if not self.sqlite:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(kind, host))))
            now = self._now(conn)
            conn.execute(sa.delete(leases).where(leases.c.kind == kind, leases.c.host == host,
                                                 leases.c.expires_at <= now))
            rows = conn.execute(sa.select(leases.c.owner, leases.c.slots).where(
                leases.c.kind == kind, leases.c.host == host).order_by(leases.c.acquired_at)).all()
            holders = [(o, s) for o, s in rows]
            free = limit - sum(s for _, s in holders)
            if free < minimum:
                return None, holders
            slots = min(wanted, free)
            lease_id = str(uuid.uuid4())
            conn.execute(sa.insert(leases).values(lease_id=lease_id, kind=kind, host=host, slots=slots,
                                                  owner=owner[:500], acquired_at=now, expires_at=now + self.lease))
        return Grant(kind, host, slots, limit, lease_id), holders

    # -- leases ------------------------------------------------------------------------------------------

    def renew(self, grant: Grant) -> bool:
        """Extend the lease by ``lease`` from now; False if it had already expired and was taken away."""
        with self.engine.begin() as conn:
            now = self._now(conn)
            done = conn.execute(sa.update(leases).where(leases.c.lease_id == grant.lease_id,
                                                        leases.c.expires_at > now)
                                .values(expires_at=now + self.lease))
            return done.rowcount == 1

    def _renew_until(self, grant: Grant, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 4):
            try:
                if not self.renew(grant):
                    _log.warning(f"the lease on {grant.slots} connection slot(s) to {grant.host} expired before it "
                                 "was renewed (the process stood still longer than the lease); the host may see "
                                 "more connections than its limit until this one ends")
                    return
            except sa.exc.SQLAlchemyError as exc:  # the database away for a moment: try again next time
                _log.warning(f"could not renew the connection slot lease on {grant.host}: {exc}")

    def _now(self, conn: sa.Connection) -> float:
        if self.sqlite:
            return time.time()
        return float(conn.execute(sa.select(sa.func.extract("epoch", sa.func.clock_timestamp()))).scalar_one())

    def _create_tables(self) -> None:
        with self.engine.begin() as conn:  # serialized: two processes starting at once create them once
            if not self.sqlite:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key("tables", ""))))
            _metadata.create_all(conn, checkfirst=True)


def _engine_options(url: str) -> dict:
    if sa.engine.make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 30.0}, "poolclass": sa.pool.NullPool}
    return {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4, "hide_parameters": True,
            "connect_args": {"connect_timeout": 10}}  # every wait bounded: a database that is away fails the open


def _begin_immediate(engine: sa.Engine) -> None:
    """SQLAlchemy's recipe for pysqlite (``dialects/sqlite/base.py``, "Using SQLAlchemy to emit BEGIN in
    lieu of SQLite's transaction control"): the driver emits no BEGIN of its own, SQLAlchemy emits
    ``BEGIN IMMEDIATE``, which takes the write lock before the check, so two processes never both see a
    slot free."""

    @event.listens_for(engine, "connect")
    def _no_driver_begin(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _immediate(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_url(folder: str | os.PathLike) -> str:
    path = Path(folder).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / FILE_NAME}"


def deployment_url() -> str:
    """Where this deployment keeps its slots: the sync state's database (``MONITOR_STATE_URL``, when this
    version has it and it is set), else ``host_slots.sqlite`` in the state folder (``MONITOR_STATE_DIR``)."""
    from monitor_pipeline.deployment import DeploymentSettings  # the deployment module imports the settings

    deployment = DeploymentSettings.from_env()
    state_url = getattr(deployment, "state_url", None)
    if not state_url:
        return sqlite_url(deployment.state_folder())
    url = sa.make_url(state_url)
    if url.drivername == "postgresql":  # SQLAlchemy 2.1's default driver is psycopg 3; the project has psycopg2
        url = url.set(drivername="postgresql+psycopg2")
    return url.render_as_string(hide_password=False)


_shared: dict[tuple[str, int], HostSlots] = {}
_shared_lock = threading.Lock()


def host_slots(url: str | None = None) -> HostSlots:
    """This process's :class:`HostSlots` of ``url`` (default :func:`deployment_url`)."""
    url = url or deployment_url()
    key = (url, os.getpid())  # a forked child opens its own engine
    with _shared_lock:
        if key not in _shared:
            with _database("create its table"):
                _shared[key] = HostSlots(url)
        return _shared[key]


def step_context():
    """The Dagster step (an op or asset of a run) the caller runs in, None outside one (a sensor's look,
    a script)."""
    try:
        import dagster as dg

        return dg.OpExecutionContext.get()
    except Exception:  # noqa: BLE001 - DagsterInvariantViolationError: no step in scope
        return None


def owner_of(context=None) -> str:
    """Who holds slots, for the messages of those who wait: the Dagster run and step of ``context``
    (a step's context) plus the process and machine."""
    where = f"pid {os.getpid()} on {_hostname()}"
    if context is None:
        return where
    return f"run {context.run_id} ({context.op.name}, {where})"


def _hostname() -> str:
    import socket

    return socket.gethostname()
