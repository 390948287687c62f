"""Smoke test of the sync against the real App4Sales sandbox over HTTP (fuller integration tests: lead)."""

from monitor_pipeline.app4sales.sync import AFTER_SCRIPT, BEFORE_SCRIPT, SyncSettings, run_sync

from .fakes import make_frames


def test_sync_against_sandbox(sandbox, tmp_path):
    admin = sandbox.admin_api()
    admin.register_script(AFTER_SCRIPT)
    admin.set_price_lists([{"Code": "0", "DeduplicatedCode": "1"}, {"Code": "1", "DeduplicatedCode": None}])
    client = sandbox.client()
    frames = make_frames(230)
    settings = SyncSettings(batch_size=100, enable_price_deduplication=True)

    r1 = run_sync(client, *frames, state_dir=tmp_path, settings=settings)
    assert (r1.created, r1.failed, r1.batches, r1.dashboards_sent) == (230, 0, 3, 23)
    assert r1.scripts_run == [AFTER_SCRIPT] and r1.scripts_skipped == [BEFORE_SCRIPT]
    assert [code for code, _ in r1.unknown_price_lists] == ["2", "3", "4"]
    stored = admin.get_customer("C000005")
    assert stored["UsesPriceField"] == "1" and stored["CustomerGuid"]
    assert len(stored["Addresses"]) == 2 and stored["Contacts"][0]["FullName"] == "Anna Svensson 5"

    r2 = run_sync(client, *frames, state_dir=tmp_path, settings=settings)
    assert (r2.unchanged, r2.batches, r2.scripts_run) == (230, 0, [])
    assert r2.requests == 2  # one index page + price lists; nothing sent
    assert admin.get_customer("C000005")["CustomerGuid"] == stored["CustomerGuid"]
