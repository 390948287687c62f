"""Benchmark of ``normalize_customers`` against a bare hardened ``iterparse`` pass and ``pandas.read_xml``.

    .venv/bin/python -m benchmarks.bench_normalize [--sizes 10000,100000,1000000] [--folder bench_data] [--repeat 3]

Every measurement runs in a fresh subprocess (peak RSS = that process's ru_maxrss), timed from
after its imports (a running code location has pandas and lxml loaded; the split worker's own
interpreter start is inside the time). The bare pass uses the same hardened parser options,
filters ``customer`` end events, counts and clears them.
``pandas.read_xml`` (flat files only: it cannot read the nested format's children) is skipped at
1M customers, where it needs many GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from .generate import cached

READ_XML_LIMIT = 100_000


def _worker(kind: str, path: str) -> None:
    # the clock starts after the imports, for every kind: a running code location has them loaded
    if kind == "bare":
        from lxml import etree

        from monitor_pipeline.customers.parse import PARSER_OPTIONS
        started = time.perf_counter()
        n = 0
        for _, el in etree.iterparse(path, events=("end",), tag="customer", **PARSER_OPTIONS):
            n += 1
            el.clear()
    elif kind == "read_xml":
        import pandas as pd
        started = time.perf_counter()
        n = len(pd.read_xml(path, xpath="/customers/customer", parser="lxml", dtype=str))
    else:
        from monitor_pipeline.customers import normalize_customers
        started = time.perf_counter()
        n = len(normalize_customers(path).customers)
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024   # the split-parse worker
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb, "child_mb": child_mb, "n": n}))


def measure(kind: str, path, repeat: int = 1) -> dict:
    """The median time (and largest RSS) of ``repeat`` runs, each in a fresh process."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_normalize", "--worker", kind, str(path)],
                             check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["seconds"])
    median = dict(runs[len(runs) // 2])
    median["rss_mb"] = max(r["rss_mb"] for r in runs)
    median["child_mb"] = max(r["child_mb"] for r in runs)
    return median


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--folder", default="bench_data")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement below 1M customers (median)")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(*args.worker)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows, per_customer = [], {}
    for n in sizes:
        for nested in (False, True):
            path = cached(args.folder, n, nested=nested)
            repeat = args.repeat if n < 1_000_000 else 1
            bare = measure("bare", path, repeat)
            norm = measure("normalize", path, repeat)
            fmt = "nested" if nested else "flat"
            read_xml = None
            if not nested and n <= READ_XML_LIMIT:
                read_xml = measure("read_xml", path, repeat)
            per_customer[(fmt, n)] = norm["seconds"] / n
            rows.append((fmt, n, path.stat().st_size / 1e6, norm["seconds"], bare["seconds"],
                         norm["seconds"] / bare["seconds"],
                         f"{norm['seconds'] / read_xml['seconds']:.2f}x" if read_xml else
                         ("n/a (nested)" if nested else "skipped (1M)"),
                         norm["rss_mb"], norm.get("child_mb", 0), n / norm["seconds"]))
    header = (f"{'file':<7} {'customers':>9} {'MB':>7} {'normalize s':>11} {'bare s':>7} {'vs bare':>8} "
              f"{'vs read_xml':>13} {'peak RSS MB':>11} {'worker MB':>9} {'customers/s':>11} {'us/cust vs 100k':>15}")
    print(header)
    print("-" * len(header))
    for fmt, n, mb, secs, bare_s, ratio, rx, rss, child, rate in rows:
        base = per_customer.get((fmt, 100_000))
        scale = f"{(secs / n) / base:.2f}x" if base and n != 100_000 else ""
        print(f"{fmt:<7} {n:>9} {mb:>7.0f} {secs:>11.2f} {bare_s:>7.2f} {ratio:>7.2f}x {rx:>13} {rss:>11.0f} {child:>9.0f} "
              f"{rate:>11.0f} {scale:>15}")
    print("targets: 100k nested <= 2.0x bare and <= 400 MB; 1M us/customer <= 1.2x that of 100k")


if __name__ == "__main__":
    main()
