"""Batches in flight against the real sandbox playing a remote App4Sales (``sandbox/limits.py``): latency on
every call, a cap on calls in flight answered with 429 + Retry-After."""

from __future__ import annotations

from collections import Counter

import pytest

from monitor_pipeline.app4sales import App4SalesClient
from monitor_pipeline.app4sales.state import SyncState
from monitor_pipeline.app4sales.sync import AFTER_SCRIPT, BEFORE_SCRIPT, SyncInterruptedError, SyncSettings, run_sync
from monitor_pipeline.lib.retry import RetryPolicy
from monitor_pipeline.sandbox import SandboxAdmin, start_sandbox_in_thread

from ..fixtures.sandbox import PASSWORD, USERNAME
from .fakes import make_frames


@pytest.fixture
def remote(tmp_path, request):
    """A sandbox of its own with the limits the test's ``limits`` marker gives."""
    limits = request.node.get_closest_marker("limits").kwargs
    handle = start_sandbox_in_thread(tmp_path / "remote.db", users={USERNAME: PASSWORD}, **limits)
    admin = SandboxAdmin(handle.base_url("demo"), USERNAME, PASSWORD)
    admin.register_script(BEFORE_SCRIPT)
    admin.register_script(AFTER_SCRIPT)
    admin.reset_stats()
    yield handle, admin
    admin.close()
    handle.stop()


def _client(handle, max_in_flight, attempts=5):
    return App4SalesClient(handle.base_url("demo"), USERNAME, PASSWORD, max_in_flight=max_in_flight,
                           retry=RetryPolicy(attempts=attempts, base=0.01, cap=0.05))


def _stored_once_in_order(admin, codes):
    events = admin.events()
    batches = [e for e in events if e["kind"] == "batch"]
    counts = Counter(code for e in batches for code in e["codes"])
    assert counts == Counter(codes), "every customer stored exactly once"
    kinds = [(e["kind"], e.get("name")) for e in events if e["kind"] in ("batch", "script")]
    assert kinds[0] == ("script", BEFORE_SCRIPT) and kinds[-1] == ("script", AFTER_SCRIPT)
    assert [k for k, _ in kinds[1:-1]] == ["batch"] * len(batches)


@pytest.mark.limits(latency_ms=150)
def test_batches_go_out_together(remote, tmp_path):
    handle, admin = remote
    frames = make_frames(1200)
    with _client(handle, 4) as client:
        r = run_sync(client, *frames, state_dir=tmp_path / "state", settings=SyncSettings(upsert_concurrency=4))
    assert (r.created, r.batches, r.throttled) == (1200, 12, 0)
    assert admin.stats()["max_in_flight_seen"] == 4  # never more than the setting, and really 4 at once
    _stored_once_in_order(admin, list(frames[0]["CustomerCode"]))


@pytest.mark.limits(latency_ms=50, max_in_flight=2, retry_after=0.2)
def test_a_server_capping_calls_in_flight_shrinks_the_window_and_loses_nothing(remote, tmp_path, caplog):
    handle, admin = remote
    frames = make_frames(2000)
    with _client(handle, 8) as client:
        r = run_sync(client, *frames, state_dir=tmp_path / "state", settings=SyncSettings(upsert_concurrency=8))
    stats = admin.stats()
    assert (r.created, r.batches, r.failed, len(r.unconfirmed)) == (2000, 20, 0, 0)
    assert r.throttled == stats["throttled"] >= 1 and r.lowest_window <= 2
    assert stats["max_in_flight_seen"] == 2
    assert r.throttled < 20, "the window fitted under the cap: not a 429 for every batch (240 calls)"
    assert any("calls in flight 8 → 4" in m for m in caplog.messages)
    _stored_once_in_order(admin, list(frames[0]["CustomerCode"]))


@pytest.mark.limits(latency_ms=150)
def test_a_batch_failing_while_others_are_in_flight(remote, tmp_path):
    """App4Sales fails every call after the first two batches: the batches that were stored are recorded,
    nothing else is, and the re-run sends exactly the rest."""
    handle, admin = remote
    frames = make_frames(1000)
    codes = list(frames[0]["CustomerCode"])
    admin.add_fault("customers/batch", "POST", status=500, times=1000, skip=2)
    with _client(handle, 4, attempts=2) as client, pytest.raises(SyncInterruptedError) as info:
        run_sync(client, *frames, state_dir=tmp_path / "state", settings=SyncSettings(upsert_concurrency=4))
    stored = [code for e in admin.events("batch") for code in e["codes"]]
    assert len(stored) == 200 and info.value.result.created == 200
    with SyncState.for_administration(tmp_path / "state", "demo") as state:
        assert sorted(state.load()) == sorted(stored)
    assert not admin.events("script")[1:], "UpdateCustomers did not run"
    admin.clear_faults()
    seen = len(admin.events("batch"))
    with _client(handle, 4) as client:
        r = run_sync(client, *frames, state_dir=tmp_path / "state", settings=SyncSettings(upsert_concurrency=4))
    again = [code for e in admin.events("batch")[seen:] for code in e["codes"]]
    assert sorted(again) == sorted(set(codes) - set(stored)) and r.created == 800


@pytest.mark.limits(latency_ms=200)
def test_an_unchanged_re_sync_reads_the_index_pages_together(remote, tmp_path):
    """The re-sync asks for every page the state expects at once (not the first page alone, then the
    others), and sends nothing: 4 pages of 200 ms in about one round trip, not two or four."""
    handle, admin = remote
    frames = make_frames(3500, with_dashboards=False)
    settings = SyncSettings(upsert_concurrency=4)
    with _client(handle, 4) as client:
        run_sync(client, *frames, state_dir=tmp_path / "state", settings=settings)
        admin.reset_stats()
        r = run_sync(client, *frames, state_dir=tmp_path / "state", settings=settings)
    assert (r.unchanged, r.batches, r.requests) == (3500, 0, 4)
    assert admin.stats()["max_in_flight_seen"] == 4
