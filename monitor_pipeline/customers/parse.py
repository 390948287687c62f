"""Hardened streaming parse of customers.xml into raw (untrimmed, unmapped) Arrow tables.

Security (SPEC §4): entities are never resolved, nothing is fetched from the network, no DTD is
loaded, ``huge_tree`` stays off, and any DOCTYPE (hence any DTD or entity declaration) is refused
before the first customer is read. Memory is bounded by the extracted values, not by the file:
customer elements are dropped from the tree every ``_DROP_EVERY`` customers and the extracted
values are moved into compact Arrow tables every ``_FLUSH_EVERY`` customers.

Size limits are libxml2's without ``huge_tree`` (see :mod:`monitor_pipeline.lib.xml`): in particular
a text node of more than ``TEXT_NODE_LIMIT`` (10,000,000) bytes -- a 12 MB ``<customernote>``, or
that much white space between two customers -- fails the run, with a message naming the file and
the line where the text passes the limit. No Monitor value is that long, the frames never hold
one, and the limit bounds what one value costs in memory.

Customers are listed in document order, whatever the spelling of their element names (SPEC §3:
``<customer>``, ``<CUSTOMER>`` and ``<cUstomer>`` are the same), so the last occurrence of a
duplicated CustomerCode is the last one in the file.

Documents without comments, CDATA, namespaces and the like (see :mod:`.scan`) are read by a
vectorized scan of the bytes, checked by libxml2; the others by the loop here: plain Python over
each finished ``<customer>`` element, one dict lookup for the (case-insensitive) name and one
``.text`` read per element. Both give the same tables, and the same verdict: the scan leaves to the
loop every document it might read otherwise (the loop then reads or refuses it).

This module owns the reading of one document: open it and check its prologue (``open_document``),
then one streaming pass into raw tables (``read_raw``); ``parse_customers_xml`` does both. The tables'
schemas and field codes are :mod:`.schema`'s; whether a large file is read in two processes instead
is decided above this module (``normalize_customers``, :mod:`.split`).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
from lxml import etree

from monitor_pipeline.lib.xml import TEXT_NODE_LIMIT

from .columns import ADDRESS_FIELDS, CONTACT_FIELDS, CUSTOMER_FIELDS
from .errors import CustomersXmlError
from .scan import scan_customers
from .schema import (ADDRESS_SCHEMA, ADDRESSES, CONTACT_SCHEMA, CUSTOMER_SCHEMA, PARSER_OPTIONS, UNKNOWN,
                     XML_VALUES, RawCustomers, field_code, inner_xml, raw_tables)

_PEEK_CHUNK = 64 * 1024
_PEEK_LIMIT = 1024 * 1024
_DROP_EVERY = 512
_FLUSH_EVERY = 20000
_XML = -10          # codes <= _XML: an XML-valued field at column (_XML - code)


def _canon(tag) -> str:
    """Lower-case local name of an element/attribute name."""
    tag = str(tag)
    if tag.startswith("{"):
        tag = tag.rpartition("}")[2]
    return tag.lower()


def _layout(fields: list[str], offset: int) -> dict[str, int]:
    return {f: i + offset for i, f in enumerate(fields)}


class _Extractor:
    """Collects raw values per customer as fixed-layout rows; flushes them to Arrow tables.

    A row is a list: customers ``[pos, line, nodes, *CUSTOMER_FIELDS]``, addresses/contacts
    ``[pos, seq, *fields]``. ``codes`` maps each raw tag spelling to its column (learned once).
    """

    def __init__(self):
        self.cust_cols = _layout(CUSTOMER_FIELDS, 3)
        self.addr_cols = _layout(ADDRESS_FIELDS, 2)
        self.cont_cols = _layout(CONTACT_FIELDS, 2)
        self.codes: dict = {}      # raw customer-child tag -> code
        self.addr_codes: dict = {}
        self.cont_codes: dict = {}
        self.cust: list[list] = []
        self.addr: list[list] = []
        self.cont: list[list] = []
        self.tables: tuple[list, list, list] = ([], [], [])

    @staticmethod
    def _learn(table: dict, cols: dict, tag, containers: bool) -> int:
        name = _canon(tag) if isinstance(tag, str) else ""
        code = field_code(name, cols, containers)
        if code >= 0 and name in XML_VALUES:
            code = _XML - code
        table[tag] = code
        return code

    def customer(self, c, pos: int) -> None:
        codes = self.codes
        row = [None] * (len(self.cust_cols) + 3)
        row[0] = pos
        row[1] = c.sourceline
        seq = 0
        for e in c:
            i = codes.get(e.tag)
            if i is None:
                i = self._learn(codes, self.cust_cols, e.tag, True)
            if i >= 0:
                if row[i] is None:
                    row[i] = e.text
            elif i <= _XML:
                if row[_XML - i] is None:
                    row[_XML - i] = inner_xml(e)
            elif i != UNKNOWN:
                row[2] = True
                seq = self._nodes(e, pos, seq, i == ADDRESSES)
        self.cust.append(row)
        if len(self.cust) >= _FLUSH_EVERY:
            self.flush()

    def _nodes(self, container, pos: int, seq: int, is_address: bool) -> int:
        if is_address:
            codes, cols, out = self.addr_codes, self.addr_cols, self.addr
        else:
            codes, cols, out = self.cont_codes, self.cont_cols, self.cont
        width = len(cols) + 2
        for node in container:
            if not isinstance(node.tag, str):
                continue
            seq += 1
            rec = [None] * width
            rec[0] = pos
            rec[1] = seq
            if is_address:
                kind = node.get("type")
                if kind is None and len(node.attrib):
                    kind = next((v for n, v in node.attrib.items() if _canon(n) == "type"), None)
                rec[2] = kind
            for f in node:
                i = codes.get(f.tag)
                if i is None:
                    i = self._learn(codes, cols, f.tag, False)
                if i >= 0:
                    if rec[i] is None:
                        rec[i] = f.text
                elif i <= _XML and rec[_XML - i] is None:
                    rec[_XML - i] = inner_xml(f)
            out.append(rec)
        return seq

    def flush(self) -> None:
        for rows, schema, out in ((self.cust, CUSTOMER_SCHEMA, self.tables[0]),
                                  (self.addr, ADDRESS_SCHEMA, self.tables[1]),
                                  (self.cont, CONTACT_SCHEMA, self.tables[2])):
            if rows:
                columns = list(zip(*rows))
                out.append(pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, schema)],
                                                schema=schema))
                rows.clear()

    def result(self) -> RawCustomers:
        self.flush()
        return raw_tables(self.tables)


class _Prefixed(io.RawIOBase):
    """A binary stream that first returns ``prefix`` and then the rest of ``stream``."""

    def __init__(self, prefix: bytes, stream):
        self._prefix, self._stream = memoryview(prefix), stream

    def readable(self):
        return True

    def read(self, size=-1):
        if len(self._prefix):
            n = len(self._prefix) if size is None or size < 0 else min(size, len(self._prefix))
            out, self._prefix = bytes(self._prefix[:n]), self._prefix[n:]
            return out
        return self._stream.read(size)


def _doctype_line(prefix: bytes) -> int | None:
    for enc in ("utf-8", "utf-16-le", "utf-16-be"):
        at = prefix.find("<!DOCTYPE".encode(enc))
        if at >= 0:
            return prefix[:at].count("\n".encode(enc)) + 1
    return None


_HUGE_HINT = re.compile(r",? (?:try|use) XML_PARSE_HUGE(?: option)?\s*")


def _syntax_error(name: str, exc: etree.XMLSyntaxError) -> CustomersXmlError:
    line, msg = exc.lineno, exc.msg or str(exc)
    entries = [e for e in (exc.error_log or []) if e.line] if getattr(exc, "error_log", None) is not None else []
    if entries and (not line or msg.startswith("no element found")):
        first = entries[0]    # lxml's summary can be misleading (e.g. undeclared entities); the log is not
        line, msg = first.line, first.message
    line = line or (exc.position[0] if exc.position else 0) or 1
    if exc.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:       # a limit of lib.xml (no huge_tree), not a typo
        if "Text node too long" in msg:
            return CustomersXmlError(name, line, f"a text longer than {TEXT_NODE_LIMIT:,} bytes (the most the "
                                                 "hardened XML parser accepts in one text node; docs/customers-xml.md)")
        return CustomersXmlError(name, line, f"beyond a limit of the hardened XML parser (docs/customers-xml.md): "
                                             f"{_HUGE_HINT.sub('', msg)}")
    return CustomersXmlError(name, line, f"malformed XML: {msg}")


def _peek(stream, name: str) -> tuple[bytes, str | None]:
    """Validate the prologue and root (no DOCTYPE, root ``customers``, not empty) from the first bytes.

    Returns the bytes consumed and the spelling of the first ``customer`` element (or None).
    """
    etree.clear_error_log()  # libxml2's log is per thread and keeps earlier parses' errors (_syntax_error reads it)
    parser = etree.XMLPullParser(events=("start",), **PARSER_OPTIONS)
    consumed: list[bytes] = []
    total, root_seen = 0, False
    while total < _PEEK_LIMIT:
        chunk = stream.read(_PEEK_CHUNK)
        if not chunk:
            try:
                parser.close()
            except etree.XMLSyntaxError as exc:
                if total == 0 or not b"".join(consumed).strip(b" \t\r\n\x00\xef\xbb\xbf\xfe\xff"):
                    raise CustomersXmlError(name, 1, "the file is empty") from None
                raise _syntax_error(name, exc) from None
            break
        consumed.append(chunk)
        total += len(chunk)
        try:
            parser.feed(chunk)
            events = list(parser.read_events())
        except etree.XMLSyntaxError as exc:
            prefix = b"".join(consumed)
            if b"<!DOCTYPE" in prefix or "<!DOCTYPE".encode("utf-16-le") in prefix \
                    or "<!DOCTYPE".encode("utf-16-be") in prefix:
                raise CustomersXmlError(name, _doctype_line(prefix) or exc.lineno,
                                        "DOCTYPE/DTD/entity declarations are not allowed") from None
            raise _syntax_error(name, exc) from None
        for _, el in events:
            if not root_seen:
                root_seen = True
                info = el.getroottree().docinfo
                if info.internalDTD is not None or info.externalDTD is not None or info.system_url \
                        or info.public_id or _doctype_line(b"".join(consumed)):
                    raise CustomersXmlError(name, _doctype_line(b"".join(consumed)) or el.sourceline,
                                            "DOCTYPE/DTD/entity declarations are not allowed")
                if _canon(el.tag) != "customers":
                    raise CustomersXmlError(name, el.sourceline,
                                            f"the root element is <{el.tag}>, expected <customers>")
            elif _canon(el.tag) == "customer":
                return b"".join(consumed), el.tag
    return b"".join(consumed), None


def _source(source) -> tuple[str, object, bool]:
    """(display name, binary stream, we-opened-it)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>", io.BytesIO(bytes(source)), True
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            return str(path), open(path, "rb"), True
        except OSError as exc:
            raise CustomersXmlError(str(path), None, f"cannot be read: {exc.strerror or exc}") from None
    return str(getattr(source, "name", "<stream>")), source, False


