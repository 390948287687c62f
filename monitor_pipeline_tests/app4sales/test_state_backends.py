"""The sync state's interface and semantics on both backends (SPEC §5; issue #12): the SQLite files of the
state folder and PostgreSQL (``MONITOR_STATE_URL``), opened the way ``run_sync`` opens them
(``open_state``). Every test here runs on both; the PostgreSQL server is the real one of
``fixtures/postgres.py``, a database of its own per test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from monitor_pipeline.app4sales.state import StateLockedError, StateLockLostError, SyncState
from monitor_pipeline.app4sales.state_postgres import dispose_engines
from monitor_pipeline.app4sales.state_store import open_state
from monitor_pipeline.app4sales.sync import SyncInterruptedError, SyncSettings, run_sync

from .fakes import FakeClient, make_frames

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path) -> str:
    """Where the state lives: the state folder, or a PostgreSQL URL (password included)."""
    if request.param == "sqlite":
        yield str(tmp_path / "state")
        return
    yield request.getfixturevalue("postgres_db_url")
    dispose_engines()  # before the database is dropped


def _sync_kwargs(location: str) -> dict:
    return {"state_url": location} if "://" in location else {"state_dir": location}


def test_round_trip_keeps_dashboards_and_guids(location):
    with open_state(location, "demo") as st:
        assert st.save_hashes([("C1", "h1", "g-1"), ("C2", "h2")]) == 2
        assert st.save_dashboard_hashes([("C1", "d1"), ("C3", "d3")]) == 2  # C3: a dashboard before any hash
        st.save_hashes([("C1", "h1b")])  # keeps the dashboard hash and the guid
        st.save_hashes([("C2", "h2b", "g-2")])
    with open_state(location, "demo") as st:
        assert st.load() == {"C1": ("h1b", "d1"), "C2": ("h2b", None), "C3": (None, "d3")}
        assert st.guids() == {"C1": "g-1", "C2": "g-2"}
        assert st.count() == 3
        st.clear()
        assert (st.load(), st.count()) == ({}, 0)
    with open_state(location, "other") as st:
        assert st.load() == {} and st.guids() == {}


def test_a_code_given_twice_in_one_batch_keeps_its_last_hash(location):
    with open_state(location, "demo") as st:
        assert st.save_hashes([("C1", "h1", "g-1"), ("C1", "h2")]) == 2
        st.save_dashboard_hashes([("C1", "d1"), ("C1", "d2")])
        assert st.load() == {"C1": ("h2", "d2")} and st.guids() == {"C1": "g-1"}


def test_bulk_save_and_load(location):
    rows = [(f"C{i}", f"h{i}") for i in range(100_000)]
    with open_state(location, "demo") as st:
        assert st.save_hashes(rows) == 100_000
        started = time.monotonic()
        loaded = st.load()
        took = time.monotonic() - started
    assert len(loaded) == 100_000 and loaded["C99999"] == ("h99999", None)
    assert took < 10, f"load() of 100k rows took {took:.1f} s"


def test_two_tenants_with_the_same_administration_never_see_each_others_rows(location):
    with open_state(location, "demo", "north") as north, open_state(location, "demo", "south") as south, \
            open_state(location, "demo") as single:
        north.save_hashes([("N1", "hn")])
        south.save_hashes([("S1", "hs")])
        single.save_hashes([("X1", "hx")])
        assert north.load() == {"N1": ("hn", None)}
        assert south.load() == {"S1": ("hs", None)}
        assert single.load() == {"X1": ("hx", None)}
        with north.lock("north's run", timeout=0.2):  # one writer per tenant's administration, not across them
            with south.lock("south's run", timeout=0.2):
                assert (north.lock_holder(), south.lock_holder(), single.lock_holder()) == (
                    "north's run", "south's run", None)
            south.clear()
        assert north.count() == 1 and south.count() == 0


# --- the lease ---------------------------------------------------------------------------------

_HOLDER = textwrap.dedent("""
    import os, sys
    from monitor_pipeline.app4sales.state_store import open_state
    with open_state(os.environ["STATE_LOCATION"], "demo") as st, \\
            st.lock("the other process", lease=float(sys.argv[1]), timeout=10):
        st.save_hashes([("P1", "hp")])
        print("locked", flush=True)
        sys.stdin.readline()  # holds (and renews) the lease until told to go, or killed
