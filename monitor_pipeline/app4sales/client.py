"""HTTP client for the App4Sales contract (``app4sales-api.md``), on a pooled ``requests.Session``.

Retries: connection errors, timeouts, 429 and 5xx are retried with ``RetryPolicy`` (honouring
``Retry-After``), no other 4xx ever. urllib3 does no retries of its own, so ``request_count`` is
exact. Every call of the contract is safe to repeat: ``POST customers/batch`` is an upsert keyed
by CustomerCode (resending a batch that was stored but whose answer was lost just updates the
same customers), deactivation, dashboard PUTs and result posts overwrite. A script run repeated
after a lost answer runs the script again, which App4Sales' update scripts tolerate.

Bounded waits (SPEC §5): ``connect_timeout`` bounds each connect, ``read_timeout`` each socket read,
and ``answer_timeout`` the whole of one attempt, from connecting to the last byte of the answer
(:mod:`monitor_pipeline.app4sales.deadline`): a server that trickles its answer is a timeout, retried,
then an :class:`App4SalesTransientError` — never a call that hangs for as long as the server likes.

Answers are checked against the contract's shape before anything is taken from them: an answer that
is not the contract's shape raises :class:`App4SalesProtocolError` naming the call (never retried, never
"success"). Which customers a batch answer confirms is the sync's business (``sync._confirmed``).

Calls in flight: ``max_in_flight`` (``MONITOR_UPSERT_CONCURRENCY`` for a sync) bounds how many calls the
client has open at once, from any number of threads, through an :class:`AdaptiveWindow` that 429 and 503
answers shrink and successes grow back (:mod:`monitor_pipeline.app4sales.window`). The index is then read
with that many pages in flight once the first page has given ``total``.

Credentials travel only in the Authorization header (never in the URL), so request exceptions
quoted in error messages carry none; messages are redacted anyway.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from monitor_pipeline.app4sales.errors import (
    App4SalesAuthError,
    App4SalesConflictError,
    App4SalesError,
    App4SalesNotFoundError,
    App4SalesProtocolError,
    App4SalesTransientError,
    BatchRejectedError,
)
from monitor_pipeline.app4sales.deadline import DeadlineAdapter, deadline
from monitor_pipeline.app4sales.window import AdaptiveWindow
from monitor_pipeline.lib.redact import redact
from monitor_pipeline.lib.retry import RetryPolicy

MAX_BATCH = 100
#: Batch bodies: compact, UTF-8 as it is (not \u-escaped), NaN refused as ``requests``' own ``json=`` does.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
PAGE_SIZE = 1000
POOL_SIZE = 8


class _Retryable(Exception):
    """One failed attempt that may be retried (connection error, timeout, 429, 5xx)."""

    def __init__(self, status: int | None, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def parse_base_url(url: str) -> tuple[str, str]:
    """``(normalized base URL ending in '/', administration)``; ValueError if unusable."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials; use APP4SALES_USERNAME and APP4SALES_PASSWORD")
    segments = parts.path.split("/")
    if "api" not in segments or segments.index("api") < 2 or not segments[segments.index("api") - 1]:
        raise ValueError("must contain the administration before /api/, e.g. http://host/demo/api/app4sales/")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    base = url.strip()
    return (base if base.endswith("/") else base + "/"), segments[segments.index("api") - 1]


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _excerpt(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _shape_error(body: Any, name: str, kind: type | tuple[type, ...]) -> str:
    wanted = " or ".join(k.__name__ for k in _as_tuple(kind))
    if not isinstance(body, dict):
        return f"answer is not the contract's shape: expected a JSON object with {name!r}, got {_excerpt(body)}"
    return (f"answer is not the contract's shape: {name!r} must be a {wanted}, got "
            f"{_excerpt(body.get(name)) if name in body else 'nothing'}")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class App4SalesClient:
    def __init__(self, base_url: str, username: str, password: str, *, connect_timeout: float = 5.0,
                 read_timeout: float = 60.0, answer_timeout: float | None = 120.0, retry: RetryPolicy | None = None,
                 session: requests.Session | None = None, logger: logging.Logger | None = None,
                 max_in_flight: int = 1):
        self.base_url, self.administration = parse_base_url(base_url)
        self._username, self._password = username, password
        self._secrets = (password, base64.b64encode(f"{username}:{password}".encode()).decode())
        self.timeout = (connect_timeout, read_timeout)
        self.answer_timeout = answer_timeout
        self.retry = retry or RetryPolicy()
        self.log = logger or logging.getLogger(__name__)
        self.window = AdaptiveWindow(max_in_flight, on_change=self._window_changed)
        self._own_session = session is None
        self.session = session or requests.Session()
        if self._own_session:
            adapter = DeadlineAdapter(pool_connections=2, pool_maxsize=max(POOL_SIZE, max_in_flight), max_retries=0)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        # requests reads the proxy variables and the CA bundle (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE, …)
        # from the environment on every call, walking all of os.environ: about 0.5 ms of CPU per call with a
        # run's environment, a fifth of a batch's client-side cost. They are read once, for this client's URL.
        env = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
        self._environment = {"proxies": env["proxies"], "verify": env["verify"]}
        self.session.trust_env = False
        self._count_lock = threading.Lock()
        self.request_count = 0

    def __repr__(self) -> str:
        return f"App4SalesClient({self.base_url!r}, user={self._username!r})"

    # --- plumbing --------------------------------------------------------------------------
    def _window_changed(self, message: str, shrank: bool) -> None:
        (self.log.warning if shrank else self.log.info)(message)

    def _redact(self, text: str) -> str:
        return redact(text, *self._secrets)

    def _send(self, method: str, path: str, **kw: Any) -> requests.Response:
        """One attempt (one place in the window); raises ``_Retryable`` for what may be retried, returns any
        other answer."""
        with self.window.slot() as epoch:
            with self._count_lock:
                self.request_count += 1
            try:
                response = self._attempt(method, path, **kw)
            except _Retryable as exc:
                self.window.answered(epoch, exc.status, exc.retry_after)
                raise
            self.window.answered(epoch, response.status_code)
            return response

    def _attempt(self, method: str, path: str, **kw: Any) -> requests.Response:
        with deadline(self.answer_timeout) as bound:
            try:
                response = self.session.request(method, self.base_url + path, auth=(self._username, self._password),
                                                timeout=self.timeout, allow_redirects=False, **self._environment,
                                                **kw)
            except (requests.RequestException, OSError) as exc:
                if bound is not None and bound.expired:
                    raise _Retryable(None, f"no complete answer within {self.answer_timeout:g} s "
                                           "(APP4SALES_ANSWER_TIMEOUT)") from None
                if isinstance(exc, requests.exceptions.SSLError):
                    raise  # a certificate problem does not heal by retrying
                if isinstance(exc, (requests.ConnectionError, requests.Timeout,
                                    requests.exceptions.ChunkedEncodingError)):
                    raise _Retryable(None, f"{type(exc).__name__}: {self._redact(str(exc))}") from None
                raise
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(response.status_code, self._error_text(response),
                             _retry_after(response.headers.get("Retry-After")))
        return response

    def _error_text(self, response: requests.Response) -> str:
        try:
            body = response.json()
            text = body.get("error") if isinstance(body, dict) else None
        except ValueError:
            text = None
        text = text or response.text[:300].strip() or response.reason or "no error text"
        return self._redact(str(text))

    def _request(self, method: str, path: str, call: str, ok: tuple[int, ...] = (200,), **kw: Any) -> requests.Response:
        call = f"{method} {call}"

        def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
            what = f"HTTP {exc.status}" if isinstance(exc, _Retryable) and exc.status else str(exc)
            self.log.warning("App4Sales %s: %s; retry %d of %d in %.1fs", call, what, attempt,
                             self.retry.attempts - 1, wait)

        try:
            response = self.retry.call(lambda: self._send(method, path, **kw),
                                       is_transient=lambda exc: isinstance(exc, _Retryable),
                                       retry_after=lambda exc: getattr(exc, "retry_after", None), on_retry=on_retry)
        except _Retryable as exc:
            raise App4SalesTransientError(
                call, exc.status, f"{exc.message} (gave up after {self.retry.attempts} attempts)") from None
        except requests.RequestException as exc:
            raise App4SalesError(call, None, f"{type(exc).__name__}: {self._redact(str(exc))}") from None
        if response.status_code in ok:
            return response
        status, text = response.status_code, self._error_text(response)
        if status in (401, 403):
            raise App4SalesAuthError(call, status, f"{text} (check APP4SALES_USERNAME / APP4SALES_PASSWORD)")
        if status == 404:
            raise App4SalesNotFoundError(call, status, text)
        if status == 409:
            raise App4SalesConflictError(call, status, text)
        if status == 400 and path == "customers/batch":
            try:
                invalid = response.json().get("invalid") or []
            except (ValueError, AttributeError):
                invalid = []
            raise BatchRejectedError(call, status, text, invalid=invalid)
        raise App4SalesError(call, status, text)

    def _json(self, response: requests.Response, call: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise App4SalesProtocolError(call, response.status_code, "answer is not JSON") from None

    def _field(self, response: requests.Response, call: str, name: str, kind: type | tuple[type, ...]) -> Any:
        """``body[name]`` of a JSON object answer, which must be a ``kind``; else App4SalesProtocolError."""
        body = self._json(response, call)
        value = body.get(name) if isinstance(body, dict) else None
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise App4SalesProtocolError(call, response.status_code, self._redact(_shape_error(body, name, kind)))
        return value

    # --- the contract ----------------------------------------------------------------------
    def list_customers(self, expected: int = 0) -> list[dict]:
        """The whole customer index (code, GUID, name, enabled), in pages of 1000, ``max_in_flight`` pages at
        a time. ``expected``: about how many customers the caller expects (the sync passes how many it has
        recorded): the pages that cover them are asked for at once; then whatever the answers' ``total``
        says is still missing; should the pages still not add up (the index changed meanwhile), reading
        goes on page by page until a short page. Without ``expected`` the first page comes alone."""
        skips = list(range(0, max(expected, 1), PAGE_SIZE))
        pages = self._index_pages(skips)
        total = max(page_total for _, page_total in pages)
        if len(pages[-1][0]) == PAGE_SIZE and total > len(skips) * PAGE_SIZE:
            pages += self._index_pages(range(len(skips) * PAGE_SIZE, total, PAGE_SIZE))
            total = max(page_total for _, page_total in pages)
        items = [row for page, _ in pages for row in page]
        last = pages[-1][0]
        while len(last) == PAGE_SIZE and len(items) < total:
            last, total = self._index_page(len(items))
            items.extend(last)
        return items

    def _index_pages(self, skips) -> list[tuple[list[dict], int]]:
        skips = list(skips)
        workers = min(self.window.maximum, len(skips))
        if workers <= 1:
            return [self._index_page(skip) for skip in skips]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="app4sales-index") as pool:
            return list(pool.map(self._index_page, skips))

    def _index_page(self, skip: int) -> tuple[list[dict], int]:
        response = self._request("GET", "customers", "customers", params={"skip": skip, "take": PAGE_SIZE})
        batch = self._field(response, "GET customers", "items", list)
        total = self._field(response, "GET customers", "total", int)
        bad = [row for row in batch if not isinstance(row, dict) or not isinstance(row.get("CustomerCode"), str)
               or not isinstance(row.get("CustomerEnabled", True), bool)]
        if bad:
            raise App4SalesProtocolError("GET customers", response.status_code,
                                         f"{len(bad)} index rows without a string CustomerCode and a boolean "
                                         f"CustomerEnabled, e.g. {_excerpt(bad[0])}")
        return batch, total

    def upsert_customers(self, customers: list[dict]) -> list[dict]:
        """Upsert at most 100 customers atomically; retried safely (the upsert is idempotent)."""
        if len(customers) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} customers per batch, got {len(customers)}")
        if not customers:
            return []
        body = _JSON_ENCODER.encode({"customers": customers}).encode("utf-8")  # compact UTF-8: a tenth smaller
        response = self._request("POST", "customers/batch", "customers/batch", data=body,
                                 headers={"Content-Type": "application/json"})
        return self._field(response, "POST customers/batch", "results", list)

    def deactivate_customers(self, codes: list[str]) -> int:
        if not codes:
            return 0
        response = self._request("POST", "customers/deactivate", "customers/deactivate", json={"codes": list(codes)})
        return self._field(response, "POST customers/deactivate", "deactivated", int)

    def put_dashboard(self, code: str, data: bytes) -> None:
        path = f"customers/{quote(code, safe='')}/dashboard"
        self._request("PUT", path, path, ok=(200, 204), data=data,
                      headers={"Content-Type": "application/octet-stream"})

    def run_script(self, name: str) -> bool:
        """True when the script ran, False when the administration has no such script (404)."""
        path = f"scripts/{quote(name, safe='')}/run"
        try:
            self._request("POST", path, path)
        except App4SalesNotFoundError:
            return False
        return True

    def price_lists(self) -> list[dict]:
        return self._field(self._request("GET", "pricelists", "pricelists"), "GET pricelists", "items", list)

    def new_customers(self, after: int, take: int = 100) -> list[dict]:
        response = self._request("GET", "newcustomers", "newcustomers", params={"after": after, "take": take})
        return self._field(response, "GET newcustomers", "items", list)

    def customer_code(self, guid: str) -> str:
        path = f"customers/{quote(guid, safe='')}/code"
        return self._field(self._request("GET", path, path), f"GET {path}", "CustomerCode", str)

    def post_result(self, guid: str, *, result: str | None = None, error: str | None = None) -> None:
        if (result is None) == (error is None):
            raise ValueError("give exactly one of result and error")
        path = f"newcustomers/{quote(guid, safe='')}/result"
        self._request("POST", path, path, ok=(200, 204), json={"Result": result} if result is not None else {"Error": error})

    def close(self) -> None:
        if self._own_session:
            self.session.close()

    def __enter__(self) -> App4SalesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
