import logging

import pytest

from monitor_pipeline.app4sales.payload import generated_guid
from monitor_pipeline.app4sales.state import SyncState
from monitor_pipeline.app4sales.sync import (
    AFTER_SCRIPT,
    BEFORE_SCRIPT,
    DeactivationRefusedError,
    SyncInterruptedError,
    SyncSettings,
    plan_sync,
    run_sync,
)

from .fakes import FakeClient, make_frames

S = SyncSettings()


def sync(client, frames, tmp_path, settings=S, **kw):
    return run_sync(client, *frames, state_dir=tmp_path, settings=settings, **kw)


def plan(frames, tmp_path, index=(), settings=S, price_lists=None, administration="demo"):
    with SyncState.for_administration(tmp_path, administration) as st:
        return plan_sync(*frames, index=list(index), price_lists=price_lists, state=st,
                         administration=administration, settings=settings)


def test_first_run_sends_all_second_run_none(tmp_path):
    frames = make_frames(250)
    client = FakeClient()
    r1 = sync(client, frames, tmp_path)
    assert (r1.created, r1.updated, r1.unchanged, r1.failed, r1.batches) == (250, 0, 0, 0, 3)
    assert r1.dashboards_sent == 25 and len(client.dashboards) == 25
    assert sorted(client.upserted_codes()) == sorted(frames[0]["CustomerCode"])
    assert r1.requests == client.request_count > 0

    client.calls.clear()
    client.batches.clear()
    r2 = sync(client, frames, tmp_path)
    assert (r2.created, r2.updated, r2.unchanged, r2.batches, r2.dashboards_sent) == (0, 0, 250, 0, 0)
    assert client.upserted_codes() == []
    assert client.call_names() == ["list_customers"]  # no script, no batch when nothing to send
    assert r2.scripts_run == [] and r2.requests == 1


def test_guids_resolved_and_stable_across_runs(tmp_path):
    frames = make_frames(5)
    client = FakeClient(existing=[{"CustomerCode": "C000002", "CustomerGuid": "abcd0000-0000-4000-8000-000000000000"}])
    sync(client, frames, tmp_path)
    sent = {c["CustomerCode"]: c["CustomerGuid"] for c in client.batches[0]}
    assert sent["C000000"] == "00000000-0000-4000-8000-000000000000"  # the file's
    assert sent["C000002"] == "abcd0000-0000-4000-8000-000000000000"  # the index's
    assert sent["C000001"] == generated_guid("demo", "C000001")         # generated
    client.batches.clear()
    r = sync(client, frames, tmp_path)  # generated GUID now comes back through the index: same hash
    assert r.unchanged == 5 and client.upserted_codes() == []


def test_one_changed_contact_sends_exactly_that_customer(tmp_path):
    customers, addresses, contacts, dashboards = make_frames(50)
    client = FakeClient()
    sync(client, (customers, addresses, contacts, dashboards), tmp_path)
    client.batches.clear()
    contacts = contacts.copy()
    contacts.loc[contacts["CustomerCode"] == "C000017", "Phonenumber"] = "+46 70 000"
    r = sync(client, (customers, addresses, contacts, dashboards), tmp_path)
    assert client.upserted_codes() == ["C000017"]
    assert (r.updated, r.unchanged, r.batches) == (1, 49, 1)
    assert client.store["C000017"]["Contacts"][0]["Phonenumber"] == "+46 70 000"


def test_changed_dashboard_resends_customer_and_dashboard_only(tmp_path):
    customers, addresses, contacts, dashboards = make_frames(30)
    client = FakeClient()
    sync(client, (customers, addresses, contacts, dashboards), tmp_path)
    client.calls.clear()
    dashboards = dashboards.copy()
    dashboards.loc[dashboards["CustomerCode"] == "C000010", "Dashboard"] = b"new"
    r = sync(client, (customers, addresses, contacts, dashboards), tmp_path)
    assert [c for c in client.calls if c[0] == "dashboard"] == [("dashboard", "C000010")]
    assert r.dashboards_sent == 1 and client.dashboards["C000010"] == b"new" and r.updated == 1


