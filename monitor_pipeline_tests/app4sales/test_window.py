"""The adaptive window of calls in flight (``app4sales/window.py``), unit level; the sandbox tests show it
against a server that caps concurrency."""

from __future__ import annotations

import threading
import time

import pytest

from monitor_pipeline.app4sales.window import GROW_ROUNDS, PROBE_ROUNDS, AdaptiveWindow


def test_never_more_calls_in_flight_than_the_limit():
    window = AdaptiveWindow(3)
    lock, now, most = threading.Lock(), [0], [0]

    def call():
        with window.slot():
            with lock:
                now[0] += 1
                most[0] = max(most[0], now[0])
            time.sleep(0.02)
            with lock:
                now[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert most[0] == 3 and window.in_flight == 0


def test_a_throttle_halves_the_window_once_per_congestion_event():
    changes = []
    window = AdaptiveWindow(8, on_change=lambda message, shrank: changes.append((message, shrank)))
    slots = [window.slot() for _ in range(4)]
    epochs = [slot.__enter__() for slot in slots]
    for epoch in epochs:  # four calls that started together are throttled: one event
        window.answered(epoch, 429)
    for slot in slots:
        slot.__exit__(None, None, None)
    assert window.limit == 4 and window.shrinks == 1 and window.throttled == 4
    with window.slot() as later:  # a call that started after the shrink is a new event
        window.answered(later, 503)
    assert window.limit == 2 and window.lowest == 2 and window.in_flight == 0
    assert [shrank for _, shrank in changes] == [True, True]
    assert "429" in changes[0][0] and "8 → 4" in changes[0][0]


def test_successes_grow_the_window_back_to_the_maximum_not_beyond():
    changes = []
    window = AdaptiveWindow(4, on_change=lambda message, shrank: changes.append(shrank))
    with window.slot() as epoch:
        window.answered(epoch, 429)
    assert window.limit == 2
    answers = 0
    while window.limit < 3:
        with window.slot() as epoch:
            window.answered(epoch, 200)
        answers += 1
    assert answers == 2 * GROW_ROUNDS
    while window.limit < 4:  # back to the size that was throttled: slowly
        with window.slot() as epoch:
            window.answered(epoch, 200)
        answers += 1
    assert answers == 2 * GROW_ROUNDS + 3 * PROBE_ROUNDS
    for _ in range(500):
        with window.slot() as epoch:
            window.answered(epoch, 200)
    assert window.limit == 4 and changes == [True, False, False]


def test_no_answer_changes_nothing_and_a_4xx_is_an_answer():
    window = AdaptiveWindow(2)
    with window.slot() as epoch:
        window.answered(epoch, 429)
    with window.slot() as epoch:
        window.answered(epoch, None)  # timeout, connection reset
    assert window.limit == 1
    for _ in range(PROBE_ROUNDS):
        with window.slot() as epoch:
            window.answered(epoch, 404)
    assert window.limit == 2


def test_retry_after_holds_back_every_new_call():
    window = AdaptiveWindow(4)
    with window.slot() as epoch:
        window.answered(epoch, 429, retry_after=0.6)
    admitted = threading.Event()

    def call():
        with window.slot():
            admitted.set()

    thread = threading.Thread(target=call)
    thread.start()
    assert not admitted.wait(0.4)  # a free place, but the Retry-After runs
    assert admitted.wait(3)
    thread.join(2)


def test_the_window_needs_a_place():
    with pytest.raises(ValueError):
        AdaptiveWindow(0)
