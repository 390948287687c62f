"""The payload hash cache (``app4sales/hash_cache.py``; issue #11): a re-sync of the very frames of the last
plan takes its hashes from the state instead of hashing every customer again — and never when anything the
hashes depend on differs (the frames, the GUIDs the index resolves, the deduplicated price lists, the code)."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from monitor_pipeline.app4sales import hash_cache
from monitor_pipeline.app4sales.hash_cache import HashCache, frames_key, tag_frames
from monitor_pipeline.app4sales.payload import CustomerTable
from monitor_pipeline.app4sales.state import state_file_name
from monitor_pipeline.app4sales.state_store import open_state
from monitor_pipeline.app4sales.sync import SyncSettings, plan_sync, prepare_frames, run_sync

from .fakes import FakeClient, make_frames

N = 250


def _tagged(n: int = N, key: str = "input-1", **kw):
    frames = make_frames(n, **kw)
    tag_frames(frames, key)
    return frames


def _sync(client, frames, state_dir, **settings):
    return run_sync(client, *frames, state_dir=state_dir, settings=SyncSettings(**settings))


def _no_hashing(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("hashed although the cache holds")
    monkeypatch.setattr(CustomerTable, "prepare_hashes", refuse)
    monkeypatch.setattr(CustomerTable, "hashes", refuse)


def test_a_resync_of_the_same_frames_takes_the_hashes_from_the_cache(tmp_path, monkeypatch):
    frames, client = _tagged(), FakeClient()
    first = _sync(client, frames, tmp_path)
    assert (first.created, first.hashes_reused) == (N, False)
    with open_state(tmp_path, "demo") as state:
        stored = state.load()
    _no_hashing(monkeypatch)
    again = _sync(client, frames, tmp_path)
    assert (again.unchanged, again.batches, again.hashes_reused) == (N, 0, True)
    with open_state(tmp_path, "demo") as state:
        assert state.load() == stored


def test_the_cached_hashes_are_the_computed_ones(tmp_path):
    frames, client = _tagged(), FakeClient()
    _sync(client, frames, tmp_path, enable_price_deduplication=True)
    index = client.list_customers()
    with open_state(tmp_path, "demo") as state:
        cache = state.load_hash_cache(frames_key(*frames))
        stored = state.load()
    assert cache is not None and len(cache.hashes) == N
    kwargs = dict(index=index, price_lists=[], state=stored, administration="demo", settings=SyncSettings())
    cached = plan_sync(prepare_frames(*frames, cache=cache), **kwargs)
    computed = plan_sync(*make_frames(N), **kwargs)  # untagged: hashed from scratch
    assert cached.hashes_reused and not computed.hashes_reused
    assert cached.hashes == computed.hashes and cached.dashboard_hashes == computed.dashboard_hashes
    assert (cached.unchanged, len(cached.to_send)) == (computed.unchanged, 0) == (N, 0)


def test_a_customer_app4sales_recreated_with_another_guid_is_hashed_and_sent_again(tmp_path):
    frames, client = _tagged(), FakeClient()
    _sync(client, frames, tmp_path)
    assert pd.isna(frames[0].loc[1, "CustomerGuid"])  # C000001 takes its GUID from the index
    client.store["C000001"]["CustomerGuid"] = "99999999-0000-4000-8000-000000000001"
    again = _sync(client, frames, tmp_path)
    assert again.hashes_reused is False
    assert (again.updated, client.upserted_codes()[-1:]) == (1, ["C000001"])
    assert client.batches[-1][0]["CustomerGuid"] == "99999999-0000-4000-8000-000000000001"
    assert _sync(client, frames, tmp_path).hashes_reused is True  # the new GUID is in the new entry


def test_a_changed_price_list_deduplication_is_hashed_and_sent_again(tmp_path):
    frames, client = _tagged(), FakeClient()
    _sync(client, frames, tmp_path, enable_price_deduplication=True)
    client._price_lists = [{"Code": "3", "DeduplicatedCode": "1"}]
    again = _sync(client, frames, tmp_path, enable_price_deduplication=True)
    assert again.hashes_reused is False
    uses_3 = sorted(code for code, price in zip(frames[0]["CustomerCode"], frames[0]["UsesPriceField"]) if price == "3")
    assert again.updated == len(uses_3) == N // 5
    assert sorted(client.upserted_codes()[-len(uses_3):]) == uses_3
    assert {p["UsesPriceField"] for batch in client.batches[-1:] for p in batch} == {"1"}


def test_frames_that_are_not_the_cached_ones_are_hashed(tmp_path):
    client = FakeClient()
    _sync(client, _tagged(), tmp_path)
    fewer = _tagged(N - 1)  # the same tag on other frames: the row counts are in the key
    assert _sync(client, fewer, tmp_path, approve_mass_change=True).hashes_reused is False
    renamed = make_frames(N - 1)
    renamed[0]["CustomerCode"] = [f"X{i:06d}" for i in range(N - 1)]
    tag_frames(renamed, "input-1")  # the same tag and counts, other codes: the code column is compared
    result = _sync(client, renamed, tmp_path)
    assert (result.hashes_reused, result.created) == (False, N - 1)


def test_a_changed_customer_under_a_new_input_key_is_sent(tmp_path):
    client = FakeClient()
    _sync(client, _tagged(), tmp_path)
    frames = make_frames(N)
    frames[0].loc[7, "CustomerName"] = "Renamed AB"
    tag_frames(frames, "input-2")
    result = _sync(client, frames, tmp_path)
    assert (result.hashes_reused, result.updated, client.upserted_codes()[-1]) == (False, 1, "C000007")


def test_untagged_frames_are_hashed_and_leave_no_cache(tmp_path):
    client = FakeClient()
    frames = make_frames(N)
    assert frames_key(*frames) is None
    _sync(client, frames, tmp_path)
    assert _sync(client, frames, tmp_path).hashes_reused is False
    with sqlite3.connect(tmp_path / state_file_name("demo")) as conn:
        assert conn.execute("SELECT count(*) FROM hash_cache").fetchone()[0] == 0


def test_frames_tagged_differently_are_not_one_input():
    frames = _tagged()
    frames[2].attrs[hash_cache.FRAMES_KEY_ATTR] = "input-other"
    assert frames_key(*frames) is None


def test_another_release_of_the_payload_code_does_not_take_the_cached_hashes(monkeypatch):
    frames = _tagged()
    before = frames_key(*frames)
    monkeypatch.setattr(hash_cache, "CODE_VERSION", "a-release-that-changed-payload.py")
    assert frames_key(*frames) != before


def test_a_damaged_entry_is_ignored_and_replaced(tmp_path):
    frames, client = _tagged(), FakeClient()
    _sync(client, frames, tmp_path)
    with sqlite3.connect(tmp_path / state_file_name("demo")) as conn:
        conn.execute("UPDATE hash_cache SET data = ?", (b"\x78\x01garbage",))
    again = _sync(client, frames, tmp_path)
    assert (again.hashes_reused, again.unchanged, again.batches) == (False, N, 0)
    assert _sync(client, frames, tmp_path).hashes_reused is True


@pytest.mark.parametrize("data", [b"", b"not zlib", __import__("zlib").compress(b'[1, ["a"], [], [], [], []]'),
                                  __import__("zlib").compress(b'[2, [], [], [], [], []]')])
def test_decode_refuses_what_is_not_an_entry(data):
    assert HashCache.decode("k", data) is None
