"""Deterministic generator of Monitor ``customers.xml`` files (flat and nested) for benchmarks.

    .venv/bin/python -m benchmarks.generate 100000 bench_data/

writes ``customers_flat_100000.xml`` and ``customers_nested_100000.xml``. The same ``n`` and
``seed`` always give byte-identical files.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from xml.sax.saxutils import escape

FIRST = ["Anna", "Jan", "Lars", "Sofia", "Erik", "Maria", "Pieter", "Klaus", "Ingrid", "Johan", "Eva", "Sanne"]
MIDDLE = ["", "", "", "van der", "de", "Maria", "von"]
LAST = ["Svensson", "Berg", "Johansson", "de Vries", "Müller", "Nilsson", "Jansen", "Schmidt", "Lindqvist"]
CITIES = [("Stockholm", "SE", "111 22"), ("Göteborg", "SE", "411 05"), ("Amsterdam", "NL", "1011 AB"),
          ("Utrecht", "NL", "3511 CE"), ("Berlin", "DE", "10115"), ("Hamburg", "DE", "20095"), ("Oslo", "NO", "0150")]
LANGS = ["SV", "NL", "DE", "EN", "NO", "sv", "FI"]
STREETS = ["Storgatan", "Kerkstraat", "Hauptstraße", "Lagervägen", "Industrieweg", "Kajen"]
BOOLS = ["true", "false", "1", "0", "ja", "nej", "Yes", "N"]


def _customer(rng: random.Random, i: int, nested: bool) -> str:
    code = f"C{i:07d}"
    city, country, post = rng.choice(CITIES)
    d = [
        ("customerguid", f"{rng.getrandbits(128):032x}" if rng.random() < 0.5 else ""),
        ("customercode", code),
        ("customername", f"{rng.choice(LAST)} {rng.choice(['AB', 'BV', 'GmbH', 'AS', 'Handel'])} {i}"),
        ("chamberofcommercecode", f"{rng.randrange(10**7, 10**8)}"),
        ("vatcode", f"{country}{rng.randrange(10**9, 10**10)}01"),
        ("isvatliable", rng.choice(BOOLS)),
        ("discount", f"{rng.randrange(0, 300) / 10}".replace(".", rng.choice([".", ","]))),
        ("usesprice", rng.choice(["PL1", "PL2", "STD"])),
        ("actionpricelist", rng.choice(["", "ACT1"])),
        ("hideprices", rng.choice(BOOLS)),
        ("languagecode", rng.choice(LANGS)),
        ("customermanager", rng.choice(FIRST)),
        ("lastmodified", f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} 10:{rng.randrange(60):02d}"),
        ("customerclassification", rng.choice(["A", "B", "C"])),
        ("customernote", rng.choice(["", "Call before delivery & use gate 2", "Prefers e-mail"])),
        ("paymentcondition", rng.choice(["30", "60", "14N"])),
        ("termsofdelivery", rng.choice(["", "DAP", "EXW"])),
        ("countrycode", country),
    ]
    first, middle, last = rng.choice(FIRST), rng.choice(MIDDLE), rng.choice(LAST)
    full = " ".join(p for p in (first, middle, last) if p)
    email = f"{first.lower()}@example{i % 97}.com"
    phone = f"+46 8 {rng.randrange(100, 999)} {rng.randrange(10, 99)} {rng.randrange(10, 99)}"
    parts = ["<customer>"]
    parts += [f"<{k}>{escape(v)}</{k}>" if v else f"<{k}/>" for k, v in d]
    street = f"{rng.choice(STREETS)} {rng.randrange(1, 200)}"
    if not nested:
        parts += [f"<invoiceaddress1>Box {rng.randrange(1, 999)}</invoiceaddress1>",
                  f"<invoicepostcode>{post}</invoicepostcode><invoicecity>{city}</invoicecity>",
                  f"<deliveryaddress1>{escape(street)}</deliveryaddress1><deliveryaddress2/>",
                  f"<deliverypostcode>{post}</deliverypostcode><deliverycity>{city}</deliverycity>",
                  f"<contactfullname>{escape(full)}</contactfullname><contactemail>{email}</contactemail>",
                  f"<contactphone>{phone}</contactphone>"]
    else:
        parts += [f"<contactfullname>{escape(full)}</contactfullname><contactemail>{email}</contactemail>",
                  "<addresses>",
                  f'<address type="invoice"><address1>Box {rng.randrange(1, 999)}</address1>'
                  f"<postcode>{post}</postcode><city>{city}</city></address>",
                  f'<address><type>delivery</type><address1>{escape(street)}</address1><postcode>{post}</postcode>'
                  f"<city>{city}</city><countrycode>{country}</countrycode><phone>{phone}</phone></address>",
                  "</addresses><contactpersons>",
                  f"<contactperson><firstname>{first}</firstname>" + (f"<middlename>{middle}</middlename>" if middle else "")
                  + f"<lastname>{escape(last)}</lastname><email>{email}</email><phonenumber>{phone}</phonenumber>"
                  f'<dynamicfreefields><field name="role">buyer</field></dynamicfreefields></contactperson>',
                  f"<contactperson><fullname>{rng.choice(FIRST)} {rng.choice(LAST)}</fullname>"
                  f"<email>info@example{i % 97}.com</email></contactperson>",
                  "</contactpersons>",
                  f'<dynamicfreefields><field name="segment">{rng.choice("ABC")}</field>'
                  f'<field name="region">{city}</field></dynamicfreefields>']
    parts.append("</customer>\n")
    return "".join(parts)


def generate(path: str | Path, n: int, *, nested: bool, seed: int = 42) -> Path:
    """Write ``n`` customers to ``path`` (UTF-8) and return the path."""
    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<customers>\n')
        chunk = []
        for i in range(1, n + 1):
            chunk.append(_customer(rng, i, nested))
            if len(chunk) >= 10000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))
        out.write("</customers>\n")
    tmp.replace(path)
    return path


def cached(folder: str | Path, n: int, *, nested: bool) -> Path:
    """The generated file for ``n`` customers under ``folder``, generating it once."""
    path = Path(folder) / f"customers_{'nested' if nested else 'flat'}_{n}.xml"
    if not path.exists():
        generate(path, n, nested=nested)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("folder", nargs="?", default="bench_data")
    args = parser.parse_args(argv)
    for nested in (False, True):
        print(cached(args.folder, args.n, nested=nested))


if __name__ == "__main__":
    main()
