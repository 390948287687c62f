"""SPEC §5 trust rules at the sync level: confirmed means named in the answer, one writer per
administration, deactivation only of the absent (fast, with the in-memory client of ``fakes``)."""

import threading
import time

import pytest

from monitor_pipeline.app4sales.state import StateLockLostError, SyncState
from monitor_pipeline.app4sales.sync import (
    DeactivationRefusedError,
    SyncLockedError,
    SyncSettings,
    confirmed_results,
    run_sync,
)

from .fakes import FakeClient, make_frames


class LyingClient(FakeClient):
    """Stores every batch, then answers with ``rewrite(results)``."""

    def __init__(self, rewrite, **kw):
        super().__init__(**kw)
        self.rewrite = rewrite

    def upsert_customers(self, customers):
        return self.rewrite(super().upsert_customers(customers))


def _state(tmp_path, admin="demo"):
    with SyncState.for_administration(tmp_path, admin) as st:
        return st.load(), st.guids()


def test_confirmed_results_takes_only_sent_codes_with_a_storing_status():
    results = [
        {"CustomerCode": "A", "CustomerGuid": "g-a", "status": "created"},
        {"CustomerCode": "B", "status": "updated"},
        {"CustomerCode": "C", "status": "failed"},
        {"CustomerCode": "Z", "status": "created"},          # not sent
        "D",                                                   # not an object
        {"CustomerCode": "E", "status": "reactivated", "CustomerGuid": 7},
        {"CustomerCode": "F", "status": "reactivated"},
    ]
    confirmed, problems = confirmed_results(results, {"A", "B", "C", "D", "E", "F", "G"})
    assert sorted(confirmed) == ["A", "B", "F"]
    assert confirmed["A"]["CustomerGuid"] == "g-a"
    assert len(problems) == 4
    assert any(p.startswith("Z:") for p in problems) and any(p.startswith("C:") for p in problems)


@pytest.mark.parametrize("rewrite,confirmed", [
    (lambda r: [], 0),
    (lambda r: r[: len(r) // 2], 50),
    (lambda r: [{**x, "CustomerCode": "other-" + x["CustomerCode"]} for x in r], 0),
    (lambda r: [{**x, "status": "queued"} for x in r], 0),
], ids=["none", "half", "foreign", "other-status"])
def test_only_what_the_answer_confirms_is_recorded_and_the_rest_is_sent_again(tmp_path, rewrite, confirmed):
    frames = make_frames(100, with_dashboards=False)
    liar = LyingClient(rewrite)
    first = run_sync(liar, *frames, state_dir=tmp_path, settings=SyncSettings())
    assert first.created == confirmed
    assert len(first.unconfirmed) == 100 - confirmed
    hashes, _ = _state(tmp_path)
    assert len(hashes) == confirmed
    assert sorted(hashes) == sorted(frames[0]["CustomerCode"])[:confirmed]

    honest = FakeClient(existing=[{"CustomerCode": c, "CustomerGuid": g}
                                  for c, g in ((c, r["CustomerGuid"]) for c, r in liar.store.items())])
    again = run_sync(honest, *frames, state_dir=tmp_path, settings=SyncSettings())
    assert sorted(honest.upserted_codes()) == sorted(frames[0]["CustomerCode"])[confirmed:]
    assert (again.updated, again.unconfirmed, again.unchanged) == (100 - confirmed, [], confirmed)


def test_a_changed_customer_whose_update_was_not_confirmed_is_sent_again(tmp_path):
    frames = make_frames(10, with_dashboards=False)
    client = FakeClient()
    run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings())
    frames[0].loc[3, "CustomerName"] = "Renamed AB"
    lie = LyingClient(lambda r: [], existing=list(client.store.values()))
    assert len(run_sync(lie, *frames, state_dir=tmp_path, settings=SyncSettings()).unconfirmed) == 1
    client.batches.clear()
    third = run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings())
    assert client.upserted_codes() == ["C000003"] and third.updated == 1


def test_the_guid_app4sales_answers_is_the_one_recorded(tmp_path):
    frames = make_frames(3, with_dashboards=False)
    client = LyingClient(lambda r: [{**x, "CustomerGuid": f"aaaaaaaa-0000-4000-8000-00000000000{i}"}
                                    for i, x in enumerate(r)])
    run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings())
    assert _state(tmp_path)[1] == {"C000000": "aaaaaaaa-0000-4000-8000-000000000000",
                                   "C000001": "aaaaaaaa-0000-4000-8000-000000000001",
                                   "C000002": "aaaaaaaa-0000-4000-8000-000000000002"}


def test_a_rejected_existing_customer_keeps_its_old_hash(tmp_path):
    """Planted-bug guard: recording the hash of a customer App4Sales rejected hides its change forever."""
    frames = make_frames(5, with_dashboards=False)
    client = FakeClient()
    run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings())
    before, _ = _state(tmp_path)
    frames[0].loc[1, "CustomerName"] = "Changed 1"
    frames[0].loc[2, "CustomerName"] = "Changed 2"
    client.invalid = {"C000001": "VatCode is invalid"}
    second = run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings())
    assert (second.updated, second.failed) == (1, 1)
    after, _ = _state(tmp_path)
    assert after["C000001"] == before["C000001"] and after["C000002"] != before["C000002"]
    client.invalid = {}
    client.batches.clear()
    third = run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings())
    assert client.upserted_codes() == ["C000001"] and third.updated == 1


