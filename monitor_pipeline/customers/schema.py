"""The raw tables of customers.xml, shared by both parsers (``parse.py``'s lxml loop, ``scan.py``'s scan).

Owns what the two must agree on to give the same ``RawCustomers``: the hardened parser options, the
Arrow schemas of the three raw tables (``@``-columns, then one string column per source element of
:mod:`.columns`), the field codes (what an element name is at customer or node level), which fields
hold XML rather than text, and how such a value is serialized (``inner_xml``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from lxml import etree

from monitor_pipeline.lib.xml import HARDENED_OPTIONS

from .columns import ADDRESS_FIELDS, CONTACT_FIELDS, CUSTOMER_FIELDS

PARSER_OPTIONS = dict(HARDENED_OPTIONS, remove_comments=True, remove_pis=True)
XML_VALUES = {"dynamicfreefields", "freefields"}     # fields whose value is their content as XML

TEXT = pa.large_string()       # the type of pandas "str" columns: no cast on the way to pandas
CUSTOMER_SCHEMA = pa.schema([("@pos", pa.int64()), ("@line", pa.int64()), ("@nodes", pa.bool_())]
                            + [(f, TEXT) for f in CUSTOMER_FIELDS])
ADDRESS_SCHEMA = pa.schema([("@pos", pa.int64()), ("@seq", pa.int64())] + [(f, TEXT) for f in ADDRESS_FIELDS])
CONTACT_SCHEMA = pa.schema([("@pos", pa.int64()), ("@seq", pa.int64())] + [(f, TEXT) for f in CONTACT_FIELDS])


@dataclass
class RawCustomers:
    customers: pa.Table   # @pos (1-based customer index), @line, @nodes, one column per source element
    addresses: pa.Table   # @pos, @seq, @type (attribute), type (child), address parts
    contacts: pa.Table    # @pos, @seq, contact person fields


def raw_tables(parts: tuple[list, list, list]) -> RawCustomers:
    """RawCustomers from the pieces of each table (an empty table where there are none)."""
    return RawCustomers(*[pa.concat_tables(t) if t else s.empty_table()
                          for t, s in zip(parts, (CUSTOMER_SCHEMA, ADDRESS_SCHEMA, CONTACT_SCHEMA))])


def inner_xml(element) -> str | None:
    """The content of ``element`` as a string: child elements serialized, or the text when there are none."""
    if len(element) == 0:
        return element.text
    whole = etree.tostring(element, encoding="unicode", with_tail=False)
    return whole[whole.index(">") + 1:whole.rindex("</")]


UNKNOWN, ADDRESSES, CONTACTS = -1, -2, -3           # field codes that are not a column


def field_code(name: str, cols: dict[str, int], containers: bool) -> int:
    """What the element ``name`` (lower case) is: its column in ``cols``, or UNKNOWN; with ``containers``
    (customer level) also ADDRESSES / CONTACTS. Shared by the lxml loop and the scan."""
    if containers and name == "addresses":
        return ADDRESSES
    if containers and name == "contactpersons":
        return CONTACTS
    return cols.get(name, UNKNOWN)
