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


# --- the shape of the file: every row as wide as the header, each column once --------------------

def _error(csv: bytes) -> ExtraDataError:
    with pytest.raises(ExtraDataError) as info:
        run(csv)
    return info.value


def test_a_row_with_a_trailing_delimiter_is_an_error_naming_the_line():
    err = _error(b"CustomerCode;CustomerName;CustomerNote\nC2;Two;\nC1;anna;VIP customer;\n")
    assert str(err) == ("extraCustomerData.csv, line 3: 4 fields, but the header has 3 "
                        "(a ';' at the end of the line?)")
    assert (err.line, err.problem) == (3, "4 fields, but the header has 3 (a ';' at the end of the line?)")


@pytest.mark.parametrize("csv, message", [
    (b"CustomerCode,CustomerName,VatCode\nC1,One,V9\nC2,Two\n",
     "extraCustomerData.csv, line 3: 2 fields, but the header has 3"),
    (b"CustomerCode;CustomerName\nC1;One;x;y\n", "extraCustomerData.csv, line 2: 4 fields, but the header has 2"),
    # blank lines (also of spaces) are skipped but counted; a quoted value may hold ';' and line breaks
    (b'\r\nCustomerCode;CustomerNote\r\nC1;"two\r\nlines; one ;"\r\n   \r\n\r\nC2\r\n',
     "extraCustomerData.csv, line 7: 1 fields, but the header has 2"),
    (b'CustomerCode;CustomerNote\nC1;"never closed\nC2;x\n',
     "extraCustomerData.csv, line 2: a quoted field starts in this row and is never closed (a '\"' is missing)"),
])
def test_rows_wider_or_narrower_than_the_header_are_errors_naming_the_line(csv, message):
    assert str(_error(csv)) == message


@pytest.mark.parametrize("header, message", [
    (b"CustomerCode;VatCode;vatcode", "column 3 'vatcode' repeats column 2 'VatCode'; each column may occur once"),
    (b"CustomerCode;FixedItemFilter;ItemFilter",
     "column 3 'ItemFilter' repeats column 2 'FixedItemFilter' (FixedItemFilter is another name for ItemFilter); "
     "each column may occur once"),
    (b"CustomerCode;Colour; COLOUR ", "column 3 'COLOUR' repeats column 2 'Colour'; each column may occur once"),
    (b"customercode;CustomerCode", "column 2 'CustomerCode' repeats column 1 'customercode'; each column may occur once"),
    (b"CustomerCode;;VatCode", "column 2 of the header has no name"),
])
def test_a_repeated_or_empty_column_name_is_an_error_on_the_header_line(header, message):
    err = _error(header + b"\nC1;a;b\n")
    assert str(err) == f"extraCustomerData.csv, line 1: {message}"


def test_a_header_ending_with_the_delimiter_means_every_line_does():
    r = run(b"CustomerCode;VatCode;CustomerNote;\nC1;V7;note one;\nC2;;note two;\n")
    c = r.customers.set_index("CustomerCode")
    assert c.loc["C1", ["VatCode", "CustomerNote"]].tolist() == ["V7", "note one"]
    assert c.loc["C2", ["VatCode", "CustomerNote"]].tolist() == [None, "note two"]
    assert r.warnings.empty
    assert str(_error(b"CustomerCode;VatCode;\nC1;V7;\nC2;V8\n")) == (
        "extraCustomerData.csv, line 3: 2 fields, but the header has 3 (it ends with ';', so every line must end "
        "with ';' too)")
    assert str(_error(b"CustomerCode;VatCode;\nC1;V7;\nC2;V8;surplus\n")) == (
        "extraCustomerData.csv, line 3: a value after the last column: the header ends with ';', so the field "
        "after its last name must stay empty")


def test_a_literal_quote_inside_a_value_is_kept():
    r = run(b'CustomerCode;CustomerNote\nC1;27" screen\nC2;x\n')
    assert r.customers.set_index("CustomerCode")["CustomerNote"].to_dict() == {"C1": '27" screen', "C2": "x"}


def test_a_path_is_named_in_the_error(tmp_path):
    path = tmp_path / "extraCustomerData.csv"
    path.write_bytes(b"CustomerCode;VatCode\nC1;V1;\n")
    assert str(_error(path)) == f"{path}, line 2: 3 fields, but the header has 2 (a ';' at the end of the line?)"


def test_a_long_invalid_value_is_quoted_cut_in_its_warning():
    r = run(b"CustomerCode;VatLiable\nC1;" + b"x" * 5_000 + b"\n")
    assert r.warnings["Message"].tolist() == [
        "extraCustomerData.csv VatLiable: '" + "x" * 100 + "…' is not a valid boolean; ignored"]
