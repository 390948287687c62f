"""Two-process parse of a large customers.xml on disk, for ``normalize_customers``.

It sits on top of parsing and mapping: each half is read by ``parse.extract_raw`` and, when asked,
mapped by ``frames.map_half``; this module owns the cut, the worker process, the Arrow IPC wire
format a mapped half travels in (``part_to_payload`` / ``part_from_payload``) and joining the halves.

The file is cut at a root-level customer start tag (any spelling) found by a byte scan near the
middle:

* half A = bytes ``[0, cut)`` + ``</root>``, parsed by a spawned worker process;
* half B = an XML declaration with the file's encoding + the root start tag (verbatim, so namespace
  declarations carry over) + bytes ``[cut, end)``, parsed here at the same time.

The cut is valid exactly when half A is well-formed: ``cut`` lies before a ``<``, so ``</root>``
appended there only closes the document if the prefix ended at depth 1 outside any markup
(comment, CDATA, PI, tag); then half B's content is the rest of the original root element. Half B
has no line breaks before the cut, so its line numbers are shifted by the line breaks before it.

When ``normalize_customers`` asks for it (no extra customer data), each half is also *mapped* by
its own process (``frames.map_half``). The last occurrence of a CustomerCode wins, so half B
never depends on half A: this process sends the codes half B keeps to the worker, which drops its
customers with those codes, then sends back its mapped frames as Arrow IPC bytes; only the
concatenation is left. (The worker, which first has to start an interpreter, gets the smaller half.)

Both halves list their customers in document order whatever the spelling of the element names, so
the last occurrence of a code is the last one in the file even when the two occurrences are spelled
differently and lie on either side of the cut.

Anything unexpected -- a malformed half, a text node beyond ``lib.xml.TEXT_NODE_LIMIT`` in either
half, an encoding that is not ASCII-compatible, a worker that fails -- returns None and the caller
runs the ordinary single pass (``parse.read_raw``), so results and error messages are exactly those
of the single pass.
"""

from __future__ import annotations

import io
import mmap
import json
import os
import pickle
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from .columns import (ADDRESS_COLUMNS, BOOLEAN_COLUMNS, CONTACT_COLUMNS, CUSTOMER_COLUMNS, DASHBOARD_COLUMNS,
                      FLOAT_COLUMNS, REJECTED_COLUMNS)
from .frames import Part, kept_codes, map_half
from .mapping import arrow_to_objects
from .parse import extract_raw
from .schema import RawCustomers

PARALLEL_MIN_BYTES = 32 * 2**20     # smaller files: one process (spawning costs ~0.3 s)
CUT_FRACTION = 0.45                 # share of the bytes (half A) parsed and mapped by the worker

_ASCII_COMPATIBLE = {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1", "latin-1", "iso-8859-15",
                     "windows-1252", "cp1252"}
_HEAD = re.compile(rb"(?:\xef\xbb\xbf)?(?:<\?xml(?P<decl>[^<>]*)\?>)?(?:\s+|<!--(?:(?!-->).)*-->)*"
                   rb"(?P<root><(?P<name>customers)(?:\s[^<>]*)?>)", re.S | re.I)
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_CUSTOMER_TAG = re.compile(rb"<[Cc][Uu][Ss][Tt][Oo][Mm][Ee][Rr][ \t\r\n>/]")    # a start tag, any spelling
_COUNT_CHUNK = 16 * 2**20
# the worker's program (``-m`` would run a second copy of this module: the package has imported it)
_WORKER = "import sys; from monitor_pipeline.customers.split import _worker_main; _worker_main(sys.argv[1:])"


@dataclass
class SplitParts:
    """A large file parsed *and mapped* in two halves: half A by the worker (``part_a``, its big frames
    still Arrow IPC bytes), half B here (``part_b``); ``n_a`` customers and ``lines`` line breaks
    precede half B."""
    part_a: Part
    part_b: Part
    n_a: int
    lines: int


class _Window(io.RawIOBase):
    """Binary stream: ``head``, then bytes ``[start, stop)`` of the file ``f``, then ``tail``."""

    def __init__(self, f, start: int, stop: int | None, head: bytes = b"", tail: bytes = b""):
        f.seek(start)
        self._f, self._left = f, (None if stop is None else stop - start)
        self._head, self._tail = head, tail

    def readable(self):
        return True

    def read(self, size=-1):
        size = 1 << 20 if size is None or size < 0 else size
        if self._head:
            out, self._head = self._head[:size], self._head[size:]
            return out
        if self._left is None or self._left > 0:
            n = size if self._left is None else min(size, self._left)
            out = self._f.read(n)
            if out:
                if self._left is not None:
                    self._left -= len(out)
                return out
            self._left = 0
        out, self._tail = self._tail[:size], self._tail[size:]
        return out


