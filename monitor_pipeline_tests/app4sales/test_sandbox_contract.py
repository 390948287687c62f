"""The sandbox server speaks every call of app4sales-api.md, over real HTTP with plain requests."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid

import pytest
import requests


def customer(code: str, **fields) -> dict:
    return {"CustomerCode": code, "CustomerName": f"Name {code}", **fields}


@pytest.fixture
def api(sandbox):
    session = requests.Session()
    session.auth = (sandbox.username, sandbox.password)
    base = sandbox.base_url()

    def call(method: str, path: str, **kw) -> requests.Response:
        return session.request(method, base + path, timeout=10, **kw)

    yield call
    session.close()


def test_every_call_needs_basic_auth(sandbox):
    base = sandbox.base_url()
    for method, path in [("GET", "customers"), ("POST", "customers/batch"), ("GET", "pricelists"),
                         ("GET", "newcustomers"), ("POST", "scripts/X/run"), ("GET", "sandbox/events")]:
        missing = requests.request(method, base + path, timeout=10)
        wrong = requests.request(method, base + path, auth=(sandbox.username, "wrong"), timeout=10)
        for response in (missing, wrong):
            assert response.status_code == 401, (method, path)
            assert "error" in response.json()
    assert requests.get(base + "customers", auth=(sandbox.username, sandbox.password), timeout=10).status_code == 200


def test_batch_create_then_update_replaces_addresses_contacts_and_recreates_note(api, sandbox):
    guid = str(uuid.uuid4())
    first = customer("C1", CustomerGuid=guid, CustomerNote="Call first", VatLiable=True, Discount=12.5,
                     Addresses=[{"AddressType": "del", "City": "Uppsala"}, {"AddressType": "inv", "City": "Lund"}],
                     Contacts=[{"FullName": "Anna", "IsMainContactPerson": True}])
    r = api("POST", "customers/batch", json={"customers": [first]})
    assert r.status_code == 200
    assert r.json() == {"results": [{"CustomerCode": "C1", "CustomerGuid": guid, "status": "created"}]}
    before = sandbox.admin_api().get_customer("C1")
    assert before["Discount"] == 12.5 and before["VatLiable"] is True and len(before["Addresses"]) == 2
    second = customer("C1", CustomerNote="Call again", Addresses=[{"AddressType": "del", "City": "Kiruna"}],
                      Contacts=[])
    r = api("POST", "customers/batch", json={"customers": [second]})
    assert r.json()["results"] == [{"CustomerCode": "C1", "CustomerGuid": guid, "status": "updated"}]
    after = sandbox.admin_api().get_customer("C1")
    assert after["Addresses"] == [{"AddressType": "del", "City": "Kiruna"}]
    assert after["Contacts"] == []
    assert after["CustomerNote"] == "Call again"
    assert after["NoteRevision"] == before["NoteRevision"] + 1
    assert after["NoteId"] != before["NoteId"]
    assert after["CustomerGuid"] == guid  # kept when the update gives none
    assert "Discount" not in after  # the whole customer is replaced


def test_batch_over_100_is_413_and_stores_nothing(api):
    r = api("POST", "customers/batch", json={"customers": [customer(f"C{i:03d}") for i in range(101)]})
    assert r.status_code == 413
    assert api("GET", "customers").json()["total"] == 0
    assert api("POST", "customers/batch", json={"customers": [customer(f"C{i:03d}") for i in range(100)]}).ok


@pytest.mark.parametrize("bad, reason", [
    ({"CustomerCode": "", "CustomerName": "x"}, "CustomerCode"),
    ({"CustomerCode": "B1"}, "CustomerName"),
    ({"CustomerCode": "B1", "CustomerName": "x", "CustomerGuid": "not-a-guid"}, "GUID"),
    ({"CustomerCode": "B1", "CustomerName": "x", "Addresses": [{"Town": "Lund"}]}, "Town"),
    ({"CustomerCode": "B1", "CustomerName": "x", "Contacts": ["Anna"]}, "contact 0"),
    ({"CustomerCode": "B1", "CustomerName": "x", "Addresses": {"City": "Lund"}}, "Addresses"),
    ({"CustomerCode": "B1", "CustomerName": "x", "VatLiable": "yes"}, "VatLiable"),
])
def test_batch_is_atomic_one_invalid_customer_stores_nothing(api, bad, reason):
    r = api("POST", "customers/batch", json={"customers": [customer("OK1"), bad, customer("OK2")]})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] and len(body["invalid"]) == 1
    assert reason in body["invalid"][0]["message"]
    assert api("GET", "customers").json() == {"items": [], "total": 0}


def test_guid_of_another_code_is_invalid_and_nothing_stored(api):
    guid = str(uuid.uuid4())
    api("POST", "customers/batch", json={"customers": [customer("A", CustomerGuid=guid)]})
    r = api("POST", "customers/batch", json={"customers": [customer("N1"), customer("B", CustomerGuid=guid)]})
    assert r.status_code == 400
    assert r.json()["invalid"][0]["CustomerCode"] == "B"
    assert [c["CustomerCode"] for c in api("GET", "customers").json()["items"]] == ["A"]


def test_a_guid_in_upper_case_or_braces_is_the_same_guid(api):
    guid = str(uuid.uuid4())
    first = api("POST", "customers/batch", json={"customers": [customer("A", CustomerGuid=guid.upper())]})
    assert first.json()["results"][0]["CustomerGuid"] == guid  # stored and answered canonical
    other = api("POST", "customers/batch", json={"customers": [customer("B", CustomerGuid="{" + guid + "}")]})
    assert other.status_code == 400 and "belongs to customer A" in other.json()["invalid"][0]["message"]


def test_same_code_twice_in_a_batch_is_invalid(api):
    r = api("POST", "customers/batch", json={"customers": [customer("DUP"), customer("OK"), customer("DUP")]})
    assert r.status_code == 400
    assert [(i["index"], i["CustomerCode"]) for i in r.json()["invalid"]] == [(2, "DUP")]
    assert api("GET", "customers").json()["total"] == 0


def test_bad_bodies_are_400(api):
    assert api("POST", "customers/batch", data=b"{not json").status_code == 400
    assert api("POST", "customers/batch", json={"items": []}).status_code == 400
    assert api("POST", "customers/deactivate", json={"codes": "C1"}).status_code == 400
    assert api("GET", "customers", params={"take": 1001}).status_code == 400
    assert api("GET", "customers", params={"skip": "x"}).status_code == 400


def test_deactivate_then_upsert_reactivates(api):
    api("POST", "customers/batch", json={"customers": [customer("D1"), customer("D2")]})
    r = api("POST", "customers/deactivate", json={"codes": ["D1", "UNKNOWN"]})
    assert r.status_code == 200 and r.json() == {"deactivated": 1}
    assert api("POST", "customers/deactivate", json={"codes": ["D1"]}).json() == {"deactivated": 0}
    items = {c["CustomerCode"]: c["CustomerEnabled"] for c in api("GET", "customers").json()["items"]}
    assert items == {"D1": False, "D2": True}
    r = api("POST", "customers/batch", json={"customers": [customer("D1"), customer("D2")]})
    assert [x["status"] for x in r.json()["results"]] == ["reactivated", "updated"]
    assert all(c["CustomerEnabled"] for c in api("GET", "customers").json()["items"])


def test_customer_index_paging_is_ordered_by_code_with_total(api):
    codes = [f"P{n:04d}" for n in range(250)]
    shuffled = codes[::7] + [c for i, c in enumerate(codes) if i % 7]
    for start in range(0, 250, 100):
        assert api("POST", "customers/batch", json={"customers": [customer(c) for c in shuffled[start:start + 100]]}).ok
    seen = []
    for skip in range(0, 250, 100):
        page = api("GET", "customers", params={"skip": skip, "take": 100}).json()
        assert page["total"] == 250
        seen += [c["CustomerCode"] for c in page["items"]]
    assert seen == sorted(codes)
    item = api("GET", "customers", params={"take": 1}).json()["items"][0]
    assert set(item) == {"CustomerGuid", "CustomerCode", "CustomerName", "CustomerEnabled"}
    uuid.UUID(item["CustomerGuid"])


def test_dashboard_put_204_and_404(api, sandbox):
    api("POST", "customers/batch", json={"customers": [customer("DB1")]})
    data = bytes(range(256)) * 10
    r = api("PUT", "customers/DB1/dashboard", data=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 204
    assert sandbox.admin_api().get_customer("DB1")["Dashboard"] == {"sha256": hashlib.sha256(data).hexdigest(),
                                                                    "size": 2560}
    assert api("PUT", "customers/NOPE/dashboard", data=b"x").status_code == 404


def test_scripts_run_200_when_registered_404_otherwise(api, sandbox):
    assert api("POST", "scripts/UpdateCustomers/run").status_code == 404
    sandbox.admin_api().register_script("UpdateCustomers")
    r = api("POST", "scripts/UpdateCustomers/run")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    runs = sandbox.admin_api().events("script")
    assert [(e["name"], e["found"]) for e in runs] == [("UpdateCustomers", False), ("UpdateCustomers", True)]


def test_price_lists(api, sandbox):
    assert api("GET", "pricelists").json() == {"items": []}
    items = [{"Code": "3", "DeduplicatedCode": "1"}, {"Code": "1", "DeduplicatedCode": None}]
    sandbox.admin_api().set_price_lists(items)
    assert api("GET", "pricelists").json() == {"items": items}


def test_new_customer_feed_after_take_order(api, sandbox):
    admin = sandbox.admin_api()
    created = [admin.create_new_customer(f"Shop {i}") for i in range(5)]
    sequences = [c["Sequence"] for c in created]
    assert sequences == sorted(sequences) and len(set(sequences)) == 5
    page = api("GET", "newcustomers", params={"after": sequences[1], "take": 2}).json()["items"]
    assert [i["Sequence"] for i in page] == sequences[2:4]
    assert [i["CustomerGuid"] for i in page] == [c["CustomerGuid"] for c in created[2:4]]
    assert page[0]["Xml"].count(f"<customerGuid>{created[2]['CustomerGuid']}</customerGuid>") == 1
    assert page[0]["CreatedAt"].endswith("Z")
    assert api("GET", "newcustomers", params={"after": sequences[-1]}).json() == {"items": []}
    assert len(api("GET", "newcustomers").json()["items"]) == 5


def test_new_customer_codes_skip_existing_customer_codes(api, sandbox):
    api("POST", "customers/batch", json={"customers": [customer("C00001"), customer("C00002")]})
    created = sandbox.admin_api().create_new_customer("Fika AB")
    assert created["CustomerCode"] == "C00003"


def test_customer_code_200_404_409(api, sandbox):
    admin = sandbox.admin_api()
    ok = admin.create_new_customer("Fika AB")
    failing = admin.create_new_customer("No Code AB", fail_code=True)
    r = api("GET", f"customers/{ok['CustomerGuid']}/code")
    assert r.status_code == 200 and r.json() == {"CustomerCode": ok["CustomerCode"]}
    assert api("GET", f"customers/{uuid.uuid4()}/code").status_code == 404
    r = api("GET", f"customers/{failing['CustomerGuid']}/code")
    assert r.status_code == 409 and "error" in r.json()


def test_result_is_stored_and_unknown_guid_is_404(api, sandbox):
    admin = sandbox.admin_api()
    guid = admin.create_new_customer("Fika AB")["CustomerGuid"]
    assert admin.get_result(guid)["Result"] is None
    r = api("POST", f"newcustomers/{guid}/result", json={"Result": "SUCCESS_CUSTOMER:C00001"})
    assert r.status_code == 204
    stored = admin.get_result(guid)
    assert (stored["Result"], stored["Error"], stored["Posts"]) == ("SUCCESS_CUSTOMER:C00001", None, 1)
    api("POST", f"newcustomers/{guid}/result", json={"Error": "550 Permission denied"})
    stored = admin.get_result(guid)
    assert (stored["Result"], stored["Error"], stored["Posts"]) == (None, "550 Permission denied", 2)
    assert api("POST", f"newcustomers/{uuid.uuid4()}/result", json={"Result": "x"}).status_code == 404
    assert api("POST", f"newcustomers/{guid}/result", json={"Nope": "x"}).status_code == 400


def test_administrations_are_independent(sandbox):
    one, two = sandbox.client(sandbox.admin + "-a"), sandbox.client(sandbox.admin + "-b")
    one.upsert_customers([customer("X1")])
    assert [c["CustomerCode"] for c in one.list_customers()] == ["X1"]
    assert two.list_customers() == []
    assert sandbox.admin_api(sandbox.admin + "-b").get_customer("X1") is None


def test_events_log_mutations_in_order(api, sandbox):
    admin = sandbox.admin_api()
    admin.register_script("BeforeUpdateCustomers")
    api("POST", "scripts/BeforeUpdateCustomers/run")
    api("POST", "customers/batch", json={"customers": [customer("E1"), customer("E2")]})
    api("PUT", "customers/E1/dashboard", data=b"png")
    api("POST", "customers/deactivate", json={"codes": ["E2"]})
    events = admin.events()
    assert [e["kind"] for e in events] == ["script", "batch", "dashboard", "deactivate"]
    assert events[1]["codes"] == ["E1", "E2"] and events[1]["statuses"] == ["created", "created"]
    assert events[3]["deactivated"] == 1
    assert [e["id"] for e in admin.events(after=events[1]["id"])] == [events[2]["id"], events[3]["id"]]


def test_concurrent_batches_are_all_stored(sandbox):
    client = sandbox.client()
    errors = []

    def work(t: int) -> None:
        try:
            for b in range(3):
                client.upsert_customers([customer(f"T{t}-{b}-{i:02d}") for i in range(50)])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    codes = [c["CustomerCode"] for c in client.list_customers()]
    assert len(codes) == len(set(codes)) == 8 * 3 * 50
    assert len(sandbox.admin_api().events("batch")) == 24


def test_html_page_lists_customers_with_addresses_and_contacts(api, sandbox):
    api("POST", "customers/batch", json={"customers": [customer(
        "H1", CustomerName="Nordic <Tools>", Addresses=[{"AddressType": "del", "City": "Uppsala"}],
        Contacts=[{"FullName": "Anna Svensson"}])]})
    page_url = sandbox.base_url().split("/api/")[0] + "/"
    assert requests.get(page_url, timeout=10).status_code == 401
    r = requests.get(page_url, auth=(sandbox.username, sandbox.password), timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Nordic &lt;Tools&gt;" in r.text and "Uppsala" in r.text and "Anna Svensson" in r.text


def test_many_customers_page_quickly(sandbox):
    """2,000 customers in 20 batches, then the full index in 2 pages: the server is not quadratic."""
    client = sandbox.client()
    started = time.monotonic()
    for b in range(20):
        client.upsert_customers([customer(f"M{b:02d}{i:03d}") for i in range(100)])
    before = client.request_count
    assert len(client.list_customers()) == 2000
    assert client.request_count - before == 2
    assert time.monotonic() - started < 10.0  # about 0.2 s; a quadratic server would take far longer


def test_fresh_sandbox_has_its_own_server_and_demo_administration(fresh_sandbox, sandbox):
    assert fresh_sandbox.port != sandbox.port
    assert fresh_sandbox.base_url() == f"http://127.0.0.1:{fresh_sandbox.port}/demo/api/app4sales/"
    client = fresh_sandbox.client()
    assert client.administration == "demo" and client.list_customers() == []