""")


def _holder_process(location: str, lease: float) -> subprocess.Popen:
    env = {**os.environ, "STATE_LOCATION": location, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(lease)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    if line.strip() != "locked":
        process.kill()
        raise AssertionError(f"the holder process did not take the lock: {line!r} {process.stderr.read()}")
    return process


def test_another_process_holds_the_lease_renews_it_and_its_death_frees_it(location):
    lease = 1.0
    holder = _holder_process(location, lease)
    try:
        with open_state(location, "demo") as st:
            with pytest.raises(StateLockedError) as locked:
                with st.lock("this run", timeout=0.3, lease=lease, poll=0.05):
                    pass
            assert locked.value.holder == "the other process" and "the other process" in str(locked.value)
            time.sleep(lease * 1.5)  # longer than the lease: the holder renews it, so it is still held
            with pytest.raises(StateLockedError):
                with st.lock("this run", timeout=0.3, lease=lease, poll=0.05):
                    pass
            assert st.lock_holder() == "the other process"
            holder.kill()  # dies without giving the lease back
            holder.wait(10)
            started = time.monotonic()
            with st.lock("this run", timeout=10, lease=lease, poll=0.05):
                waited = time.monotonic() - started
                assert st.lock_holder() == "this run"
                st.save_hashes([("C1", "h1")])
            assert waited < lease + 3
            assert st.load() == {"P1": ("hp", None), "C1": ("h1", None)}
            assert st.lock_holder() is None  # given back
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(10)
        holder.stdout.close()
        holder.stderr.close()
        holder.stdin.close()


def test_a_lease_given_back_by_a_living_process_is_free_at_once(location):
    holder = _holder_process(location, 30.0)
    holder.communicate("go\n", timeout=20)
    assert holder.returncode == 0
    with open_state(location, "demo") as st:
        assert st.lock_holder() is None
        with st.lock("next", timeout=0.5):
            assert st.lock_holder() == "next"


def test_a_run_whose_lease_was_taken_over_records_nothing_more(location):
    with open_state(location, "demo") as a, open_state(location, "demo") as b:
        with a.lock("run A", lease=30):
            a.save_hashes([("C1", "h1")])
            assert b._try_acquire("token-b", "run B", lease=0) is None  # taken over, as after a missed renewal
            with pytest.raises(StateLockLostError, match="run B"):
                a.save_hashes([("C2", "h2")])
            with pytest.raises(StateLockLostError, match="run B"):
                a.save_dashboard_hashes([("C1", "d1")])
            with pytest.raises(StateLockLostError):
                a.clear()
        assert b.load() == {"C1": ("h1", None)}
        assert b.lock_holder() == "run B"  # A giving its lease back did not remove B's


def test_a_sync_whose_lease_is_taken_over_mid_run_stops_and_keeps_only_what_it_recorded_before(location):
    frames = make_frames(500, with_dashboards=False)
    thief = open_state(location, "demo")

    class TakenOver(FakeClient):
        def upsert_customers(self, customers):
            out = super().upsert_customers(customers)
            if self.upsert_calls == 2:  # while batch 2 is on the wire another run takes the lease
                assert thief._try_acquire("thief", "the run that took over", lease=0) is None
            return out

    client = TakenOver()
    with thief, pytest.raises(SyncInterruptedError, match="the run that took over"):
        run_sync(client, *frames, settings=SyncSettings(upsert_concurrency=1), owner="slow run",
                 **_sync_kwargs(location))
    assert client.upsert_calls <= 3  # of 5: at most the batch already sent in batch 2's place, none after
    with open_state(location, "demo") as st:
        assert sorted(st.load()) == sorted(frames[0]["CustomerCode"])[:100]  # batch 1 only


def test_a_sync_waits_for_the_holder_then_plans_after_it(location):
    """Two identical runs overlapping on one backend: the second waits, then finds nothing to send."""
    frames = make_frames(150, with_dashboards=False)
    gate, release = threading.Event(), threading.Event()

    class SlowClient(FakeClient):
        def upsert_customers(self, customers):
            out = super().upsert_customers(customers)
            gate.set()
            release.wait(10)
            return out

    client = SlowClient()
    results = {}
    kwargs = _sync_kwargs(location)
    first = threading.Thread(target=lambda: results.setdefault(
        "first", run_sync(client, *frames, settings=SyncSettings(), owner="first", **kwargs)))
    first.start()
    assert gate.wait(10)
    second = threading.Thread(target=lambda: results.setdefault(
        "second", run_sync(client, *frames, settings=SyncSettings(), owner="second", **kwargs)))
    second.start()
    time.sleep(0.5)
    with open_state(location, "demo") as st:
        assert st.lock_holder() == "first"
    release.set()
    first.join(20)
    second.join(20)
    assert results["first"].created == 150
    assert (results["second"].created, results["second"].unchanged) == (0, 150)
    assert client.upsert_calls == 2


def test_without_a_url_the_sqlite_files_are_where_they_always_were(tmp_path):
    """Unset MONITOR_STATE_URL: ``<state_dir>/<administration>.sqlite``, a tenant's in ``<state_dir>/<tenant>/``
    — the files earlier versions wrote are the ones read, nothing migrates."""
    with SyncState.for_administration(tmp_path, "demo") as old, \
            SyncState.for_administration(tmp_path / "north", "demo") as old_north:
        old.save_hashes([("C1", "h1", "g-1")])
        old_north.save_hashes([("N1", "hn")])
    with open_state(tmp_path, "demo") as st, open_state(str(tmp_path), "demo", "north") as north:
        assert isinstance(st, SyncState) and st.path == tmp_path / "demo.sqlite"
        assert st.load() == {"C1": ("h1", None)} and st.guids() == {"C1": "g-1"}
        assert north.path == tmp_path / "north" / "demo.sqlite" and north.load() == {"N1": ("hn", None)}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.sqlite")) == [
        "demo.sqlite", "north/demo.sqlite"]


def test_the_payload_hash_cache_is_kept_per_administration_and_cleared_with_the_state(location):
    from monitor_pipeline.app4sales.hash_cache import HashCache

    entry = HashCache("key-1", ["C1", "C2"], ["g1", "g2"], ["1", None], [None, "d2"], ["h1", "h2"])
    with open_state(location, "demo") as st:
        assert st.load_hash_cache("key-1") is None
        with st.lock("test"):
            st.save_hash_cache(entry)
            st.save_hash_cache(HashCache("key-2", ["C1"], ["g1"], ["1"], [None], ["h1b"]))  # replaces it
            st.save_hash_cache(entry)
    with open_state(location, "demo") as st:
        assert st.load_hash_cache("key-1") == entry
        assert st.load_hash_cache("key-2") is None  # one entry: the last saved
    with open_state(location, "other") as st:
        assert st.load_hash_cache("key-1") is None
    with open_state(location, "demo") as st:
        st.clear()
        assert st.load_hash_cache("key-1") is None


def test_the_last_confirmed_payload_is_kept_per_customer_and_replaced_with_its_hash(location):
    from monitor_pipeline.app4sales.changes import pack, unpack

    first, second = {"CustomerCode": "C1", "CustomerName": "Ett AB"}, {"CustomerCode": "C1", "CustomerName": "Två"}
    with open_state(location, "demo") as st:
        st.save_hashes([("C1", "h1", "g-1", pack(first)), ("C2", "h2", None, pack({"CustomerCode": "C2"})),
                        ("C3", "h3")])
        assert {code: unpack(blob) for code, blob in st.load_payloads(["C1", "C3", "C9"]).items()} == {"C1": first}
        st.save_hashes([("C1", "h1b", None, pack(second)), ("C2", "h2b")])  # C2: a hash without payload
    with open_state(location, "demo") as st:
        assert {code: unpack(blob) for code, blob in st.load_payloads(["C1", "C2"]).items()} == {"C1": second}
        assert st.load_payloads([]) == {} and st.guids() == {"C1": "g-1"}
    with open_state(location, "other") as st:
        assert st.load_payloads(["C1"]) == {}


def test_a_state_made_before_the_change_log_gains_the_payload_column(location):
    """A state file or table of the previous version (no ``payload`` column) is upgraded when opened: its
    hashes stay, and payloads are kept from then on."""
    import sqlite3

    import sqlalchemy as sa

    from monitor_pipeline.app4sales.changes import pack
    from monitor_pipeline.app4sales.state import state_file_name

    with open_state(location, "demo") as st:
        st.save_hashes([("C1", "h1", "g-1")])
    if "://" in location:
        engine = sa.create_engine(location)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE monitor_sync_state DROP COLUMN payload"))
        engine.dispose()
        dispose_engines()
        from monitor_pipeline.app4sales import state_postgres
        state_postgres._schema_ready.clear()  # a new process: the schema is checked again
    else:
        with sqlite3.connect(Path(location) / state_file_name("demo")) as conn:
            conn.execute("ALTER TABLE customer_state DROP COLUMN payload")
    with open_state(location, "demo") as st:
        assert st.load() == {"C1": ("h1", None)} and st.load_payloads(["C1"]) == {}
        st.save_hashes([("C1", "h2", None, pack({"CustomerCode": "C1"}))])
        assert list(st.load_payloads(["C1"])) == ["C1"]


def test_exports_are_recorded_once_and_what_syncs_saw_is_kept(location):
    """The export's records (state.ExportRecord) for the acknowledgment check: a second delivery of a code keeps
    its first time, a noted arrival or taking is never noted again, tenants and a full refresh leave them."""
    with open_state(location, "demo", "acme") as st:
        st.record_export("E1", "g-1", "customers/E1.xml", "aa")
        st.record_export("E2", "g-2", "customers/E2.xml")
        first = {r.code: r for r in st.exports()}
        time.sleep(1.1)  # the times have whole seconds in SQLite
        st.record_export("E1", "g-1", "customers/E1.xml", "aa")  # a re-executed export run
        st.note_exports(arrived=["E1", "X9"], taken=["E2"])
        noted = {r.code: r for r in st.exports()}
        st.clear()  # a full refresh forgets the sync's hashes, not the exports
        time.sleep(1.1)
        st.note_exports(arrived=["E1", "E2"], taken=["E2"])
        again = {r.code: r for r in st.exports()}
    assert sorted(first) == ["E1", "E2"] and (first["E1"].guid, first["E1"].file, first["E1"].sha256) == \
        ("g-1", "customers/E1.xml", "aa")
    assert first["E1"].exported_at.tzinfo is not None and first["E1"].arrived_at is None
    assert noted["E1"].exported_at == first["E1"].exported_at
    assert noted["E1"].arrived_at is not None and noted["E1"].taken_at is None
    assert noted["E2"].taken_at is not None and noted["E2"].arrived_at is None
    assert again["E1"].arrived_at == noted["E1"].arrived_at and again["E2"].taken_at == noted["E2"].taken_at
    assert again["E2"].arrived_at > noted["E1"].arrived_at
    with open_state(location, "demo") as st:  # the administration without the tenant: another state
        assert st.exports() == []