def _extract(stream, tags: set) -> RawCustomers:
    """Extract the root-level customers of ``stream``, in document order.

    The iterparse filter reports the customers spelled as in ``tags`` (the first customer's spelling and
    the usual ones); a customer spelled otherwise is found among the root's children before the next
    one reported (or after the last) and extracted in its place, so spelling never changes the order."""
    etree.clear_error_log()  # only this parse's errors in the log _syntax_error reads
    extractor = _Extractor()
    pos = since_drop = 0
    root = done = None            # done: the root child extracted last (None: before the first child)
    parse = etree.iterparse(stream, events=("end",), tag=sorted(tags), **PARSER_OPTIONS)
    for _, el in parse:
        parent = el.getparent()
        if root is None:
            root = el.getroottree().getroot()
        if parent is not root:        # a <customer> nested somewhere else: not a customer
            continue
        if el.getprevious() is not done:
            pos = _spelled_otherwise(el, done, extractor, pos)
        pos += 1
        extractor.customer(el, pos)
        done = el
        since_drop += 1
        if since_drop >= _DROP_EVERY:
            # only up to this customer: the parser may already be building later ones
            del root[:root.index(el) + 1]
            done, since_drop = None, 0
    if root is None:
        root = parse.root             # no customer spelled as in ``tags``
    if root is not None:
        for child in (done.itersiblings() if done is not None else root):
            if isinstance(child.tag, str) and _canon(child.tag) == "customer":
                pos += 1
                extractor.customer(child, pos)
    return extractor.result()


