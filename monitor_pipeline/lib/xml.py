"""The one hardened lxml configuration: no entity resolution, no network, no DTD loading or
validation, no huge trees (SPEC §4). Every parse of untrusted XML in the project uses it.

``huge_tree`` stays off, so libxml2 keeps its limits against oversized input: at most 256 levels of
nesting, names of at most 50,000 bytes, attribute values and text nodes of at most
``TEXT_NODE_LIMIT`` bytes (counted in UTF-8, after references are replaced and line ends
normalized). Beyond one of them the parse fails. The text node limit is checked where libxml2
builds a tree: a parser with a ``target`` builds none, so code that parses that way and must give
the verdict of a tree-building parse checks it itself (``customers.scan`` does).
"""

from lxml import etree

HARDENED_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                        huge_tree=False)
TEXT_NODE_LIMIT = 10_000_000       # libxml2's XML_MAX_TEXT_LENGTH: the most bytes of one text node


def hardened_parser(**extra) -> etree.XMLParser:
    """An ``XMLParser`` with ``HARDENED_OPTIONS`` (plus non-security ``extra`` options)."""
    return etree.XMLParser(**HARDENED_OPTIONS, **extra)
