"""Quick timing of the sync logic for 100k customers (not a test):

    .venv/bin/python -m benchmarks.bench_sync_plan [n]   (plan timing with a fake client; `make bench` runs the end-to-end one)

Prints the best of 3 for each step (the machine is shared; the minimum is the honest figure).
"""

import sys
import tempfile
import time

from monitor_pipeline.app4sales.payload import build_payloads
from monitor_pipeline.app4sales.state import SyncState
from monitor_pipeline.app4sales.sync import SyncSettings, plan_sync, run_sync
from monitor_pipeline_tests.app4sales.fakes import FakeClient, make_frames


def best(label, fn, repeat=3):
    times, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(f"{label}: best {min(times):.2f}s wall, {min(cpu):.2f}s CPU (wall runs: {', '.join(f'{x:.2f}' for x in times)})")
    return out


def main(n: int = 100_000) -> None:
    frames = make_frames(n)
    best(f"build_payloads, {n} dicts", lambda: build_payloads(*frames[:3]))
    with tempfile.TemporaryDirectory() as d:
        with SyncState.for_administration(d, "demo") as st:
            best(f"plan, first run (all {n} new)", lambda: plan_sync(
                *frames, index=[], price_lists=None, state=st, administration="demo", settings=SyncSettings()))
        client = FakeClient()
        t = time.perf_counter()
        r = run_sync(client, *frames, state_dir=d, settings=SyncSettings())
        print(f"run_sync first run vs in-memory fake: {time.perf_counter() - t:.2f}s, created={r.created}")
        index = best("fake list_customers (index of 100k)", client.list_customers)
        with SyncState.for_administration(d, "demo") as st:
            p = best("plan, unchanged re-sync", lambda: plan_sync(
                *frames, index=index, price_lists=None, state=st, administration="demo", settings=SyncSettings()))
        assert p.unchanged == n and not p.to_send
        r = best("run_sync unchanged re-sync (incl. fake index)",
                 lambda: run_sync(client, *frames, state_dir=d, settings=SyncSettings()))
        assert r.unchanged == n and r.batches == 0


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