def test_inactive_customer_is_sent_and_counted(tmp_path):
    frames = make_frames(10)
    client = FakeClient()
    sync(client, frames, tmp_path)
    client.store["C000004"]["CustomerEnabled"] = False
    client.batches.clear()
    p = plan(frames, tmp_path, index=client.list_customers())
    assert p.reasons == {"C000004": "inactive"} and p.unchanged == 9
    r = sync(client, frames, tmp_path)
    assert client.upserted_codes() == ["C000004"] and r.reactivated == 1 and r.unchanged == 9
    assert client.store["C000004"]["CustomerEnabled"] is True


def test_plan_reasons_new_changed_missing_state(tmp_path):
    frames = make_frames(4)
    index = [{"CustomerCode": "C000001", "CustomerGuid": None, "CustomerEnabled": True},
             {"CustomerCode": "C000002", "CustomerGuid": None, "CustomerEnabled": True}]
    p = plan(frames, tmp_path, index=index)
    # in the index but not in the state (first run against an existing administration) → changed
    assert p.reasons == {"C000000": "new", "C000001": "changed", "C000002": "changed", "C000003": "new"}
    assert [x["CustomerCode"] for x in p.to_send] == ["C000000", "C000001", "C000002", "C000003"]
    assert p.dashboards.keys() == {"C000000"}


def test_full_refresh_sends_all(tmp_path):
    frames = make_frames(120)
    client = FakeClient()
    sync(client, frames, tmp_path)
    client.batches.clear()
    client.calls.clear()
    r = sync(client, frames, tmp_path, settings=SyncSettings(full_refresh=True))
    assert len(client.upserted_codes()) == 120 and r.updated == 120 and r.unchanged == 0
    assert r.dashboards_sent == 12 and r.batches == 2


def test_batch_sizes_honoured_and_progress(tmp_path):
    frames = make_frames(23)
    client = FakeClient()
    progress = []
    r = sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10, upsert_concurrency=1),
             on_progress=lambda *a: progress.append(a))
    assert [len(b) for b in client.batches] == [10, 10, 3]
    assert progress == [(1, 3, 10, 23), (2, 3, 20, 23), (3, 3, 23, 23)]
    assert r.batches == 3


def test_progress_with_batches_in_flight_counts_answers(tmp_path):
    progress = []
    r = sync(FakeClient(), make_frames(23), tmp_path, settings=SyncSettings(batch_size=10, upsert_concurrency=3),
             on_progress=lambda *a: progress.append(a))
    assert [p[0] for p in progress] == [1, 2, 3] and progress[-1] == (3, 3, 23, 23)
    assert sorted(b - a for a, b in zip([0] + [p[2] for p in progress], [p[2] for p in progress])) == [3, 10, 10]
    assert r.batches == 3 and r.created == 23


def test_failed_batch_keeps_confirmed_state_and_rerun_sends_rest(tmp_path):
    frames = make_frames(30)
    client = FakeClient()
    client.fail_on_upsert = {2}
    with pytest.raises(SyncInterruptedError, match="batch 2 of 3") as info:
        sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10, upsert_concurrency=1))
    assert info.value.result.created == 10
    assert len(client.batches) == 1  # batch 3 was never sent
    codes = list(frames[0]["CustomerCode"])
    with SyncState.for_administration(tmp_path, "demo") as st:
        assert sorted(st.load()) == codes[:10]
    assert AFTER_SCRIPT not in client.call_names()
    # batch 1's dashboard went out after its batch; nothing of batches 2/3
    assert client.dashboards.keys() == {"C000000"}
    client.batches.clear()
    r = sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10))
    assert client.upserted_codes() == codes[10:]
    assert (r.created, r.unchanged) == (20, 10)
    assert client.dashboards.keys() == {"C000000", "C000010", "C000020"}


