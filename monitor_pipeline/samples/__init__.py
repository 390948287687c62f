"""The bundled sample Monitor export: ``customers_flat.xml`` (older format), ``customers_nested.xml``
(newer format) and ``extraCustomerData.csv``."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

SAMPLES = Path(__file__).parent
FLAT = SAMPLES / "customers_flat.xml"
NESTED = SAMPLES / "customers_nested.xml"
EXTRA_DATA = SAMPLES / "extraCustomerData.csv"


def write_demo_customers_xml(target: Path) -> Path:
    """One customers.xml holding the customers of both samples (SPEC §3: formats may mix in a file)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.Element("customers")
    for sample in (FLAT, NESTED):
        for customer in etree.parse(str(sample), parser).getroot():
            if isinstance(customer.tag, str):
                root.append(customer)
    tmp = target.with_suffix(".xml.tmp")
    etree.ElementTree(root).write(str(tmp), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    tmp.replace(target)
    return target
