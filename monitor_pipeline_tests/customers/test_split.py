"""The two-process parse (customers/split.py) gives exactly the frames and errors of the single pass."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.generate import generate
from monitor_pipeline.customers import CustomersXmlError, NormalizeSettings, normalize_customers, split

from .xmlbuild import customer

FRAMES = ["customers", "addresses", "contacts", "dashboards", "rejected", "warnings"]


@pytest.fixture
def spy(monkeypatch):
    """Forces the split on for any file; records whether it was used (True) or fell back (False)."""
    used = []
    real = split.parse_split

    def wrapped(*args):
        raw = real(*args)
        if split.PARALLEL_MIN_BYTES == 0:        # not the single() reference run
            used.append(raw is not None)
        return raw

    monkeypatch.setattr(split, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(split, "_cpus", lambda: 2)
    monkeypatch.setattr(split, "parse_split", wrapped)
    return used


def single(monkeypatch, path, settings=None):
    with monkeypatch.context() as m:
        m.setattr(split, "PARALLEL_MIN_BYTES", 1 << 62)
        return normalize_customers(path, settings)


def assert_same(a, b):
    for name in FRAMES:
        fa, fb = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(fa, fb, check_exact=True)
        for col in fa.columns:
            if fa[col].dtype == object:
                assert [type(v) for v in fa[col]] == [type(v) for v in fb[col]], (name, col)
    assert a.source_format == b.source_format


def mixed_text(tmp_path, n=400) -> str:
    flat = generate(tmp_path / "f.xml", n, nested=False).read_text("utf-8").splitlines(True)
    nested = generate(tmp_path / "n.xml", n, nested=True).read_text("utf-8").splitlines(True)
    lines = flat[:2] + [flat[i] if i % 2 else nested[i] for i in range(2, len(flat) - 1)]
    # second half: a customer without name (rejected, reports its line) and a duplicate of the first
    lines.insert(len(lines) * 3 // 4, "<customer><customercode>NONAME</customercode></customer>\n")
    lines.insert(len(lines) - 5, lines[2])
    return "".join(lines + flat[-1:])


@pytest.mark.parametrize("kind", ["flat", "nested", "mixed", "latin1"])
def test_split_equals_single_pass(tmp_path, monkeypatch, spy, kind):
    path = tmp_path / "customers.xml"
    if kind == "mixed":
        path.write_text(mixed_text(tmp_path), "utf-8")
    elif kind == "latin1":
        text = mixed_text(tmp_path).replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
        path.write_bytes(text.encode("latin-1", errors="replace"))
    else:
        generate(path, 500, nested=kind == "nested")
    expected = single(monkeypatch, path)
    got = normalize_customers(path)
    assert spy == [True]
    assert_same(got, expected)
    if kind in ("mixed", "latin1"):
        rejected = got.rejected.set_index("CustomerCode")
        line = rejected.loc["NONAME", "Line"]
        assert path.read_bytes().splitlines()[line - 1].startswith(b"<customer><customercode>NONAME<")


def test_malformed_second_half_reports_the_true_line(tmp_path, monkeypatch, spy):
    lines = mixed_text(tmp_path).splitlines(True)
    bad_at = len(lines) * 4 // 5
    lines[bad_at] = "<customer><customercode>C1</customername></customer>\n"
    path = tmp_path / "customers.xml"
    path.write_text("".join(lines), "utf-8")
    with pytest.raises(CustomersXmlError) as info:
        normalize_customers(path)
    assert spy == [False]                    # the split fell back to the single pass
    assert info.value.line == bad_at + 1 and str(path) in str(info.value)
    with pytest.raises(CustomersXmlError) as again:
        single(monkeypatch, path)
    assert str(again.value) == str(info.value)


def test_cut_inside_a_comment_falls_back(tmp_path, monkeypatch, spy):
    text = mixed_text(tmp_path)
    middle = text.index("<customer>", len(text) // 2)
    text = text[:middle] + "<!-- " + "x" * len(text) + " </customer>\n<customer> -->\n" + text[middle:]
    path = tmp_path / "customers.xml"
    path.write_text(text, "utf-8")
    got = normalize_customers(path)
    assert spy == [False]
    assert_same(got, single(monkeypatch, path))


def test_truncated_file(tmp_path, spy):
    path = tmp_path / "customers.xml"
    path.write_text(mixed_text(tmp_path)[:-40], "utf-8")
    with pytest.raises(CustomersXmlError, match="malformed"):
        normalize_customers(path)


def dup_text(tmp_path, n=400) -> str:
    """Codes of the first half occur again in the second half (and the other way round: a code of the
    second half occurs earlier), with bad values, dashboards, addresses and contacts on the customers
    that are dropped; a code occurring three times; a rejected second-half customer with a first-half code."""
    lines = mixed_text(tmp_path, n).splitlines(True)
    body, end = lines[:-1], lines[-1:]
    first, second = 4, len(body) * 3 // 4

    def dup(code, tag, **scalars):
        return customer("nested", {"customercode": code, "customername": "dup " + tag, "isvatliable": "bad-" + tag,
                                   "discount": "x", "customerdashboard": "!!" + tag, **scalars},
                        addresses=[("del", {"city": "D" + tag}), ("inv", {"city": "I" + tag})],
                        contact={"fullname": "Dup " + tag}) + "\n"
    body.insert(first, dup("C0000300", "early"))              # dropped: C0000300 comes again later
    body.insert(first + 1, dup("TRIPLE", "t1", languagecode="NL"))
    body.insert(len(body) // 2, dup("TRIPLE", "t2"))
    body.insert(second, dup("C0000010", "late"))              # kept; C0000010 earlier is dropped
    body.insert(second + 1, dup("TRIPLE", "t3", countrycode="fi"))
    body.insert(second + 2, customer("flat", {"customercode": "C0000020"}) + "\n")   # rejected, no drop
    body.insert(second + 3, customer("flat", {"customercode": "EDASH", "customername": "d",
                                              "customerdashboard": "ZGFzaA=="}) + "\n")
    return "".join(body + end)


@pytest.mark.parametrize("with_settings", [False, True])
def test_duplicates_across_halves(tmp_path, monkeypatch, spy, with_settings):
    path = tmp_path / "customers.xml"
    path.write_text(dup_text(tmp_path), "utf-8")
    settings = NormalizeSettings(language_map={"NL": "nl-BE"}, default_action_price_list_code="DEF") \
        if with_settings else None
    expected = single(monkeypatch, path, settings)
    got = normalize_customers(path, settings)
    assert spy == [True]
    assert_same(got, expected)
    c = got.customers.set_index("CustomerCode")
    assert c.loc["C0000010", "CustomerName"] == "dup late" and c.loc["TRIPLE", "CustomerName"] == "dup t3"
    assert "C0000300" in c.index and c.loc["C0000300", "CustomerName"] != "dup early"
    assert "C0000020" in c.index and "C0000020" in set(got.rejected["CustomerCode"])
    dups = got.warnings[got.warnings["Field"] == "CustomerCode"]
    assert {"C0000010", "C0000300"} <= set(dups["CustomerCode"]) and (dups["CustomerCode"] == "TRIPLE").sum() == 2
    assert not got.warnings["Message"].str.contains("early|t1|t2").any()
    assert set(got.dashboards["CustomerCode"]) == {"EDASH"}
    assert (got.addresses["CustomerCode"] == "TRIPLE").sum() == 3     # inv, del, del copied as vis


@pytest.mark.parametrize("item_filter", [False, True])
def test_extra_data_with_split(tmp_path, monkeypatch, spy, item_filter):
    path = tmp_path / "customers.xml"
    path.write_text(dup_text(tmp_path), "utf-8")
    extra = ("CustomerCode;LanguageCode;VatLiable;Bogus;ItemFilter;CustomerName\n"
             "C0000002;DE;;x;F;\nC0000010;xx;maybe;;;New name\nNOPE;SV;;;;\nTRIPLE;FI;;;;T\nC0000350;;nej;;;\n").encode()
    settings = NormalizeSettings(extra_data=extra, customer_item_filter=item_filter, language_map={"xx": "fr"})
    expected = single(monkeypatch, path, settings)
    got = normalize_customers(path, settings)
    assert spy == [True]
    assert_same(got, expected)
    c = got.customers.set_index("CustomerCode")
    assert c.loc["C0000002", "LanguageCode"] == "de" and c.loc["C0000010", "LanguageCode"] == "fr"
    addr = got.addresses[got.addresses["CustomerCode"] == "TRIPLE"]
    assert set(addr["Country"]) == {"FI"}


@pytest.mark.parametrize("script", ["pass", "import sys, pickle; pickle.dump(['C0000001'], sys.stdout.buffer)",
                                    "import sys, pickle; pickle.dump({'n': 1}, sys.stdout.buffer)",
                                    "import sys; sys.stdin.read(); sys.exit(1)"],
                         ids=["dies at once", "sends a list", "sends a half without frames", "reads the codes, dies"])
def test_broken_worker_falls_back(tmp_path, monkeypatch, spy, script):
    """A worker that dies before reading the codes of half B, after reading them, or answers nonsense."""
    import subprocess
    import sys

    path = tmp_path / "customers.xml"
    path.write_text(dup_text(tmp_path), "utf-8")
    monkeypatch.setattr(split, "_start_worker", lambda *a: subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    got = normalize_customers(path)
    assert spy == [False]
    assert_same(got, single(monkeypatch, path))


@pytest.mark.parametrize("kind", ["second_half_rejected", "first_half_duplicated", "all_rejected"])
def test_halves_without_customers(tmp_path, monkeypatch, spy, kind):
    from .xmlbuild import document

    def full(i):
        return customer("nested", {"customercode": f"K{i}", "customername": "n", "isvatliable": "zz",
                                   "customerdashboard": "!!"}, addresses=[("del", {"city": "x"})],
                        contact={"fullname": "A B"})
    if kind == "second_half_rejected":
        items = [full(i) for i in range(20)] + [customer("flat", {"customercode": f"R{i}"}) for i in range(40)]
    elif kind == "first_half_duplicated":
        items = [full(i) for i in range(30)] * 2
    else:
        items = [customer("flat", {"customername": f"R{i}"}) for i in range(40)]
    path = tmp_path / "customers.xml"
    path.write_bytes(document(*items))
    expected = single(monkeypatch, path)
    got = normalize_customers(path)
    assert spy == [True]
    assert_same(got, expected)


# --- the text node limit (SPEC §4) and element names in any case (SPEC §3) ------------------------------

LIMIT = 10_000_000           # lib.xml.TEXT_NODE_LIMIT


@pytest.mark.parametrize("size", [LIMIT, 12_000_000], ids=["at the limit", "12 MB"])
@pytest.mark.parametrize("half", ["A", "B"])
def test_large_text_node_with_split(tmp_path, monkeypatch, spy, half, size):
    """A note of ``LIMIT`` bytes is read whole by the split; one of 12 MB fails the run exactly as the single
    pass does (the half that holds it falls back), in either half."""
    lines = mixed_text(tmp_path, 200).splitlines(True)
    at = 10 if half == "A" else len(lines) - 10
    monkeypatch.setattr(split, "CUT_FRACTION", 0.9 if half == "A" else 0.01)     # the node is in that half
    lines.insert(at, f"<customer><customercode>BIG</customercode><customername>b</customername>\n"
                     f"<customernote>{'n' * size}</customernote></customer>\n")
    path = tmp_path / "customers.xml"
    path.write_text("".join(lines), "utf-8")
    if size <= LIMIT:
        got = normalize_customers(path)
        assert spy == [True]
        assert_same(got, single(monkeypatch, path))
        assert len(got.customers.set_index("CustomerCode").loc["BIG", "CustomerNote"]) == size
        return
    with pytest.raises(CustomersXmlError) as info:
        normalize_customers(path)
    assert spy == [False]
    assert info.value.line == at + 2 and f"longer than {LIMIT:,} bytes" in str(info.value)
    with pytest.raises(CustomersXmlError) as again:
        single(monkeypatch, path)
    assert str(again.value) == str(info.value)


def test_duplicates_across_the_cut_in_mixed_spellings(tmp_path, monkeypatch, spy):
    """Every element name spelled at random (``customer`` too: the cut is found in any spelling), codes
    repeated within and across the halves: the split keeps the last occurrence of each code, reports the
    others, and gives the frames of the single pass and of the same file in lower case."""
    import random

    from .xmlbuild import random_case, respell
    text = dup_text(tmp_path)
    lower = tmp_path / "lower.xml"
    lower.write_text(text, "utf-8")
    path = tmp_path / "customers.xml"
    others, count = random_case(random.Random(7)), []

    def spell(name):
        if name != "customer":
            return others(name)
        count.append(1)         # the first spelling (what the cut is looked for by) only once
        return "customer" if len(count) == 1 else ["CUSTOMER", "cUstomer", "Customer", "CusTomeR"][len(count) % 4]
    path.write_bytes(respell(text.encode("utf-8"), spell))
    assert path.read_bytes().count(b"<customer>") == 1
    expected = single(monkeypatch, lower)
    got = normalize_customers(path)
    assert spy == [True]
    assert_same(got, single(monkeypatch, path))
    assert_same(got, expected)
    c = got.customers.set_index("CustomerCode")
    assert c.loc["C0000010", "CustomerName"] == "dup late" and c.loc["TRIPLE", "CustomerName"] == "dup t3"
    dups = got.warnings[got.warnings["Field"] == "CustomerCode"]
    assert (dups["CustomerCode"] == "TRIPLE").sum() == 2
