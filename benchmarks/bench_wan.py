"""Sync against a remote App4Sales: the sandbox in its own process with ``--latency-ms`` per call and at most
``--max-in-flight`` (the cap) calls at once (beyond: 429), ``customer_sync_job`` in process.

    .venv/bin/python -m benchmarks.bench_wan [--customers 20000] [--latency-ms 60] [--cap 6] [--concurrency 1,4,6]

Per MONITOR_UPSERT_CONCURRENCY (a fresh administration each): the first sync's batch phase against the
sequential floor (batches × latency), requests, 429s, every customer stored exactly once, the scripts around
the batches; the unchanged re-sync's upsert step against its floor (index pages × latency), customers sent.
Targets at concurrency = cap: batch phase ≤ 0.35× floor; unchanged re-sync ≤ 0.50× floor, 0 sent.
Exits 1 if a correctness property fails (not for a missed timing target).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import requests

from benchmarks.common import (AUTH, QUIET, REPO, SandboxArgsUnsupported, apply_env, base_url, fmt, free_port,
                               run_job, start_sandbox, stop_sandbox, sync_env)
from benchmarks.generate import cached

SCRIPTS = ("BeforeUpdateCustomers", "UpdateCustomers")
INDEX_PAGE = 1000  # customers per page of GET customers
BATCH_TARGET, RESYNC_TARGET = 0.35, 0.50


def _codes(path: Path) -> list[str]:
    return [m.decode() for m in re.findall(rb"<customercode>([^<]*)</customercode>", path.read_bytes())]


def _stats(base: str, method: str = "GET") -> dict | None:
    """The sandbox's server-wide call statistics (None if this sandbox has no stats route)."""
    try:
        response = requests.request(method, base + "sandbox/stats", auth=AUTH, timeout=10)
    except requests.RequestException:
        return None
    if response.status_code >= 400:
        return None
    return response.json() if response.content else {}


def _events(base: str, after: int = 0) -> list[dict]:
    response = requests.get(base + "sandbox/events", params={"after": after}, auth=AUTH, timeout=60)
    response.raise_for_status()
    return response.json()["items"]


def _detail(event: dict) -> dict:
    return event["detail"] if isinstance(event.get("detail"), dict) else event


def _total(base: str) -> int:
    response = requests.get(base + "customers", params={"take": 1}, auth=AUTH, timeout=60)
    response.raise_for_status()
    return response.json()["total"]


def _stored_once(events: list[dict], codes: list[str], total: int) -> tuple[bool, str]:
    seen = Counter(code for e in events if e["kind"] == "batch" for code in _detail(e).get("codes", []))
    twice = sum(1 for code in codes if seen[code] > 1)
    missing = sum(1 for code in codes if seen[code] == 0)
    ok = not twice and not missing and total == len(codes)
    return ok, "yes" if ok else f"NO ({twice} twice, {missing} never, total {total}/{len(codes)})"


def _scripts_bracket(events: list[dict]) -> tuple[bool, str]:
    batches = [e["id"] for e in events if e["kind"] == "batch"]
    ran = {name: [e["id"] for e in events if e["kind"] == "script" and _detail(e).get("name") == name
                  and _detail(e).get("found", True)] for name in SCRIPTS}
    if not batches:
        return False, "NO (no batch)"
    before, after = ran[SCRIPTS[0]], ran[SCRIPTS[1]]
    ok = bool(before) and bool(after) and max(before) < min(batches) and min(after) > max(batches)
    return ok, "yes" if ok else f"NO (before {before[:3]}, after {after[:3]}, batches {min(batches)}..{max(batches)})"


def _run_concurrency(concurrency: int, port: int, work: Path, folder: Path, codes: list[str],
                     instance, latency: float | None) -> dict:
    admin = f"wan-c{concurrency}"
    base = base_url(port, admin)
    run_dir = work / admin
    # the host's connection slots (default 4) would cap the batches in flight below the concurrency asked for
    apply_env({**sync_env(folder, run_dir, base), "MONITOR_UPSERT_CONCURRENCY": str(concurrency),
               "MONITOR_APP4SALES_HOST_CONNECTIONS": str(concurrency)})
    for name in SCRIPTS:
        requests.put(base + f"sandbox/scripts/{name}", auth=AUTH, timeout=10).raise_for_status()

    from monitor_pipeline.definitions import build_defs

    job = build_defs().resolve_job_def("customer_sync_job")
    cursor = max((e["id"] for e in _events(base)), default=0)
    _stats(base, "DELETE")
    first = run_job(job, instance, "first sync", QUIET)
    first_stats = _stats(base)
    first_events = _events(base, cursor)
    _stats(base, "DELETE")
    resync = run_job(job, instance, "unchanged re-sync", QUIET)
    resync_stats = _stats(base)

    events = _events(base, cursor)
    stored_ok, stored = _stored_once(events, codes, _total(base))
    scripts_ok, scripts = _scripts_bracket(first_events)
    meta, remeta = first["meta"], resync["meta"]
    batches = meta.get("batches")
    floor = batches * latency if latency and batches else None
    phase = meta.get("batch_phase_s")
    refloor = math.ceil(len(codes) / INDEX_PAGE) * latency if latency else None
    reup = remeta.get("duration_s")
    return {
        "concurrency": concurrency, "wall": first["seconds"], "batches": batches, "phase": phase, "floor": floor,
        "ratio": phase / floor if phase is not None and floor else None,
        "requests": meta.get("requests"), "throttled": (first_stats or {}).get("throttled"),
        "peak": (first_stats or {}).get("max_in_flight_seen"),
        "stored_ok": stored_ok, "stored": stored, "scripts_ok": scripts_ok, "scripts": scripts,
        "re_wall": resync["seconds"], "re_upsert": reup, "re_floor": refloor,
        "re_ratio": reup / refloor if reup is not None and refloor else None,
        "re_sent": resync["sent"], "re_requests": remeta.get("requests"), "re_reused": remeta.get("hashes_reused"),
        "re_throttled": (resync_stats or {}).get("throttled"),
    }


