"""What users run: ``dagster job execute -m monitor_pipeline.definitions -a defs -j customer_sync_job`` (the
code location of workspace.yaml; ``job execute`` takes no ``-w``) from the repo root, on one persistent
DAGSTER_HOME (the repo's dagster.yaml, kept across the runs), a local folder and the sandbox in its own process
(no latency).

    .venv/bin/python -m benchmarks.bench_cli [--customers 100000] [--keep]

Wall seconds (CLI start to exit) of: the first sync of N nested customers, its unchanged re-sync, the bundled
sample's first sync into a fresh administration and its unchanged re-sync; with the upsert's sent/unchanged/
requests, the step seconds and the run's event log entries, read from the instance.
Targets: 100k first sync ≤ 30 s wall; sample unchanged re-sync ≤ 6 s wall. Exits 1 if a run fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.common import (AUTH, REPO, UPSERT_ASSET, base_url, fmt, free_port, metadata_values, start_sandbox,
                               stop_sandbox, sync_env)
from benchmarks.generate import cached

SCRIPTS = ("BeforeUpdateCustomers", "UpdateCustomers")
FIRST_TARGET_S, SAMPLE_RESYNC_TARGET_S = 30.0, 6.0


def _dagster_cli() -> list[str]:
    script = Path(sys.executable).parent / "dagster"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dagster"]


def _location_args() -> list[str]:
    """``-m MODULE -a ATTRIBUTE`` of workspace.yaml's code location (``dagster job execute`` has no ``-w``)."""
    import yaml

    module = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"][0]["python_module"]
    return ["-m", module["module_name"], "-a", module["attribute"]]


def _read_run(home: Path, previous: set[str]) -> dict:
    """The newest run of the instance at ``home`` not in ``previous``: status, upsert metadata, steps, events."""
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        runs = [r for r in instance.get_runs(limit=5) if r.run_id not in previous]
        if not runs:
            return {}
        run = runs[0]
        logs = instance.all_logs(run.run_id)
        steps = {e.dagster_event.step_key: e.dagster_event.event_specific_data.duration_ms / 1000
                 for e in logs if e.dagster_event is not None
                 and e.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS}
        records = instance.fetch_materializations(dg.AssetKey(UPSERT_ASSET), limit=1).records
        meta = {}
        if records and records[0].run_id == run.run_id:
            meta = metadata_values(records[0].asset_materialization.metadata)
        return {"run_id": run.run_id, "status": run.status.value, "steps": steps, "events": len(logs), "meta": meta}


def _execute(label: str, env: dict[str, str], home: Path, log: Path, seen: set[str]) -> dict:
    started = time.perf_counter()
    with open(log, "ab") as out:
        out.write(f"\n===== {label} =====\n".encode())
        out.flush()
        process = subprocess.run([*_dagster_cli(), "job", "execute", *_location_args(), "-j", "customer_sync_job"],
                                 cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    info = _read_run(home, seen)
    if info:
        seen.add(info["run_id"])
    meta = info.get("meta", {})
    ok = process.returncode == 0 and info.get("status") == "SUCCESS"
    return {"run": label, "seconds": seconds, "ok": ok, "rc": process.returncode, "status": info.get("status"),
            "sent": meta.get("sent"), "unchanged": meta.get("unchanged"), "requests": meta.get("requests"),
            "steps": info.get("steps", {}), "events": info.get("events")}


def _setup(work: Path, name: str, port: int, write_xml) -> dict[str, str]:
    """A folder with customers.xml and a fresh administration ``name`` with its scripts registered."""
    folder = work / name / "monitor"
    folder.mkdir(parents=True)
    write_xml(folder / "customers.xml")
    url = base_url(port, name)
    for script in SCRIPTS:
        requests.put(url + f"sandbox/scripts/{script}", auth=AUTH, timeout=10).raise_for_status()
    return sync_env(folder, work / name, url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the work dir (DAGSTER_HOME, CLI log) and print it")
    args = parser.parse_args(argv)
    source = cached(REPO / "bench_data", args.customers, nested=True)
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    log = work / "cli.log"
    port = free_port()
    sandbox = start_sandbox(work / "sandbox.sqlite", port)
    base_env = {k: v for k, v in os.environ.items() if k != "MONITOR_TENANTS_FILE"}
    base_env["DAGSTER_HOME"] = str(home)
    seen: set[str] = set()
    rows = []
    try:
        from monitor_pipeline.samples import write_demo_customers_xml

        big = {**base_env, **_setup(work, "cli-big", port, lambda target: shutil.copy(source, target))}
        sample = {**base_env, **_setup(work, "cli-sample", port, write_demo_customers_xml)}
        n = f"{args.customers:,}"
        for label, env in ((f"{n} first sync", big), (f"{n} unchanged re-sync", big),
                           ("sample first sync", sample), ("sample unchanged", sample)):
            rows.append(_execute(label, env, home, log, seen))
            if not rows[-1]["ok"]:
                break
    finally:
        stop_sandbox(sandbox)
        failed = any(not r["ok"] for r in rows)
        if failed:
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
        if args.keep or failed:
            print(f"work dir kept: {work} (DAGSTER_HOME {home}, CLI output {log})")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n`dagster job execute {' '.join(_location_args())} -j customer_sync_job` (CLI subprocess), persistent DAGSTER_HOME, "
          f"local folder, sandbox in its own process")
    print(f"{'run':<28} {'wall s':>7} {'status':>8} {'sent':>7} {'unchanged':>9} {'requests':>8} {'events':>6}  "
          f"steps (s)")
    for r in rows:
        steps = ", ".join(f"{k} {v:.1f}" for k, v in r["steps"].items())
        outside = r["seconds"] - sum(r["steps"].values())
        print(f"{r['run']:<28} {r['seconds']:>7.1f} {fmt(r['status']):>8} {fmt(r['sent']):>7} {fmt(r['unchanged']):>9} "
              f"{fmt(r['requests']):>8} {fmt(r['events']):>6}  {steps}; outside steps {outside:.1f}")

    def target(index: int, limit: float, what: str) -> str:
        if len(rows) <= index or not rows[index]["ok"]:
            return f"{what} n/a"
        seconds = rows[index]["seconds"]
        return f"{what} {seconds:.1f} s ({'met' if seconds <= limit else 'MISSED'})"

    scale = "" if args.customers == 100_000 else f" (this run: {args.customers:,} customers)"
    print(f"targets: 100k first sync ≤ {FIRST_TARGET_S:.0f} s wall{scale}; "
          f"sample unchanged re-sync ≤ {SAMPLE_RESYNC_TARGET_S:.0f} s wall")
    print(f"  {target(0, FIRST_TARGET_S, 'first sync')}; {target(3, SAMPLE_RESYNC_TARGET_S, 'sample unchanged re-sync')}")
    for r in rows:
        if not r["ok"]:
            print(f"FAILED {r['run']}: exit code {r['rc']}, run status {fmt(r['status'])}")
    return 1 if failed or len(rows) < 4 else 0


if __name__ == "__main__":
    sys.exit(main())
