"""customer_sync_job end to end: local Monitor folder → frames → the App4Sales sandbox over real HTTP."""

import math

import pandas as pd
import pytest

from benchmarks.generate import generate
from monitor_pipeline.customers import normalize_customers
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, sync, write_customers  # noqa: F401 (fixture)


def _none(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA else value


def test_first_sync_stores_every_customer_as_the_frames_say(sync):
    generate(sync.customers_xml, 250, nested=True, seed=7)
    run = sync.run()
    assert run.success, run.failure_message()
    frames = normalize_customers(sync.customers_xml)
    meta = run.metadata()
    assert meta["created"] == len(frames.customers) == 250
    assert meta["failed"] == 0 and meta["batches"] == 3

    index = sync.sandbox.client().list_customers()
    assert sorted(c["CustomerCode"] for c in index) == sorted(frames.customers["CustomerCode"])
    api = sync.sandbox.admin_api()
    for code in frames.customers["CustomerCode"].iloc[::10]:
        stored = api.get_customer(code)
        row = frames.customers.set_index("CustomerCode").loc[code]
        for column in ("CustomerName", "VatCode", "VatLiable", "Discount", "LanguageCode", "UsesPriceField",
                       "Sysmodified", "CustomerNote", "DeliveryMethod", "DynamicFreeFields"):
            assert stored[column] == _none(row[column]), (code, column)
        expected_addresses = frames.addresses[frames.addresses["CustomerCode"] == code]
        got = [(a["AddressType"], a["AddressLine1"], a["City"], a["Country"], a["IsMainAddress"])
               for a in stored["Addresses"]]
        want = [(a.AddressType, _none(a.AddressLine1), _none(a.City), _none(a.Country), bool(a.IsMainAddress))
                for a in expected_addresses.itertuples()]
        assert got == want, code
        expected_contacts = frames.contacts[frames.contacts["CustomerCode"] == code]
        assert [(c["FullName"], c["Email"], c["IsMainContactPerson"]) for c in stored["Contacts"]] == [
            (_none(c.FullName), _none(c.Email), bool(c.IsMainContactPerson)) for c in expected_contacts.itertuples()]


PINNED = {  # two customers of generate(250, nested, seed=7) as App4Sales must hold them, written out by hand
    "C0000001": ({"CustomerName": "Jansen AB 1", "VatCode": "NL569925275301", "VatLiable": True, "Discount": 25.9,
                  "LanguageCode": "en", "UsesPriceField": "PL1", "Sysmodified": "2025-04-03T10:35:00",
                  "CustomerNote": None, "DeliveryMethod": None,
                  "DynamicFreeFields": '<field name="segment">B</field><field name="region">Amsterdam</field>'},
                 [("inv", "Box 48", "Amsterdam", "NL", False), ("del", "Storgatan 57", "Amsterdam", "NL", True),
                  ("vis", "Storgatan 57", "Amsterdam", "NL", True)],
                 [("Sofia Maria Svensson", "sofia@example1.com", True), ("Ingrid Johansson", "info@example1.com", False)]),
    "C0000124": ({"CustomerName": "Müller Handel 124", "VatCode": "NL551465089501", "VatLiable": True, "Discount": 12.7,
                  "LanguageCode": "nl", "UsesPriceField": "PL2", "Sysmodified": "2025-01-07T10:34:00",
                  "CustomerNote": "Call before delivery & use gate 2", "DeliveryMethod": "EXW",
                  "DynamicFreeFields": '<field name="segment">C</field><field name="region">Amsterdam</field>'},
                 [("inv", "Box 570", "Amsterdam", "NL", False), ("del", "Lagervägen 181", "Amsterdam", "NL", True),
                  ("vis", "Lagervägen 181", "Amsterdam", "NL", True)],
                 [("Klaus Maria Johansson", "klaus@example27.com", True), ("Eva Svensson", "info@example27.com", False)]),
}


def test_first_sync_stores_the_pinned_values(sync):
    """The same sync checked against literal values, not against normalize_customers' own output."""
    generate(sync.customers_xml, 250, nested=True, seed=7)
    run = sync.run()
    assert run.success, run.failure_message()
    index = sync.sandbox.client().list_customers()
    assert {c["CustomerCode"] for c in index} == {f"C{i:07d}" for i in range(1, 251)}
    api = sync.sandbox.admin_api()
    for code, (fields, addresses, contacts) in PINNED.items():
        stored = api.get_customer(code)
        assert {k: stored[k] for k in fields} == fields, code
        assert [(a["AddressType"], a["AddressLine1"], a["City"], a["Country"], a["IsMainAddress"])
                for a in stored["Addresses"]] == addresses, code
        assert [(c["FullName"], c["Email"], c["IsMainContactPerson"]) for c in stored["Contacts"]] == contacts, code


def test_unchanged_second_sync_sends_nothing(sync):
    generate(sync.customers_xml, 120, nested=False, seed=3)
    assert sync.run().success
    batches_before = len(sync.sandbox.admin_api().events("batch"))
    second = sync.run()
    assert second.success, second.failure_message()
    meta = second.metadata()
    assert (meta["sent"], meta["unchanged"], meta["batches"]) == (0, 120, 0)
    assert len(sync.sandbox.admin_api().events("batch")) == batches_before
    assert meta["hashes_reused"] is True  # the frames of the last plan: not hashed again (app4sales/hash_cache.py)


def test_one_changed_contact_sends_exactly_that_customer(sync):
    customers = [customer_xml(f"K{i:03d}", f"Kund {i}") for i in range(30)]
    write_customers(sync.customers_xml, customers)
    assert sync.run().success
    customers[17] = customer_xml("K017", "Kund 17", email="new@example.com")
    write_customers(sync.customers_xml, customers)
    run = sync.run()
    assert run.success, run.failure_message()
    assert (run.metadata()["updated"], run.metadata()["sent"]) == (1, 1)
    assert run.metadata()["hashes_reused"] is False
    assert sync.sandbox.admin_api().events("batch")[-1]["codes"] == ["K017"]
    assert sync.sandbox.admin_api().get_customer("K017")["Contacts"][0]["Email"] == "new@example.com"


def test_inactive_customer_is_reactivated(sync):
    write_customers(sync.customers_xml, [customer_xml(f"R{i}", f"Kund {i}") for i in range(5)])
    assert sync.run().success
    sync.sandbox.client().deactivate_customers(["R3"])
    run = sync.run()
    assert run.success, run.failure_message()
    assert (run.metadata()["reactivated"], run.metadata()["sent"]) == (1, 1)
    assert sync.sandbox.admin_api().get_customer("R3")["CustomerEnabled"] is True


def test_customers_in_app4sales_is_the_index_read_plus_the_customers_created(sync):
    customers = [customer_xml(f"N{i}", f"Kund {i}") for i in range(5)]
    write_customers(sync.customers_xml, customers)
    first = sync.run()
    assert first.success, first.failure_message()
    assert (first.metadata()["created"], first.metadata()["customers_in_app4sales"]) == (5, 5)
    sync.sandbox.client().deactivate_customers(["N2"])  # still one of the administration's customers
    second = sync.run()
    assert second.metadata()["reactivated"] == 1 and second.metadata()["customers_in_app4sales"] == 5
    write_customers(sync.customers_xml, customers + [customer_xml("N5", "Kund 5"), customer_xml("N6", "Kund 6")])
    third = sync.run()
    assert third.metadata()["created"] == 2
    assert third.metadata()["customers_in_app4sales"] == 7 == len(sync.sandbox.client().list_customers())


def test_scripts_run_before_the_first_and_after_the_last_batch(sync):
    sync.setenv(MONITOR_BATCH_SIZE="2")
    api = sync.sandbox.admin_api()
    api.register_script("BeforeUpdateCustomers")
    api.register_script("UpdateCustomers")
    write_customers(sync.customers_xml, [customer_xml(f"S{i}", f"Kund {i}") for i in range(5)])
    run = sync.run()
    assert run.success, run.failure_message()
    kinds = [(e["kind"], e.get("name")) for e in api.events() if e["kind"] in ("batch", "script")]
    assert kinds == [("script", "BeforeUpdateCustomers"), ("batch", None), ("batch", None), ("batch", None),
                     ("script", "UpdateCustomers")]
    assert run.metadata()["scripts_run"] == "BeforeUpdateCustomers, UpdateCustomers"


def test_unknown_script_is_skipped_not_fatal(sync):
    write_customers(sync.customers_xml, [customer_xml("U1", "Kund")])
    run = sync.run()
    assert run.success, run.failure_message()
    assert run.metadata()["scripts_skipped"] == "BeforeUpdateCustomers, UpdateCustomers"


def test_deduplicated_price_lists_are_applied(sync):
    sync.setenv(MONITOR_ENABLE_PRICE_DEDUPLICATION="true")
    sync.sandbox.admin_api().set_price_lists([{"Code": "3", "DeduplicatedCode": "1"},
                                              {"Code": "1", "DeduplicatedCode": None}])
    write_customers(sync.customers_xml, [customer_xml("P1", "A", usesprice="3"), customer_xml("P2", "B", usesprice="1"),
                                         customer_xml("P3", "C", usesprice="9")])
    run = sync.run()
    assert run.success, run.failure_message()
    api = sync.sandbox.admin_api()
    assert [api.get_customer(c)["UsesPriceField"] for c in ("P1", "P2", "P3")] == ["1", "1", "9"]
    assert run.metadata()["unknown_price_lists"] == 1

    # the same customers.xml, the price lists changed in App4Sales: the cached hashes do not hold
    sync.sandbox.admin_api().set_price_lists([{"Code": "3", "DeduplicatedCode": None},
                                              {"Code": "1", "DeduplicatedCode": None}])
    again = sync.run()
    assert again.success, again.failure_message()
    assert again.metadata("customers")["reparsed"] is False
    assert (again.metadata()["hashes_reused"], again.metadata()["updated"]) == (False, 1)
    assert api.get_customer("P1")["UsesPriceField"] == "3"
    assert sync.run().metadata()["hashes_reused"] is True


def test_full_refresh_sends_everything(sync):
    write_customers(sync.customers_xml, [customer_xml(f"F{i}", f"Kund {i}") for i in range(7)])
    assert sync.run().success
    run = sync.run({"ops": {"customer_upsert_batches": {"config": {"full_refresh": True}}}})
    assert run.success, run.failure_message()
    assert (run.metadata()["updated"], run.metadata()["sent"]) == (7, 7)


def test_dashboards_are_sent_only_when_changed(sync):
    dashboard = "<customerdashboard>eyJ3aWRnZXRzIjpbXX0=</customerdashboard>"
    write_customers(sync.customers_xml, [customer_xml("D1", "A").replace("</customer>", dashboard + "</customer>"),
                                         customer_xml("D2", "B")])
    assert sync.run().metadata()["dashboards_sent"] == 1
    assert sync.sandbox.admin_api().get_customer("D1")["Dashboard"]["size"] == len(b'{"widgets":[]}')
    assert sync.run().metadata()["dashboards_sent"] == 0


@pytest.mark.parametrize("fault", [
    {"status": 503, "retry_after": 1, "times": 2},
    {"status": 429, "retry_after": 1},
    {"action": "drop_before"},
    {"action": "drop_after"},
    {"delay": 2.5},
], ids=["503-retry-after", "429", "dropped-before", "dropped-after", "slow-past-timeout"])
def test_transient_fault_during_a_batch_still_stores_every_customer_once(sync, fault):
    sync.setenv(APP4SALES_READ_TIMEOUT="1")
    generate(sync.customers_xml, 250, nested=True, seed=11)
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", skip=1, **fault)
    run = sync.run()
    assert run.success, run.failure_message()
    codes = [c["CustomerCode"] for c in sync.sandbox.client().list_customers()]
    assert len(codes) == len(set(codes)) == 250
    assert run.metadata()["failed"] == 0


def test_persistent_failure_fails_clearly_and_a_rerun_completes(sync):
    generate(sync.customers_xml, 250, nested=False, seed=5)
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", skip=1, times=50, status=503)
    first = sync.run()
    assert not first.success
    message = first.failure_message()
    assert "customers/batch" in message and "503" in message
    assert sync.sandbox.password not in message
    stored_after_failure = len(sync.sandbox.client().list_customers())
    assert stored_after_failure == 100  # batch 1 was stored, batch 2 never was
    sync.sandbox.admin_api().clear_faults()
    second = sync.run()
    assert second.success, second.failure_message()
    assert second.metadata()["sent"] == 150  # only what was not confirmed before
    codes = [c["CustomerCode"] for c in sync.sandbox.client().list_customers()]
    assert len(codes) == len(set(codes)) == 250


def test_truncated_export_with_deactivation_deactivates_nothing(sync):
    sync.setenv(MONITOR_DEACTIVATE_MISSING="true")
    write_customers(sync.customers_xml, [customer_xml(f"T{i:03d}", f"Kund {i}") for i in range(100)])
    assert sync.run().success
    text = sync.customers_xml.read_text(encoding="utf-8")
    sync.customers_xml.write_text(text[: len(text) // 3], encoding="utf-8")  # cut mid-file
    run = sync.run()
    assert not run.success
    assert "customers.xml" in run.failure_message()
    assert sync.sandbox.admin_api().events("deactivate") == []
    assert all(c["CustomerEnabled"] for c in sync.sandbox.client().list_customers())


def test_too_many_missing_customers_refuses_deactivation(sync):
    sync.setenv(MONITOR_DEACTIVATE_MISSING="true")
    write_customers(sync.customers_xml, [customer_xml(f"M{i:03d}", f"Kund {i}") for i in range(50)])
    assert sync.run().success
    write_customers(sync.customers_xml, [customer_xml(f"M{i:03d}", f"Kund {i}") for i in range(30)])
    run = sync.run()
    assert not run.success
    assert "20" in run.failure_message() and "0.1" in run.failure_message()
    assert sync.sandbox.admin_api().events("deactivate") == []
    write_customers(sync.customers_xml, [customer_xml(f"M{i:03d}", f"Kund {i}") for i in range(48)])
    run = sync.run()
    assert run.success, run.failure_message()
    assert run.metadata()["deactivated"] == 2


def test_unchanged_export_is_not_parsed_again_but_any_input_change_is(sync):
    write_customers(sync.customers_xml, [customer_xml(f"V{i}", f"Kund {i}") for i in range(4)])
    assert sync.run().metadata("customers")["reparsed"] is True
    again = sync.run()
    assert again.metadata("customers")["reparsed"] is False
    assert again.metadata("customers")["row_count"] == 4

    sync.setenv(MONITOR_LANGUAGE_MAP='{"SV": "sv-SE"}')  # a setting the frames depend on
    # it changes every customer: the mass-change guard's approval (test_change_log.py)
    changed_setting = sync.run({"ops": {"customer_upsert_batches": {"config": {"approve_mass_change": True}}}})
    assert changed_setting.metadata("customers")["reparsed"] is True
    assert changed_setting.metadata()["updated"] == 4
    assert sync.sandbox.admin_api().get_customer("V1")["LanguageCode"] == "sv-SE"

    write_customers(sync.customers_xml, [customer_xml(f"V{i}", f"Kund {i}") for i in range(5)])
    assert sync.run().metadata("customers")["reparsed"] is True
    forced = sync.run({"ops": {"customer_frames": {"config": {"reparse": True}}}})
    assert forced.metadata("customers")["reparsed"] is True
    assert forced.metadata()["sent"] == 0
