"""The vectorized scan (``scan.scan_customers``) gives exactly the tables of the lxml loop (``parse._extract``),
or None for documents it does not handle, which the loop then reads (or rejects) as before. Both list the
customers in document order whatever the spelling of their element names (SPEC §3), and both refuse a text
node longer than ``TEXT_NODE_LIMIT`` (SPEC §4) with one message."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from unittest import mock
from xml.sax.saxutils import unescape

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from benchmarks.generate import generate
from monitor_pipeline import samples
from monitor_pipeline.customers import CustomersXmlError, normalize_customers, scan
from monitor_pipeline.customers.columns import ADDRESS_FIELDS, CONTACT_FIELDS, CUSTOMER_FIELDS
from monitor_pipeline.customers.parse import _extract, _peek, parse_customers_xml
from monitor_pipeline.customers.scan import scan_customers
from monitor_pipeline.lib.xml import TEXT_NODE_LIMIT, hardened_parser

TAGS = {"customer", "Customer", "CUSTOMER"}
TABLES = ("customers", "addresses", "contacts")
SMALL_CHUNKS = [7, 64, 1000]
SAMPLES = Path(samples.__file__).parent


# --- helpers ------------------------------------------------------------------------------------------

def chunked(size: int | None):
    """Let the scan read ``size`` bytes at a time (None: its default)."""
    return mock.patch.object(scan, "CHUNK", size) if size else contextlib.nullcontext()


def scanned(doc: bytes, chunk: int | None = None):
    with chunked(chunk):
        return scan_customers(io.BytesIO(doc))


def looped(doc: bytes, tags: set = TAGS):
    """The tables of the lxml loop (``tags``: the spellings its iterparse filter knows)."""
    return _extract(io.BytesIO(doc), tags)


def document_order(doc: bytes) -> list[tuple[int, str | None]]:
    """(line, first CustomerCode text) of every root-level customer, any spelling, from a plain tree parse:
    the order both parsers must keep (the last occurrence of a duplicated code wins, SPEC §3)."""
    root = etree.fromstring(doc, hardened_parser(remove_comments=True, remove_pis=True))
    out = []
    for c in root:
        if isinstance(c.tag, str) and c.tag.lower() == "customer":
            code = next((f.text for f in c if isinstance(f.tag, str) and f.tag.lower() == "customercode"
                         and f.text is not None), None)
            out.append((c.sourceline, code))
    return out


def _short(doc: bytes) -> str:
    return repr(doc) if len(doc) <= 3000 else f"{doc[:200]!r}... ({len(doc)} bytes)"


def _column_difference(a: list, b: list) -> str:
    if len(a) != len(b):
        return f"scan {a[:20]!r} != loop {b[:20]!r}"
    rows = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    more = f"; {len(rows) - 3} more rows" if len(rows) > 3 else ""
    return "; ".join(f"row {i}: scan {a[i]!r} != loop {b[i]!r}" for i in rows[:3]) + more


def differences(got, want) -> str:
    """Per table, the columns in which two RawCustomers differ, with both values (all-null ones left out)."""
    out = []
    for name in TABLES:
        a, b = getattr(got, name), getattr(want, name)
        if a.equals(b):
            continue
        if a.schema != b.schema:
            out.append(f"{name}: scan schema {a.schema} != loop schema {b.schema}")
        if a.num_rows != b.num_rows:
            out.append(f"{name}: scan {a.num_rows} rows != loop {b.num_rows} rows")
        for col in b.schema.names:
            if col not in a.schema.names or a[col].equals(b[col]):
                continue
            if a[col].null_count == a.num_rows and b[col].null_count == b.num_rows:
                continue
            out.append(f"{name}.{col}: {_column_difference(a[col].to_pylist(), b[col].to_pylist())}")
    return "\n".join(out)


def assert_scan_equals_loop(doc: bytes, chunk: int | None = None) -> None:
    got = scanned(doc, chunk=chunk)
    assert got is not None, f"the scan refused a simple document (CHUNK={chunk}): {_short(doc)}"
    want = looped(doc)
    diff = differences(got, want)
    assert not diff, f"scan != loop (CHUNK={chunk}):\n{diff}\ndocument: {_short(doc)}"
    order = list(zip(want.customers["@line"].to_pylist(), want.customers["customercode"].to_pylist()))
    assert order == document_order(doc), f"not in document order: {_short(doc)}"


# --- generated documents ------------------------------------------------------------------------------

XML_FIELDS = ["dynamicfreefields", "freefields"]
PLAIN_FIELDS = [f for f in CUSTOMER_FIELDS if f not in XML_FIELDS]
UNKNOWN_FIELDS = ["note", "extra", "fält", "address1", "type", "fullname", "customerx"]
CHILD_NAMES = ["field", "Field", "freefield1", "a", "b_2", "x.y", "x-y", "fält"]
ADDRESS_NODE_FIELDS = [f for f in ADDRESS_FIELDS if not f.startswith("@")] + ["street", "dynamicfreefields"]
CONTACT_NODE_FIELDS = CONTACT_FIELDS + ["freefields", "title"]
ATTR_NAMES = ["id", "type", "Type", "TYPE", "name", "kind", "x-y", "n.1", "_a"]
POOLED_CODES = ["C1", "C2", " C1 ", "c1", ""]

REFS = ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#233;", "&#x20AC;", "&#13;", "&#10;", "&#9;", "&#x1F600;"]
TEXT_TOKENS = [*"abcxyzABC019 -./,;:!?=()\t\nåäöüéß€日本😀>\"'", "C1001", "Nordic Tools AB", *REFS]
ATTR_TOKENS = [*"abcXYZ09 -_./:åé€\t\n\"'", "invoice", "delivery", *REFS]

text = st.lists(st.sampled_from(TEXT_TOKENS), max_size=8).map("".join)
blank = st.sampled_from(["", " ", "\n", "\n  ", "\t", "  \n    "])
value = st.one_of(text, text, blank)
tag_space = st.sampled_from(["", "", " ", "  ", "\n"])


@st.composite
def spelled(draw, names):
    """One of ``names`` in lower, upper, title or mixed case."""
    name = draw(st.sampled_from(names))
    how = draw(st.sampled_from(["lower", "lower", "upper", "title", "mixed"]))
    if how == "mixed":
        flips = draw(st.integers(0, 2 ** len(name) - 1))
        return "".join(c.upper() if flips >> i & 1 else c for i, c in enumerate(name))
    return {"lower": name, "upper": name.upper(), "title": name.title()}[how]


@st.composite
def attribute_value(draw):
    """A quoted attribute value: either quote kind, the other kind raw inside, references."""
    parts = draw(st.lists(st.sampled_from(ATTR_TOKENS), max_size=4))
    quote = draw(st.sampled_from(['"', "'"]))
    raw = "".join(parts).replace(quote, "&quot;" if quote == '"' else "&apos;")
    return quote + raw + quote


@st.composite
def attributes(draw, names=ATTR_NAMES, rare=True):
    """Attributes (distinct names) with random spacing around them and around '='; ``rare``: mostly none."""
    if rare and draw(st.integers(0, 3)):
        return ""
    chosen = draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
    out = ""
    for name in chosen:
        lead = draw(st.sampled_from([" ", " ", "  ", "\n\t"]))
        eq = draw(st.sampled_from(["=", "=", " = "]))
        out += f"{lead}{name}{eq}{draw(attribute_value())}"
    return out


@st.composite
def element(draw, names, content, attrs=attributes()):
    """``<name ...>content</name>``, ``<name></name>`` or ``<name/>``, attributes and spaces in the tags."""
    name = draw(names)
    head = f"<{name}{draw(attrs)}{draw(tag_space)}"
    form = draw(st.sampled_from(["pair", "pair", "pair", "pair", "empty pair", "self-closing"]))
    if form == "self-closing":
        return head + "/>"
    body = "" if form == "empty pair" else draw(content)
    return f"{head}>{body}</{name}{draw(st.sampled_from(['', '', ' ']))}>"


@st.composite
def xml_content(draw, depth=0):
    """Content of an XML-valued field: text only, or text and child elements (nested up to 3 levels)."""
    if depth > 2 or draw(st.integers(0, 3)) == 0:
        return draw(value)
    parts = [draw(value)]
    for _ in range(draw(st.integers(1, 3))):
        parts.append(draw(element(st.sampled_from(CHILD_NAMES), xml_content(depth + 1))))
        parts.append(draw(value))
    return "".join(parts)


@st.composite
def plain_content(draw):
    """Text, sometimes followed by a child element and more text (only the text before it counts)."""
    if draw(st.integers(0, 5)) == 0:
        return draw(value) + draw(element(st.sampled_from(CHILD_NAMES), value)) + draw(value)
    return draw(value)


@st.composite
def wrapped_customer(draw, wrapper: str):
    """A ``<customer>`` inside another element: not a child of the root, so not a customer."""
    name = draw(spelled(["customer"]))
    return f"<{wrapper}><{name}><customercode>NESTED</customercode></{name}></{wrapper}>"


class Layout:
    """Where the whitespace between elements goes: pretty-printed, one line, or random."""

    def __init__(self, draw, kind: str):
        self.draw, self.kind = draw, kind

    def gap(self, depth: int) -> str:
        if self.kind == "pretty":
            return "\n" + "  " * depth
        if self.kind == "single":
            return ""
        return self.draw(blank)


@st.composite
def fields(draw, layout: Layout, depth: int, names: list[str], xml_names: set[str], nested_customer=False):
    """Children of a customer / address / contact person; a small pool of names, so fields repeat."""
    pool = draw(st.lists(st.sampled_from(names), min_size=1, max_size=4))
    out = []
    for _ in range(draw(st.integers(0, 7))):
        name = draw(spelled(pool))
        content = xml_content() if name.lower() in xml_names else plain_content()
        out.append(layout.gap(depth) + draw(element(st.just(name), content)))
    if nested_customer and draw(st.integers(0, 4)) == 0:
        out.append(layout.gap(depth) + draw(wrapped_customer("extra")))
    return "".join(out)


@st.composite
def container(draw, layout: Layout, depth: int, kind: str):
    """``<addresses>`` or ``<contactpersons>`` with its nodes (any element name counts as a node)."""
    if kind == "addresses":
        node_names, node_fields, xml_names = ["address", "address", "adres"], ADDRESS_NODE_FIELDS, set()
    else:
        node_names, node_fields, xml_names = ["contactperson", "contactperson", "person"], CONTACT_NODE_FIELDS, \
            {"dynamicfreefields"}
    nodes = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(spelled(node_names))
        attrs = draw(attributes(["type", "Type", "TYPE", "id"], rare=False) if kind == "addresses" else attributes())
        body = draw(fields(layout, depth + 2, node_fields, xml_names))
        if draw(st.integers(0, 4)) == 0:
            nodes.append(layout.gap(depth + 1) + f"<{name}{attrs}{draw(tag_space)}/>")
        else:
            nodes.append(layout.gap(depth + 1) + f"<{name}{attrs}{draw(tag_space)}>{body}{layout.gap(depth + 1)}"
                         f"</{name}>")
    if draw(st.integers(0, 5)) == 0:
        nodes.append(draw(text))                              # stray text between the nodes: ignored
    name = draw(spelled([kind]))
    if not nodes and draw(st.booleans()):
        return f"{layout.gap(depth)}<{name}/>"
    return f"{layout.gap(depth)}<{name}>{''.join(nodes)}{layout.gap(depth)}</{name}>"


@st.composite
def customer(draw, layout: Layout):
    """One ``<customer>`` (any spelling): flat fields, XML-valued fields, unknown elements, containers, in any
    order; often a code from a small pool, so codes repeat across customers."""
    name = draw(spelled(["customer"]))
    head = f"<{name}{draw(attributes())}{draw(tag_space)}"
    if draw(st.integers(0, 9)) == 0:
        return head + draw(st.sampled_from(["/>", f"></{name}>"]))
    parts = [draw(fields(layout, 2, PLAIN_FIELDS + XML_FIELDS + UNKNOWN_FIELDS, set(XML_FIELDS), True))]
    if draw(st.integers(0, 2)):
        code = draw(spelled(["customercode"]))
        parts.insert(draw(st.integers(0, len(parts))),
                     f"{layout.gap(2)}<{code}>{draw(st.sampled_from(POOLED_CODES))}</{code}>")
    for kind in draw(st.lists(st.sampled_from(["addresses", "contactpersons"]), max_size=3)):
        parts.insert(draw(st.integers(0, len(parts))), draw(container(layout, 2, kind)))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), draw(fields(layout, 2, XML_FIELDS, set(XML_FIELDS))))
    return f"{head}>{''.join(parts)}{layout.gap(1)}</{name}>"


@st.composite
def other_root_child(draw):
    """A root child that is not a customer (ignored), possibly holding a <customer>."""
    if draw(st.integers(0, 3)) == 0:
        return draw(wrapped_customer("meta"))
    return draw(element(spelled(["meta", "header", "export"]), xml_content()))


BIG_ENDS = ["", "&amp;", "&#233;", "&#x1F600;", "é", "日本", "\n", " "]


@st.composite
def documents(draw, big: bool = False) -> bytes:
    """A customers.xml document that the scan must read like the loop. ``big``: with one text node of about
    ``TEXT_NODE_LIMIT`` bytes (a field's value, text between fields or between root children), give or
    take a few bytes and references, line ends and characters that take more bytes in the file, or in
    UTF-8, than in the text."""
    layout = Layout(draw, draw(st.sampled_from(["pretty", "single", "random"])))
    decl = draw(st.sampled_from(["", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>',
                                 "<?xml version='1.0' encoding='utf-8' standalone='yes'?>"]))
    prolog = decl + draw(st.sampled_from(["", "\n", "\n\n", " "]))
    root = draw(spelled(["customers"]))
    root_attrs = draw(attributes(["version", "exported", "id"]))
    children = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 4)) == 0:
            children.append(layout.gap(1) + draw(other_root_child()))
        else:
            children.append(layout.gap(1) + draw(customer(layout)))
        if draw(st.integers(0, 9)) == 0:
            children.append(draw(text))                        # text between root children: ignored
    if not children and not big and draw(st.booleans()):
        body = f"<{root}{root_attrs}/>"
    else:
        body = f"<{root}{root_attrs}>{''.join(children)}{layout.gap(0)}</{root}>"
    if big:     # after a '>' inside the root element: the '>' of a tag, or one in a text
        inside = range(len(root) + len(root_attrs) + 1, len(body) - len(root) - 2)
        at = draw(st.sampled_from([i for i in inside if body[i] == ">"])) + 1
        end = draw(st.sampled_from(BIG_ENDS))
        size = TEXT_NODE_LIMIT + draw(st.sampled_from([-40, -3, -1, 0, 0, 1, 1, 2, 30]))
        body = body[:at] + "x" * (size - len(end.encode("utf-8"))) + end + body[at:]
    doc = prolog + body + draw(st.sampled_from(["", "\n", "\n\n  "]))
    if draw(st.booleans()):
        doc = doc.replace("\n", "\r\n")
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "windows-1252", "ISO-8859-1"]))
    if encoding != "utf-8":        # declared; what the encoding lacks is written as character references
        doc = f'<?xml version="1.0" encoding="{encoding}"?>' + doc[len(decl):]
        return doc.encode(encoding, errors="xmlcharrefreplace")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + doc.encode("utf-8")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=documents(), chunk=st.sampled_from(SMALL_CHUNKS))
def test_scan_equals_loop_on_generated_documents(doc, chunk):
    assert_scan_equals_loop(doc)
    assert_scan_equals_loop(doc, chunk)


def longest_text(doc: bytes) -> int:
    """The longest run of bytes without '<' or '>' in the document as UTF-8: an upper bound of every text
    node's length (references and CRLF take more bytes than what they stand for)."""
    m = re.match(rb'(?:\xef\xbb\xbf)?<\?xml[^>]*encoding="([^"]+)"', doc)
    utf8 = doc.decode(m.group(1).decode()).encode("utf-8") if m else doc
    return max(len(run) for run in re.split(rb"[<>]", utf8))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=documents(big=True), chunk=st.sampled_from([None, 1 << 20]))
