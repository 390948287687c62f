"""What the UI shows of the frames at a glance: previews and tables are Dagster tables with a schema typed from
the frame's dtypes and empty cells for missing values, and a failed check carries its offending rows as a
table (at most TABLE_ROWS of them, within TABLE_BYTES)."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from monitor_pipeline.defs.customer_sync.frame_metadata import (
    PREVIEW_ROWS, TABLE_BYTES, TABLE_ROWS, frame_checks, preview, table_entries)
from monitor_pipeline_tests.defs.customer_sync.frames_harness import run_frames
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, sync, write_customers  # noqa: F401

NULL_TEXTS = {"nan", "NaN", "None", "<NA>", "NaT", "null"}


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "CustomerCode": ["A1", None, "C3", float("nan"), "E5", "F6"],
        "CustomerNote": ["line one\r\nline two", pd.NA, "x" * 500, "", "ok", "ok"],
        "Discount": [1.5, float("nan"), 2.0, None, 0.0, 3.0],
        "Position": [1, 2, 3, 4, 5, 6],
        "Line": pd.array([10, None, 30, 40, 50, 60], dtype="Int64"),
        "VatLiable": pd.array([True, None, False, True, False, True], dtype="boolean"),
        "Flag": [True, False, True, False, True, False],
        "Mixed": ["a", 1, 2.5, None, b"xy", True],
        "Dashboard": [b"\0" * 10] * 6,
    })


def _rows(value: dg.TableMetadataValue) -> list[dict]:
    return [record.data for record in value.records]


def _check(results, name: str) -> dg.AssetCheckResult:
    [result] = [r for r in results if r.check_name == name]
    return result


def test_a_preview_is_a_typed_table_with_empty_cells_for_missing_values():
    entries = preview(_frame())
    table = entries["preview"]
    assert isinstance(table, dg.TableMetadataValue) and entries["preview_rows"].value == "5 of 6"
    assert {c.name: c.type for c in table.schema.columns} == {
        "CustomerCode": "string", "CustomerNote": "string", "Discount": "float", "Position": "int", "Line": "int",
        "VatLiable": "bool", "Flag": "bool", "Mixed": "string"}   # the Dashboard bytes are left out
    rows = _rows(table)
    assert len(rows) == PREVIEW_ROWS
    assert rows[0] == {"CustomerCode": "A1", "CustomerNote": "line one line two", "Discount": 1.5, "Position": 1,
                       "Line": 10, "VatLiable": True, "Flag": True, "Mixed": "a"}
    assert rows[1] == {"CustomerCode": "", "CustomerNote": "", "Discount": None, "Position": 2, "Line": None,
                       "VatLiable": None, "Flag": False, "Mixed": "1"}
    assert rows[2]["CustomerNote"] == "x" * 200 + "…" and rows[2]["Mixed"] == "2.5"
    assert rows[3]["CustomerCode"] == "" and rows[3]["Mixed"] == "" and rows[4]["Mixed"] == "<2 bytes>"
    for row in rows:
        for name, value in row.items():
            assert type(value) in (str, int, float, bool, type(None)), (name, value)   # no numpy scalars
            assert value not in NULL_TEXTS, (name, value)
            if value is None:   # only in typed columns: the UI shows a null as an empty cell
                assert name in ("Discount", "Line", "VatLiable"), name
    assert dg.deserialize_value(dg.serialize_value(table)) == table


def test_an_empty_frame_has_an_empty_table_with_its_schema():
    entries = preview(_frame().head(0))
    assert entries["preview"].records == [] and entries["preview_rows"].value == "0 of 0"
    assert [c.name for c in entries["preview"].schema.columns][:2] == ["CustomerCode", "CustomerNote"]


def test_a_table_of_long_values_fits_its_budget_with_fewer_rows():
    frame = pd.DataFrame({"CustomerCode": [f"C{i}" for i in range(1_000)], "Message": ["öööö\n" * 2_000] * 1_000})
    entries = table_entries("warnings_preview", frame)
    assert len(dg.serialize_value(entries["warnings_preview"])) <= TABLE_BYTES
    shown = len(entries["warnings_preview"].records)
    assert 1 <= shown < TABLE_ROWS and entries["warnings_preview_rows"].value == f"{shown} of 1,000"
    assert all(row["Message"] == "öööö " * 40 + "…" for row in _rows(entries["warnings_preview"]))


def _failing_frames(n: int):
    codes = [f"D{i:03d}" for i in range(n)]
    customers = pd.DataFrame({"CustomerCode": ["OK", *codes, *codes, codes[0]]})
    addresses = pd.DataFrame({"CustomerCode": ["OK", *codes], "AddressType": ["del"] * (n + 1),
                              "AddressLine1": ["Gatan 1"] * (n + 1), "PostCode": [None] * (n + 1),
                              "City": ["Uppsala", *["Ort\nStad"] * n], "Country": ["SE", *[None] * n]})
    contacts = pd.DataFrame({"CustomerCode": ["OK", *codes, *codes],
                             "IsMainContactPerson": pd.array([True, *[True] * n, *[True] * n], dtype="boolean")})
    rejected = pd.DataFrame({"CustomerCode": [None, *codes[1:]], "Position": list(range(1, n + 1)),
                             "Line": pd.array([None, *range(2, n + 1)], dtype="Int64"),
                             "Reason": ["missing CustomerCode", *["missing CustomerName"] * (n - 1)]})
    return customers, addresses, contacts, rejected


def test_each_failed_check_carries_a_table_of_its_offending_rows():
    results = list(frame_checks(*_failing_frames(3)))
    assert [r.passed for r in results] == [False] * 4

    duplicates = _check(results, "no_duplicate_customer_code").metadata
    assert duplicates["duplicates"].value == 3 and duplicates["examples"].value == "D000, D001, D002"
    assert _rows(duplicates["duplicated_codes"]) == [{"CustomerCode": "D000", "Occurrences": 3},
                                                     {"CustomerCode": "D001", "Occurrences": 2},
                                                     {"CustomerCode": "D002", "Occurrences": 2}]
    assert duplicates["duplicated_codes_rows"].value == "3 of 3"

    rejected = _check(results, "no_rejected_customers").metadata
    assert rejected["rejected"].value == 3
    assert _rows(rejected["rejected_customers"]) == [
        {"Position": 1, "Line": None, "CustomerCode": "", "Reason": "missing CustomerCode"},
        {"Position": 2, "Line": 2, "CustomerCode": "D001", "Reason": "missing CustomerName"},
        {"Position": 3, "Line": 3, "CustomerCode": "D002", "Reason": "missing CustomerName"}]

    mains = _check(results, "one_main_contact").metadata
    assert (mains["customers_with_contacts"].value, mains["violations"].value) == (4, 3)
    assert _rows(mains["violating_customers"]) == [{"CustomerCode": c, "MainContacts": 2}
                                                   for c in ("D000", "D001", "D002")]

    countries = _check(results, "every_address_has_country").metadata
    assert (countries["addresses"].value, countries["without_country"].value) == (4, 3)
    assert _rows(countries["addresses_without_country"]) == [
        {"CustomerCode": c, "AddressType": "del", "AddressLine1": "Gatan 1", "PostCode": "", "City": "Ort Stad"}
        for c in ("D000", "D001", "D002")]


def test_a_failed_checks_table_is_capped_at_table_rows_and_within_the_budget():
    results = list(frame_checks(*_failing_frames(TABLE_ROWS + 15)))
    for name, key, count in [("no_duplicate_customer_code", "duplicated_codes", "duplicates"),
                             ("no_rejected_customers", "rejected_customers", "rejected"),
                             ("one_main_contact", "violating_customers", "violations"),
                             ("every_address_has_country", "addresses_without_country", "without_country")]:
        metadata = _check(results, name).metadata
        assert metadata[count].value == TABLE_ROWS + 15, name
        assert len(metadata[key].records) == TABLE_ROWS, name
        assert metadata[f"{key}_rows"].value == f"{TABLE_ROWS} of {TABLE_ROWS + 15}", name
        assert len(dg.serialize_value(metadata[key])) <= TABLE_BYTES, name


def test_passed_checks_carry_counts_and_no_tables():
    customers = pd.DataFrame({"CustomerCode": ["A1", "B2"]})
    addresses = pd.DataFrame({"CustomerCode": ["A1"], "AddressType": ["del"], "City": ["Uppsala"], "Country": ["SE"]})
    contacts = pd.DataFrame({"CustomerCode": ["A1"], "IsMainContactPerson": pd.array([True], dtype="boolean")})
    results = list(frame_checks(customers, addresses, contacts, pd.DataFrame(
        {"CustomerCode": [], "Position": [], "Line": [], "Reason": []})))
    assert all(r.passed for r in results)
    assert {r.check_name: sorted(r.metadata) for r in results} == {
        "no_duplicate_customer_code": ["duplicates", "examples"], "no_rejected_customers": ["rejected"],
        "one_main_contact": ["customers_with_contacts", "examples", "violations"],
        "every_address_has_country": ["addresses", "examples", "without_country"]}


def test_only_a_count_of_rejected_customers_says_their_rows_are_not_at_hand():
    customers, addresses, contacts, _ = _failing_frames(1)
    check = _check(list(frame_checks(customers, addresses, contacts, 4)), "no_rejected_customers")
    assert check.passed is False and check.metadata["rejected"].value == 4
    assert "rejected_customers" not in check.metadata
    assert check.metadata["rejected_customers_rows"].value.startswith("0 of 4")


def test_a_run_shows_tables_and_its_failed_checks_rows_also_when_the_frames_are_reused(sync):
    customers = [customer_xml(f"C{i}", f"Kund {i}") for i in range(7)]
    customers.append("<customer><customercode>NOLANG</customercode><customername>Utan land</customername>"
                     "<deliveryaddress1>Vägen 1</deliveryaddress1><deliverycity>Ort</deliverycity></customer>")
    customers += ["<customer><customername>Utan kod</customername></customer>",
                  "<customer><customercode>NONAME</customercode></customer>"]
    write_customers(sync.customers_xml, customers)
    first = run_frames(sync)
    assert first.success, first.failure_message()
    meta = first.metadata("customers")
    assert isinstance(meta["preview"], dg.TableMetadataValue) and meta["preview_rows"] == "5 of 8"
    assert all(value not in NULL_TEXTS for row in _rows(meta["preview"]) for value in row.values())
    assert [row["CustomerCode"] for row in _rows(meta["rejected"])] == ["", "NONAME"]

    def checks(run):
        return {e.check_name: e for e in run.result.get_asset_check_evaluations()}

    rejected = checks(first)["no_rejected_customers"]
    assert rejected.passed is False
    assert [(r["Position"], r["CustomerCode"]) for r in _rows(rejected.metadata["rejected_customers"].value)] \
        == [(9, ""), (10, "NONAME")]
    country = checks(first)["every_address_has_country"]
    assert country.passed is False, country.metadata
    assert {r["CustomerCode"] for r in _rows(country.metadata["addresses_without_country"].value)} == {"NOLANG"}

    again = run_frames(sync)
    assert again.success, again.failure_message()
    assert again.metadata("customers")["reparsed"] is False
    for name in ("no_rejected_customers", "every_address_has_country"):
        assert checks(again)[name].metadata == checks(first)[name].metadata, name
    assert again.metadata("customers")["rejected"] == meta["rejected"]
