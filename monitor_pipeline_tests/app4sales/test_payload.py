import json
import uuid

import numpy as np
import pandas as pd
import pytest

from monitor_pipeline.app4sales.payload import (
    ADDRESS_FIELDS,
    CONTACT_FIELDS,
    CUSTOMER_FIELDS,
    CUSTOMER_GUID_NAMESPACE,
    build_payloads,
    deduplicate_prices,
    generated_guid,
    payload_hash,
    resolve_guid,
)

from .fakes import ADDRESS_COLUMNS, CONTACT_COLUMNS, make_frames


def _walk(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def test_payload_shape_and_plain_types():
    customers, addresses, contacts, _ = make_frames(6)
    payloads = build_payloads(customers, addresses, contacts)
    assert len(payloads) == 6
    for p in payloads:
        assert list(p) == [*CUSTOMER_FIELDS, "Addresses", "Contacts"]
        for a in p["Addresses"]:
            assert list(a) == list(ADDRESS_FIELDS)
        for c in p["Contacts"]:
            assert list(c) == list(CONTACT_FIELDS)
        for v in _walk(p):
            assert v is None or type(v) in (str, bool, float), (v, type(v))
        json.dumps(p, allow_nan=False)  # no NaN anywhere
    p0, p1 = payloads[0], payloads[1]
    assert p0["VatLiable"] is None          # NA in a "boolean" column
    assert p1["VatLiable"] is True and type(p1["VatLiable"]) is bool
    assert p0["HidePrices"] is True and p1["HidePrices"] is False
    assert p0["ChamberOfCommerceCode"] is None and p1["CustomerNote"] is None and p0["CustomerNote"] == "note 0"
    assert p0["CustomerGuid"] == "00000000-0000-4000-8000-000000000000" and p1["CustomerGuid"] is None


def test_nan_discount_and_numpy_values_become_plain():
    customers, addresses, contacts, _ = make_frames(2)
    customers["Discount"] = [np.nan, 12.5]
    customers["CustomerNote"] = pd.Series([np.nan, "x"], dtype=object)
    customers["HidePrices"] = pd.Series([np.bool_(True), None], dtype=object)
    p = build_payloads(customers, addresses, contacts)
    assert p[0]["Discount"] is None and p[1]["Discount"] == 12.5 and type(p[1]["Discount"]) is float
    assert p[0]["CustomerNote"] is None
    assert p[0]["HidePrices"] is True and type(p[0]["HidePrices"]) is bool and p[1]["HidePrices"] is None


def test_addresses_and_contacts_attached_to_the_right_customer():
    customers, _, _, _ = make_frames(3)
    addresses = pd.DataFrame([
        ["C000002", "inv", "Box 1", None, "1", "X", "SE", None, None, None, False],
        ["C000000", "del", "Kajen 1", None, "2", "Y", "SE", None, None, None, True],
        ["C000002", "del", "Lager 4", None, "3", "Z", "SE", None, None, None, True],
    ], columns=ADDRESS_COLUMNS)
    contacts = pd.DataFrame([["C000001", "Jan Berg", "Jan", None, "Berg", None, None, True, None]],
                            columns=CONTACT_COLUMNS)
    p = {x["CustomerCode"]: x for x in build_payloads(customers, addresses, contacts)}
    assert [a["AddressLine1"] for a in p["C000002"]["Addresses"]] == ["Box 1", "Lager 4"]  # frame order kept
    assert [a["AddressLine1"] for a in p["C000000"]["Addresses"]] == ["Kajen 1"]
    assert p["C000001"]["Addresses"] == [] and p["C000000"]["Contacts"] == [] and p["C000002"]["Contacts"] == []
    assert p["C000001"]["Contacts"][0]["FullName"] == "Jan Berg"
    assert p["C000002"]["Addresses"][0]["IsMainAddress"] is False


def test_empty_child_frames_give_empty_lists():
    customers, _, _, _ = make_frames(2)
    p = build_payloads(customers, pd.DataFrame(columns=ADDRESS_COLUMNS), None)
    assert all(x["Addresses"] == [] and x["Contacts"] == [] for x in p)


def test_hash_stable_and_sensitive():
    customers, addresses, contacts, _ = make_frames(3)
    base = build_payloads(customers, addresses, contacts)[0]
    again = build_payloads(customers, addresses, contacts)[0]
    h = payload_hash(base, b"dash")
    assert h == payload_hash(again, b"dash") and len(h) == 64
    contacts2 = contacts.copy()
    contacts2.loc[0, "Email"] = "other@example.se"
    assert payload_hash(build_payloads(customers, addresses, contacts2)[0], b"dash") != h
    customers2 = customers.copy()
    customers2.loc[0, "CustomerNote"] = "new note"
    assert payload_hash(build_payloads(customers2, addresses, contacts)[0], b"dash") != h
    assert payload_hash(base, b"dash2") != h
    assert payload_hash(base, None) != h
    assert payload_hash({**base, "CustomerGuid": "x"}, b"dash") != h  # the resolved GUID counts


def test_guid_resolution_three_cases():
    file_guid = "6f1c0000-0000-4000-8000-000000000001"
    assert resolve_guid("C1", file_guid, "aaaa0000-0000-4000-8000-000000000000", "demo") == file_guid
    assert resolve_guid("C1", None, "AAAA0000-0000-4000-8000-000000000000", "demo") == \
        "aaaa0000-0000-4000-8000-000000000000"
    generated = resolve_guid("C1", None, None, "demo")
    assert generated == str(uuid.uuid5(CUSTOMER_GUID_NAMESPACE, "demo:C1"))
    assert generated == generated_guid("demo", "C1")                 # deterministic across runs
    assert generated_guid("other", "C1") != generated                # per administration
    assert generated_guid("demo", "C2") != generated
    assert CUSTOMER_GUID_NAMESPACE == uuid.UUID("39c34c9b-3ddb-4c22-834c-e7ed1a22ce32")  # never change it


def test_price_deduplication_and_unknown_report():
    payloads = [{"UsesPriceField": v} for v in ["3", "1", "9", "9", None, "7"]]
    unknown = deduplicate_prices(payloads, [{"Code": "3", "DeduplicatedCode": "1"},
                                            {"Code": "1", "DeduplicatedCode": None}])
    assert [p["UsesPriceField"] for p in payloads] == ["1", "1", "9", "9", None, "7"]
    assert unknown == [("7", 1), ("9", 2)]


# --- the columnar hashes (CustomerTable.hashes) are payload_hash to the bit --------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from monitor_pipeline.app4sales.payload import CustomerTable, hash_with_digest  # noqa: E402

_TEXT = st.one_of(st.none(), st.text(max_size=12),
                  st.sampled_from(['"', "\\", "\n\t\x00\x1f", "åäö Ünïcode", "😀 astral", "</field>", "", " "]))


def _table_hashes(customers, addresses, contacts, guids, prices, digests):
    table = CustomerTable(customers, addresses, contacts)
    table.prepare_hashes()  # before the index: the GUID and price columns change after it
    table.columns["CustomerGuid"], table.columns["UsesPriceField"] = guids, prices
    return table.hashes(digests)


def _reference_hashes(customers, addresses, contacts, guids, prices, digests):
    payloads = build_payloads(customers, addresses, contacts)
    for p, g, price in zip(payloads, guids, prices):
        p["CustomerGuid"], p["UsesPriceField"] = g, price
    return [hash_with_digest(p, d) for p, d in zip(payloads, digests)]


@pytest.mark.parametrize("children", ["together", "shuffled"])
@pytest.mark.parametrize("storage", ["objects", "parquet"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data(), n=st.integers(1, 6))
def test_columnar_hashes_equal_payload_hash(data, n, children, storage, tmp_path):
    """Every kind of value (escapes, astral characters, nulls, floats, booleans), children in any order
    and count, GUIDs and price lists set after the preparation: the same hash as the payload's."""
    customers, addresses, contacts, _ = make_frames(n, with_dashboards=False)
    customers["CustomerName"] = data.draw(st.lists(_TEXT, min_size=n, max_size=n))
    customers["CustomerNote"] = data.draw(st.lists(_TEXT, min_size=n, max_size=n))
    customers["Discount"] = data.draw(st.lists(st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
                                               min_size=n, max_size=n))
    if children == "shuffled":  # a customer's rows apart
        addresses = addresses.sample(frac=1, random_state=data.draw(st.integers(0, 99))).reset_index(drop=True)
    addresses = addresses.iloc[:data.draw(st.integers(0, len(addresses)))].copy()
    addresses["City"] = data.draw(st.lists(_TEXT, min_size=len(addresses), max_size=len(addresses)))
    if storage == "parquet":  # what the job reads: Arrow-backed string columns
        frames = []
        for name, frame in (("c", customers), ("a", addresses), ("k", contacts)):
            frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
            frames.append(pd.read_parquet(tmp_path / f"{name}.parquet"))
        customers, addresses, contacts = frames
    codes = customers["CustomerCode"].tolist()
    guids = data.draw(st.lists(st.one_of(st.none(), st.uuids().map(str)), min_size=n, max_size=n))
    prices = data.draw(st.lists(_TEXT, min_size=n, max_size=n))
    digests = data.draw(st.lists(st.one_of(st.none(), st.sampled_from(["ab" * 32, "cd" * 32])), min_size=n, max_size=n))
    assert len(codes) == n
    args = (customers, addresses, contacts, guids, prices, digests)
    assert _table_hashes(*args) == _reference_hashes(*args)


def test_hash_of_a_known_payload_is_pinned():
    """The hashes in every administration's state depend on this exact value: a change here would make the
    next run resend every customer."""
    customers, addresses, contacts, _ = make_frames(2, with_dashboards=False)
    payload = build_payloads(customers, addresses, contacts)[1]
    assert payload_hash(payload, b"dash") == \
        "f4ffecfdfb80a43342690a5bd8095dfd689e4b8708cf298ce9db172e3c15a41e"


def test_a_nan_or_infinite_discount_is_refused_not_hashed():
    customers, addresses, contacts, _ = make_frames(1, with_dashboards=False)
    table = CustomerTable(customers, addresses, contacts)
    table.columns["Discount"] = [float("inf")]
    try:
        table.hashes([None])
    except ValueError:
        return
    raise AssertionError("an infinite Discount was hashed")