def test_a_failed_batch_in_flight_keeps_the_others_confirmations(tmp_path):
    """Batches 1–3 go out together; batch 2 fails: 1 and 3 are recorded (with their dashboards), the run
    fails naming batch 2, and the re-run sends batch 2 only."""
    frames = make_frames(30)
    codes = list(frames[0]["CustomerCode"])
    client = FakeClient()
    client.fail_codes = {"C000015"}
    with pytest.raises(SyncInterruptedError, match="sending batch 2 of 3.*20 customers confirmed.*remaining 10") as info:
        sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10, upsert_concurrency=3))
    assert info.value.result.created == 20 and info.value.result.batches == 2
    with SyncState.for_administration(tmp_path, "demo") as st:
        assert sorted(st.load()) == codes[:10] + codes[20:]
    # a dashboard goes out after its batch, unless the failure came first (no new call after a failure)
    assert client.dashboards.keys() <= {"C000000", "C000020"}
    assert AFTER_SCRIPT not in client.call_names()
    client.fail_codes.clear()
    client.batches.clear()
    r = sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10, upsert_concurrency=3))
    assert client.upserted_codes() == codes[10:20]
    assert (r.created, r.unchanged) == (10, 20)
    assert client.dashboards.keys() == {"C000000", "C000010", "C000020"}


def test_a_failure_stops_new_batches(tmp_path):
    """Two in flight, the first fails: the run does not go on sending the other batches."""
    frames = make_frames(60)
    codes = list(frames[0]["CustomerCode"])
    client = FakeClient()
    client.fail_codes = {"C000000"}
    with pytest.raises(SyncInterruptedError, match="batch 1 of 6"):
        sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10, upsert_concurrency=2))
    sent = client.upserted_codes()
    assert len(sent) < 50 and set(sent).isdisjoint(codes[:10])
    with SyncState.for_administration(tmp_path, "demo") as st:
        assert sorted(st.load()) == sorted(sent)  # recorded: exactly what was confirmed
    client.fail_codes.clear()
    client.batches.clear()
    sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10, upsert_concurrency=2))
    assert sorted(client.upserted_codes()) == sorted(set(codes) - set(sent))


def test_scripts_bracket_batches_in_flight_and_dashboards_follow_their_batch(tmp_path):
    frames = make_frames(1000)
    client = FakeClient()
    r = sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10, upsert_concurrency=8))
    names = [call[0] for call in client.calls]
    assert client.calls[1] == ("script", BEFORE_SCRIPT) and client.calls[-1] == ("script", AFTER_SCRIPT)
    assert names.count("script") == 2 and names.count("upsert") == 100 == r.batches
    sent_at = {code: i for i, call in enumerate(client.calls) if call[0] == "upsert" for code in call[1]}
    boards = [(i, call[1]) for i, call in enumerate(client.calls) if call[0] == "dashboard"]
    assert len(boards) == r.dashboards_sent == 100
    assert all(sent_at[code] < i for i, code in boards)
    assert sorted(client.upserted_codes()) == sorted(frames[0]["CustomerCode"])  # each customer once


def test_dashboard_failure_is_resent_without_the_customer(tmp_path):
    frames = make_frames(20)
    client = FakeClient()
    original = client.put_dashboard

    def broken(code, data):
        if code == "C000010":
            raise __import__("monitor_pipeline_tests.app4sales.fakes", fromlist=["transient"]).transient()
        original(code, data)
    client.put_dashboard = broken
    with pytest.raises(SyncInterruptedError, match="dashboards"):
        sync(client, frames, tmp_path)
    client.put_dashboard = original
    client.batches.clear()
    client.calls.clear()
    r = sync(client, frames, tmp_path)
    assert client.upserted_codes() == [] and r.unchanged == 20
    assert [c for c in client.calls if c[0] == "dashboard"] == [("dashboard", "C000010")]


def test_batch_rejection_splits_and_keeps_valid_ones(tmp_path):
    frames = make_frames(25)
    client = FakeClient()
    client.invalid = {"C000003": "CustomerName too long", "C000012": "bad VatCode"}
    r = sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10))
    assert r.created == 23 and r.failed == 2
    assert r.failures == [{"CustomerCode": "C000003", "message": "CustomerName too long"},
                          {"CustomerCode": "C000012", "message": "bad VatCode"}]
    assert "C000003" not in client.store and "C000004" in client.store and "C000013" in client.store
    assert r.scripts_run == [BEFORE_SCRIPT, AFTER_SCRIPT]
    # the rejected ones are not recorded: fixed, a re-run sends exactly them
    client.invalid = {}
    client.batches.clear()
    r2 = sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10))
    assert client.upserted_codes() == ["C000003", "C000012"] and r2.created == 2


