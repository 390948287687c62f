"""App4Sales HTTP API client (the contract is ``app4sales-api.md``)."""

from monitor_pipeline.app4sales.client import App4SalesClient
from monitor_pipeline.app4sales.errors import (
    App4SalesAuthError,
    App4SalesConflictError,
    App4SalesError,
    App4SalesNotFoundError,
    App4SalesProtocolError,
    App4SalesTransientError,
    BatchRejectedError,
)

__all__ = [
    "App4SalesClient",
    "App4SalesError",
    "App4SalesAuthError",
    "App4SalesNotFoundError",
    "App4SalesConflictError",
    "BatchRejectedError",
    "App4SalesProtocolError",
    "App4SalesTransientError",
]
