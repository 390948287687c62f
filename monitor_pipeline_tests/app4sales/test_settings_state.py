import pytest

from monitor_pipeline.app4sales.state import SyncState, state_file_name
from monitor_pipeline.app4sales.settings import SyncSettings
from monitor_pipeline.errors import ConfigError


def test_settings_from_env_defaults_and_values():
    assert SyncSettings.from_env({}) == SyncSettings()
    s = SyncSettings.from_env({"MONITOR_BATCH_SIZE": "25", "MONITOR_ENABLE_PRICE_DEDUPLICATION": "yes",
                               "MONITOR_DEACTIVATE_MISSING": "1", "MONITOR_DEACTIVATE_MAX_FRACTION": "0.25"})
    assert s == SyncSettings(batch_size=25, enable_price_deduplication=True, deactivate_missing=True,
                             deactivate_max_fraction=0.25)


@pytest.mark.parametrize("name,value", [
    ("MONITOR_BATCH_SIZE", "0"), ("MONITOR_BATCH_SIZE", "101"), ("MONITOR_BATCH_SIZE", "ten"),
    ("MONITOR_ENABLE_PRICE_DEDUPLICATION", "maybe"), ("MONITOR_DEACTIVATE_MISSING", "2"),
    ("MONITOR_DEACTIVATE_MAX_FRACTION", "1.5"), ("MONITOR_DEACTIVATE_MAX_FRACTION", "x"),
])
def test_settings_errors_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        SyncSettings.from_env({name: value})


def test_settings_direct_validation():
    with pytest.raises(ConfigError):
        SyncSettings(batch_size=0)
    with pytest.raises(ConfigError):
        SyncSettings(deactivate_max_fraction=-0.1)


def test_state_round_trip_per_administration(tmp_path):
    with SyncState.for_administration(tmp_path, "demo") as st:
        st.save_hashes([("C1", "h1"), ("C2", "h2")])
        st.save_dashboard_hashes([("C1", "d1")])
        st.save_hashes([("C1", "h1b")])  # keeps the dashboard hash
    assert (tmp_path / "demo.sqlite").exists()
    with SyncState.for_administration(tmp_path, "demo") as st:
        assert st.load() == {"C1": ("h1b", "d1"), "C2": ("h2", None)}
    with SyncState.for_administration(tmp_path, "other") as st:
        assert st.load() == {}


def test_state_bulk(tmp_path):
    rows = [(f"C{i}", f"h{i}") for i in range(100_000)]
    with SyncState(tmp_path / "x.sqlite") as st:
        assert st.save_hashes(rows) == 100_000
        assert len(st.load()) == 100_000


def test_state_file_name_is_safe():
    assert state_file_name("demo") == "demo.sqlite"
    for odd in ("../etc", "a/b", "..", ""):
        name = state_file_name(odd)
        assert "/" not in name and not name.startswith(".") and name.endswith(".sqlite")
    assert state_file_name("a/b") != state_file_name("a_b")


def test_state_keeps_a_rollback_journal_not_wal(tmp_path):
    """The state directory may be a volume several machines mount: WAL (one host's shared memory) would
    not be safe there. A single file per administration, nothing beside it after a write."""
    with SyncState.for_administration(tmp_path, "demo") as st:
        st.save_hashes([("C1", "h1")])
        assert st._conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.sqlite"]
