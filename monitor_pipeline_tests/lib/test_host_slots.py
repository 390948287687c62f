"""``HostSlots``: counting semaphores per host as leases in a shared database, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from monitor_pipeline.lib.host_slots import HostSlots, HostSlotsBusy, sqlite_url

HOST = "ftp.north:21"


@pytest.fixture(params=["sqlite", "postgresql"])
def slots_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "state")
    return request.getfixturevalue("postgres_db_url")


@pytest.fixture
def make_slots(slots_url):
    made: list[HostSlots] = []

    def make(**kw) -> HostSlots:
        kw.setdefault("poll", 0.05)
        slots = HostSlots(slots_url, **kw)
        made.append(slots)
        return slots

    yield make
    for slots in made:
        slots.close()


def test_grants_up_to_wanted_and_what_is_left(make_slots):
    slots = make_slots()
    with slots.acquire("ftp", HOST, 3, limit=4, owner="run A") as first:
        with slots.acquire("ftp", HOST, 3, limit=4, owner="run B", timeout=0) as second:
            assert (first, second) == (3, 1)
            assert slots.holders("ftp", HOST) == [("run A", 3), ("run B", 1)]
        with slots.acquire("ftp", HOST, 8, limit=4, owner="run C", timeout=0) as third:
            assert third == 1  # never more than the limit, whatever is wanted
    assert slots.holders("ftp", HOST) == []


def test_minimum_not_free_times_out_naming_host_setting_and_holders(make_slots):
    slots = make_slots()
    with slots.acquire("ftp", HOST, 3, limit=4, owner="run 1234abcd (customers_xml, pid 7 on pod-a)"):
        started = time.monotonic()
        with pytest.raises(HostSlotsBusy) as info:
            with slots.acquire("ftp", HOST, 4, minimum=2, limit=4, timeout=0.4, owner="run B",
                               setting="MONITOR_FTP_HOST_CONNECTIONS"):
                pytest.fail("granted although only 1 slot was free")
        waited = time.monotonic() - started
    message = str(info.value)
    assert 0.35 <= waited < 3
    assert HOST in message and "MONITOR_FTP_HOST_CONNECTIONS=4" in message
    assert "3 of 4 held by run 1234abcd (customers_xml, pid 7 on pod-a) ×3" in message
    assert "Nothing was sent" in message
    assert info.value.transient and info.value.holders == [("run 1234abcd (customers_xml, pid 7 on pod-a)", 3)]


def test_a_waiter_gets_the_slot_when_it_is_released_and_says_so_once(make_slots):
    slots, other = make_slots(), make_slots()
    said: list[str] = []
    held = threading.Event()

    def holder():
        with other.acquire("ftp", HOST, 1, limit=1, owner="run A"):
            held.set()
            time.sleep(0.6)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    started = time.monotonic()
    with slots.acquire("ftp", HOST, 1, limit=1, owner="run B", timeout=10, on_wait=said.append,
                       setting="MONITOR_FTP_HOST_CONNECTIONS") as granted:
        assert granted == 1 and slots.holders("ftp", HOST) == [("run B", 1)]
    thread.join()
    assert 0.3 < time.monotonic() - started < 5
    assert said == [f"waiting for a connection slot to {HOST}: 1 of 1 held by run A "
                    "(MONITOR_FTP_HOST_CONNECTIONS=1)"]


def test_hosts_and_kinds_are_counted_apart(make_slots):
    slots = make_slots()
    with slots.acquire("ftp", HOST, 1, limit=1, owner="a"), \
            slots.acquire("ftp", "ftp.south:21", 1, limit=1, owner="b", timeout=0), \
            slots.acquire("app4sales", HOST, 1, limit=1, owner="c", timeout=0):
        with pytest.raises(HostSlotsBusy):
            with slots.acquire("ftp", HOST, 1, limit=1, owner="d", timeout=0):
                pass


def test_released_on_exception(make_slots):
    slots = make_slots()
    with pytest.raises(RuntimeError, match="boom"):
        with slots.acquire("ftp", HOST, 2, limit=2, owner="run A"):
            raise RuntimeError("boom")
    with slots.acquire("ftp", HOST, 2, limit=2, owner="run B", timeout=0) as granted:
        assert granted == 2


def test_a_held_lease_is_renewed_past_its_length(make_slots):
    slots, other = make_slots(lease=0.6), make_slots(lease=0.6)
    with slots.acquire("ftp", HOST, 1, limit=1, owner="run A"):
        time.sleep(1.5)  # 2.5 leases: only the renewals keep it
        with pytest.raises(HostSlotsBusy):
            with other.acquire("ftp", HOST, 1, limit=1, owner="run B", timeout=0):
                pass


HOLDER = """
import sys, time
from monitor_pipeline.lib.host_slots import HostSlots
slots = HostSlots(sys.argv[1], lease=1.0)
with slots.acquire("ftp", sys.argv[2], 2, limit=2, owner="run dead (pid killed)"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_killed_holders_slots_come_free_when_its_lease_expires(make_slots, slots_url):
    """Another process takes both slots and is killed with SIGKILL (no release, no more renewals): its
    lease runs out after 1 s and the slots are free again; before that they are not."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, slots_url, HOST], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        killed = time.monotonic()
        slots = make_slots()
        with pytest.raises(HostSlotsBusy, match="run dead"):
            with slots.acquire("ftp", HOST, 1, limit=2, owner="run B", timeout=0):
                pass
        with slots.acquire("ftp", HOST, 2, limit=2, owner="run B", timeout=10) as granted:
            assert granted == 2
            assert time.monotonic() - killed < 5
    finally:
        if holder.poll() is None:
            holder.kill()


def test_competing_holders_never_exceed_the_limit(make_slots):
    """Eight threads, each with its own HostSlots (its own connections, as separate processes would have),
    take and release one slot of a limit of 2 again and again: never more than 2 hold one at once."""
    holding, most, lock = [0], [0], threading.Lock()
    errors: list[BaseException] = []

    def worker(n: int):
        slots = make_slots()
        try:
            for _ in range(6):
                with slots.acquire("ftp", HOST, 1, limit=2, owner=f"worker {n}", timeout=30):
                    with lock:
                        holding[0] += 1
                        most[0] = max(most[0], holding[0])
                    time.sleep(0.01)
                    with lock:
                        holding[0] -= 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert most[0] == 2
