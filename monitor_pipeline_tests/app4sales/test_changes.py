"""The change log's rows (``app4sales/changes.py``): field paths, records by key, one row for the rest."""

from monitor_pipeline.app4sales.changes import changes_frame, customer_changes, field_counts, pack, unpack


def _customer(**fields) -> dict:
    base = {"CustomerGuid": "g", "CustomerCode": "K1", "CustomerName": "Kund AB", "Discount": 2.5, "HidePrices": False,
            "FreeFields": {"Segment": "A", "Region": None},
            "Addresses": [{"AddressType": "del", "City": "Umeå"}, {"AddressType": "inv", "City": "Umeå"}],
            "Contacts": [{"FullName": "Jan Berg", "Email": "jan@x.se"}, {"FullName": "Eva Ek", "Email": "eva@x.se"}]}
    return {**base, **fields}


def test_changed_fields_are_paths_with_old_and_new_values():
    new = _customer(CustomerName="Kund Sverige AB", Discount=5.0, HidePrices=True,
                    FreeFields={"Segment": "B", "Region": None},
                    Addresses=[{"AddressType": "del", "City": "Luleå"}, {"AddressType": "inv", "City": "Umeå"}],
                    Contacts=[{"FullName": "Eva Ek", "Email": "eva@y.se"}])
    assert customer_changes("K1", "changed", _customer(), new) == [
        ("K1", "changed", "CustomerName", "Kund AB", "Kund Sverige AB"),
        ("K1", "changed", "Discount", "2.5", "5.0"),
        ("K1", "changed", "HidePrices", "false", "true"),
        ("K1", "changed", "FreeFields.Segment", "A", "B"),
        ("K1", "changed", "Addresses[del].City", "Umeå", "Luleå"),
        ("K1", "changed", "Contacts[Jan Berg]", '{"FullName":"Jan Berg","Email":"jan@x.se"}', None),
        ("K1", "changed", "Contacts[Eva Ek].Email", "eva@x.se", "eva@y.se"),
    ]


def test_a_repeated_key_is_numbered_and_a_new_record_is_one_row():
    old = _customer(Addresses=[{"AddressType": "del", "City": "A"}])
    new = _customer(Addresses=[{"AddressType": "del", "City": "A"}, {"AddressType": "del", "City": "B"}])
    assert customer_changes("K1", "changed", old, new) == [
        ("K1", "changed", "Addresses[del#2]", None, '{"AddressType":"del","City":"B"}')]


def test_new_unknown_and_equal_customers_are_one_row_each():
    assert customer_changes("K2", "new", None, {"CustomerName": "Ny AB"}) == [("K2", "new", None, None, "Ny AB")]
    assert customer_changes("K1", "changed", None, _customer()) == [("K1", "changed", None, None, None)]
    assert customer_changes("K1", "inactive", _customer(), _customer()) == [("K1", "reactivated", None, None, None)]
    assert customer_changes("K1", "full_refresh", _customer(), _customer()) == [("K1", "full refresh", None, None, None)]


def test_field_counts_count_customers_and_fold_record_keys():
    rows = (customer_changes("K1", "changed", _customer(), _customer(CustomerName="X", Addresses=[
                {"AddressType": "del", "City": "B"}, {"AddressType": "inv", "City": "C"}]))
            + customer_changes("K2", "changed", _customer(), _customer(CustomerName="Y"))
            + customer_changes("K3", "new", None, {"CustomerName": "Z"}))
    assert field_counts(changes_frame(rows)) == {"CustomerName": 2, "Addresses[*].City": 1}


def test_packed_payloads_round_trip_and_are_smaller():
    payload = _customer(CustomerNote="lång anteckning " * 50)
    assert unpack(pack(payload)) == payload and unpack(None) is None
    assert len(pack(payload)) < len(str(payload)) / 3


def test_a_contact_named_with_a_bracket_counts_under_its_kind():
    frame = changes_frame([("A", "changed", "Contacts[Jan ]Berg].Email", "a@x", "b@x"),
                           ("B", "changed", "Contacts[Eva].Email", "c@x", "d@x"),
                           ("C", "changed", "Addresses[del]", "{}", None)])
    assert field_counts(frame) == {"Contacts[*].Email": 2, "Addresses[*]": 1}