def test_scan_and_loop_agree_around_the_text_node_limit(doc, chunk):
    """One text node of ``TEXT_NODE_LIMIT`` bytes or a few more or less: the loop (libxml2's tree) refuses it
    exactly when its text has more bytes (in UTF-8); the scan then leaves it to the loop (never accepts it),
    so the run fails with the loop's message. The scan also leaves to the loop a node that only *may* be too
    long (more bytes in the file than in the text); it reads everything else, like the loop."""
    try:
        want = looped(doc)
    except etree.XMLSyntaxError as exc:
        assert "Text node too long" in str(exc), str(exc)
        assert scanned(doc) is None and scanned(doc, chunk) is None
        with pytest.raises(CustomersXmlError, match=f"longer than {TEXT_NODE_LIMIT:,} bytes"):
            parse_customers_xml(doc)
        return
    got = scanned(doc, chunk)
    assert (got is None) == (longest_text(doc) > TEXT_NODE_LIMIT), _short(doc)
    if got is not None:
        diff = differences(got, want)
        assert not diff, f"scan != loop (CHUNK={chunk}):\n{diff}\ndocument: {_short(doc)}"


# --- documents the scan leaves to the loop ------------------------------------------------------------

def wrap(*customers: bytes, decl: bytes = b"", root: bytes = b"<customers>") -> bytes:
    return decl + root + b"\n" + b"\n".join(customers) + b"\n</customers>\n"


