"""End-to-end sync benchmark: customers.xml of N customers in a local folder (the embedded default's
transport) → ``customer_sync_job`` → the App4Sales sandbox in its own process over HTTP.

    .venv/bin/python -m benchmarks.bench_sync [--customers 100000]

Prints the first (full) sync, the unchanged re-sync (the frames of the last parse are reused) and a
re-sync after one customer changed (parsed again): seconds, customers sent, HTTP requests.
Targets (issue 4): first sync ≤ 60 s, unchanged re-sync ≤ 6 s with 0 customers sent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.generate import cached

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_sandbox(db: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "monitor_pipeline.sandbox", "serve", "--host", "127.0.0.1",
                                "--port", str(port), "--db", str(db), "--user", "bench:bench-pw"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/bench/api/app4sales/customers?take=1", auth=("bench", "bench-pw"),
                         timeout=1)
            return process
        except requests.RequestException:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the sandbox did not start")


def _run(job, instance, label: str) -> dict:
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, raise_on_error=True)
    seconds = time.perf_counter() - started
    meta = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() == "customer_upsert_batches":
            meta = {k: v.value for k, v in materialization.metadata.items()}
    steps = {}
    for event in result.all_events:
        if event.is_step_success:
            steps[event.step_key] = event.event_specific_data.duration_ms / 1000
    return {"run": label, "seconds": seconds, "sent": meta.get("sent"), "unchanged": meta.get("unchanged"),
            "requests": meta.get("requests"), "steps": steps}


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
    port = _free_port()
    sandbox = _start_sandbox(work / "sandbox.sqlite", port)
    os.environ.update({
        "MONITOR_FTP_URL": folder.as_uri(), "MONITOR_STABILITY_SECONDS": "0",
        "MONITOR_STORAGE_DIR": str(work / "storage"), "MONITOR_STATE_DIR": str(work / "state"),
        "APP4SALES_URL": f"http://127.0.0.1:{port}/bench/api/app4sales/", "APP4SALES_USERNAME": "bench",
        "APP4SALES_PASSWORD": "bench-pw", "MONITOR_SYNC_SCHEDULE": "off",
    })
    os.environ.pop("MONITOR_TENANTS_FILE", None)
    try:
        import dagster as dg

        from monitor_pipeline.definitions import build_defs

        job = build_defs().resolve_job_def("customer_sync_job")
        with dg.DagsterInstance.ephemeral() as instance:
            rows = [_run(job, instance, "first sync"), _run(job, instance, "unchanged re-sync")]
            _change_one_customer(folder / "customers.xml")
            rows.append(_run(job, instance, "1 changed, re-sync"))
    finally:
        sandbox.terminate()
        sandbox.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nEnd-to-end customer_sync_job, {args.customers:,} customers (nested format), sandbox in its own process")
    print(f"{'run':<18} {'seconds':>8} {'sent':>8} {'unchanged':>10} {'requests':>9}  steps (s)")
    for row in rows:
        steps = ", ".join(f"{k} {v:.1f}" for k, v in row["steps"].items())
        print(f"{row['run']:<18} {row['seconds']:>8.1f} {row['sent']:>8} {row['unchanged']:>10} {row['requests']:>9}  {steps}")
    print("targets: first sync ≤ 60 s; unchanged re-sync ≤ 6 s with 0 customers sent")


if __name__ == "__main__":
    main()
