"""The one hardened lxml configuration: no entity resolution, no network, no DTD loading or
validation, no huge trees (SPEC §4). Every parse of untrusted XML in the project uses it."""

from lxml import etree

HARDENED_OPTIONS = dict(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                        huge_tree=False)


def hardened_parser(**extra) -> etree.XMLParser:
    """An ``XMLParser`` with ``HARDENED_OPTIONS`` (plus non-security ``extra`` options)."""
    return etree.XMLParser(**HARDENED_OPTIONS, **extra)