C1 = b"<customer><customercode>C1</customercode><customername>First</customername></customer>"
ADDRESSED = b"<customer><customercode>C2</customercode><addresses><address type=%s><city>Lund</city></address>" \
            b"</addresses></customer>"

NOT_SIMPLE = {
    "comment in a customer": wrap(C1, b"<customer><!-- note --><customercode>C2</customercode></customer>"),
    "CDATA": wrap(C1, b"<customer><customercode><![CDATA[C<2>]]></customercode></customer>"),
    "processing instruction": wrap(C1, b"<customer><?app hint?><customercode>C2</customercode></customer>"),
    "default namespace on the root": wrap(C1, root=b'<customers xmlns="urn:x">'),
    "prefixed element": wrap(C1, b'<customer><m:customercode xmlns:m="urn:m">C2</m:customercode></customer>'),
    "ISO-8859-2": wrap(C1, b"<customer><customername>\xb1\xe6</customername></customer>",
                       decl=b'<?xml version="1.0" encoding="ISO-8859-2"?>\n'),
    "UTF-16": ('<?xml version="1.0" encoding="UTF-16"?>\n<customers><customer><customercode>C1</customercode>'
               "<customername>Café</customername></customer></customers>").encode("utf-16"),
    "lone CR in text": wrap(C1, b"<customer><customernote>a\rb</customernote></customer>"),
    "'>' in an attribute value": wrap(C1, ADDRESSED % b'"a>b"'),
}


