"""The bundled sample Monitor export: ``customers_flat.xml`` (older format), ``customers_nested.xml``
(newer format) and ``extraCustomerData.csv``."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from monitor_pipeline.lib.xml import hardened_parser

SAMPLES = Path(__file__).parent
FLAT = SAMPLES / "customers_flat.xml"
NESTED = SAMPLES / "customers_nested.xml"
EXTRA_DATA = SAMPLES / "extraCustomerData.csv"


def write_demo_customers_xml(target: Path) -> Path:
    """One customers.xml mixing both formats (SPEC §3 allows it): the two samples hold the same
    customers, so every other customer is taken from the flat file and the rest from the nested one."""
    parser = hardened_parser()
    flat, nested = ([c for c in etree.parse(str(sample), parser).getroot() if isinstance(c.tag, str)]
                    for sample in (FLAT, NESTED))
    root = etree.Element("customers")
    for position, pair in enumerate(zip(flat, nested, strict=True)):
        root.append(pair[position % 2])
    tmp = target.with_suffix(".xml.tmp")
    etree.ElementTree(root).write(str(tmp), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    tmp.replace(target)
    return target