def _spelled_otherwise(el, done, extractor: _Extractor, pos: int) -> int:
    """Extract the customers among the root children between ``done`` and ``el`` (spelled in a way the
    tag filter does not know), in document order; returns the last position given."""
    between = []
    child = el.getprevious()
    while child is not None and child is not done:
        between.append(child)
        child = child.getprevious()
    for child in reversed(between):
        if isinstance(child.tag, str) and _canon(child.tag) == "customer":
            pos += 1
            extractor.customer(child, pos)
    return pos


def extract_raw(open_stream, tags: set) -> RawCustomers:
    """``_extract`` of the stream ``open_stream()`` returns (called again for a second read): by the
    vectorized scan (:mod:`.scan`) when the document allows it, else by the lxml loop."""
    raw = scan_customers(open_stream())
    if raw is not None:
        return raw
    return _extract(open_stream(), tags)


@dataclass
class Document:
    """A customers.xml opened by ``open_document``, its prologue and root checked: ``prefix`` holds the
    bytes read for that, ``spelling`` the first customer's element name (None: no customer), ``path``
    the file when the source was a path."""
    name: str
    stream: BinaryIO
    prefix: bytes
    spelling: str | None
    path: Path | None

    @property
    def tags(self) -> set:
        """The spellings of ``customer`` the lxml loop's tag filter reports (see ``_extract``)."""
        return {self.spelling or "customer", "customer", "Customer", "CUSTOMER"}

    def rewind(self) -> None:
        """Back to the end of ``prefix`` in a file opened from ``path``, after another reader of the
        stream (the two-process parse of :mod:`.split`) gave up."""
        self.stream.seek(len(self.prefix))


