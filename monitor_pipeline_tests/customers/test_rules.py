"""Table-driven tests of every SPEC §3 rule, in the flat and the nested format."""

from __future__ import annotations

import base64
import math

import pandas as pd
import pytest

from monitor_pipeline.customers import (ADDRESS_COLUMNS, CONTACT_COLUMNS, CUSTOMER_COLUMNS, DASHBOARD_COLUMNS,
                                        NormalizeSettings, normalize_customers)

from .xmlbuild import customer, document

FORMATS = ["flat", "nested"]
BASE = {"customercode": "C1", "customername": "Nordic Tools AB"}


def run(*customers, settings=None, encoding=None):
    return normalize_customers(document(*customers, encoding=encoding), settings)


def one(fmt, scalars=None, **kw):
    return run(customer(fmt, {**BASE, **(scalars or {})}, addresses=kw.pop("addresses", [("del", {"city": "Lund"})]),
                        **kw), settings=kw.pop("settings", None) if "settings" in kw else None)


def warned(result, field):
    return result.warnings[result.warnings["Field"] == field]


# -- scalar mapping rules -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text, expected", [
    ("true", True), ("FALSE", False), ("1", True), ("0", False), ("yes", True), ("No", False), ("y", True),
    ("N", False), ("ja", True), ("Nej", False), ("J", True), ("n", False), (" true ", True),
])
def test_booleans(fmt, text, expected):
    r = one(fmt, {"isvatliable": text, "hideprices": text})
    assert r.customers.loc[0, "VatLiable"] is expected if isinstance(r.customers.loc[0, "VatLiable"], bool) \
        else bool(r.customers.loc[0, "VatLiable"]) == expected
    assert bool(r.customers.loc[0, "HidePrices"]) == expected
    assert r.warnings.empty


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text", ["maybe", "2", "tru"])
def test_bad_boolean_is_null_and_warned(fmt, text):
    r = one(fmt, {"isvatliable": text})
    assert pd.isna(r.customers.loc[0, "VatLiable"])
    w = warned(r, "VatLiable")
    assert list(w["CustomerCode"]) == ["C1"] and text in w["Message"].iloc[0]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text, expected", [("12,5", 12.5), ("12.5", 12.5), ("7", 7.0), ("-0,25", -0.25),
                                            (",5", 0.5), ("abc", None), ("1.234,5", None), ("1e3", None)])
