"""In-memory App4Sales client for unit tests of the sync logic, and frame builders."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd

from monitor_pipeline.app4sales.errors import App4SalesTransientError, BatchRejectedError
from monitor_pipeline.customers.columns import ADDRESS_COLUMNS, CONTACT_COLUMNS, CUSTOMER_COLUMNS  # noqa: F401


def rejected(invalid: list[dict]) -> BatchRejectedError:
    return BatchRejectedError("POST customers/batch", 400, "invalid customers", invalid)


def transient(message: str = "503 Service Unavailable after 4 attempts") -> App4SalesTransientError:
    return App4SalesTransientError("POST customers/batch", 503, message)


class FakeClient:
    """Implements the App4SalesClient interface the sync uses, recording every call in ``calls``. Calls from
    several threads (the sync's batches in flight) are taken one at a time, in the order they come."""

    def __init__(self, administration="demo", existing=(), scripts=("BeforeUpdateCustomers", "UpdateCustomers"),
                 price_lists=None, page=1000):
        self.administration = administration
        self.request_count = 0
        self.page = page
        self.store: dict[str, dict] = {}
        for row in existing:
            self.store[row["CustomerCode"]] = {"CustomerEnabled": True, "CustomerName": row["CustomerCode"], **row}
        self.scripts = set(scripts)
        self._price_lists = price_lists or []
        self.calls: list[tuple] = []
        self.batches: list[list[dict]] = []
        self.dashboards: dict[str, bytes] = {}
        self.invalid: dict[str, str] = {}      # code → message: a batch holding it gets a 400
        self.fail_on_upsert: set[int] = set()  # 1-based upsert call numbers raising a transient error
        self.fail_codes: set[str] = set()      # a batch holding one of these raises a transient error
        self.upsert_calls = 0
        self._lock = threading.RLock()

    def list_customers(self, expected=0):
        self.expected = expected
        rows = [{k: r[k] for k in ("CustomerGuid", "CustomerCode", "CustomerName", "CustomerEnabled")}
                for _, r in sorted(self.store.items())]
        self.request_count += max(1, -(-len(rows) // self.page))
        self.calls.append(("list_customers",))
        return rows

    def upsert_customers(self, customers):
        with self._lock:
            return self._upsert_customers(customers)

    def _upsert_customers(self, customers):
        self.request_count += 1
        self.upsert_calls += 1
        codes = [c["CustomerCode"] for c in customers]
        self.calls.append(("upsert", codes))
        assert len(customers) <= 100, "413"
        if self.upsert_calls in self.fail_on_upsert or self.fail_codes.intersection(codes):
            raise transient()
        bad = [{"CustomerCode": c, "message": self.invalid[c]} for c in codes if c in self.invalid]
        if bad:
            raise rejected(bad)
        self.batches.append(customers)
        results = []
        for c in customers:
            old = self.store.get(c["CustomerCode"])
            status = "created" if old is None else ("updated" if old["CustomerEnabled"] else "reactivated")
            guid = old["CustomerGuid"] if old else c["CustomerGuid"]
            self.store[c["CustomerCode"]] = {**c, "CustomerGuid": guid, "CustomerEnabled": True}
            results.append({"CustomerCode": c["CustomerCode"], "CustomerGuid": guid, "status": status})
        return results

    def deactivate_customers(self, codes):
        self.request_count += 1
        self.calls.append(("deactivate", list(codes)))
        n = 0
        for code in codes:
            if code in self.store and self.store[code]["CustomerEnabled"]:
                self.store[code]["CustomerEnabled"] = False
                n += 1
        return n

    def put_dashboard(self, code, data):
        with self._lock:
            return self._put_dashboard(code, data)

    def _put_dashboard(self, code, data):
        self.request_count += 1
        self.calls.append(("dashboard", code))
        if code not in self.store:
            raise AssertionError(f"404 dashboard for unknown {code}")
        self.dashboards[code] = data

    def run_script(self, name):
        self.request_count += 1
        self.calls.append(("script", name))
        return name in self.scripts

    def price_lists(self):
        self.request_count += 1
        self.calls.append(("price_lists",))
        return list(self._price_lists)

    def upserted_codes(self) -> list[str]:
        return [code for batch in self.batches for code in (c["CustomerCode"] for c in batch)]

    def call_names(self) -> list[str]:
        return [c[0] if c[0] != "script" else c[1] for c in self.calls]


def make_frames(n: int, *, with_dashboards: bool = True, seed: int = 0):
    """Normalized frames as the customers package produces them: ``customers, addresses, contacts, dashboards``."""
    rng = np.random.default_rng(seed)
    codes = [f"C{i:06d}" for i in range(n)]
    null = [None] * n
    customers = pd.DataFrame({
        "CustomerGuid": [None if i % 3 else f"00000000-0000-4000-8000-{i:012d}" for i in range(n)],
        "CustomerCode": codes,
        "CustomerName": [f"Customer {i} AB" for i in range(n)],
        "ChamberOfCommerceCode": null,
        "VatCode": [f"SE{i:010d}01" for i in range(n)],
        "VatLiable": pd.array([None if i % 7 == 0 else bool(i % 2) for i in range(n)], dtype="boolean"),
        "Discount": np.where(rng.random(n) < 0.2, np.nan, np.round(rng.random(n) * 20, 1)),
        "UsesPriceField": [str(i % 5) for i in range(n)],
        "ActionPriceList": null,
        "HidePrices": pd.array([i % 11 == 0 for i in range(n)], dtype="boolean"),
        "LanguageCode": ["sv"] * n,
        "CustomerManager": ["erik"] * n,
        "Sysmodified": ["2026-11-02T10:00:00"] * n,
        "DynamicFreeFields": [None if i % 4 else '<field name="segment">A</field>' for i in range(n)],
        "FreeFields": null,
        "CustomerClassification": null,
        "ItemFilter": null,
        "CustomerNote": [None if i % 2 else f"note {i}" for i in range(n)],
        "PaymentConditionCode": ["30D"] * n,
        "DeliveryMethod": ["DHL"] * n,
        "Filters": null,
    }, columns=CUSTOMER_COLUMNS)
    addr_codes = [c for c in codes for _ in range(2)]
    m = len(addr_codes)
    addresses = pd.DataFrame({
        "CustomerCode": addr_codes,
        "AddressType": ["del", "vis"] * n,
        "AddressLine1": [f"Street {i}" for i in range(m)],
        "AddressLine2": [None] * m,
        "PostCode": ["111 22"] * m,
        "City": ["Stockholm"] * m,
        "Country": ["SE"] * m,
        "Email": [None] * m,
        "Phone": ["+46 8 123"] * m,
        "Fax": [None] * m,
        "IsMainAddress": pd.array([True] * m, dtype="boolean"),
    }, columns=ADDRESS_COLUMNS)
    contacts = pd.DataFrame({
        "CustomerCode": codes,
        "FullName": [f"Anna Svensson {i}" for i in range(n)],
        "FirstName": ["Anna"] * n,
        "MiddleName": null,
        "LastName": [f"Svensson {i}" for i in range(n)],
        "Email": [f"anna{i}@example.se" for i in range(n)],
        "Phonenumber": null,
        "IsMainContactPerson": pd.array([True] * n, dtype="boolean"),
        "DynamicFreeFields": null,
    }, columns=CONTACT_COLUMNS)
    board_codes = codes[::10] if with_dashboards else []
    dashboards = pd.DataFrame({"CustomerCode": board_codes,
                               "Dashboard": [f"dash-{c}".encode() for c in board_codes]},
                              columns=["CustomerCode", "Dashboard"])
    return customers, addresses, contacts, dashboards
