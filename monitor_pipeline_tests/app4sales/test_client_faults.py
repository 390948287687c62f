"""Transient failures injected in the real sandbox: the client retries what it may, and only that."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from monitor_pipeline.app4sales import App4SalesError, App4SalesTransientError
from monitor_pipeline.lib.retry import RetryPolicy


def customer(code: str, **fields) -> dict:
    return {"CustomerCode": code, "CustomerName": f"Name {code}", **fields}


class RecordingSleep:
    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_503_with_retry_after_is_retried_honouring_the_wait(sandbox, caplog):
    sleep = RecordingSleep()
    client = sandbox.client(retry=RetryPolicy(attempts=4, base=0.01, cap=30, sleep=sleep))
    sandbox.admin_api().add_fault("customers/batch", "POST", times=2, status=503, retry_after=7)
    with caplog.at_level(logging.WARNING):
        results = client.upsert_customers([customer("R1")])
    assert results[0]["status"] == "created"
    assert client.request_count == 3
    assert len(sleep.waits) == 2 and all(w >= 7 for w in sleep.waits)
    retries = [r for r in caplog.records if "POST customers/batch" in r.getMessage()]
    assert len(retries) == 2 and "HTTP 503" in retries[0].getMessage() and "7.0s" in retries[0].getMessage()


def test_retry_after_really_waited(sandbox):
    client = sandbox.client(retry=RetryPolicy(attempts=2, base=0.01, cap=5))
    sandbox.admin_api().add_fault("customers", "GET", status=503, retry_after=1)
    started = time.monotonic()
    assert client.list_customers() == []
    assert time.monotonic() - started >= 1.0
    assert client.request_count == 2


def test_429_is_retried(sandbox):
    sleep = RecordingSleep()
    client = sandbox.client(retry=RetryPolicy(attempts=3, base=0.01, cap=30, sleep=sleep))
    sandbox.admin_api().add_fault("pricelists", status=429, retry_after=2)
    assert client.price_lists() == []
    assert client.request_count == 2 and sleep.waits[0] >= 2


def test_500_without_retry_after_uses_backoff(sandbox):
    sleep = RecordingSleep()
    client = sandbox.client(retry=RetryPolicy(attempts=3, base=0.2, cap=30, jitter=0, sleep=sleep))
    sandbox.admin_api().add_fault("newcustomers", "GET", times=2, status=500)
    assert client.new_customers(after=0) == []
    assert sleep.waits == [0.2, 0.4]


@pytest.mark.parametrize("status", [400, 403, 404, 409, 413, 422])
def test_other_4xx_are_never_retried(sandbox, status):
    client = sandbox.client()
    sandbox.admin_api().add_fault("customers", "GET", times=3, status=status)
    with pytest.raises(App4SalesError) as info:
        client.list_customers()
    assert not isinstance(info.value, App4SalesTransientError)
    assert info.value.status == status and client.request_count == 1


def test_drop_before_is_a_connection_error_not_a_500(sandbox):
    sandbox.admin_api().add_fault("customers/batch", "POST", action="drop_before")
    with pytest.raises(requests.ConnectionError):
        requests.post(sandbox.base_url() + "customers/batch", json={"customers": [customer("X1")]},
                      auth=(sandbox.username, sandbox.password), timeout=5)
    assert sandbox.admin_api().get_customer("X1") is None  # not processed


def test_drop_after_processes_then_drops(sandbox):
    sandbox.admin_api().add_fault("customers/batch", "POST", action="drop_after")
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        requests.post(sandbox.base_url() + "customers/batch", json={"customers": [customer("X2")]},
                      auth=(sandbox.username, sandbox.password), timeout=5)
    assert sandbox.admin_api().get_customer("X2")["CustomerEnabled"] is True


def test_client_retries_drop_before(sandbox):
    client = sandbox.client()
    sandbox.admin_api().add_fault("customers/batch", "POST", action="drop_before")
    assert client.upsert_customers([customer("Y1")])[0]["status"] == "created"
    assert client.request_count == 2
    assert [e["codes"] for e in sandbox.admin_api().events("batch")] == [["Y1"]]


def test_client_retries_drop_after_without_duplicates(sandbox):
    client = sandbox.client()
    sandbox.admin_api().add_fault("customers/batch", "POST", action="drop_after")
    results = client.upsert_customers([customer("Z1", CustomerNote="n")])
    assert client.request_count == 2
    assert results[0]["status"] == "updated"  # the first attempt created it, the answer was lost
    assert [c["CustomerCode"] for c in client.list_customers()] == ["Z1"]
    assert [e["statuses"] for e in sandbox.admin_api().events("batch")] == [["created"], ["updated"]]


def test_slow_answer_past_read_timeout_is_retried(sandbox):
    client = sandbox.client(read_timeout=0.5)
    sandbox.admin_api().add_fault("customers/batch", "POST", delay=1.5)
    started = time.monotonic()
    assert client.upsert_customers([customer("S1")])[0]["status"] in ("created", "updated")
    assert client.request_count == 2
    assert time.monotonic() - started < 1.5  # did not wait for the slow answer
    assert [c["CustomerCode"] for c in client.list_customers()] == ["S1"]


def test_delay_within_timeout_just_succeeds(sandbox):
    client = sandbox.client(read_timeout=5)
    sandbox.admin_api().add_fault("pricelists", delay=0.3)
    started = time.monotonic()
    assert client.price_lists() == []
    assert client.request_count == 1 and time.monotonic() - started >= 0.3


def test_retries_exhausted_is_transient_error_naming_the_call(sandbox):
    client = sandbox.client(retry=RetryPolicy(attempts=3, base=0.01, cap=0.02))
    sandbox.admin_api().add_fault("customers/batch", "POST", times=5, status=503)
    with pytest.raises(App4SalesTransientError) as info:
        client.upsert_customers([customer("Q1")])
    assert info.value.transient is True and info.value.status == 503
    assert "POST customers/batch" in str(info.value) and "503" in str(info.value)
    assert client.request_count == 3
    assert sandbox.admin_api().get_customer("Q1") is None


def test_connection_refused_is_transient_and_carries_no_credentials(sandbox):
    password = "Refused-Secret-77"
    from monitor_pipeline.app4sales import App4SalesClient

    client = App4SalesClient("http://127.0.0.1:9/demo/api/app4sales/", "someone", password, connect_timeout=0.5,
                             retry=RetryPolicy(attempts=2, base=0.01, cap=0.01))
    with pytest.raises(App4SalesTransientError) as info:
        client.run_script("UpdateCustomers")
    assert info.value.status is None and "POST scripts/UpdateCustomers/run" in str(info.value)
    assert "ConnectionError" in str(info.value)
    assert password not in str(info.value) and "someone" not in str(info.value)
    assert client.request_count == 2


def test_faults_only_hit_their_administration_and_expire(sandbox):
    other = sandbox.client(sandbox.admin + "-other")
    mine = sandbox.client()
    sandbox.admin_api().add_fault("customers", "GET", times=1, status=503)
    assert other.list_customers() == [] and other.request_count == 1
    assert mine.list_customers() == [] and mine.request_count == 2
    assert mine.list_customers() == [] and mine.request_count == 3


def test_clear_faults(sandbox):
    client = sandbox.client()
    sandbox.admin_api().add_fault("customers/*/dashboard", "PUT", times=10, status=503)
    sandbox.admin_api().clear_faults()
    client.upsert_customers([customer("F1")])
    client.put_dashboard("F1", b"x")
    assert client.request_count == 2


def test_fault_pattern_matches_dashboards(sandbox):
    client = sandbox.client()
    client.upsert_customers([customer("F2")])
    sandbox.admin_api().add_fault("customers/*/dashboard", "PUT", status=502)
    client.put_dashboard("F2", b"x")
    assert client.request_count == 3


def test_fault_skip_lets_the_first_requests_through(sandbox):
    client = sandbox.client()
    sandbox.admin_api().add_fault("customers", "GET", skip=2, times=1, status=503)
    client.list_customers()
    client.list_customers()
    assert client.request_count == 2  # the first two passed untouched
    client.list_customers()
    assert client.request_count == 4  # the third was answered 503 once, then retried


def test_a_trickled_answer_is_cut_at_the_answer_timeout_and_retried(sandbox):
    """The read timeout (5 s) never trips on a 20 B/s answer; the whole-answer deadline (0.5 s) does."""
    client = sandbox.client(read_timeout=5, answer_timeout=0.5, retry=RetryPolicy(attempts=3, base=0.01, cap=0.05))
    sandbox.admin_api().add_fault("pricelists", "GET", trickle=20, times=3)
    started = time.monotonic()
    with pytest.raises(App4SalesTransientError, match=r"no complete answer within 0\.5 s") as info:
        client.price_lists()
    assert time.monotonic() - started < 5
    assert client.request_count == 3 and "GET pricelists" in str(info.value)
    assert client.price_lists() == []  # the same pooled client works again afterwards


@pytest.mark.parametrize("body,wanted", [
    ([], "expected a JSON object"), ({"items": "x"}, "'items' must be a list"), ({}, "got nothing"),
])
def test_an_answer_not_of_the_contracts_shape_is_a_protocol_error(sandbox, body, wanted):
    from monitor_pipeline.app4sales import App4SalesProtocolError
    client = sandbox.client()
    sandbox.admin_api().add_fault("pricelists", "GET", body=body)
    with pytest.raises(App4SalesProtocolError, match=wanted) as info:
        client.price_lists()
    assert "GET pricelists" in str(info.value) and not info.value.transient and client.request_count == 1
