"""Client of the sandbox-only calls (``…/api/app4sales/sandbox/…``): playing the app's part in demos and tests.

Not part of the App4Sales contract; the pipeline never uses it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests


class SandboxAdminError(RuntimeError):
    pass


class SandboxAdmin:
    """The sandbox extras of one administration, given its API base URL (``…/<admin>/api/app4sales/``)."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 10.0):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.auth, self.timeout = (username, password), timeout
        self.http = requests.Session()

    def _call(self, method: str, path: str, expect: int = 200, **kw: Any) -> requests.Response:
        response = self.http.request(method, self.base_url + "sandbox/" + path, auth=self.auth,
                                     timeout=self.timeout, **kw)
        if response.status_code != expect:
            raise SandboxAdminError(f"{method} sandbox/{path}: HTTP {response.status_code}: {response.text[:300]}")
        return response

    def create_new_customer(self, name: str = "Fika AB", xml: str | None = None, fail_code: bool = False) -> dict:
        """A sales rep creates a customer in the app: ``{"Sequence", "CustomerGuid", "CustomerCode"}``."""
        body: dict[str, Any] = {"CustomerName": name, "FailCodeGeneration": fail_code}
        if xml is not None:
            body["Xml"] = xml
        return self._call("POST", "newcustomers", json=body).json()

    def get_customer(self, code: str) -> dict | None:
        """The full stored customer (None if unknown)."""
        try:
            return self._call("GET", "customers/" + quote(code, safe="")).json()
        except SandboxAdminError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise

    def events(self, kind: str | None = None, after: int = 0) -> list[dict]:
        """The log of mutating calls, oldest first (optionally only one ``kind``)."""
        items = self._call("GET", "events", params={"after": after}).json()["items"]
        return [e for e in items if kind is None or e["kind"] == kind]

    def add_fault(self, path: str, method: str | None = None, **fault: Any) -> None:
        self._call("POST", "faults", 204, json={"path": path, "method": method, **fault})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults", 204)

    def stats(self) -> dict:
        """Server-wide call counts: calls, throttled, max_in_flight_seen, in_flight (``sandbox/limits.py``)."""
        return self._call("GET", "stats").json()

    def reset_stats(self) -> None:
        self._call("DELETE", "stats", 204)

    def register_script(self, name: str) -> None:
        self._call("PUT", f"scripts/{quote(name, safe='')}", 204)

    def delete_script(self, name: str) -> None:
        self._call("DELETE", f"scripts/{quote(name, safe='')}", 204)

    def set_price_lists(self, items: list[dict]) -> None:
        self._call("PUT", "pricelists", 204, json={"items": items})

    def get_result(self, guid: str) -> dict:
        """What the pipeline posted for a new customer: ``Result``, ``Error``, ``Posts``, ``PostedAt``…"""
        return self._call("GET", f"newcustomers/{quote(guid, safe='')}/result").json()

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SandboxAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
