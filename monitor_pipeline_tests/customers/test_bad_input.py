"""SPEC §4: unusable files raise CustomersXmlError naming the file and the line; rows never raise."""

from __future__ import annotations

import time

import pytest

from monitor_pipeline.customers import CustomersXmlError, normalize_customers

from .xmlbuild import customer, document

GOOD = customer("flat", {"customercode": "C1", "customername": "N"})


def raises(tmp_path, data: bytes, line: int | None, words: str):
    path = tmp_path / "customers.xml"
    path.write_bytes(data)
    with pytest.raises(CustomersXmlError) as info:
        normalize_customers(path)
    message = str(info.value)
    assert str(path) in message and info.value.path == str(path)
    if line is not None:
        assert info.value.line == line and f"line {line}" in message
    assert words.lower() in message.lower(), message
    return info.value


@pytest.mark.parametrize("data, line, words", [
    (b"", 1, "empty"),
    (b"   \n\n", 1, "empty"),
    (b"<customers><customer><customercode>C1</customercode>", None, "malformed"),            # truncated
    (b"<customers>\n<customer><customercode>C1</customername></customer>\n</customers>", 2, "malformed"),
    (b"<customers>\n" + GOOD.encode() * 3 + b"\n<customer><a>&undefined;</a></customer></customers>", 3, "malformed"),
    (b"<?xml version='1.0'?>\n<items>\n<item/></items>", 2, "root element is <items>"),
    (b"<customer><customercode>C1</customercode></customer>", 1, "expected <customers>"),
    (b"not xml at all", 1, "malformed"),
])
def test_unusable_files(tmp_path, data, line, words):
    raises(tmp_path, data, line, words)


def test_truncated_big_file_reports_a_late_line(tmp_path):
    data = document(*[GOOD] * 5000)
    error = raises(tmp_path, data[: len(data) // 2], None, "malformed")
    assert error.line > 2000


def test_xxe_external_file_entity_is_not_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    data = (f'<?xml version="1.0"?>\n<!DOCTYPE customers [\n  <!ENTITY xxe SYSTEM "file://{secret}">\n]>\n'
            f"<customers><customer><customercode>C1</customercode><customername>&xxe;</customername>"
            f"</customer></customers>").encode()
    error = raises(tmp_path, data, 2, "DOCTYPE")
    assert "TOP-SECRET-VALUE" not in str(error)


def test_external_dtd_refused(tmp_path):
    data = b'<?xml version="1.0"?>\n<!DOCTYPE customers SYSTEM "http://127.0.0.1:9/evil.dtd">\n<customers/>'
    raises(tmp_path, data, 2, "DOCTYPE")


def test_billion_laughs_fails_fast(tmp_path):
    lol = ['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                                     for i in range(1, 10)]
    data = ('<?xml version="1.0"?>\n<!DOCTYPE customers [\n' + "\n".join(lol) + "\n]>\n"
            "<customers><customer><customercode>&lol9;</customercode></customer></customers>").encode()
    started = time.perf_counter()
    raises(tmp_path, data, 2, "DOCTYPE")
    assert time.perf_counter() - started < 1.0


def test_utf16_doctype_refused(tmp_path):
    data = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE customers [<!ENTITY a "b">]>\n<customers/>'.encode("utf-16")
    raises(tmp_path, data, 2, "DOCTYPE")


@pytest.mark.parametrize("comment", [False, True], ids=["scan", "loop"])
def test_text_node_of_12_mb_is_refused(tmp_path, comment):
    """A 12 MB note (more than libxml2's 10,000,000 bytes per text node) fails the run, naming the file and
    the line, whichever parser reads the file (a comment sends it to the lxml loop): same verdict, same
    message."""
    note = "<customernote>" + "x" * 12_000_000 + "</customernote>"
    data = document(GOOD.replace("</customer>", "<!-- c --></customer>") if comment else GOOD,
                    customer("flat", {"customercode": "C2", "customername": "N"}).replace("</customer>", "")
                    + "\n" + note + "</customer>")
    error = raises(tmp_path, data, 4, "text longer than 10,000,000 bytes")
    assert str(error) == f"{tmp_path / 'customers.xml'}, line 4: {error.problem}"
    assert "XML_PARSE_HUGE" not in str(error)
    other = tmp_path / "other"
    other.mkdir()
    data = data.replace(b"<!-- c -->", b"") if comment else data.replace(b"</customer>", b"<!-- c --></customer>", 1)
    assert str(raises(other, data, 4, "longer")) == str(error).replace(str(tmp_path), str(other))


def test_nesting_beyond_the_parser_limit_is_refused(tmp_path):
    """libxml2's other limits (here 256 levels of nesting) are named as limits, not as a typo."""
    deep = "<x>" * 300 + "</x>" * 300
    error = raises(tmp_path, document(GOOD, customer("flat", {"customercode": "C2"}, raw=deep)), 3,
                   "beyond a limit of the hardened XML parser")
    assert "depth" in str(error) and "XML_PARSE_HUGE" not in str(error)


def test_stream_and_bytes_names():
    with pytest.raises(CustomersXmlError, match="<bytes>"):
        normalize_customers(b"<wrong/>")


def test_missing_file(tmp_path):
    with pytest.raises(CustomersXmlError, match="nope.xml"):
        normalize_customers(tmp_path / "nope.xml")


def test_row_level_problems_do_not_raise():
    r = normalize_customers(document(customer("flat", {"customername": "no code"}),
                                     customer("flat", {"customercode": "C2", "customername": "ok", "isvatliable": "?",
                                                       "discount": "x", "lastmodified": "never"})))
    assert list(r.customers["CustomerCode"]) == ["C2"] and len(r.rejected) == 1 and len(r.warnings) == 3


def test_empty_root_is_fine():
    r = normalize_customers(b"<customers/>")
    assert r.customers.empty and r.addresses.empty and r.source_format == {"flat": 0, "nested": 0, "mixed": 0}


def test_an_earlier_files_error_never_names_this_files_line(tmp_path):
    """libxml2's error log is per thread and outlives a parse: the error of a file parsed before must not
    be reported for this one (it named line 142 of another file for an undefined entity on line 3)."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "customers.xml").write_bytes(b"<customers>\n" + b"<x>\n" * 140 + b"<b></c>")
    with pytest.raises(CustomersXmlError, match="line 142"):
        normalize_customers(other / "customers.xml")
    raises(tmp_path, b"<customers>\n" + GOOD.encode() * 3 + b"\n<customer><a>&undefined;</a></customer></customers>",
           3, "malformed")
