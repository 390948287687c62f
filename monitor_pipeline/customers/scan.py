"""The fast path of the parse: the raw customer tables cut out of the bytes with NumPy and Arrow.

``parse.py``'s lxml loop makes a Python object for every element, which costs about twice the parse
itself. Here libxml2 (hardened, through a parser target that keeps nothing: no tree, about a quarter
of a tree-building parse) checks that the document is well-formed, while the same chunks are cut up
at C level: NumPy finds every ``<``/``>``, a running sum gives each tag its depth, Arrow's dictionary
encoding names the tags, and the values are taken from the buffer as Arrow strings. Python runs per
chunk and per distinct tag text, never per element (the exceptions are values with entity or
character references, and XML-valued fields not written as libxml2 would serialize them).

The result is the exact ``RawCustomers`` of ``parse._extract`` (a test compares the two): customers
in document order, any spelling of the element names. This only holds for documents where every
``<`` starts a tag, so anything else falls back to the lxml loop (``scan_customers`` returns None):
comments, CDATA, processing instructions after the declaration, namespaces, an encoding other than
UTF-8/ASCII or the single-byte ISO-8859-1/-15 and Windows-1252 (converted chunk by chunk; libxml2
checks the bytes as they are), a ``>`` inside an attribute value, a lone CR, and any file libxml2
rejects (the loop then reports the error exactly as before).

The verdict on size is the loop's too (SPEC §4). libxml2 refuses a text node of more than
``lib.xml.TEXT_NODE_LIMIT`` bytes only where it builds a tree, and the checking parser here builds
none; so a chunk with more bytes than that between two tags -- a text node that may be too long
(references and CRLF are longer in the file than in the text) -- goes to the loop, which reads it
or refuses it with its message. Chunks never exceed the limit otherwise, so this costs nothing on
ordinary files, and the scan holds at most about the limit plus a chunk of such a file.

A chunk is cut just before the last customer that starts in it, so every chunk holds whole
customers; memory is bounded by the chunk plus the extracted values.

The schemas, field codes and ``inner_xml`` are those of :mod:`.schema`, which the loop uses too.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lxml import etree

from monitor_pipeline.lib.xml import TEXT_NODE_LIMIT

from .columns import ADDRESS_FIELDS, CONTACT_FIELDS, CUSTOMER_FIELDS
from .schema import (ADDRESS_SCHEMA, ADDRESSES, CONTACT_SCHEMA, CONTACTS, CUSTOMER_SCHEMA, PARSER_OPTIONS, TEXT,
                     UNKNOWN, XML_VALUES, field_code, inner_xml, raw_tables)

CHUNK = 4 << 20
_LT, _GT, _SLASH, _BANG, _QUEST, _NL, _AMP, _CR = 60, 62, 47, 33, 63, 10, 38, 13

_DECL = re.compile(rb"<\?xml(?:\s+[A-Za-z]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8 = {"utf-8", "utf8", "us-ascii", "ascii"}
# single-byte encodings of Windows exports: converted to UTF-8 chunk by chunk (Python's codec)
_SINGLE_BYTE = {"iso-8859-1": "latin-1", "iso8859-1": "latin-1", "latin1": "latin-1", "latin-1": "latin-1",
                "iso-8859-15": "iso8859-15", "iso8859-15": "iso8859-15", "latin9": "iso8859-15",
                "windows-1252": "cp1252", "cp1252": "cp1252"}
_TAG = re.compile(r"<([^\s/>]+)((?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"<]*\"|'[^'<]*'))*)\s*/?>\Z")
_ATTR = re.compile(r"([^\s=]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_REF = re.compile(r"&(?:(amp|lt|gt|quot|apos)|#([0-9]+)|#x([0-9a-fA-F]+));|&")
_PREDEFINED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
# an XML fragment exactly as libxml2 serializes it (so the raw bytes equal ``schema.inner_xml``)
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_CANONICAL = (r"^(?:[^<>&\r]|&(?:amp|lt|gt);|<" + _NAME + r'(?: ' + _NAME + r'="(?:[^<>&"\t\n\r]|&(?:amp|lt|gt|quot);)*")*/?>'
              r"|</" + _NAME + r">)*$")
_EMPTY_PAIR = r"<[A-Za-z_](?:[^<>]*[^/<>])?></"     # <a></a>: libxml2 writes <a/>


def _single_byte_codec(head: bytes) -> str | None:
    """The Python codec of a declared single-byte encoding (see ``_SINGLE_BYTE``), else None."""
    bom = head.startswith(b"\xef\xbb\xbf")
    m = _DECL.match(head, 3 if bom else 0)
    enc = _ENCODING.search(m.group(0)) if m else None
    codec = _SINGLE_BYTE.get(enc.group(1).decode("ascii").lower()) if enc else None
    if codec and bom:
        raise NotSimple("a UTF-8 byte order mark on a single-byte document")
    return codec


class NotSimple(Exception):
    """The document uses something the fast path does not handle; the lxml loop reads it."""


class _Discard:
    """A parser target that keeps nothing: libxml2 only checks the document."""

    def close(self):
        return None


def _unescape(text: str) -> str:
    def ref(m):
        if m.group(1):
            return _PREDEFINED[m.group(1)]
        if m.group(2) or m.group(3):
            return chr(int(m.group(2), 10) if m.group(2) else int(m.group(3), 16))
        raise NotSimple("a bare '&'")
    return _REF.sub(ref, text)


def _inner_by_lxml(fragment: str) -> str:
    """``schema.inner_xml`` of an element with this content (a fragment of the checked document)."""
    return inner_xml(etree.fromstring(("<x>" + fragment + "</x>").encode("utf-8"), etree.XMLParser(**PARSER_OPTIONS)))


class _Entry:
    """What one distinct start-tag text means at each level."""

    __slots__ = ("canon", "type", "cust", "addr", "cont")

    def __init__(self, text: str):
        m = _TAG.match(text)
        if m is None:
            raise NotSimple(f"tag {text[:60]!r}")      # e.g. a '>' inside an attribute value
        name, attrs = m.group(1), m.group(2)
        if ":" in name:
            raise NotSimple("namespaces")
        self.canon, self.type = name.lower(), None
        if attrs.strip():
            pairs = []
            for a in _ATTR.finditer(attrs):
                aname = a.group(1)
                if ":" in aname or aname.startswith("xmlns"):
                    raise NotSimple("namespaces")
                value = a.group(2) if a.group(2) is not None else a.group(3)
                pairs.append((aname, value))
            chosen = next((v for n, v in pairs if n == "type"), None)
            if chosen is None:
                chosen = next((v for n, v in pairs if n.lower() == "type"), None)
            if chosen is not None:      # attribute-value normalization, then references
                chosen = chosen.replace("\r\n", "\n")
                chosen = _unescape(chosen.replace("\t", " ").replace("\n", " ").replace("\r", " "))
            self.type = chosen
        self.cust = field_code(self.canon, _CUST_COLS, containers=True)
        self.addr = field_code(self.canon, _ADDR_COLS, containers=False)
        self.cont = field_code(self.canon, _CONT_COLS, containers=False)


def _columns(fields: list[str]) -> tuple[dict[str, int], np.ndarray]:
    """Column per field name, and which columns hold XML."""
    return {f: i for i, f in enumerate(fields)}, np.array([f in XML_VALUES for f in fields], dtype=bool)


(_CUST_COLS, _CUST_XML), (_ADDR_COLS, _ADDR_XML), (_CONT_COLS, _CONT_XML) = (
    _columns(CUSTOMER_FIELDS), _columns(ADDRESS_FIELDS), _columns(CONTACT_FIELDS))


class _Scanner:
    def __init__(self):
        self.entries: dict[str, _Entry] = {}
        self.validator = etree.XMLParser(target=_Discard(), **PARSER_OPTIONS)
        self.pos = 0            # customers before the current chunk
        self.lines = 0          # line breaks before the current chunk
        self.level = 0          # depth at the start of the current chunk (root = level 0)
        self.first = True
        self.codec: str | None = None    # Python codec of a single-byte document (None: UTF-8)
        self.parts: tuple[list, list, list] = ([], [], [])

    # --- driving ---------------------------------------------------------------------------
    def run(self, stream):
        head = b""
        while b">" not in head and len(head) < 4096:   # the XML declaration (or the first tag) is whole
            more = stream.read(CHUNK)
            if not more:
                break
            head += more
        self.codec = _single_byte_codec(head)
        carry = b""
        raw = head
        while raw:
            self.validator.feed(raw)                  # libxml2 checks the bytes as they are
            carry = self.segment(carry + self._utf8(raw), final=False)
            raw = stream.read(CHUNK)
        if carry:
            self.segment(carry, final=True)
        self.validator.close()
        if self.first or self.level != 0:
            raise NotSimple("no root element")
        tables = raw_tables(self.parts)
        self.parts = ([], [], [])
        pa.default_memory_pool().release_unused()      # the chunks' working memory, back to the system
        return tables

    # --- one chunk ---------------------------------------------------------------------------
    def segment(self, buf: bytes, final: bool) -> bytes:
        """Process the whole customers of ``buf``; return the bytes left for the next chunk."""
        if len(buf) >= 2**31 - 1:
            raise NotSimple("a customer of 2 GB")
        a = np.frombuffer(buf, np.uint8)
        start = self._prolog(buf) if self.first else 0
        body = a[start:]
        ev = np.flatnonzero((body | 2) == _GT) + start       # '<' (0x3C) and '>' (0x3E) only differ in bit 1
        if len(body) > TEXT_NODE_LIMIT and _longest_gap(ev, start, len(buf)) > TEXT_NODE_LIMIT:
            raise NotSimple("a text node that may be longer than the limit")
        is_lt = a[ev] == _LT
        lt_at = np.flatnonzero(is_lt)
        if len(lt_at) and lt_at[-1] == len(ev) - 1:
            lt_at = lt_at[:-1]                     # its '>' is in the next chunk
        if not len(lt_at):
            return b"" if final and not buf[start:].strip() else buf
        if not bool(np.all(~is_lt[lt_at + 1])):
            raise NotSimple("a '<' inside markup (comment, CDATA or processing instruction)")
        lt, gt = ev[lt_at], ev[lt_at + 1]          # each '<' and the first '>' after it
        n = len(lt)
        nxt = a[lt + 1]
        if bool(np.any((nxt == _BANG) | (nxt == _QUEST))):
            raise NotSimple("comment, CDATA, DOCTYPE or processing instruction")
        is_end = nxt == _SLASH
        sc = (a[gt - 1] == _SLASH) & ~is_end
        delta = np.ones(n, np.int64)
        delta[is_end] = -1
        delta[sc] = 0
        after = np.cumsum(delta) + self.level
        before = after - delta                     # a start tag's level; an end tag closes level before-1
        if final:
            m, end = n, len(buf)
        else:
            cut = np.flatnonzero(~is_end & (before == 1))
            if not len(cut) or cut[-1] == 0:
                return buf                        # no whole customer yet: read more
            m = int(cut[-1])
            end = int(lt[m])
        _Chunk(self, buf, a, end, lt[:m], gt[:m], is_end[:m], sc[:m], before[:m]).extract()
        self.level = int(after[-1]) if final else int(before[m])
        self.first = False
        return buf[end:]

    def _utf8(self, raw: bytes) -> bytes:
        """The chunk in UTF-8: a single-byte encoding converts chunk by chunk (lines stay as they are)."""
        if self.codec is None:
            return raw
        try:
            return raw.decode(self.codec).encode("utf-8")
        except UnicodeDecodeError:
            raise NotSimple(f"a byte {self.codec} does not define") from None

    def _prolog(self, buf: bytes) -> int:
        if buf[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in buf[:4]:
            raise NotSimple("UTF-16")
        at = 3 if buf.startswith(b"\xef\xbb\xbf") else 0
        m = _DECL.match(buf, at)
        if m is None:
            return at
        enc = _ENCODING.search(m.group(0))
        name = enc.group(1).decode("ascii").lower() if enc else "utf-8"
        if name not in _UTF8 and (self.codec is None or _SINGLE_BYTE.get(name) != self.codec):
            raise NotSimple("encoding " + name)
        return m.end()

    def entry_table(self, texts: pa.Array):
        """Dictionary-encode start-tag texts; per distinct text its _Entry (made once per file)."""
        enc = pc.dictionary_encode(texts)
        entries = []
        for text in enc.dictionary.to_pylist():
            e = self.entries.get(text)
            if e is None:
                e = self.entries[text] = _Entry(text)
            entries.append(e)
        return enc.indices.to_numpy(zero_copy_only=False), entries


def _longest_gap(ev: np.ndarray, start: int, end: int) -> int:
    """The most bytes between two consecutive '<'/'>' at ``ev`` (or the ends ``start``, ``end``)."""
    edges = np.concatenate((np.array([start - 1], np.int64), ev, np.array([end], np.int64)))
    return int(np.diff(edges).max()) - 1


_START_TAG = r"^<[^\s/>]+(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"<]*\"|'[^'<]*'))*\s*/?>$"


class _Chunk:
    """The tokens (tags) of one chunk of whole customers, and the tables made from them."""

    def __init__(self, scanner: _Scanner, buf, a, end, lt, gt, is_end, sc, level):
        self.s, self.buf, self.a, self.end = scanner, buf, a, end
        self.lt, self.gt, self.is_end, self.sc, self.level = lt, gt, is_end, sc, level
        m = len(lt)
        # piece 2k = tag k, piece 2k+1 = the text after it (up to the next tag, or ``end``)
        offsets = np.empty(2 * m + 1, np.int64)
        offsets[0:-1:2] = lt
        offsets[1::2] = gt + 1
        offsets[-1] = end
        self.pieces = pa.LargeStringArray.from_buffers(2 * m, pa.py_buffer(offsets), pa.py_buffer(buf)) if m else None

    def extract(self) -> None:
        s, m = self.s, len(self.lt)
        if m == 0:
            s.lines += self.buf.count(b"\n", 0, self.end)
            return
        is_start, level = ~self.is_end, self.level
        sel = np.flatnonzero(is_start & (level <= 4))
        codes, entries = s.entry_table(self.pieces.take(pa.array(2 * sel)))
        deep = np.flatnonzero(is_start & (level > 4))
        if len(deep) and not pc.all(pc.match_substring_regex(self.pieces.take(pa.array(2 * deep)), _START_TAG)).as_py():
            raise NotSimple("a '>' inside an attribute value")
        ne = len(entries)
        ent = np.full(m, ne, np.int64)             # entry per token (ne: none)
        ent[sel] = codes

        def lut(name):
            return np.array([getattr(e, name) for e in entries] + [UNKNOWN], dtype=np.int64)

        def ordinal(mask):                         # per token: the index of the latest token in ``mask``
            return np.cumsum(mask) - 1

        # level 1: customers (other root children and what they hold are ignored)
        l1 = is_start & (level == 1)
        l1_tok = np.flatnonzero(l1)
        l1_cust = np.array([e.canon == "customer" for e in entries] + [False])[ent[l1_tok]]
        c_tok = l1_tok[l1_cust]
        ncust = len(c_tok)
        of_l1 = ordinal(l1)
        cust_of_l1 = np.cumsum(l1_cust) - 1
        ok = of_l1 >= 0
        in_cust = np.zeros(m, bool)
        in_cust[ok] = l1_cust[of_l1[ok]]
        cord = np.full(m, -1, np.int64)            # the customer (in this chunk) a token belongs to
        cord[ok] = cust_of_l1[of_l1[ok]]

        # level 2: customer fields and containers
        l2 = is_start & (level == 2)
        t2 = np.flatnonzero(l2 & in_cust)
        code2 = lut("cust")[ent[t2]]
        kind2 = np.zeros(m, np.int8)               # per level-2 token: 1 addresses, 2 contact persons
        kind2[t2[code2 == ADDRESSES]] = 1
        kind2[t2[code2 == CONTACTS]] = 2
        has_nodes = np.zeros(ncust, bool)
        has_nodes[cord[t2[(code2 == ADDRESSES) | (code2 == CONTACTS)]]] = True

        # level 3: the nodes of the containers; level 4: their fields
        l2_tok = np.flatnonzero(l2)
        of_l2 = ordinal(l2)
        l3 = is_start & (level == 3)
        t3 = np.flatnonzero(l3 & in_cust)
        kind3 = kind2[l2_tok[of_l2[t3]]]
        t3, kind3 = t3[kind3 > 0], kind3[kind3 > 0]
        node_flag = np.zeros(m, np.int64)
        node_flag[t3] = 1
        node_cum = np.cumsum(node_flag)
        seq3 = node_cum[t3] - node_cum[c_tok][cord[t3]]
        pos3 = cord[t3] + s.pos + 1
        is_addr3 = kind3 == 1
        n_addr, n_cont = int(is_addr3.sum()), int((~is_addr3).sum())
        node_row = np.full(m, -1, np.int64)
        node_row[t3[is_addr3]] = np.arange(n_addr)
        node_row[t3[~is_addr3]] = np.arange(n_cont)
        node_kind = np.zeros(m, np.int8)
        node_kind[t3] = kind3
        l3_tok = np.flatnonzero(l3)
        t4 = np.flatnonzero(is_start & (level == 4) & in_cust)
        parent4 = l3_tok[ordinal(l3)[t4]] if len(t4) else t4
        k4 = node_kind[parent4]
        t4a, t4c = t4[k4 == 1], t4[k4 == 2]

        lines = self.lines(c_tok)
        specs = [(ncust, cord[t2], code2, t2, _CUST_XML, len(CUSTOMER_FIELDS)),
                 (n_addr, node_row[parent4[k4 == 1]], lut("addr")[ent[t4a]], t4a, _ADDR_XML, len(ADDRESS_FIELDS)),
                 (n_cont, node_row[parent4[k4 == 2]], lut("cont")[ent[t4c]], t4c, _CONT_XML, len(CONTACT_FIELDS))]
        cust_cols, addr_cols, cont_cols = self.tables(specs)
        types = np.array([e.type for e in entries] + [None], dtype=object)[ent[t3[is_addr3]]]
        addr_cols[0] = pa.array(types, TEXT)          # @type: the attribute, not a child

        nodes = pa.array(has_nodes, mask=~has_nodes, type=pa.bool_())
        s.parts[0].append(pa.Table.from_arrays(
            [pa.array(np.arange(s.pos + 1, s.pos + 1 + ncust, dtype=np.int64)), pa.array(lines, pa.int64()),
             nodes, *cust_cols], schema=CUSTOMER_SCHEMA))
        s.parts[1].append(pa.Table.from_arrays(
            [pa.array(pos3[is_addr3].astype(np.int64)), pa.array(seq3[is_addr3].astype(np.int64)), *addr_cols],
            schema=ADDRESS_SCHEMA))
        s.parts[2].append(pa.Table.from_arrays(
            [pa.array(pos3[~is_addr3].astype(np.int64)), pa.array(seq3[~is_addr3].astype(np.int64)), *cont_cols],
            schema=CONTACT_SCHEMA))
        s.pos += ncust

    def lines(self, c_tok: np.ndarray) -> np.ndarray:
        """The line of each customer (libxml2 numbers an element by the line of its start tag's '>');
        moves the scanner's line count past the chunk. A lone CR (a line break to libxml2) is not handled."""
        buf, end = self.buf, self.end
        if b"\r" in buf:
            if buf.count(b"\r", 0, end) != buf.count(b"\r\n", 0, end) or buf[end - 1:end] == b"\r":
                raise NotSimple("a lone CR")
        nl = np.flatnonzero(self.a[:end] == _NL)
        out = self.s.lines + np.searchsorted(nl, self.gt[c_tok]) + 1
        self.s.lines += len(nl)
        return out

    def tables(self, specs) -> list[list]:
        """Columns of each table spec ``(nrows, row, col, tok, xml_cols, ncols)``: per row and column
        the value of the first field token that has one (lxml's ``.text`` is not None), like the loop."""
        m = len(self.lt)
        text_idx, xml_s, xml_e, picks = [], [], [], []
        n_text = 0
        for nrows, row, col, tok, xml_cols, ncols in specs:
            keep = col >= 0
            row, col, tok = row[keep], col[keep], tok[keep]
            nxt = np.minimum(tok + 1, m - 1)
            last = tok + 1 >= m
            s = self.gt[tok] + 1
            e = np.where(last, self.end, self.lt[nxt])
            e[self.sc[tok]] = s[self.sc[tok]]                 # <x/>: no text
            kids = xml_cols[col] & ~self.sc[tok] & ~last & ~self.is_end[nxt]
            if kids.any():                                    # an XML-valued field with child elements
                e[kids] = self.lt[self._closing(tok[kids])]
            present = e > s
            row, col, tok, s, e, kids = row[present], col[present], tok[present], s[present], e[present], kids[present]
            key = col * max(nrows, 1) + row
            if len(key) and np.bincount(key).max() > 1:       # a field given twice: the first one counts
                _, first = np.unique(key, return_index=True)
                first.sort()
                row, col, tok, s, e, kids, key = (x[first] for x in (row, col, tok, s, e, kids, key))
            picks.append((nrows, ncols, key, kids))
            text_idx.append(2 * tok[~kids] + 1)
            n_text += int((~kids).sum())
            xml_s.append(s[kids])
            xml_e.append(e[kids])
        text_idx = np.concatenate(text_idx)
        dirty = self._dirty()[text_idx // 2]            # values with a reference or a CR: fixed in Python
        clean_idx = np.where(dirty, 0, text_idx)
        text = self.pieces.take(pa.array(clean_idx))
        extras = []
        if dirty.any():
            at = np.flatnonzero(dirty)
            fixed = [_unescape(v.replace("\r\n", "\n")) for v in self.pieces.take(pa.array(text_idx[at])).to_pylist()]
            extras.append(pa.array(fixed, TEXT))
        xs, xe = np.concatenate(xml_s), np.concatenate(xml_e)
        if len(xs):
            order = np.argsort(xs, kind="stable")
            xml = self._fragments(xs[order], xe[order])
            extras.insert(0, xml.take(pa.array(np.argsort(order, kind="stable"))))
        values = pa.concat_arrays([text, *extras]) if extras else text
        # where each text value is: in ``text``, or (dirty) after the XML fragments
        text_at = np.arange(n_text)
        if dirty.any():
            text_at[at] = n_text + len(xs) + np.arange(len(at))
        out, t_at, x_at = [], 0, n_text
        for nrows, ncols, key, kids in picks:
            where = np.empty(len(key), np.int64)
            nt, nx = int((~kids).sum()), int(kids.sum())
            where[~kids] = text_at[t_at:t_at + nt]
            where[kids] = np.arange(x_at, x_at + nx)
            t_at, x_at = t_at + nt, x_at + nx
            lookup = np.full(ncols * nrows, -1, np.int64)
            lookup[key] = where
            used = np.unique(key // max(nrows, 1))            # columns with any value; the others are all null
            lookup = lookup.reshape(ncols, nrows)[used].ravel()
            missing = lookup < 0
            taken = values.take(pa.array(np.where(missing, 0, lookup), mask=missing)) if len(lookup) else None
            cols = [pa.nulls(nrows, TEXT)] * ncols
            for i, c in enumerate(used):
                cols[c] = taken.slice(i * nrows, nrows)
            out.append(cols)
        return out

    def _closing(self, starts: np.ndarray) -> np.ndarray:
        """The end tag of each start tag in ``starts``."""
        lev = self.level[starts]
        close = np.empty(len(starts), np.int64)
        for L in np.unique(lev):
            ends = np.flatnonzero(self.is_end & (self.level - 1 == L))
            which = lev == L
            close[which] = ends[np.searchsorted(ends, starts[which])]
        return close

    def _dirty(self) -> np.ndarray:
        """Per token: does the text after it hold a reference ('&') or a CR (XML reads CRLF as LF)?"""
        dirty = np.zeros(len(self.lt), bool)
        for byte, mark in ((b"&", _AMP), (b"\r", _CR)):
            if byte in self.buf:
                at = np.flatnonzero(self.a[:self.end] == mark)
                tok = np.searchsorted(self.lt, at, side="right") - 1
                text = (tok >= 0) & (at > self.gt[np.maximum(tok, 0)])      # not inside a tag
                dirty[tok[text]] = True
        return dirty

    def _fragments(self, s: np.ndarray, e: np.ndarray) -> pa.Array:
        """The content of XML-valued fields (sorted, disjoint byte ranges): the bytes when libxml2 would
        write them the same (``schema.inner_xml``), else serialized by lxml."""
        k = len(s)
        offsets = np.empty(2 * k, np.int64)
        offsets[0::2] = s
        offsets[1::2] = e
        frags = pa.LargeStringArray.from_buffers(2 * k - 1, pa.py_buffer(offsets), pa.py_buffer(self.buf))
        frags = frags.take(pa.array(np.arange(0, 2 * k - 1, 2)))
        canonical = pc.and_(pc.match_substring_regex(frags, _CANONICAL),
                            pc.invert(pc.match_substring_regex(frags, _EMPTY_PAIR)))
        if pc.all(canonical).as_py():
            return frags
        fix = pc.invert(canonical)
        return pc.replace_with_mask(frags, fix, pa.array([_inner_by_lxml(v) for v in frags.filter(fix).to_pylist()],
                                                         TEXT))


def scan_customers(stream):
    """The ``RawCustomers`` of ``stream`` (binary, positioned at the document's first byte) read by the
    fast path, or None when it does not apply (the caller then runs ``parse._extract``)."""
    try:
        return _Scanner().run(stream)
    except (NotSimple, etree.XMLSyntaxError):
        return None
