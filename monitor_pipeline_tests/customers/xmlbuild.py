"""Writers of customers.xml test files in the flat and the nested format."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape, quoteattr

PREFIX = {"inv": "invoice", "vis": "visit", "del": "delivery"}


def el(name: str, value) -> str:
    return "" if value is None else f"<{name}>{escape(str(value))}</{name}>"


def customer(fmt: str, scalars: dict | None = None, addresses: list[tuple[str, dict]] = (),
             contact: dict | None = None, raw: str = "") -> str:
    """One <customer>. ``addresses``: (inv/vis/del, {address1, address2, postcode, city, countrycode, ...}).
    ``contact``: {fullname | firstname/middlename/lastname, email, phone} — flat writes it as
    contactfullname/contactemail/contactphone, nested as a contact person."""
    parts = [el(k, v) for k, v in (scalars or {}).items()]
    if fmt == "flat":
        for kind, fields in addresses:
            parts += [el(PREFIX[kind] + k, v) for k, v in fields.items()]
        if contact:
            full = contact.get("fullname") or " ".join(
                contact[k] for k in ("firstname", "middlename", "lastname") if contact.get(k))
            parts += [el("contactfullname", full), el("contactemail", contact.get("email")),
                      el("contactphone", contact.get("phone"))]
    else:
        if addresses:
            parts.append("<addresses>")
            for i, (kind, fields) in enumerate(addresses):
                long = PREFIX[kind]
                if i % 2:
                    parts.append(f"<address><type>{long}</type>")
                else:
                    parts.append(f"<address type={quoteattr(long)}>")
                parts += [el(k, v) for k, v in fields.items()]
                parts.append("</address>")
            parts.append("</addresses>")
        if contact:
            parts.append("<contactpersons><contactperson>")
            parts += [el(k, v) for k, v in contact.items()]
            parts.append("</contactperson></contactpersons>")
    return "<customer>" + "".join(parts) + raw + "</customer>"


def document(*customers: str, encoding: str | None = None, root: str = "customers") -> bytes:
    decl = f'<?xml version="1.0" encoding="{encoding}"?>\n' if encoding else ""
    text = decl + f"<{root}>\n" + "\n".join(customers) + f"\n</{root}>\n"
    return text.encode(encoding or "utf-8")


_TAG = re.compile(rb"<(/?)([A-Za-z_][A-Za-z0-9_.-]*)([^<>]*?)(/?)>")
XML_VALUED = {"dynamicfreefields", "freefields"}      # their content is the value (SPEC §3): kept as it is


def respell(xml: bytes, spell) -> bytes:
    """``xml`` with every element name written as ``spell(name)`` says (element names match
    case-insensitively, SPEC §3), each end tag as its start tag; not inside an XML-valued field. For
    documents without comments, CDATA or a ``>`` in an attribute value (as ``document`` and
    ``benchmarks.generate`` write them)."""
    open_names: list[tuple[bytes, bool]] = []       # (spelling, inside an XML-valued field)

    def one(m):
        close, name, rest, empty = m.groups()
        if close:
            return b"</" + open_names.pop()[0] + rest + b">"
        inside = bool(open_names) and open_names[-1][1]
        new = name if inside else spell(name.decode("ascii")).encode("ascii")
        if not empty:
            open_names.append((new, inside or name.decode("ascii").lower() in XML_VALUED))
        return b"<" + new + rest + empty + b">"
    out = _TAG.sub(one, xml)
    assert not open_names
    return out


def random_case(rng):
    """A ``spell`` for ``respell``: each letter upper or lower case at random (``rng``: random.Random)."""
    return lambda name: "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)