def test_rejection_naming_nobody_isolates_one_by_one(tmp_path):
    frames = make_frames(5)
    client = FakeClient()
    real = client.upsert_customers

    def upsert(customers):
        if any(c["CustomerCode"] == "C000002" for c in customers):
            from .fakes import rejected
            client.request_count += 1
            raise rejected([])
        return real(customers)
    client.upsert_customers = upsert
    r = sync(client, frames, tmp_path)
    assert r.created == 4 and [f["CustomerCode"] for f in r.failures] == ["C000002"]


def _existing(n, enabled=True):
    return [{"CustomerCode": f"X{i:04d}", "CustomerGuid": None, "CustomerEnabled": enabled} for i in range(n)]


def test_deactivation_guard_refuses_and_sends_nothing(tmp_path):
    frames = make_frames(10)
    client = FakeClient(existing=_existing(5))  # 5 of 5 active would go
    settings = SyncSettings(deactivate_missing=True, deactivate_max_fraction=0.1)
    with pytest.raises(DeactivationRefusedError, match=r"5 of 5 active .*100\.0%") as info:
        sync(client, frames, tmp_path, settings=settings)
    assert info.value.fraction == 1.0
    assert client.call_names() == ["list_customers"]  # no script, no batch, no deactivation
    with SyncState.for_administration(tmp_path, "demo") as st:
        assert st.load() == {}


def test_deactivation_below_fraction_deactivates_missing_only(tmp_path):
    customers, addresses, contacts, dashboards = make_frames(30)
    client = FakeClient()
    settings = SyncSettings(deactivate_missing=True, deactivate_max_fraction=0.1)
    sync(client, (customers, addresses, contacts, dashboards), tmp_path, settings=settings)
    client.store["ZZ_inactive"] = {"CustomerCode": "ZZ_inactive", "CustomerGuid": None, "CustomerName": "z",
                                   "CustomerEnabled": False}
    client.calls.clear()
    gone = customers[~customers["CustomerCode"].isin(["C000005", "C000006", "C000007"])]
    r = sync(client, (gone, addresses, contacts, dashboards), tmp_path, settings=settings)  # 3/30 = 0.1: allowed
    assert r.deactivated == 3
    assert ("deactivate", ["C000005", "C000006", "C000007"]) in client.calls
    assert client.call_names() == ["list_customers", BEFORE_SCRIPT, "deactivate", AFTER_SCRIPT]
    gone2 = customers[~customers["CustomerCode"].isin(["C000001", "C000002", "C000003", "C000004"])]
    with pytest.raises(DeactivationRefusedError):  # 4 of 27 active now ≈ 14.8%
        sync(client, (gone2, addresses, contacts, dashboards), tmp_path, settings=settings)


def test_deactivation_with_no_active_customers(tmp_path):
    client = FakeClient(existing=_existing(3, enabled=False))
    r = sync(client, make_frames(2), tmp_path,
             settings=SyncSettings(deactivate_missing=True, deactivate_max_fraction=0.0))
    assert r.deactivated == 0 and not any(c[0] == "deactivate" for c in client.calls)


def test_deactivation_off_by_default(tmp_path):
    client = FakeClient(existing=_existing(50))
    r = sync(client, make_frames(2), tmp_path)
    assert r.deactivated == 0 and not any(c[0] == "deactivate" for c in client.calls)


