"""``lib/deadline.py``: one watchdog thread fires every deadline of the process (SPEC §5 "every wait is
bounded"); the bounds themselves are tested end to end against hostile servers (trickling App4Sales, FTP)."""

from __future__ import annotations

import threading
import time

from monitor_pipeline.lib.deadline import Deadline


def test_a_block_that_outlives_its_deadline_is_aborted_and_told_so():
    aborted = threading.Event()
    started = time.monotonic()
    with Deadline(0.2, aborted.set) as bound:
        assert aborted.wait(5)
    assert bound.expired and 0.15 < time.monotonic() - started < 3


def test_blocks_that_finish_in_time_are_never_aborted_and_start_no_thread_each():
    fired = []
    before = threading.active_count()
    for i in range(500):
        with Deadline(0.3, lambda i=i: fired.append(i)) as bound:
            pass
        assert not bound.expired
    assert threading.active_count() <= before + 1  # at most the watchdog itself
    time.sleep(0.6)
    assert fired == []


def test_a_later_shorter_deadline_fires_first_and_a_blocked_abort_holds_up_no_other():
    order: list[str] = []
    release = threading.Event()

    def stuck() -> None:
        order.append("long")
        release.wait(10)

    try:
        with Deadline(0.3, stuck):
            with Deadline(0.1, lambda: order.append("short")):
                time.sleep(0.2)
            fired = threading.Event()
            with Deadline(0.35, fired.set) as third:  # due after the stuck abort began
                assert fired.wait(5) and third.expired
        assert order == ["short", "long"]
    finally:
        release.set()