@pytest.mark.parametrize("doc", NOT_SIMPLE.values(), ids=NOT_SIMPLE.keys())
def test_not_simple_documents_fall_back_to_the_loop(doc):
    _, spelling = _peek(io.BytesIO(doc), "<bytes>")
    tags = {spelling or "customer"} | TAGS                    # the tags parse_customers_xml uses
    assert scanned(doc) is None
    assert scanned(doc, chunk=7) is None
    raw, _ = parse_customers_xml(doc)
    want = looped(doc, tags)
    assert raw.customers.num_rows >= 1
    assert not differences(raw, want), differences(raw, want)


@pytest.mark.parametrize("doc", [
    wrap(C1, ADDRESSED % b"\"it's\""),
    wrap(C1, ADDRESSED % b"'say \"hi\"'"),
    wrap(b"<customer id=\"1\" kind='x'><customercode>C1</customercode>"
         b"<dynamicfreefields><field name=\"a\" label='b \"c\"'>v</field></dynamicfreefields></customer>"),
], ids=["apostrophe in double quotes", "double quotes in apostrophes", "both quote kinds in one tag"])
def test_both_quote_kinds_are_read_by_the_scan(doc):
    for chunk in (None, *SMALL_CHUNKS):
        assert_scan_equals_loop(doc, chunk)