def test_decimals(fmt, text, expected):
    r = one(fmt, {"discount": text})
    value = r.customers.loc[0, "Discount"]
    if expected is None:
        assert math.isnan(value) and len(warned(r, "Discount")) == 1
    else:
        assert value == expected and r.warnings.empty


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text, expected", [
    ("2026-11-02", "2026-11-02T00:00:00"), ("2026-11-02T10:00:00", "2026-11-02T10:00:00"),
    ("2026-11-02 10:00", "2026-11-02T10:00:00"), ("2026-11-02 10:00:59", "2026-11-02T10:00:59"),
    ("2026-11-02T10:00:00+01:00", "2026-11-02T10:00:00+01:00"), ("2026-11-02T10:00:00Z", "2026-11-02T10:00:00+00:00"),
    ("2026-11-02T10:00:00.123", "2026-11-02T10:00:00"),
    ("2026-11-02T10:00:00,5+0130", "2026-11-02T10:00:00+01:30"), ("2026-11-02T10:00-05", "2026-11-02T10:00:00-05:00"),
    ("2024-02-29", "2024-02-29T00:00:00"), ("2000-02-29", "2000-02-29T00:00:00"), ("9999-12-31", "9999-12-31T00:00:00"),
    ("0001-01-01", "0001-01-01T00:00:00"),
    ("2026-02-30", None), ("2023-02-29", None), ("1900-02-29", None), ("0000-01-01", None), ("2026-13-01", None),
    ("2026-11-31", None), ("02-11-2026", None), ("2026-11-02 25:00", None), ("2026-11-02 10:60", None),
    ("2026-11-02 10:00:60", None), ("2026-11-02T10", None), ("yesterday", None),
])
def test_dates(fmt, text, expected):
    r = one(fmt, {"lastmodified": text})
    assert r.customers.loc[0, "Sysmodified"] == expected
    assert len(warned(r, "Sysmodified")) == (0 if expected else 1)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("text, expected", [
    ("3F2504E0-4F89-11D3-9A0C-0305E82C3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    ("{3f2504e0-4f89-11d3-9a0c-0305e82c3301}", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    ("3f2504e04f8911d39a0c0305e82c3301", "3f2504e0-4f89-11d3-9a0c-0305e82c3301"),
    ("not-a-guid", None), (None, None),
])
def test_guid(fmt, text, expected):
    r = one(fmt, {"customerguid": text})
    assert r.customers.loc[0, "CustomerGuid"] == expected


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("code, custom, expected", [
    ("SV", {}, "sv"), ("se", {}, "sv"), ("GB", {}, "en"), ("NB", {}, "no"), ("DK", {}, "da"), ("FI", {}, "fi"),
    ("DE", {}, "de"), ("NL", {}, "nl"), ("FR", {}, "fr"), ("ES", {}, "es"), ("PL", {}, "pl"),
    ("XX", {}, "XX"), ("xx", {"XX": "it"}, "it"), ("SV", {"sv": "sv-SE"}, "sv-SE"),
])
def test_language_map(fmt, code, custom, expected):
    r = run(customer(fmt, {**BASE, "languagecode": code}), settings=NormalizeSettings(language_map=custom))
    assert r.customers.loc[0, "LanguageCode"] == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_fields_and_delivery_method(fmt):
    scalars = {**BASE, "chamberofcommercecode": "556677", "vatcode": "SE1", "usesprice": "PL1",
               "actionpricelist": "ACT", "customermanager": "Eva", "customerclassification": "A",
               "fixeditemfilter": "F1", "customernote": "Line 1\nLine 2", "paymentcondition": "30",
               "termsofdelivery": "DAP", "deliverymethod": "Truck", "filters": "x;y"}
    r = run(customer(fmt, scalars))
    row = r.customers.iloc[0]
    assert list(r.customers.columns) == CUSTOMER_COLUMNS
    assert (row["ChamberOfCommerceCode"], row["VatCode"], row["UsesPriceField"], row["ActionPriceList"],
            row["CustomerManager"], row["CustomerClassification"], row["ItemFilter"], row["CustomerNote"],
            row["PaymentConditionCode"], row["DeliveryMethod"], row["Filters"]) == (
        "556677", "SE1", "PL1", "ACT", "Eva", "A", "F1", "Line 1\nLine 2", "30", "DAP", "x;y")
    r = run(customer(fmt, {**BASE, "deliverymethod": "Truck"}))
    assert r.customers.loc[0, "DeliveryMethod"] == "Truck"


@pytest.mark.parametrize("fmt", FORMATS)
def test_action_price_list_default(fmt):
    s = NormalizeSettings(default_action_price_list_code="DEFAULT")
    r = run(customer(fmt, {**BASE, "actionpricelist": "  "}), customer(fmt, {**BASE, "customercode": "C2",
                                                                         "actionpricelist": "OWN"}), settings=s)
    assert list(r.customers["ActionPriceList"]) == ["DEFAULT", "OWN"]
    assert run(customer(fmt, BASE)).customers.loc[0, "ActionPriceList"] is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_text_trimmed_empty_is_absent(fmt):
    r = run(customer(fmt, {"customercode": "  C1 ", "customername": "\n  Name \t", "vatcode": "   ",
                           "customermanager": ""}))
    row = r.customers.iloc[0]
    assert (row["CustomerCode"], row["CustomerName"], row["VatCode"], row["CustomerManager"]) == ("C1", "Name", None, None)


@pytest.mark.parametrize("fmt", FORMATS)
def test_free_fields_inner_xml(fmt):
    raw = ('<dynamicfreefields><field name="segment">A &amp; B</field></dynamicfreefields>'
           "<freefields>&lt;freefield1&gt;x&lt;/freefield1&gt;</freefields>")
    r = run(customer(fmt, BASE, raw=raw))
    assert r.customers.loc[0, "DynamicFreeFields"] == '<field name="segment">A &amp; B</field>'
    assert r.customers.loc[0, "FreeFields"] == "<freefield1>x</freefield1>"


@pytest.mark.parametrize("fmt", FORMATS)
def test_dashboard_base64(fmt):
    good = base64.b64encode(b"\x00dashboard bytes\xff").decode()
    r = run(customer(fmt, {**BASE, "customerdashboard": good[:8] + "\n " + good[8:]}),
            customer(fmt, {**BASE, "customercode": "C2", "customerdashboard": "***not base64***"}))
    assert list(r.dashboards.columns) == DASHBOARD_COLUMNS
    assert r.dashboards.to_dict("records") == [{"CustomerCode": "C1", "Dashboard": b"\x00dashboard bytes\xff"}]
    assert list(warned(r, "Dashboard")["CustomerCode"]) == ["C2"]


# -- customers: mandatory fields, duplicates, case-insensitive names, encodings -------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_rejected_without_code_or_name(fmt):
    r = run(customer(fmt, {"customername": "No code"}), customer(fmt, BASE),
            customer(fmt, {"customercode": "C9", "customername": "  "}), customer(fmt, {"vatcode": "x"}))
    assert list(r.customers["CustomerCode"]) == ["C1"]
    assert r.rejected[["CustomerCode", "Position", "Reason"]].to_dict("records") == [
        {"CustomerCode": None, "Position": 1, "Reason": "missing CustomerCode"},
        {"CustomerCode": "C9", "Position": 3, "Reason": "missing CustomerName"},
        {"CustomerCode": None, "Position": 4, "Reason": "missing CustomerCode and CustomerName"}]
    assert list(r.rejected["Line"]) == [2, 4, 5]  # line 1 is <customers>


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_code_keeps_last(fmt):
    r = run(customer(fmt, {**BASE, "customername": "Old"}, addresses=[("del", {"city": "Old town"})]),
            customer(fmt, {**BASE, "customercode": "C2"}),
            customer(fmt, {**BASE, "customername": "New"}, addresses=[("inv", {"city": "New town"})]))
    assert list(r.customers["CustomerName"]) == ["Nordic Tools AB", "New"]
    assert list(r.addresses["City"]) == ["New town"]
    w = warned(r, "CustomerCode")
    assert list(w["CustomerCode"]) == ["C1"] and "position 1" in w["Message"].iloc[0]


def test_case_insensitive_names():
    xml = (b'<Customers><CUSTOMER><CustomerCode>C1</CustomerCode><customerName>N</customerName>'
           b'<IsVatLiable>Ja</IsVatLiable><Addresses><Address TYPE="Del"><Address1>A</Address1><City>B</City></Address>'
           b'<ADDRESS><Type>VIS</Type><City>V</City></ADDRESS></Addresses>'
           b'<ContactPersons><ContactPerson><FullName>Jan van der Berg</FullName><PhoneNumber>1</PhoneNumber>'
           b'</ContactPerson></ContactPersons></CUSTOMER><customer><customercode>C2</customercode>'
           b'<customername>M</customername></customer></Customers>')
    r = normalize_customers(xml)
    assert list(r.customers["CustomerCode"]) == ["C1", "C2"]
    assert bool(r.customers.loc[0, "VatLiable"]) is True
    assert list(r.addresses["AddressType"]) == ["del", "vis"]
    assert r.contacts.loc[0, ["FirstName", "MiddleName", "LastName", "Phonenumber"]].tolist() == ["Jan", "van der", "Berg", "1"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "iso-8859-1", "windows-1252", None])
