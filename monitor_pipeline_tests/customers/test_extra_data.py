"""SPEC §3 Extra customer data."""

from __future__ import annotations

import pytest

from monitor_pipeline.customers import ExtraDataError, NormalizeSettings, normalize_customers

from .xmlbuild import customer, document

XML = document(customer("flat", {"customercode": "C1", "customername": "One", "vatcode": "V1", "isvatliable": "true",
                                 "fixeditemfilter": "F0"}),
               customer("nested", {"customercode": "C2", "customername": "Two", "discount": "5"},
                        addresses=[("del", {"city": "X"})]))


def run(extra, **kw):
    return normalize_customers(XML, NormalizeSettings(extra_data=extra, **kw))


@pytest.mark.parametrize("delimiter", [";", ","])
def test_overwrite_non_empty_cells(delimiter):
    csv = f"customercode{delimiter}VatCode{delimiter}DISCOUNT{delimiter}VatLiable\nC1{delimiter}{delimiter}12,5{delimiter}nej\nC2{delimiter}V2{delimiter}{delimiter}\n"
    if delimiter == ",":
        csv = csv.replace("12,5", '"12,5"')
    r = run(csv.encode())
    c = r.customers.set_index("CustomerCode")
    assert c.loc["C1", "VatCode"] == "V1" and c.loc["C2", "VatCode"] == "V2"
    assert c.loc["C1", "Discount"] == 12.5 and c.loc["C2", "Discount"] == 5.0
    assert not c.loc["C1", "VatLiable"]
    assert r.warnings.empty


def test_bom_utf8_and_windows_1252(tmp_path):
    path = tmp_path / "extraCustomerData.csv"
    path.write_bytes("\ufeffCustomerCode;CustomerName\nC1;Åsa Café €\n".encode("utf-8"))
    assert run(path).customers.loc[0, "CustomerName"] == "Åsa Café €"
    path.write_bytes("CustomerCode;CustomerName\nC1;Åsa Café €\n".encode("cp1252"))
    assert run(str(path)).customers.loc[0, "CustomerName"] == "Åsa Café €"


def test_item_filter_only_with_setting():
    csv = b"CustomerCode;FixedItemFilter\nC1;F1\n"
    assert run(csv).customers.loc[0, "ItemFilter"] == "F0"
    assert run(csv, customer_item_filter=True).customers.loc[0, "ItemFilter"] == "F1"
    assert run(b"CustomerCode;itemfilter\nC1;F2\n", customer_item_filter=True).customers.loc[0, "ItemFilter"] == "F2"


def test_unknown_codes_and_columns_reported():
    r = run(b"CustomerCode;Colour;CustomerNote\nC9;red;x\nC1;blue;note\n")
    assert r.customers.loc[0, "CustomerNote"] == "note"
    fields = r.warnings[["CustomerCode", "Field"]].values.tolist()
    assert [None, "Colour"] in fields and ["C9", "extraCustomerData.csv"] in fields


def test_typed_invalid_cell_reported_and_ignored():
    r = run(b"CustomerCode;VatLiable;Sysmodified;LanguageCode\nC1;perhaps;2026-01-02;SE\n")
    row = r.customers.iloc[0]
    assert bool(row["VatLiable"]) is True and row["Sysmodified"] == "2026-01-02T00:00:00" and row["LanguageCode"] == "sv"
    assert r.warnings["Field"].tolist() == ["VatLiable"]


def test_language_from_extra_drives_address_country():
    r = run(b"CustomerCode;LanguageCode\nC2;NL\n")
    assert r.addresses.loc[0, "Country"] == "NL"


def test_missing_file_is_no_extra_data(tmp_path):
    assert run(tmp_path / "absent.csv").customers.loc[0, "VatCode"] == "V1"


def test_unreadable_file_is_an_error(tmp_path):
    with pytest.raises(ExtraDataError, match="CustomerCode"):
        run(b"Code;Name\nC1;x\n")
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(ExtraDataError):
        run(folder)
