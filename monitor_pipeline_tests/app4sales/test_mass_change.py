"""The mass-change guard (``check_mass_change`` in app4sales/sync.py) on the fake client: what it counts; and the
change rows of deactivations, whose answer is only a count."""

import pandas as pd
import pytest

from monitor_pipeline.app4sales.sync import MassChangeRefusedError, SyncSettings, run_sync

from .fakes import FakeClient, make_frames

N = 30


def _sync(client, frames, tmp_path, **settings):
    return run_sync(client, *frames, state_dir=tmp_path, settings=SyncSettings(**settings))


def _all_boards(frames, text: str):
    customers, addresses, contacts, _ = frames
    boards = pd.DataFrame({"CustomerCode": customers["CustomerCode"],
                           "Dashboard": [f"{text}-{c}".encode() for c in customers["CustomerCode"]]})
    return customers, addresses, contacts, boards


def test_new_dashboards_alone_are_not_a_mass_change(tmp_path):
    client = FakeClient()
    assert _sync(client, _all_boards(make_frames(N), "v1"), tmp_path).created == N
    again = _sync(client, _all_boards(make_frames(N), "v2"), tmp_path)  # every dashboard new, no field changed
    assert again.dashboards_sent == N
    renamed = _all_boards(make_frames(N), "v2")
    renamed[0]["CustomerName"] = [f"Shifted {i}" for i in range(N)]
    with pytest.raises(MassChangeRefusedError, match=f"refusing to update {N} of {N} customers"):
        _sync(client, renamed, tmp_path)


def test_the_refusal_quotes_a_huge_value_cut(tmp_path):
    client = FakeClient()
    frames = make_frames(N, with_dashboards=False)
    _sync(client, frames, tmp_path)
    frames[0]["CustomerNote"] = ["N" * 1_000_000] * N
    with pytest.raises(MassChangeRefusedError) as info:
        _sync(client, frames, tmp_path)
    message = str(info.value)
    assert "CustomerNote" in message and "N" * 200 + "…" in message and len(message) < 5_000


class _CountsLess(FakeClient):
    def deactivate_customers(self, codes):
        super().deactivate_customers(codes)
        return len(codes) - 1  # an answer that does not add up


@pytest.mark.parametrize("client_class, reason", [(FakeClient, "deactivated"), (_CountsLess, "deactivation unconfirmed")])
def test_deactivations_are_logged_as_confirmed_only_when_the_count_adds_up(tmp_path, client_class, reason):
    client = client_class()
    frames = make_frames(N, with_dashboards=False)
    _sync(client, frames, tmp_path)
    fewer = tuple(f[~f["CustomerCode"].isin(["C000001", "C000002"])] for f in frames)
    result = _sync(client, fewer, tmp_path, deactivate_missing=True, deactivate_max_fraction=0.5)
    assert [row[:2] for row in result.changes] == [("C000001", reason), ("C000002", reason)]