def test_encodings(tmp_path, encoding):
    name = "Åsa Öberg Müller Façade" + (" €" if encoding in ("windows-1252", "utf-8", "utf-16", None) else "")
    data = document(customer("flat", {"customercode": "C1", "customername": name}), encoding=encoding)
    if encoding == "utf-16":
        assert data[:2] in (b"\xff\xfe", b"\xfe\xff")  # Python writes the BOM
    path = tmp_path / "customers.xml"
    path.write_bytes(data)
    assert normalize_customers(path).customers.loc[0, "CustomerName"] == name
    with open(path, "rb") as stream:
        assert normalize_customers(stream).customers.loc[0, "CustomerName"] == name


# -- addresses ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_spec_example_addresses(fmt):
    r = run(customer(fmt, {**BASE, "languagecode": "SV"},
                     addresses=[("inv", {"address1": "Box 12", "postcode": "111 22", "city": "Stockholm"}),
                                ("del", {"address1": "Lagervägen 4", "postcode": "753 20", "city": "Uppsala"})],
                     contact={"fullname": "Anna Maria Svensson", "email": "anna@nordictools.se",
                              "phone": "+46 8 123 45 67"}))
    a = r.addresses
    assert list(a.columns) == ADDRESS_COLUMNS
    assert a[["AddressType", "AddressLine1", "City", "Country", "IsMainAddress"]].values.tolist() == [
        ["inv", "Box 12", "Stockholm", "SE", False], ["del", "Lagervägen 4", "Uppsala", "SE", True],
        ["vis", "Lagervägen 4", "Uppsala", "SE", True]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_delivery_only_copied_as_visit_and_back(fmt):
    r = run(customer(fmt, BASE, addresses=[("del", {"address1": "Kajen 1", "city": "Malmö"})]),
            customer(fmt, {**BASE, "customercode": "C2"}, addresses=[("vis", {"address1": "Storgatan 9"})]),
            customer(fmt, {**BASE, "customercode": "C3"}, addresses=[("inv", {"postcode": "123"})]))
    got = r.addresses[["CustomerCode", "AddressType", "AddressLine1", "IsMainAddress"]].values.tolist()
    assert got == [["C1", "del", "Kajen 1", True], ["C1", "vis", "Kajen 1", True],
                   ["C2", "vis", "Storgatan 9", True], ["C2", "del", "Storgatan 9", True],
                   ["C3", "inv", None, False]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_address_existence_rule(fmt):
    for fields, exists in [({"address1": "x"}, True), ({"address2": "x"}, True), ({"postcode": "x"}, True),
                           ({"city": "x"}, True), ({"countrycode": "SE", "email": "a@b"}, False), ({"address1": " "}, False)]:
        r = run(customer(fmt, BASE, addresses=[("inv", fields)]))
        assert len(r.addresses) == int(exists), fields


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("own, customer_cc, language, expected", [
    ("nl", "SE", "DE", "NL"), (None, "se", "DE", "SE"), (None, None, "DE", "DE"), (None, None, "SE", "SE"),
    (None, None, "XX", None), (None, None, None, None),
])
def test_country_precedence(fmt, own, customer_cc, language, expected):
    r = run(customer(fmt, {**BASE, "countrycode": customer_cc, "languagecode": language},
                     addresses=[("inv", {"city": "X", "countrycode": own})]))
    assert r.addresses.loc[0, "Country"] == expected


@pytest.mark.parametrize("fmt", FORMATS)
def test_email_phone_fax_fallback(fmt):
    r = run(customer(fmt, {**BASE, "contactemail": "c@x", "contactphone": "111", "contactfax": "222"},
                     addresses=[("inv", {"city": "A"}), ("vis", {"city": "B", "email": "own@x", "phone": "9", "fax": "8"})]))
    assert r.addresses[["AddressType", "Email", "Phone", "Fax"]].values.tolist() == [
        ["inv", "c@x", "111", "222"], ["vis", "own@x", "9", "8"], ["del", "own@x", "9", "8"]]


def test_nested_addresses_follow_prefix_and_main_flags():
    xml = document(customer("flat", BASE, addresses=[("del", {"city": "Prefix"})],
                            raw='<addresses><address type="del"><city>Node1</city></address>'
                                '<address type="VIS"><city>V1</city></address><address type="visit"><city>V2</city></address>'
                                '<address type="inv"><city>I1</city></address><address type="bogus"><city>?</city></address>'
                                '</addresses>'))
    r = normalize_customers(xml)
    assert r.addresses[["AddressType", "City", "IsMainAddress"]].values.tolist() == [
        ["del", "Prefix", True], ["del", "Node1", False], ["vis", "V1", True], ["vis", "V2", False], ["inv", "I1", False]]
    assert r.source_format == {"flat": 0, "nested": 0, "mixed": 1}
    assert len(warned(r, "AddressType")) == 1


# -- contacts -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("full, parts", [
    ("Jan van der Berg", ("Jan", "van der", "Berg")), ("Anna Svensson", ("Anna", None, "Svensson")),
    ("Cher", ("Cher", None, None)), ("  Anna   Maria  Svensson ", ("Anna", "Maria", "Svensson")),
])
def test_full_name_split(fmt, full, parts):
    r = run(customer(fmt, BASE, contact={"fullname": full, "email": "e@x"}))
    c = r.contacts
    assert list(c.columns) == CONTACT_COLUMNS
    assert tuple(c.loc[0, ["FirstName", "MiddleName", "LastName"]]) == parts
    assert bool(c.loc[0, "IsMainContactPerson"]) and c.loc[0, "Email"] == "e@x"