# --- deactivation only of the absent ---------------------------------------------------------

def _index(active: list[str], inactive: list[str] = ()):
    return [{"CustomerCode": c, "CustomerGuid": f"00000000-0000-4000-8000-{i:012d}"} for i, c in enumerate(active)] \
        + [{"CustomerCode": c, "CustomerGuid": f"10000000-0000-4000-8000-{i:012d}", "CustomerEnabled": False}
           for i, c in enumerate(inactive)]


def test_a_customer_present_but_rejected_by_normalization_is_never_deactivated(tmp_path):
    frames = make_frames(9, with_dashboards=False)
    codes = list(frames[0]["CustomerCode"])
    client = FakeClient(existing=_index(codes + ["REJECTED1"]))
    settings = SyncSettings(deactivate_missing=True, deactivate_max_fraction=0.05)
    result = run_sync(client, *frames, state_dir=tmp_path, settings=settings, present_codes=["REJECTED1"])
    assert result.deactivated == 0 and ("deactivate", ["REJECTED1"]) not in client.calls
    assert client.store["REJECTED1"]["CustomerEnabled"] is True


def test_the_guard_counts_active_customers_only(tmp_path):
    """Planted-bug guard: inactive customers in the denominator would let 2 of 10 active (20 %) through."""
    frames = make_frames(8, with_dashboards=False)
    codes = list(frames[0]["CustomerCode"])
    client = FakeClient(existing=_index(codes + ["GONE1", "GONE2"], inactive=[f"OLD{i}" for i in range(90)]))
    for i in range(90):
        client.store[f"OLD{i}"]["CustomerEnabled"] = False
    with pytest.raises(DeactivationRefusedError) as refused:
        run_sync(client, *frames, state_dir=tmp_path,
                 settings=SyncSettings(deactivate_missing=True, deactivate_max_fraction=0.1))
    assert (refused.value.would_deactivate, refused.value.active) == (2, 10)
    assert [c for c in client.calls if c[0] in ("upsert", "deactivate")] == []
    ok = run_sync(client, *frames, state_dir=tmp_path,
                  settings=SyncSettings(deactivate_missing=True, deactivate_max_fraction=0.2))
    assert ok.deactivated == 2 and ("deactivate", ["GONE1", "GONE2"]) in client.calls


# --- one writer per administration -----------------------------------------------------------

def test_a_second_sync_waits_for_the_lock_then_fails_naming_the_holder(tmp_path):
    frames = make_frames(3, with_dashboards=False)
    client = FakeClient()
    with SyncState.for_administration(tmp_path, "demo") as holder:
        with holder.lock("Dagster run 1234-abcd"):
            started = time.monotonic()
            with pytest.raises(SyncLockedError) as locked:
                run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings(), lock_timeout=0.6)
            waited = time.monotonic() - started
    assert "Dagster run 1234-abcd" in str(locked.value) and "MONITOR_SYNC_LOCK_TIMEOUT" in str(locked.value)
    assert 0.6 <= waited < 5
    assert client.calls == []  # nothing read, nothing sent
    run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings(), lock_timeout=0.6)  # free again
    assert sorted(client.upserted_codes()) == ["C000000", "C000001", "C000002"]


def test_the_second_sync_plans_after_the_first_finished(tmp_path):
    """Two identical runs overlapping: the second waits, then finds nothing to send."""
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
    first = threading.Thread(target=lambda: results.setdefault(
        "first", run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings(), owner="first")))
    first.start()
    assert gate.wait(10)
    second = threading.Thread(target=lambda: results.setdefault(
        "second", run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings(), owner="second")))
    second.start()
    time.sleep(0.5)
    with SyncState.for_administration(tmp_path, "demo") as st:
        assert st.lock_holder() == "first"
    release.set()
    first.join(10)
    second.join(10)
    assert results["first"].created == 150
    assert (results["second"].created, results["second"].updated, results["second"].unchanged) == (0, 0, 150)
    assert client.upsert_calls == 2  # the first run's two batches only


def test_a_dead_holders_lease_expires_and_a_lost_lease_records_nothing(tmp_path):
    with SyncState.for_administration(tmp_path, "demo") as dead, SyncState.for_administration(tmp_path, "demo") as st:
        dead._try_acquire("dead-token", "a killed run", lease=0.2)  # taken, never renewed
        time.sleep(0.3)
        with st.lock("next run", timeout=2, lease=0.2):
            assert st.lock_holder() == "next run"
            st.save_hashes([("C1", "h1")])
            # another process takes the lease over (as after a missed renewal): fencing refuses our write
            st._conn.execute("UPDATE sync_lock SET token = 'someone-else', owner = 'run B'")
            with pytest.raises(StateLockLostError, match="run B"):
                st.save_hashes([("C2", "h2")])
        assert st.load() == {"C1": ("h1", None)}
