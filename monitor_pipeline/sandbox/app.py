"""The App4Sales sandbox as a Starlette app: the contract of ``app4sales-api.md`` plus sandbox extras.

Every route, the HTML page included, needs HTTP Basic auth (browsers prompt for it: the 401
carries ``WWW-Authenticate``). Each administration (the path segment before ``/api/``) is an
independent data set, created on first use.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from monitor_pipeline.sandbox.faults import Fault, FaultMiddleware, FaultRegistry
from monitor_pipeline.sandbox.limits import CallLimits, LimitsMiddleware
from monitor_pipeline.sandbox.page import render_page
from monitor_pipeline.sandbox.store import MAX_BATCH, MAX_TAKE, SandboxStore, StoreError

Handler = Callable[[Request, SandboxStore, str], Awaitable[Response]]


def _authorized(request: Request, users: Mapping[str, str]) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    expected = users.get(user)
    return bool(sep) and expected is not None and hmac.compare_digest(expected.encode(), password.encode())


async def _json(request: Request) -> object:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise StoreError(400, "body is not valid JSON") from None


def _int(request: Request, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise StoreError(400, f"{name} must be a whole number") from None
    if value < low or (high is not None and value > high):
        raise StoreError(400, f"{name} must be between {low} and {high}" if high is not None else f"{name} must be ≥ {low}")
    return value


def _call(store: SandboxStore, method: str, *args):
    return run_in_threadpool(getattr(store, method), *args)


# --- the contract --------------------------------------------------------------------------
async def list_customers(request, store, admin):
    skip, take = _int(request, "skip", 0, 0), _int(request, "take", MAX_TAKE, 0, MAX_TAKE)
    return JSONResponse(await _call(store, "list_customers", admin, skip, take))


async def upsert_customers(request, store, admin):
    body = await _json(request)
    customers = body.get("customers") if isinstance(body, dict) else None
    if not isinstance(customers, list):
        raise StoreError(400, "body must be an object with a 'customers' list")
    if len(customers) > MAX_BATCH:
        raise StoreError(413, f"at most {MAX_BATCH} customers per batch, got {len(customers)}")
    return JSONResponse({"results": await _call(store, "upsert", admin, customers)})


async def deactivate_customers(request, store, admin):
    body = await _json(request)
    codes = body.get("codes") if isinstance(body, dict) else None
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise StoreError(400, "body must be an object with a 'codes' list of strings")
    return JSONResponse({"deactivated": await _call(store, "deactivate", admin, codes)})


async def put_dashboard(request, store, admin):
    await _call(store, "put_dashboard", admin, request.path_params["code"], await request.body())
    return Response(status_code=204)


async def run_script(request, store, admin):
    name = request.path_params["name"]
    if not await _call(store, "run_script", admin, name):
        raise StoreError(404, f"administration {admin} has no script {name}")
    return JSONResponse({"status": "ok"})


async def price_lists(request, store, admin):
    return JSONResponse({"items": await _call(store, "price_lists", admin)})


async def new_customers(request, store, admin):
    after, take = _int(request, "after", 0, 0), _int(request, "take", 100, 0, MAX_TAKE)
    return JSONResponse({"items": await _call(store, "new_customers", admin, after, take)})


async def customer_code(request, store, admin):
    return JSONResponse({"CustomerCode": await _call(store, "customer_code", admin, request.path_params["guid"])})


async def post_result(request, store, admin):
    body = await _json(request)
    if not isinstance(body, dict) or set(body) not in ({"Result"}, {"Error"}) or not isinstance(
            body.get("Result", body.get("Error")), str):
        raise StoreError(400, "body must be {\"Result\": \"…\"} or {\"Error\": \"…\"}")
    await _call(store, "post_result", admin, request.path_params["guid"], body.get("Result"), body.get("Error"))
    return Response(status_code=204)


# --- sandbox extras ------------------------------------------------------------------------
async def sandbox_new_customer(request, store, admin):
    body = await _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("CustomerName"), str) or not body["CustomerName"].strip():
        raise StoreError(400, "CustomerName is mandatory")
    xml, fail = body.get("Xml"), body.get("FailCodeGeneration", False)
    if (xml is not None and not isinstance(xml, str)) or not isinstance(fail, bool):
        raise StoreError(400, "Xml must be a string, FailCodeGeneration a boolean")
    return JSONResponse(await _call(store, "create_new_customer", admin, body["CustomerName"], xml, fail))


async def sandbox_result(request, store, admin):
    return JSONResponse(await _call(store, "get_result", admin, request.path_params["guid"]))


async def sandbox_script(request, store, admin):
    method = "delete_script" if request.method == "DELETE" else "register_script"
    await _call(store, method, admin, request.path_params["name"])
    return Response(status_code=204)


async def sandbox_price_lists(request, store, admin):
    body = await _json(request)
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise StoreError(400, "body must be an object with an 'items' list of objects")
    await _call(store, "set_price_lists", admin, items)
    return Response(status_code=204)


async def sandbox_customer(request, store, admin):
    return JSONResponse(await _call(store, "get_customer", admin, request.path_params["code"]))


async def sandbox_events(request, store, admin):
    return JSONResponse({"items": await _call(store, "events", admin, _int(request, "after", 0, 0))})


async def page(request, store, admin):
    customers = await _call(store, "all_customers", admin)
    feed = await _call(store, "all_new_customers", admin)
    return HTMLResponse(render_page(admin, customers, feed))


def create_app(db_path: str | Path, users: Mapping[str, str] | None = None, *, latency_ms: float = 0.0,
               max_in_flight: int | None = None, retry_after: float = 1.0) -> Starlette:
    """The sandbox app over the SQLite file ``db_path``; ``users`` maps user name → password; ``latency_ms``,
    ``max_in_flight`` and ``retry_after`` play a remote App4Sales (:mod:`.limits`)."""
    users = dict(users or {"demo": "demo"})
    store = SandboxStore(db_path)
    faults = FaultRegistry()
    limits = CallLimits(latency_ms, max_in_flight, retry_after)

    def wrap(handler: Handler):
        async def endpoint(request: Request) -> Response:
            if not _authorized(request, users):
                return JSONResponse({"error": "authentication required (HTTP Basic)"}, 401,
                                    headers={"WWW-Authenticate": 'Basic realm="App4Sales sandbox"'})
            try:
                return await handler(request, store, request.path_params["admin"])
            except StoreError as exc:
                return JSONResponse({"error": exc.message, **exc.extra}, exc.status)
        return endpoint

    async def add_fault(request, store, admin):
        try:
            fault = Fault.from_json(await _json(request))
        except (TypeError, ValueError) as exc:
            raise StoreError(400, str(exc)) from None
        faults.add(admin, fault)
        return Response(status_code=204)

    async def clear_faults(request, store, admin):
        faults.clear(admin)
        return Response(status_code=204)

    async def stats(request, store, admin):
        if request.method == "DELETE":
            limits.reset()
            return Response(status_code=204)
        return JSONResponse(limits.snapshot())

    api = [
        Route("/customers", wrap(list_customers), methods=["GET"]),
        Route("/customers/batch", wrap(upsert_customers), methods=["POST"]),
        Route("/customers/deactivate", wrap(deactivate_customers), methods=["POST"]),
        Route("/customers/{guid}/code", wrap(customer_code), methods=["GET"]),
        Route("/customers/{code:path}/dashboard", wrap(put_dashboard), methods=["PUT"]),
        Route("/scripts/{name}/run", wrap(run_script), methods=["POST"]),
        Route("/pricelists", wrap(price_lists), methods=["GET"]),
        Route("/newcustomers", wrap(new_customers), methods=["GET"]),
        Route("/newcustomers/{guid}/result", wrap(post_result), methods=["POST"]),
        Route("/sandbox/newcustomers", wrap(sandbox_new_customer), methods=["POST"]),
        Route("/sandbox/newcustomers/{guid}/result", wrap(sandbox_result), methods=["GET"]),
        Route("/sandbox/scripts/{name}", wrap(sandbox_script), methods=["PUT", "DELETE"]),
        Route("/sandbox/pricelists", wrap(sandbox_price_lists), methods=["PUT"]),
        Route("/sandbox/customers/{code:path}", wrap(sandbox_customer), methods=["GET"]),
        Route("/sandbox/events", wrap(sandbox_events), methods=["GET"]),
        Route("/sandbox/faults", wrap(add_fault), methods=["POST"]),
        Route("/sandbox/faults", wrap(clear_faults), methods=["DELETE"]),
        Route("/sandbox/stats", wrap(stats), methods=["GET", "DELETE"]),
    ]

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    async def index(request: Request) -> Response:
        return PlainTextResponse("App4Sales sandbox. API: /<administration>/api/app4sales/ — page: /<administration>/\n")

    app = Starlette(
        routes=[Route("/", index), Mount("/{admin}/api/app4sales", routes=api), Route("/{admin}/", wrap(page))],
        middleware=[Middleware(LimitsMiddleware, limits=limits), Middleware(FaultMiddleware, registry=faults)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.store, app.state.faults, app.state.limits = store, faults, limits
    return app