def test_scripts_order_and_unknown_skipped(tmp_path, caplog):
    frames = make_frames(25)
    client = FakeClient()
    r = sync(client, frames, tmp_path, settings=SyncSettings(batch_size=10))
    names = [n for n in client.call_names() if n != "dashboard"]
    assert names == ["list_customers", BEFORE_SCRIPT, "upsert", "upsert", "upsert", AFTER_SCRIPT]
    assert r.scripts_run == [BEFORE_SCRIPT, AFTER_SCRIPT] and r.scripts_skipped == []

    client2 = FakeClient(scripts=(AFTER_SCRIPT,))
    with caplog.at_level(logging.WARNING):
        r2 = sync(client2, frames, tmp_path / "b")
    assert r2.scripts_run == [AFTER_SCRIPT] and r2.scripts_skipped == [BEFORE_SCRIPT]
    assert "BeforeUpdateCustomers" in caplog.text and r2.created == 25


def test_price_dedup_in_run(tmp_path):
    frames = make_frames(10)  # UsesPriceField "0".."4"
    lists = [{"Code": "0", "DeduplicatedCode": "1"}, {"Code": "1", "DeduplicatedCode": None},
             {"Code": "2", "DeduplicatedCode": None}, {"Code": "3", "DeduplicatedCode": None}]
    client = FakeClient(price_lists=lists)
    r = sync(client, frames, tmp_path, settings=SyncSettings(enable_price_deduplication=True))
    assert r.unknown_price_lists == [("4", 2)]
    assert client.store["C000000"]["UsesPriceField"] == "1" and client.store["C000004"]["UsesPriceField"] == "4"
    client2 = FakeClient(price_lists=lists)
    sync(client2, frames, tmp_path / "off")
    assert ("price_lists",) not in client2.calls and client2.store["C000000"]["UsesPriceField"] == "0"


def test_plan_hashes_equal_payload_hash_of_what_is_sent(tmp_path):
    from monitor_pipeline.app4sales.payload import payload_hash
    frames = make_frames(12)
    lists = [{"Code": "0", "DeduplicatedCode": "1"}]
    p = plan(frames, tmp_path, price_lists=lists)
    boards = dict(zip(frames[3]["CustomerCode"], frames[3]["Dashboard"]))
    assert len(p.to_send) == 12
    for payload in p.to_send:
        code = payload["CustomerCode"]
        assert payload["CustomerGuid"]  # always resolved
        assert p.hashes[code] == payload_hash(payload, boards.get(code))
    assert p.to_send[0]["UsesPriceField"] == "1"


def test_duplicate_codes_keep_last(tmp_path):
    customers, addresses, contacts, dashboards = make_frames(3)
    dup = customers.iloc[[0]].copy()
    dup["CustomerName"] = "Last one"
    customers = __import__("pandas").concat([customers, dup], ignore_index=True)
    p = plan((customers, addresses, contacts, dashboards), tmp_path)
    assert [x["CustomerCode"] for x in p.to_send] == ["C000001", "C000002", "C000000"]
    assert p.to_send[-1]["CustomerName"] == "Last one"


def test_payloads_are_built_per_batch_and_the_collector_is_left_as_found(tmp_path):
    """The plan holds no payload dicts (each batch builds its own while others are on the wire); the batch
    phase's ``gc.freeze`` is undone whether the run succeeds or fails."""
    import gc

    frames = make_frames(250)
    with SyncState.for_administration(tmp_path, "demo") as st:
        plan = plan_sync(*frames, index=[], price_lists=None, state=st, administration="demo", settings=SyncSettings())
    assert len(plan.to_send) == 250 and plan.to_send.codes == list(frames[0]["CustomerCode"])
    assert plan.to_send[3] == plan.to_send[0:4][3] and plan.to_send[3]["CustomerCode"] == "C000003"
    assert plan.to_send[0] is not plan.to_send[0], "built when read, not kept in the plan"

    frozen = gc.get_freeze_count()
    client = FakeClient()
    client.fail_on_upsert = {2}
    with pytest.raises(SyncInterruptedError):
        sync(client, frames, tmp_path, settings=SyncSettings(batch_size=100, upsert_concurrency=1))
    assert gc.get_freeze_count() == frozen
    client.fail_on_upsert = set()
    assert sync(client, frames, tmp_path, settings=SyncSettings(batch_size=100)).created == 150
    assert gc.get_freeze_count() == frozen
