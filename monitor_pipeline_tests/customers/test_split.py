"""The two-process parse (customers/split.py) gives exactly the frames and errors of the single pass."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.generate import generate
from monitor_pipeline.customers import CustomersXmlError, normalize_customers, split

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


def single(monkeypatch, path):
    with monkeypatch.context() as m:
        m.setattr(split, "PARALLEL_MIN_BYTES", 1 << 62)
        return normalize_customers(path)


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