_ALL_WHITE_SPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]


@pytest.mark.parametrize("space", _ALL_WHITE_SPACE, ids=[f"U+{ord(c):04X}" for c in _ALL_WHITE_SPACE])
def test_full_name_split_on_every_white_space(space):
    """The split (Arrow/RE2) treats exactly what Python calls white space as white space, NBSP included."""
    import re

    from monitor_pipeline.customers.contacts import split_full_name
    names = [f"Jan{space}van{space}{space}der Berg", f"Anna{space}Svensson", "Cher", f"A\u00e9{space}B"]
    first, middle, last = split_full_name(pd.Series(names, dtype="str"))
    for i, name in enumerate(names):
        words = re.split(r"\s+", name)     # names come trimmed
        want = (words[0], None, None) if len(words) == 1 else (words[0], " ".join(words[1:-1]) or None, words[-1])
        got = tuple(None if pd.isna(x) else x for x in (first[i], middle[i], last[i]))
        assert got == want, (name, got)


def test_contact_parts_joined_and_phone_aliases():
    raw = ("<contactpersons><contactperson><firstname>Jan</firstname><middlename>van der</middlename>"
           "<lastname>Berg</lastname><phone>1</phone><dynamicfreefields><field name=\"role\">buyer</field>"
           "</dynamicfreefields></contactperson><contactperson><lastname>Solo</lastname><phonenumber>2</phonenumber>"
           "</contactperson><contactperson><fullname>Full Name</fullname><firstname>Other</firstname></contactperson>"
           "</contactpersons>")
    r = normalize_customers(document(customer("nested", BASE, raw=raw)))
    assert r.contacts[["FullName", "FirstName", "MiddleName", "LastName", "Phonenumber", "IsMainContactPerson"]].values.tolist() == [
        ["Jan van der Berg", "Jan", "van der", "Berg", "1", True], ["Solo", None, None, "Solo", "2", False],
        ["Full Name", "Other", None, None, None, False]]
    assert r.contacts.loc[0, "DynamicFreeFields"] == '<field name="role">buyer</field>'