@contextmanager
def open_document(source: str | Path | BinaryIO | bytes) -> Iterator[Document]:
    """Open ``source`` (a path, bytes or a binary stream) and check its prologue and root (``_peek``);
    a stream this opened is closed on leaving."""
    name, stream, owned = _source(source)
    try:
        prefix, spelling = _peek(stream, name)
        path = Path(source) if isinstance(source, (str, os.PathLike)) else None
        yield Document(name, stream, prefix, spelling, path)
    finally:
        if owned:
            stream.close()


def read_raw(doc: Document) -> RawCustomers:
    """The raw tables of ``doc`` in one streaming pass from the end of its prefix (by the scan or the
    loop, see ``extract_raw``); a syntax error is raised as a ``CustomersXmlError``."""
    stream, prefix, tags = doc.stream, doc.prefix, doc.tags
    try:
        if _seekable(stream):
            origin = stream.tell() - len(prefix)

            def reopen():
                stream.seek(origin)
                return stream
            return extract_raw(reopen, tags)
        return _extract(_Prefixed(prefix, stream), tags)
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(doc.name, exc) from None


def parse_customers_xml(source: str | Path | BinaryIO | bytes) -> tuple[RawCustomers, str]:
    """Parse ``source`` (a path, bytes or a binary stream) into raw tables in one streaming pass;
    returns (raw, display name)."""
    with open_document(source) as doc:
        return read_raw(doc), doc.name


def _seekable(stream) -> bool:
    try:
        return bool(stream.seekable()) and stream.tell() >= 0
    except (AttributeError, OSError, ValueError):
        return False