# --- single-byte encodings (Windows exports): converted chunk by chunk --------------------------------

SINGLE_BYTE = {"ISO-8859-1": "Café Åsa ÿ", "windows-1252": "Smörgås € — “x”", "iso-8859-15": "€ Œuvre",
               "latin1": "Ökö", "CP1252": "Tröja ‰"}


@pytest.mark.parametrize("encoding", SINGLE_BYTE)
def test_single_byte_encodings_are_read_by_the_scan(encoding):
    text = SINGLE_BYTE[encoding]
    doc = (f'<?xml version="1.0" encoding="{encoding}"?>\r\n<customers>\r\n<customer><customercode>C1</customercode>'
           f'<customername>{text} &amp; co</customername><addresses><address type="{text}"><city>{text}</city>'
           f"</address></addresses><dynamicfreefields><f n='{text}'>{text}</f></dynamicfreefields></customer>"
           f"\r\n</customers>\r\n").encode(encoding)
    assert scanned(doc) is not None
    for chunk in (None, *SMALL_CHUNKS):
        assert_scan_equals_loop(doc, chunk)


@pytest.mark.parametrize("name", ["customers_flat.xml", "customers_nested.xml"])
def test_sample_in_windows_1252_gives_the_frames_of_utf8(name):
    text = (SAMPLES / name).read_text("utf-8")
    latin = text.replace('encoding="UTF-8"', 'encoding="windows-1252"', 1).encode("cp1252")
    assert scanned(latin) is not None
    got, want = normalize_customers(latin), normalize_customers(text.encode("utf-8"))
    for frame in ("customers", "addresses", "contacts", "dashboards", "rejected", "warnings"):
        pd.testing.assert_frame_equal(getattr(got, frame), getattr(want, frame))


