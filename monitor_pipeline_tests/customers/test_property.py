"""Properties: the same customers written in the flat and in the nested format give identical frames; so
do element names spelled in any case (SPEC §3), whichever parser reads the file."""

from __future__ import annotations

import random

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor_pipeline.customers import normalize_customers

from .xmlbuild import customer, document, random_case, respell

ALPHABET = st.sampled_from(list("abcXYZåäöüéß€&<>'\"0123456789-./ "))
text = st.text(ALPHABET, min_size=0, max_size=12)
word = st.text(st.sampled_from(list("abcdefgÅÖüé")), min_size=1, max_size=8)
bool_text = st.sampled_from(["true", "FALSE", "1", "0", "yes", "No", "y", "n", "ja", "NEJ", "j", "", "maybe"])
decimal_text = st.one_of(st.decimals(-1000, 1000, places=2, allow_nan=False).map(str),
                         st.decimals(0, 100, places=1, allow_nan=False).map(lambda d: str(d).replace(".", ",")),
                         st.sampled_from(["", "x", "1,2,3"]))
language = st.sampled_from(["SV", "se", "NL", "de", "EN", "XX", "", "fi"])
address = st.fixed_dictionaries({}, optional={"address1": text, "address2": text, "postcode": text, "city": text,
                                              "countrycode": st.sampled_from(["se", "NL", ""]), "email": text})
contact = st.one_of(
    st.none(),
    st.builds(lambda f, m, l: {"firstname": f, "middlename": m, "lastname": l}, word,
              st.one_of(st.none(), st.lists(word, min_size=1, max_size=3).map(" ".join)), word),
    st.lists(word, min_size=1, max_size=4).map(lambda ws: {"fullname": " ".join(ws)}),
)


@st.composite
def customers(draw):
    n = draw(st.integers(1, 6))
    out = []
    for i in range(n):
        scalars = {"customercode": draw(st.sampled_from([f"C{i}", f"C{i}", "DUP", ""])),
                   "customername": draw(st.one_of(word, st.just(""))),
                   "isvatliable": draw(bool_text), "hideprices": draw(bool_text), "discount": draw(decimal_text),
                   "languagecode": draw(language), "countrycode": draw(st.sampled_from(["", "DK"])),
                   "customernote": draw(text), "contactemail": draw(st.one_of(st.just(""), text)),
                   "contactphone": draw(st.one_of(st.just(""), text))}
        kinds = [k for k in ("inv", "vis", "del") if draw(st.booleans())]
        addresses = [(k, draw(address)) for k in kinds]
        out.append((scalars, addresses, draw(contact)))
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(customers())
def test_flat_and_nested_give_identical_frames(model):
    frames = {}
    for fmt in ("flat", "nested"):
        xml = document(*[customer(fmt, {k: (v or None) for k, v in s.items()}, addresses=a, contact=c)
                         for s, a, c in model])
        frames[fmt] = normalize_customers(xml)
    flat, nested = frames["flat"], frames["nested"]
    for name in ("customers", "addresses", "contacts", "dashboards", "rejected", "warnings"):
        pd.testing.assert_frame_equal(getattr(flat, name), getattr(nested, name), obj=name)


FRAMES = ("customers", "addresses", "contacts", "dashboards", "rejected", "warnings")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(customers(), st.sampled_from(["flat", "nested"]), st.integers(0, 2**32), st.booleans())
def test_element_names_in_any_case_give_identical_frames(model, fmt, seed, comment):
    """Every element name (``customer``, ``customercode``, the containers and their nodes, the root) spelled
    per element at random: the same frames, duplicated codes included (the last occurrence in document order
    is kept, with the same positions and lines in the report). ``comment``: the file also holds a comment,
    which sends it to the lxml loop instead of the scan."""
    xml = document(*[customer(fmt, {k: (v or None) for k, v in s.items()}, addresses=a, contact=c)
                     for s, a, c in model])
    if comment:
        xml = xml.replace(b"\n</customers>", b"<!-- end -->\n</customers>")
    want = normalize_customers(xml)
    got = normalize_customers(respell(xml, random_case(random.Random(seed))))
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), obj=name)
