"""Errors of the App4Sales client. Messages name the call and status, never a credential."""

from __future__ import annotations

from monitor_pipeline.errors import PipelineError


class App4SalesError(PipelineError):
    """A failed App4Sales call: ``call`` like ``"POST customers/batch"``, ``status`` the HTTP status or None."""

    def __init__(self, call: str, status: int | None, message: str):
        self.call, self.status, self.message = call, status, message
        where = f"HTTP {status}" if status is not None else "no HTTP answer"
        super().__init__(f"App4Sales {call} failed ({where}): {message}")

    def __reduce__(self):  # picklable despite the custom signature
        return (self.__class__, (self.call, self.status, self.message))


class App4SalesAuthError(App4SalesError):
    """401/403: wrong or missing credentials (check APP4SALES_USERNAME / APP4SALES_PASSWORD)."""


class App4SalesNotFoundError(App4SalesError):
    """404."""


class App4SalesConflictError(App4SalesError):
    """409 (e.g. no customer code can be generated)."""


class BatchRejectedError(App4SalesError):
    """400 on a customer batch; nothing of the batch was stored. ``invalid``: ``[{"CustomerCode", "message"}, …]``."""

    def __init__(self, call: str, status: int | None, message: str, invalid: list[dict] | None = None):
        self.invalid, self._server_message = list(invalid or []), message
        if self.invalid:
            details = "; ".join(f"{item.get('CustomerCode')}: {item.get('message')}" for item in self.invalid[:5])
            more = f" (+{len(self.invalid) - 5} more)" if len(self.invalid) > 5 else ""
            message = f"{message} — {details}{more}"
        super().__init__(call, status, message)

    def __reduce__(self):
        return (self.__class__, (self.call, self.status, self._server_message, self.invalid))


class App4SalesProtocolError(App4SalesError):
    """A 2xx answer that is not the contract's shape (not JSON, a missing or mistyped field). Never retried,
    never taken as success: whatever the call did is unknown, so nothing is recorded for it."""


class App4SalesTransientError(App4SalesError):
    """Connection error, timeout, 429 or 5xx that persisted through every retry."""

    transient = True