def _target(value: float | None, limit: float) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}× ({'met' if value <= limit else 'MISSED'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=60)
    parser.add_argument("--cap", type=int, default=6, help="the sandbox's --max-in-flight")
    parser.add_argument("--concurrency", default="1,4,6", help="MONITOR_UPSERT_CONCURRENCY values, comma-separated")
    args = parser.parse_args(argv)
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    source = cached(REPO / "bench_data", args.customers, nested=True)
    codes = _codes(source)
    work = Path(tempfile.mkdtemp(prefix="bench-wan-"))
    folder = work / "monitor"
    folder.mkdir()
    shutil.copy(source, folder / "customers.xml")
    port = free_port()
    latency: float | None = args.latency_ms / 1000
    try:
        sandbox = start_sandbox(work / "sandbox.sqlite", port,
                                ["--latency-ms", f"{args.latency_ms:g}", "--max-in-flight", str(args.cap)])
    except SandboxArgsUnsupported as exc:
        print(f"this sandbox has no --latency-ms/--max-in-flight ({exc}); running without: floors and ratios n/a",
              file=sys.stderr)
        latency = None
        sandbox = start_sandbox(work / "sandbox.sqlite", port)
    saved_env = dict(os.environ)
    rows = []
    try:
        import dagster as dg

        with dg.DagsterInstance.ephemeral() as instance:
            for concurrency in concurrencies:
                rows.append(_run_concurrency(concurrency, port, work, folder, codes, instance, latency))
    finally:
        stop_sandbox(sandbox)
        shutil.rmtree(work, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved_env)

    latency_text = f"{args.latency_ms:g} ms per call" if latency else "no latency (n/a: the sandbox lacks --latency-ms)"
    print(f"\nWAN sync: {args.customers:,} customers (nested), sandbox in its own process, {latency_text}, "
          f"cap {args.cap} calls in flight (429 beyond)")
    print("first sync:")
    print(f"{'conc':>4} {'wall s':>7} {'batches':>7} {'phase s':>8} {'floor s':>8} {'ratio':>6} {'requests':>8} "
          f"{'429s':>5} {'peak':>5}  {'stored once':<12} scripts around batches")
    for r in rows:
        print(f"{r['concurrency']:>4} {r['wall']:>7.1f} {fmt(r['batches']):>7} {fmt(r['phase'], '.2f'):>8} "
              f"{fmt(r['floor'], '.1f'):>8} {fmt(r['ratio'], '.2f'):>6} {fmt(r['requests']):>8} "
              f"{fmt(r['throttled']):>5} {fmt(r['peak']):>5}  {r['stored']:<12} {r['scripts']}")
    print("unchanged re-sync:")
    print(f"{'conc':>4} {'wall s':>7} {'upsert s':>8} {'floor s':>8} {'ratio':>6} {'requests':>8} {'429s':>5} {'sent':>5}"
          f"  hashes reused")
    for r in rows:
        print(f"{r['concurrency']:>4} {r['re_wall']:>7.1f} {fmt(r['re_upsert'], '.2f'):>8} {fmt(r['re_floor'], '.1f'):>8} "
              f"{fmt(r['re_ratio'], '.2f'):>6} {fmt(r['re_requests']):>8} {fmt(r['re_throttled']):>5} "
              f"{fmt(r['re_sent']):>5}  {fmt(r['re_reused'])}{'' if r['re_sent'] == 0 else '  NOT 0'}")

    print(f"targets: concurrency = cap: batch phase ≤ {BATCH_TARGET:.2f}× floor; "
          f"unchanged re-sync ≤ {RESYNC_TARGET:.2f}× floor, 0 sent")
    at_cap = [r for r in rows if r["concurrency"] == args.cap]
    if not at_cap:
        print(f"  n/a: no run at concurrency = cap ({args.cap})")
    for r in at_cap:
        print(f"  concurrency {r['concurrency']}: batch phase {_target(r['ratio'], BATCH_TARGET)}; "
              f"unchanged re-sync {_target(r['re_ratio'], RESYNC_TARGET)}, sent {fmt(r['re_sent'])}")

    failures = [f"concurrency {r['concurrency']}: {what}" for r in rows for ok, what in (
        (r["stored_ok"], f"stored once: {r['stored']}"), (r["scripts_ok"], f"scripts: {r['scripts']}"),
        (r["re_sent"] == 0, f"unchanged re-sync sent {r['re_sent']}")) if not ok]
    for failure in failures:
        print(f"FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
