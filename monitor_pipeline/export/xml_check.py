"""Well-formedness of a new customer's XML, checked with a hardened parser (SPEC §4, §6).

The export uploads the XML unchanged; this module only decides whether it may be uploaded.
The parser never resolves entities, never loads a DTD, never touches the network, and a
document with a DOCTYPE is refused outright (no XXE, no entity-expansion bombs).

Encoding (the feed delivers the XML as a JSON string, i.e. text, not bytes):
``encode_customer_xml`` turns that text into the bytes that are uploaded. UTF-8, unless the
XML declaration names another encoding; then that encoding, so the file's bytes agree with its
own declaration (Monitor honours the declared encoding). Text the declared encoding cannot
represent, or an unknown encoding name, is an error — the XML is never rewritten.
"""

from __future__ import annotations

import codecs
import re

from lxml import etree

from monitor_pipeline.lib.xml import hardened_parser


class MalformedCustomerXmlError(ValueError):
    """The customer XML is not well-formed (or uses a DOCTYPE); ``line`` is 1-based when known."""

    def __init__(self, message: str, *, line: int | None = None):
        super().__init__(message if line is None else f"{message} (line {line})")
        self.line = line


_DECLARED_ENCODING = re.compile(
    r"""\A\ufeff?<\?xml\s[^>]*?\bencoding\s*=\s*(["'])([A-Za-z][A-Za-z0-9._-]*)\1""")
_BOM = "\ufeff"


def declared_encoding(xml: str) -> str | None:
    """The encoding named in the XML declaration at the very start of ``xml``, if any."""
    match = _DECLARED_ENCODING.match(xml)
    return match.group(2) if match else None


def encode_customer_xml(xml: str | bytes) -> bytes:
    """The bytes to upload: ``xml`` itself when bytes, else the text encoded as its declaration says.

    No declaration (or no encoding in it) means UTF-8. A leading BOM in the text is kept for
    UTF-8; for UTF-16/UTF-32 exactly one BOM is written.
    """
    if isinstance(xml, bytes):
        return xml
    if not isinstance(xml, str):
        raise MalformedCustomerXmlError(f"the customer XML must be text, got {type(xml).__name__}")
    name = declared_encoding(xml)
    if name is None:
        return xml.encode("utf-8")
    try:
        codec = codecs.lookup(name).name  # normalised, e.g. 'iso8859-1', 'utf-16-le'
    except LookupError:
        raise MalformedCustomerXmlError(f"the customer XML declares an unknown encoding {name!r}", line=1) from None
    text = xml
    if codec in ("utf-16", "utf-32"):
        text = text.removeprefix(_BOM)  # the codec writes the one BOM
    try:
        return text.encode(codec)
    except UnicodeEncodeError as exc:
        line = xml.count("\n", 0, exc.start) + 1
        raise MalformedCustomerXmlError(
            f"the customer XML declares encoding {name!r} but contains {exc.object[exc.start:exc.end]!r}, "
            f"which {name} cannot represent", line=line) from None


_PROLOG_ITEM = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)


def _doctype_line(text: str) -> int | None:
    """1-based line of a DOCTYPE in the prolog of ``text`` (before the root element), else None."""
    pos = 1 if text.startswith(_BOM) else 0
    while True:
        match = _PROLOG_ITEM.match(text, pos)
        if not match or match.end() == pos:
            break
        pos = match.end()
    if text.startswith("<!DOCTYPE", pos):
        return text.count("\n", 0, pos) + 1
    return None


def check_well_formed(xml: str | bytes) -> None:
    """Raise ``MalformedCustomerXmlError`` unless ``xml`` is a well-formed document without a DOCTYPE."""
    text = xml if isinstance(xml, str) else None
    if text is None and isinstance(xml, bytes):
        try:
            text = xml.decode("utf-8")
        except UnicodeDecodeError:
            text = None  # another encoding: the parser and the DOCTYPE check after it decide
    if text is not None:
        line = _doctype_line(text)
        if line is not None:  # refused before any parsing of the DTD
            raise MalformedCustomerXmlError(
                "the customer XML has a DOCTYPE; DTDs and entity declarations are refused", line=line)
    data = encode_customer_xml(xml)
    if not data.strip():
        raise MalformedCustomerXmlError("the customer XML is empty", line=1)
    try:
        tree = etree.fromstring(data, hardened_parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        message = exc.msg or str(exc)
        # libxml2 repeats the position in the message; keep it short and give the line separately
        message = re.sub(r",? line \d+, column \d+.*\Z", "", message)
        raise MalformedCustomerXmlError(f"the customer XML is not well-formed: {message}", line=exc.lineno) from None
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.system_url or info.public_id:
        line = None
        if isinstance(xml, str) and "<!DOCTYPE" in xml:
            line = xml.count("\n", 0, xml.index("<!DOCTYPE")) + 1
        raise MalformedCustomerXmlError(
            "the customer XML has a DOCTYPE; DTDs and entity declarations are refused", line=line)