def _plan(stream, prefix: bytes, spelling: str) -> tuple[int, int, bytes, bytes] | None:
    """(cut, line breaks before cut, half B's head, half A's tail) or None when the file is not split."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", spelling):
        return None                                # namespaced or odd spelling: keep it simple
    try:
        size = os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    if size < PARALLEL_MIN_BYTES or _cpus() < 2:
        return None
    head = _HEAD.match(prefix)
    if head is None:
        return None
    decl = head.group("decl") or b""
    enc = _ENCODING.search(decl)
    if enc and enc.group(1).decode("ascii").lower() not in _ASCII_COMPATIBLE:
        return None
    b_head = (b'<?xml version="1.0" encoding="' + enc.group(1) + b'"?>' if enc else b"") + head.group("root")
    a_tail = b"</" + head.group("name") + b">"
    with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        found = _CUSTOMER_TAG.search(mm, max(int(size * CUT_FRACTION), head.end()))
        if found is None:
            return None
        cut = found.start()
        lines = 0
        for at in range(0, cut, _COUNT_CHUNK):
            chunk = mm[at:min(at + _COUNT_CHUNK, cut)]
            lines += chunk.count(b"\n")
            if b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n"):
                return None                        # lone CRs: let libxml2 count the lines
    return cut, lines, b_head, a_tail


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _worker_main(argv: list[str]) -> None:
    """The worker, ``python -c _WORKER PATH CUT TAIL_HEX TAGS_JSON [OPTIONS_JSON]``: parse half A (bytes
    ``[0, CUT)`` of PATH, then TAIL) and write the pickled RawCustomers to stdout, or None when it
    cannot be used.

    With OPTIONS_JSON (mapping options, see ``frames.map_half``) half A is also mapped: once the
    mapping needs them it reads from stdin the CustomerCodes that half B keeps (its customers with
    those codes are duplicates: the last occurrence wins), and writes to stdout the mapped half as
    Arrow IPC bytes (``part_to_payload``, plus ``n`` = its number of customers) or None."""
    path, cut, tail, tags = argv[0], int(argv[1]), bytes.fromhex(argv[2]), set(json.loads(argv[3]))
    options = json.loads(argv[4]) if len(argv) > 4 else None
    out = sys.stdout.buffer
    try:
        with open(path, "rb") as f:
            raw = extract_raw(lambda: _Window(f, 0, cut, tail=tail), tags)
    except Exception:                              # noqa: BLE001 - any problem: the parent falls back
        raw = None
    if options is None or raw is None:
        pickle.dump(raw, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        return

    def codes_b():
        codes = pickle.load(sys.stdin.buffer)
        if codes is None:
            raise _WorkerFailed
        return codes
    try:
        n = raw.customers.num_rows
        payload = part_to_payload(map_half(raw, options, drop_codes=codes_b))
        payload["n"] = n
    except Exception:                              # noqa: BLE001 - the parent falls back
        payload = None
    del raw
    pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def _start_worker(path: Path, cut: int, tail: bytes, tags: set, options: dict | None = None) -> subprocess.Popen:
    # a fresh interpreter (not multiprocessing): no fork after threads (Dagster), and the caller's
    # __main__ is never re-imported
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    extra = [] if options is None else [json.dumps(options)]
    return subprocess.Popen([sys.executable, "-c", _WORKER, str(path), str(cut),
                             tail.hex(), json.dumps(sorted(tags)), *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)


class _WorkerFailed(Exception):
    pass


def _shift(table: pa.Table, column: str, by: int) -> pa.Table:
    if not by:
        return table
    i = table.schema.get_field_index(column)
    return table.set_column(i, table.schema.field(i), pc.add(table.column(i), pa.scalar(by, pa.int64())))


def _send(worker: subprocess.Popen, codes) -> threading.Thread:
    """Write ``codes`` to the worker's stdin from a thread (they may not fit the pipe before it reads)."""
    data = pickle.dumps(codes, protocol=pickle.HIGHEST_PROTOCOL)

    def send():
        try:
            worker.stdin.write(data)
            worker.stdin.close()                   # the only message
        except Exception:                          # noqa: BLE001 - a worker that died: its result is unusable
            pass
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def parse_split(path: Path, stream, prefix: bytes, spelling: str, tags: set, map_options: dict | None = None):
    """RawCustomers of the whole file parsed as two halves in two processes, or None (see module doc).

    With ``map_options`` (see ``frames.map_half``): a :class:`SplitParts`, each half mapped in its own
    process. This process takes the second half (B): the last occurrence of a CustomerCode wins, so B
    never waits for the other half; it sends its codes to the worker, which drops its customers with
    those codes."""
    plan = _plan(stream, prefix, spelling)
    if plan is None:
        return None
    cut, lines, b_head, a_tail = plan
    try:
        worker = _start_worker(path, cut, a_tail, tags, map_options)
    except OSError:
        return None
    sender = None
    try:
        try:
            raw_b = extract_raw(lambda: _Window(stream, cut, None, head=b_head), tags)
        except etree.XMLSyntaxError:
            return None
        if map_options is not None:
            sender = _send(worker, kept_codes(raw_b.customers))
            part_b = map_half(raw_b, map_options)
            del raw_b
            try:
                payload = pickle.load(worker.stdout)
                n_a = int(payload.pop("n"))
                part_a = part_from_payload(payload)
            except Exception:                      # noqa: BLE001 - a dead or broken worker: fall back
                return None
            return SplitParts(part_a, part_b, n_a, lines)
        try:
            raw_a = pickle.load(worker.stdout)
        except Exception:                          # noqa: BLE001
            return None
        if not isinstance(raw_a, RawCustomers):
            return None
        n_a = raw_a.customers.num_rows
        cust_b = _shift(_shift(raw_b.customers, "@pos", n_a), "@line", lines)
        return RawCustomers(pa.concat_tables([raw_a.customers, cust_b]),
                            pa.concat_tables([raw_a.addresses, _shift(raw_b.addresses, "@pos", n_a)]),
                            pa.concat_tables([raw_a.contacts, _shift(raw_b.contacts, "@pos", n_a)]))
    finally:
        if worker.poll() is None:
            worker.kill()
        if sender is not None:
            sender.join()
        for pipe in (worker.stdout, worker.stdin):
            if pipe is not None and not pipe.closed:
                try:
                    pipe.close()
                except OSError:
                    pass
        worker.wait()