def _contacts(raw, **scalars):
    r = normalize_customers(document(customer("nested", {**BASE, **scalars}, raw=raw)))
    return r.contacts[["FullName", "Email", "Phonenumber", "IsMainContactPerson"]].values.tolist()


PERSONS = ("<contactpersons><contactperson><fullname>Eva Berg</fullname></contactperson>"
           "<contactperson><firstname>Anna</firstname><lastname>Maria Svensson</lastname><email>own@x</email>"
           "</contactperson></contactpersons>")


def test_contactfullname_selects_main_ignoring_case_and_spacing():
    assert _contacts(PERSONS, contactfullname="anna   MARIA svensson", contactemail="c@x", contactphone="123") == [
        ["Eva Berg", None, None, False], ["Anna Maria Svensson", "own@x", "123", True]]


def test_contactfullname_without_match_makes_main_contact():
    assert _contacts(PERSONS, contactfullname="Jan van der Berg", contactemail="c@x", contactphone="123") == [
        ["Eva Berg", None, None, False], ["Anna Maria Svensson", "own@x", None, False],
        ["Jan van der Berg", "c@x", "123", True]]


def test_without_contactfullname_first_is_main_and_gets_contact_fields():
    assert _contacts(PERSONS, contactemail="c@x", contactphone="123") == [
        ["Eva Berg", "c@x", "123", True], ["Anna Maria Svensson", "own@x", None, False]]


def test_no_contacts_no_contactfullname_no_contact():
    assert _contacts("", contactemail="c@x") == []


def test_exactly_one_main_per_customer_with_contacts():
    raw = PERSONS.replace("Eva Berg", "Anna Maria Svensson")
    rows = _contacts(raw, contactfullname="Anna Maria Svensson")
    assert [r[3] for r in rows] == [True, False]


def test_all_frames_have_declared_columns_and_dtypes():
    r = run(customer("nested", {**BASE, "isvatliable": "1", "discount": "1"}, addresses=[("del", {"city": "x"})],
                     contact={"fullname": "A B"}))
    assert str(r.customers["VatLiable"].dtype) == "boolean" and str(r.customers["HidePrices"].dtype) == "boolean"
    assert r.customers["Discount"].dtype == "float64"
    assert str(r.addresses["IsMainAddress"].dtype) == "boolean"
    assert str(r.contacts["IsMainContactPerson"].dtype) == "boolean"
    for frame in (r.customers, r.addresses, r.contacts, r.warnings, r.rejected):
        for col in frame.columns:
            if frame[col].dtype == object:
                assert all(v is None or isinstance(v, str) for v in frame[col]), col
    records = r.customers.to_dict("records")[0]
    assert records["CustomerGuid"] is None and records["VatCode"] is None
