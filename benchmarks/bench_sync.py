"""End-to-end sync benchmark: customers.xml of N customers in a local folder (the embedded default's
transport) → ``customer_sync_job`` → the App4Sales sandbox in its own process over HTTP.

    .venv/bin/python -m benchmarks.bench_sync [--customers 100000]

Prints the first (full) sync, the unchanged re-sync (the frames of the last parse are reused) and a
re-sync after one customer changed (parsed again): seconds, customers sent, HTTP requests.
Targets (issue 4): first sync ≤ 60 s, unchanged re-sync ≤ 6 s with 0 customers sent.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from benchmarks.common import REPO, apply_env, base_url, free_port, run_job, start_sandbox, stop_sandbox, sync_env
from benchmarks.generate import cached


def _change_one_customer(path: Path) -> None:
    """Rename the first customer: the file must be parsed again (no frame reuse) and one customer sent."""
    data = path.read_bytes()
    start = data.index(b"<customername>") + len(b"<customername>")
    path.write_bytes(data[:start] + b"Renamed " + data[start:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    args = parser.parse_args(argv)
    source = cached(REPO / "bench_data", args.customers, nested=True)
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    folder = work / "monitor"
    folder.mkdir()
    shutil.copy(source, folder / "customers.xml")
    port = free_port()
    sandbox = start_sandbox(work / "sandbox.sqlite", port)
    apply_env(sync_env(folder, work, base_url(port, "bench")))
    try:
        import dagster as dg

        from monitor_pipeline.definitions import build_defs

        job = build_defs().resolve_job_def("customer_sync_job")
        with dg.DagsterInstance.ephemeral() as instance:
            rows = [run_job(job, instance, "first sync"), run_job(job, instance, "unchanged re-sync")]
            _change_one_customer(folder / "customers.xml")
            rows.append(run_job(job, instance, "1 changed, re-sync"))
    finally:
        stop_sandbox(sandbox)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nEnd-to-end customer_sync_job, {args.customers:,} customers (nested format), sandbox in its own process")
    print(f"{'run':<18} {'seconds':>8} {'sent':>8} {'unchanged':>10} {'requests':>9}  steps (s)")
    for row in rows:
        steps = ", ".join(f"{k} {v:.1f}" for k, v in row["steps"].items())
        print(f"{row['run']:<18} {row['seconds']:>8.1f} {row['sent']:>8} {row['unchanged']:>10} {row['requests']:>9}  {steps}")
    print("targets: first sync ≤ 60 s; unchanged re-sync ≤ 6 s with 0 customers sent")


if __name__ == "__main__":
    main()
