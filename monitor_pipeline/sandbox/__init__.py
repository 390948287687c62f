"""App4Sales sandbox: a real HTTP server (Starlette + uvicorn + SQLite) speaking the contract in
``app4sales-api.md``, plus sandbox-only calls under ``…/api/app4sales/sandbox/`` for tests and demos."""

from monitor_pipeline.sandbox.admin import SandboxAdmin, SandboxAdminError
from monitor_pipeline.sandbox.app import create_app
from monitor_pipeline.sandbox.server import SandboxHandle, serve, start_sandbox_in_thread

__all__ = ["create_app", "start_sandbox_in_thread", "serve", "SandboxHandle", "SandboxAdmin", "SandboxAdminError"]