def test_a_byte_windows_1252_does_not_define_goes_to_the_loop():
    doc = b'<?xml version="1.0" encoding="windows-1252"?><customers><customer><customercode>C\x81</customercode>' \
          b"</customer></customers>"
    assert scanned(doc) is None
    with pytest.raises(CustomersXmlError, match="line 1"):
        normalize_customers(doc)


# --- malformed documents ------------------------------------------------------------------------------

GOOD = wrap(C1, ADDRESSED % b'"invoice"')
MALFORMED = {
    "truncated": GOOD[: len(GOOD) // 2],
    "truncated in the root end tag": GOOD[:-5],
    "mismatched tags": wrap(C1, b"<customer><customercode>C2</customername></customer>"),
    "undefined entity": wrap(C1, b"<customer><customername>a &foo; b</customername></customer>"),
    "bare ampersand": wrap(C1, b"<customer><customername>a & b</customername></customer>"),
    "'<' in text": wrap(C1, b"<customer><customername>a < b</customername></customer>"),
    "invalid UTF-8": wrap(C1, b"<customer><customername>a\xc3\x28b\xff</customername></customer>"),
    "duplicate attribute": wrap(C1, b'<customer id="1" id="2"><customercode>C2</customercode></customer>'),
    "text after the root": GOOD + b"junk",
}


@pytest.mark.parametrize("doc", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_documents_are_refused(doc):
    for chunk in (None, *SMALL_CHUNKS):
        assert scanned(doc, chunk=chunk) is None
    with pytest.raises(CustomersXmlError) as info:
        normalize_customers(doc)
    assert info.value.path == "<bytes>" and "malformed" in str(info.value).lower(), str(info.value)


# --- real files ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["customers_flat.xml", "customers_nested.xml"])
def test_bundled_samples(name):
    doc = (SAMPLES / name).read_bytes()
    for chunk in (None, *SMALL_CHUNKS):
        assert_scan_equals_loop(doc, chunk)


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_generated_benchmark_file(tmp_path, nested):
    """600 customers: more than the loop's ``_DROP_EVERY``."""
    doc = generate(tmp_path / "customers.xml", 600, nested=nested).read_bytes()
    assert_scan_equals_loop(doc)
    assert_scan_equals_loop(doc, 4096)
    assert scanned(doc).customers.num_rows == 600


# --- line numbers -------------------------------------------------------------------------------------

def test_line_numbers_of_multi_line_start_tags_and_crlf():
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n<customers\n  version="2">\n'
           '  <customer\n    id="1"\n  >\n    <customercode>C1</customercode>\n  </customer>\n'
           '  <meta\n  >x</meta>\n'
           "  <Customer id='2'\n\n><customercode>C2</customercode><customernote>line 1\nline 2\n</customernote>"
           "</Customer><CUSTOMER\n/>\n"
           '  <customer><addresses>\n<address\n type="visit"/></addresses></customer>\n</customers>\n')
    for eol in ("\n", "\r\n"):
        data = doc.replace("\n", eol).encode("utf-8")
        lines = looped(data).customers["@line"].to_pylist()
        assert len(set(lines)) == 4
        for chunk in (None, *SMALL_CHUNKS):
            assert_scan_equals_loop(data, chunk)


@pytest.mark.parametrize("layout", ["pretty", "one line", "blank lines first"])
def test_line_numbers_past_65535(layout):
    """The scan gives the true line of each customer's start tag (its '>', as libxml2 counts) at any size.
    The loop cannot past line 65535: libxml2 keeps 16 bits of line per element, and lxml's ``sourceline``
    then borrows the line of a nearby node (the pretty layout gives the next line), so here the scan is
    checked against the document itself."""
    if layout == "pretty":
        one = "  <customer>\n    <customercode>C{0}</customercode>\n  </customer>\n"
    else:
        one = "<customer><customercode>C{0}</customercode><customername>N</customername></customer>\n"
    head = "<customers>\n" + ("\n" * 65535 if layout == "blank lines first" else "")
    count = 70000 // one.count("\n") if layout != "blank lines first" else 10
    doc = (head + "".join(one.format(i) for i in range(count)) + "</customers>\n").encode()
    starts, line, last, at = [], 1, 0, doc.find(b"<customer>")
    while at >= 0:
        line += doc.count(b"\n", last, at)
        starts.append(line)
        last, at = at, doc.find(b"<customer>", at + 1)
    for chunk in (None, 1000):
        got = scanned(doc, chunk=chunk)
        assert got is not None and got.customers["@line"].to_pylist() == starts
        loop = looped(doc)
        for name in TABLES:       # everything else as the loop
            a, b = getattr(got, name), getattr(loop, name)
            if name == "customers":
                a, b = a.drop_columns(["@line"]), b.drop_columns(["@line"])
            assert a.equals(b), differences(got, loop)


# --- <customer> elements that are not children of the root --------------------------------------------

@pytest.mark.parametrize("doc", [
    b"<customers><customer><x><customer/></x><customercode>C1</customercode></customer></customers>",
    b"<customers><meta><customer/></meta><customer><customercode>C1</customercode></customer></customers>",
], ids=["inside the first customer", "inside an earlier root child"])
def test_customer_element_nested_before_the_first_customer(doc):
    """A <customer> that is not a root child and ends before the first root-level one."""
    assert_scan_equals_loop(doc)


# --- element names in any case: document order, duplicates --------------------------------------------

SPELLINGS = ["customer", "CUSTOMER", "Customer", "cUstomer", "CusTomeR"]


def mixed_spellings_document(n: int) -> bytes:
    """``n`` customers whose element names (``customer`` itself, the code, the containers and their nodes)
    cycle through spellings; every 7th code repeats an earlier one (``D<i % 5>``), in another spelling."""
    items = []
    for i in range(n):
        c, code = SPELLINGS[i % 5], ["customercode", "CustomerCode", "CUSTOMERCODE"][i % 3]
        adr, cps = ["addresses", "Addresses", "ADDRESSES"][i % 3], ["contactpersons", "CONTACTPERSONS"][i % 2]
        value = f"D{i % 5}" if i % 7 == 0 else f"K{i}"
        items.append(f"<{c}><{code}>{value}</{code}><CustomerName>name {i}</CustomerName>"
                     f"<{adr}><Address Type='delivery'><CITY>city {i}</CITY></Address></{adr}>"
                     f"<{cps}><ContactPerson><FullName>P {i}</FullName></ContactPerson></{cps}></{c}>")
    return ("<customers>\n" + "\n".join(items) + "\n</customers>\n").encode()


@pytest.mark.parametrize("n", [9, 1200], ids=["few", "past the loop's drops"])
def test_any_spelling_is_read_in_document_order(n):
    """The loop's iterparse filter knows a few spellings of <customer>; the others are read in their place
    all the same (not when the tree is trimmed), and the scan reads every spelling itself."""
    doc = mixed_spellings_document(n)
    assert scanned(doc) is not None
    for chunk in (None, 1000):
        assert_scan_equals_loop(doc, chunk)
    for tags in ({"customer"}, {"cUstomer"}):
        assert not differences(looped(doc, tags), looped(doc))


def test_duplicate_in_mixed_spellings_keeps_the_last_occurrence():
    """D0 first as <customer>, again as <cUstomer> and, last, as <customer>: the last one is kept and the
    others are reported with their true positions and lines, by the scan and by the loop (a comment)."""
    doc = wrap(b"<customer><customercode>A</customercode><customername>a</customername></customer>",
               b"<cUstomer><CustomerCode>D0</CustomerCode><customername>first</customername></cUstomer>",
               b"<CUSTOMER><customername>no code</customername></CUSTOMER>",
               b"<customer><CUSTOMERCODE>D0</CUSTOMERCODE><customername>second</customername></customer>",
               b"<Customer><customercode>D0</customercode><customername>last</customername></Customer>")
    with_comment = doc.replace(b"<customers>", b"<customers><!-- the loop -->")
    assert scanned(doc) is not None and scanned(with_comment) is None
    got, loop = normalize_customers(doc), normalize_customers(with_comment)
    for frame in ("customers", "addresses", "contacts", "rejected", "warnings"):
        pd.testing.assert_frame_equal(getattr(got, frame), getattr(loop, frame))
    assert got.customers.set_index("CustomerCode").loc["D0", "CustomerName"] == "last"
    assert list(got.rejected[["Position", "Line"]].itertuples(index=False, name=None)) == [(3, 4)]
    assert list(got.warnings["Message"]) == [
        f"duplicated CustomerCode: the customer at position {p} (line {line}) is ignored, the last occurrence is kept"
        for p, line in ((2, 3), (4, 5))]


# --- the text node limit (SPEC §4) ---------------------------------------------------------------------

L = TEXT_NODE_LIMIT
NODES = {      # a customer's note (or the text between two customers); accepted?
    "limit": (b"x" * L, True),
    "limit + 1": (b"x" * (L + 1), False),
    "limit after a reference": (b"x" * (L - 1) + b"&amp;", True),          # more bytes in the file
    "limit + 1 after a reference": (b"x" * (L - 1) + b"&#233;", False),    # 2 bytes in UTF-8
    "limit in 2-byte characters": (("é" * (L // 2)).encode(), True),
    "limit + 1 of white space between customers": (b" " * (L + 1), False),
}


@pytest.mark.parametrize("case", NODES, ids=NODES)
def test_text_node_limit_is_the_same_in_scan_and_loop(tmp_path, case):
    """A text of at most ``TEXT_NODE_LIMIT`` bytes (as UTF-8, after references) is read whole; one byte more
    fails the run, with the same message (file, line) whether the scan or the loop (a comment) reads it."""
    node, accepted = NODES[case]
    if case.endswith("between customers"):
        doc = wrap(C1, b"\n" + node + b"\n", b"<customer><customercode>C2</customercode></customer>")
    else:
        doc = wrap(C1, b"<customer><customercode>C2</customercode>\n<customernote>" + node + b"</customernote>"
                       b"<customername>N</customername></customer>")
    outcomes = []
    for comment in (b"", b"<!-- sends it to the loop -->"):
        path = tmp_path / f"customers{len(comment)}.xml"
        path.write_bytes(doc.replace(b"</customer>", b"</customer>" + comment, 1))
        if not comment:
            assert (scanned(path.read_bytes()) is None) == (len(node) > L)     # the scan reads what it can
        try:
            r = normalize_customers(path)
            outcomes.append(("read", list(r.customers["CustomerNote"])))
        except CustomersXmlError as exc:
            # libxml2's line: where the text passes the limit (white space: where it ends)
            assert exc.path == str(path) and exc.line == (6 if case.endswith("customers") else 4), str(exc)
            outcomes.append(("refused", str(exc).replace(str(path), "FILE")))
    assert outcomes[0] == outcomes[1]
    if accepted:
        note = unescape(node.decode()) if b"&" in node else node.decode()
        assert outcomes[0] == ("read", [None, note])
    else:
        assert outcomes[0][0] == "refused" and f"longer than {L:,} bytes" in outcomes[0][1], outcomes[0]