# --- transport of a mapped half between processes (Arrow IPC) -------------------------------------

def _schema(columns: list[str], binary: set[str] = frozenset(), ints: dict | None = None):
    fields = []
    for col in columns:
        if col in BOOLEAN_COLUMNS:
            t = pa.bool_()
        elif col in FLOAT_COLUMNS:
            t = pa.float64()
        elif col in binary:
            t = pa.binary()
        elif ints and col in ints:
            t = ints[col]
        else:
            t = pa.string()
        fields.append(pa.field(col, t))
    return pa.schema(fields)


def _frame_specs():
    return {
        "customers": _schema(CUSTOMER_COLUMNS),
        "addresses": _schema(ADDRESS_COLUMNS),
        "contacts": _schema(CONTACT_COLUMNS),
        "dashboards": _schema(DASHBOARD_COLUMNS, binary={"Dashboard"}),
        "rejected": _schema(REJECTED_COLUMNS, ints={"Position": pa.int64(), "Line": pa.int64()}),
        "dups": _schema(["customercode", "@pos", "@line"], ints={"@pos": pa.int64(), "@line": pa.int64()}),
        "warnings": _schema(["CustomerCode", "Field", "Message", "stage"], ints={"stage": pa.int64()}),
    }


def part_to_payload(part: Part) -> dict:
    """The part as Arrow IPC stream bytes per frame (compact and fast to pickle)."""
    out = {"source_format": part.source_format}
    for name, schema in _frame_specs().items():
        frame = getattr(part, name)
        setattr(part, name, None)
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        del frame
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(table)
        del table
        out[name] = sink.getvalue().to_pybytes()
    return out


def _to_frame(table, columns: list[str]) -> pd.DataFrame:
    out = {}
    for col in columns:
        arr = table.column(col)
        if col in BOOLEAN_COLUMNS:
            out[col] = pd.array(arr.to_numpy(zero_copy_only=False), dtype="boolean")
        elif col in FLOAT_COLUMNS:
            out[col] = arr.to_numpy(zero_copy_only=False).astype("float64")
        else:
            out[col] = pd.Series(arrow_to_objects(arr), dtype=object)
    return pd.DataFrame(out, columns=columns)


def part_from_payload(payload: dict) -> Part:
    """The inverse of ``part_to_payload``; the four big frames come as functions that decode them
    (and drop their bytes) when called."""

    def table(name):
        data = payload.pop(name)
        return pa.ipc.open_stream(data).read_all()

    frames = {}
    t = table("rejected")
    frames["rejected"] = pd.DataFrame({
        "CustomerCode": pd.Series(t.column("CustomerCode").to_numpy(zero_copy_only=False), dtype=object),
        "Position": t.column("Position").to_numpy().astype("int64"),
        "Line": pd.array(t.column("Line").to_pandas(), dtype="Int64"),
        "Reason": pd.Series(t.column("Reason").to_numpy(zero_copy_only=False), dtype=object)},
        columns=REJECTED_COLUMNS)
    frames["dups"] = table("dups").to_pandas()
    t = table("warnings")
    frames["warnings"] = pd.DataFrame({
        "CustomerCode": pd.Series(t.column("CustomerCode").to_numpy(zero_copy_only=False), dtype=object),
        "Field": pd.Series(t.column("Field").to_numpy(zero_copy_only=False), dtype=object),
        "Message": pd.Series(t.column("Message").to_numpy(zero_copy_only=False), dtype=object),
        "stage": t.column("stage").to_numpy()})
    for name in ("customers", "addresses", "contacts", "dashboards"):
        frames[name] = lambda name=name: _to_frame(table(name), _frame_specs()[name].names)
    return Part(source_format=payload["source_format"], **frames)
