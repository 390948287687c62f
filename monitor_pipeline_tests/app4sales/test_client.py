"""App4SalesClient against the real sandbox: every call, error mapping, configuration."""

from __future__ import annotations

import uuid

import pytest

from monitor_pipeline.app4sales import (
    App4SalesAuthError,
    App4SalesClient,
    App4SalesConflictError,
    App4SalesError,
    App4SalesNotFoundError,
    BatchRejectedError,
)
from monitor_pipeline.app4sales.settings import App4SalesSettings
from monitor_pipeline.errors import ConfigError


def customer(code: str, **fields) -> dict:
    return {"CustomerCode": code, "CustomerName": f"Name {code}", **fields}


def test_from_env_reads_the_three_variables(sandbox):
    client = App4SalesSettings.from_env(sandbox.env()).client()
    assert client.administration == sandbox.admin
    assert client.base_url == sandbox.base_url()
    assert client.list_customers() == []


@pytest.mark.parametrize("missing", ["APP4SALES_URL", "APP4SALES_USERNAME", "APP4SALES_PASSWORD"])
def test_from_env_missing_variable_is_named(sandbox, missing):
    env = {k: v for k, v in sandbox.env().items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        App4SalesSettings.from_env(env).client()


@pytest.mark.parametrize("url", ["ftp://host/demo/api/app4sales/", "http://host/app4sales/", "not a url",
                                 "http://host/api/app4sales/", "http://u:topsecret@host/demo/api/app4sales/"])
def test_from_env_malformed_url_is_named_without_secrets(url):
    env = {"APP4SALES_URL": url, "APP4SALES_USERNAME": "u", "APP4SALES_PASSWORD": "pw"}
    with pytest.raises(ConfigError, match="APP4SALES_URL") as info:
        App4SalesSettings.from_env(env).client()
    assert "topsecret" not in str(info.value)


def test_base_url_without_trailing_slash_and_administration():
    client = App4SalesClient("https://example.com/acme/api/app4sales", "u", "p")
    assert client.base_url == "https://example.com/acme/api/app4sales/"
    assert client.administration == "acme"


def test_upsert_and_list_customers_across_pages(sandbox):
    client = sandbox.client()
    for b in range(21):
        results = client.upsert_customers([customer(f"L{b:02d}{i:03d}") for i in range(100)])
        assert {r["status"] for r in results} == {"created"} and len(results) == 100
    before = client.request_count
    items = client.list_customers()
    assert client.request_count - before == 3  # 1000 + 1000 + 100
    assert [c["CustomerCode"] for c in items] == sorted(f"L{b:02d}{i:03d}" for b in range(21) for i in range(100))
    assert client.upsert_customers([customer("L00000")])[0]["status"] == "updated"
    # about as many as expected: the covering pages asked for at once, nothing missed, nothing twice
    for expected, requests in ((2100, 3), (2000, 3), (900, 3), (5000, 5), (0, 3)):
        before = client.request_count
        assert client.list_customers(expected=expected) == items, expected
        assert client.request_count - before == requests, expected


def test_upsert_over_100_raises_before_sending(sandbox):
    client = sandbox.client()
    with pytest.raises(ValueError, match="100"):
        client.upsert_customers([customer(f"V{i}") for i in range(101)])
    assert client.request_count == 0
    assert client.upsert_customers([]) == [] and client.request_count == 0


def test_batch_rejected_carries_invalid_list_and_is_not_retried(sandbox):
    client = sandbox.client()
    with pytest.raises(BatchRejectedError) as info:
        client.upsert_customers([customer("G1"), {"CustomerCode": "G2"}])
    assert client.request_count == 1
    assert info.value.status == 400 and info.value.call == "POST customers/batch"
    assert [i["CustomerCode"] for i in info.value.invalid] == ["G2"]
    assert "CustomerName" in str(info.value) and "POST customers/batch" in str(info.value)
    assert client.list_customers() == []


def test_deactivate_dashboard_scripts_pricelists(sandbox):
    client, admin = sandbox.client(), sandbox.admin_api()
    client.upsert_customers([customer("K1"), customer("K2")])
    assert client.deactivate_customers(["K2"]) == 1
    assert client.deactivate_customers([]) == 0
    assert {c["CustomerCode"]: c["CustomerEnabled"] for c in client.list_customers()} == {"K1": True, "K2": False}
    client.put_dashboard("K1", b"\x89PNG data")
    assert admin.get_customer("K1")["Dashboard"]["size"] == 9
    with pytest.raises(App4SalesNotFoundError, match="PUT customers/NOPE/dashboard"):
        client.put_dashboard("NOPE", b"x")
    assert client.run_script("BeforeUpdateCustomers") is False
    admin.register_script("BeforeUpdateCustomers")
    assert client.run_script("BeforeUpdateCustomers") is True
    admin.set_price_lists([{"Code": "3", "DeduplicatedCode": "1"}])
    assert client.price_lists() == [{"Code": "3", "DeduplicatedCode": "1"}]


def test_export_feed_code_lookup_and_result(sandbox):
    client, admin = sandbox.client(), sandbox.admin_api()
    a = admin.create_new_customer("Fika AB")
    b = admin.create_new_customer("Kaffe AB", fail_code=True)
    feed = client.new_customers(after=0)
    assert [i["CustomerGuid"] for i in feed] == [a["CustomerGuid"], b["CustomerGuid"]]
    assert client.new_customers(after=feed[0]["Sequence"], take=1)[0]["CustomerGuid"] == b["CustomerGuid"]
    assert client.customer_code(a["CustomerGuid"]) == a["CustomerCode"]
    with pytest.raises(App4SalesConflictError) as conflict:
        client.customer_code(b["CustomerGuid"])
    assert conflict.value.status == 409
    with pytest.raises(App4SalesNotFoundError):
        client.customer_code(str(uuid.uuid4()))
    client.post_result(a["CustomerGuid"], result=f"SUCCESS_CUSTOMER:{a['CustomerCode']}")
    client.post_result(b["CustomerGuid"], error="no code")
    assert admin.get_result(a["CustomerGuid"])["Result"] == f"SUCCESS_CUSTOMER:{a['CustomerCode']}"
    assert admin.get_result(b["CustomerGuid"])["Error"] == "no code"
    with pytest.raises(ValueError):
        client.post_result(a["CustomerGuid"])
    with pytest.raises(App4SalesNotFoundError):
        client.post_result(str(uuid.uuid4()), result="x")


def test_wrong_password_is_auth_error_without_the_password(sandbox, caplog):
    password = "Very-Secret-Pw-42"
    client = App4SalesClient(sandbox.base_url(), sandbox.username, password)
    with pytest.raises(App4SalesAuthError) as info:
        client.list_customers()
    assert client.request_count == 1  # 401 is never retried
    assert info.value.status == 401 and "GET customers" in str(info.value)
    assert password not in str(info.value) and password not in repr(info.value.args)
    assert password not in caplog.text and password not in repr(client)


def test_other_4xx_raise_app4sales_error_once(sandbox):
    client = sandbox.client()
    with pytest.raises(App4SalesError) as info:
        client._request("GET", "customers", "customers", params={"take": 5000})
    assert info.value.status == 400 and "take" in str(info.value)
    assert client.request_count == 1


def test_close_closes_only_its_own_session(sandbox):
    import requests

    class Tracking(requests.Session):
        closed = 0

        def close(self):
            Tracking.closed += 1
            super().close()

    shared = Tracking()
    with sandbox.client(session=shared) as client:
        assert client.list_customers() == []
    assert Tracking.closed == 0
    with sandbox.client() as own:
        own.session = Tracking()
        own.list_customers()
    assert Tracking.closed == 1


def test_errors_survive_pickling():
    import pickle

    from monitor_pipeline.app4sales import App4SalesTransientError

    rejected = BatchRejectedError("POST customers/batch", 400, "1 invalid", [{"CustomerCode": "A", "message": "m"}])
    copy = pickle.loads(pickle.dumps(rejected))
    assert str(copy) == str(rejected) and copy.invalid == rejected.invalid
    transient = pickle.loads(pickle.dumps(App4SalesTransientError("GET customers", 503, "busy")))
    assert transient.transient and transient.call == "GET customers" and transient.status == 503


def test_the_proxy_of_the_environment_is_still_used(monkeypatch):
    """The client reads the proxy variables once (not on every call, ``App4SalesClient.__init__``); a proxy in
    HTTP_PROXY still carries every call."""
    import http.server
    import json as json_
    import threading as threading_

    seen: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(self.path)
            body = json_.dumps({"items": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading_.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = App4SalesClient("http://app4sales.invalid/demo/api/app4sales/", "u", "p")
        assert client.price_lists() == [] and client.price_lists() == []
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["http://app4sales.invalid/demo/api/app4sales/pricelists"] * 2
