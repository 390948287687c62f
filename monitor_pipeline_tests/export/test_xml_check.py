import time

import pytest

from monitor_pipeline.export.xml_check import MalformedCustomerXmlError, check_well_formed, encode_customer_xml

GOOD = ('<?xml version="1.0" encoding="utf-8"?>\n<NewCustomers><Customer>'
        '<customerGuid>0b9e</customerGuid><name>Nordic Tools AB — Malmö &amp; Co</name></Customer></NewCustomers>')


def test_well_formed_passes():
    check_well_formed(GOOD)
    check_well_formed(GOOD.encode("utf-8"))
    check_well_formed("<NewCustomers/>")


@pytest.mark.parametrize("xml, line", [
    ("<NewCustomers><Customer></NewCustomers>", 1),
    ("<NewCustomers>\n<Customer>\n</NewCustomers>", 3),
    ("<NewCustomers>\n  <Customer>", None),          # truncated
    ("<a/><b/>", 1),                                  # two roots
    ("<a>&undefined;</a>", 1),
    ("not xml at all", 1),
])
def test_malformed_is_refused_with_line(xml, line):
    with pytest.raises(MalformedCustomerXmlError, match="not well-formed") as info:
        check_well_formed(xml)
    if line is not None:
        assert info.value.line == line
        assert f"line {line}" in str(info.value)
    else:
        assert info.value.line is not None


@pytest.mark.parametrize("xml", ["", "   \n"])
def test_empty_is_refused(xml):
    with pytest.raises(MalformedCustomerXmlError, match="empty"):
        check_well_formed(xml)


def test_xxe_file_entity_is_refused_and_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xml = (f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM "{secret.as_uri()}">]>\n'
           "<NewCustomers>&x;</NewCustomers>")
    with pytest.raises(MalformedCustomerXmlError) as info:
        check_well_formed(xml)
    assert "DOCTYPE" in str(info.value)
    assert "TOP-SECRET" not in str(info.value)
    assert info.value.line == 2


def test_external_dtd_is_refused_without_network():
    # an unroutable address: a parser that fetched it would hang or fail differently
    xml = '<!DOCTYPE r SYSTEM "http://10.255.255.1/evil.dtd"><r/>'
    with pytest.raises(MalformedCustomerXmlError, match="DOCTYPE"):
        check_well_formed(xml)


def test_billion_laughs_is_refused_quickly():
    lol = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10)]
    xml = "<!DOCTYPE lolz [" + "".join(lol) + "]><lolz>&lol9;</lolz>"
    started = time.monotonic()
    with pytest.raises(MalformedCustomerXmlError, match="DOCTYPE"):
        check_well_formed(xml)
    assert time.monotonic() - started < 1.0  # refused, not expanded (10^9 "lol"s)


def test_plain_doctype_is_refused():
    with pytest.raises(MalformedCustomerXmlError, match="DOCTYPE"):
        check_well_formed("<!DOCTYPE NewCustomers><NewCustomers/>")


def test_encoding_utf8_by_default_and_bytes_unchanged():
    assert encode_customer_xml(GOOD) == GOOD.encode("utf-8")
    assert encode_customer_xml("\ufeff<a>é</a>") == "\ufeff<a>é</a>".encode("utf-8")
    raw = b"<a>\xe9</a>"
    assert encode_customer_xml(raw) is raw


def test_declared_encoding_is_honoured():
    xml = '<?xml version="1.0" encoding="ISO-8859-1"?><a>Malmö</a>'
    data = encode_customer_xml(xml)
    assert data == xml.encode("latin-1")
    check_well_formed(data)
    utf16 = encode_customer_xml('<?xml version="1.0" encoding="UTF-16"?><a>Malmö</a>')
    assert utf16.startswith((b"\xff\xfe", b"\xfe\xff"))
    check_well_formed(utf16)


def test_unrepresentable_or_unknown_encoding_is_an_error():
    with pytest.raises(MalformedCustomerXmlError, match="cannot represent"):
        encode_customer_xml('<?xml version="1.0" encoding="us-ascii"?>\n<a>Malmö</a>')
    with pytest.raises(MalformedCustomerXmlError, match="unknown encoding"):
        encode_customer_xml('<?xml version="1.0" encoding="klingon-8"?><a/>')
