"""``monitor-pipeline doctor``: check a tenant's whole path without running the pipeline.

What a newcomer (or whoever is called at night) runs first: does the deployment's configuration load,
can we reach Monitor's file server and read customers.xml, does App4Sales let us in? Each check is one
:class:`Check` (``ok``, ``FAIL``, ``skip`` or ``note``), printed as one line::

    ok    settings: loaded; one tenant from the variables
    ok    monitor: connected to sftp://sync@ftp.example:22/monitor
    FAIL  app4sales: authentication: App4Sales GET customers failed (HTTP 401): … (check APP4SALES_USERNAME / …)

Nothing is ever sent to App4Sales: its checks are GETs (the customer index). The scripts
``BeforeUpdateCustomers`` / ``UpdateCustomers`` are reported "not checked": the contract's only script
call, ``POST scripts/NAME/run``, runs the script. Nothing is written to Monitor's server either: the file
is listed, stat'ed, downloaded to a temp folder, parsed by the sync's own :func:`normalize_customers`
and thrown away. Every wait is bounded: the file server gets one attempt
(:meth:`MonitorFileTransport.one_attempt`) and App4Sales one try of each call
(:meth:`App4SalesApi.one_attempt`), each with timeouts of at most ``seconds``.

The pieces, for the CLI (``monitor_pipeline/cli.py``) and the tests:

- :func:`load` — the settings (``DeploymentSettings``, every settings model, the tenants file) and the
  resources of the tenants to check, exactly as the sensors get them (:class:`MonitorTenancy`);
- :func:`prepare_embedded_folder` — the embedded default only: put the bundled sample customers.xml in
  the local folder when it has none (as ``monitor-pipeline demo`` does), so a fresh checkout passes;
- :func:`check_tenant` — the Monitor and App4Sales checks of one tenant;
- :func:`run` — all of it in order (the embedded sandbox, when App4Sales is the embedded default, is
  started by the caller around the tenant checks: ``sandbox``).

A failure is one line that names the problem; messages are redacted (``lib/redact.py``): no password
appears, whatever a server or a library put in its error.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pandas as pd

from monitor_pipeline.app4sales.errors import App4SalesAuthError, App4SalesError
from monitor_pipeline.app4sales.settings import App4SalesSettings
from monitor_pipeline.app4sales.sync import AFTER_SCRIPT, BEFORE_SCRIPT
from monitor_pipeline.customers import CustomersXmlError, ExtraDataError, NormalizeSettings, normalize_customers
from monitor_pipeline.customers.settings import NormalizeOptions
from monitor_pipeline.deployment import DeploymentSettings, all_settings
from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib import defaults
from monitor_pipeline.lib.redact import redact
from monitor_pipeline.lib.settings import variable_of
from monitor_pipeline.transport.config import TransportConfig
from monitor_pipeline.transport.errors import (HostKeyError, RemoteNotFoundError, TLSVerificationError,
                                               TransientTransportError, TransportAuthError, TransportError)
from monitor_pipeline.transport.fetch import server_location

if TYPE_CHECKING:
    from monitor_pipeline.resources.tenancy import TenantResources

OK, FAIL, SKIP, NOTE = "ok", "FAIL", "skip", "note"
SECONDS = 10.0  # the longest any one connect, read or App4Sales call of the doctor may wait
SCRIPTS = (BEFORE_SCRIPT, AFTER_SCRIPT)
_SHOWN = 3  # rejected rows named in the parse line


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``status`` is ``ok``, ``FAIL``, ``skip`` (not checked, says why) or ``note``
    (something the doctor did, e.g. start the sandbox); ``area`` is ``settings``, ``monitor`` or
    ``app4sales``; ``tenant`` the tenant's name (None: the one tenant of the variables)."""

    status: str
    area: str
    text: str
    tenant: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def line(self) -> str:
        """``ok    [north] monitor: connected to …``: the status in a column of six."""
        who = f"[{self.tenant}] " if self.tenant else ""
        return f"{self.status:<6}{who}{self.area}: {self.text}"


@dataclass
class Plan:
    """What :func:`load` found: its checks (the settings), the tenants to check, and whether the embedded
    default is in use (``embedded_folder``: Monitor is the local folder; ``embedded_sandbox``: App4Sales is
    the sandbox on loopback, which the caller starts for the check)."""

    checks: list[Check] = field(default_factory=list)
    tenants: list[TenantResources] = field(default_factory=list)
    embedded_folder: bool = False
    embedded_sandbox: bool = False
    secrets: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return any(check.failed for check in self.checks)


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _secrets_of(resources: TenantResources) -> tuple[str, ...]:
    """The tenant's passwords, except the embedded sandbox's published demo login (redacting "demo" would
    hide the administration's name in every line)."""
    app4sales = resources.app4sales.password
    if resources.app4sales.url == defaults.default_app4sales_url() and app4sales == defaults.SANDBOX_PASSWORD:
        app4sales = None
    return tuple(s for s in (resources.monitor_ftp.password, app4sales) if s)


def _set(variable: str) -> bool:
    return bool((os.environ.get(variable) or "").strip())


def _url_password(url: str | None) -> str | None:
    try:
        return urlsplit(url).password if url else None
    except ValueError:
        return None


def environment_secrets() -> tuple[str, ...]:
    """The secrets the variables hold (the Monitor and App4Sales passwords, the state URL's password): what
    a message must never show, whichever check it comes from."""
    state_url = os.environ.get(variable_of(DeploymentSettings, "state_url"))
    found = (os.environ.get(variable_of(TransportConfig, "password")),
             os.environ.get(variable_of(App4SalesSettings, "password")), _url_password(state_url))
    return tuple(s for s in found if s)


def load(tenant: str | None = None) -> Plan:
    """The settings from the environment and the resources of the tenants to check: ``tenant`` alone when
    given, else every tenant of ``MONITOR_TENANTS_FILE``, else the one tenant of the variables. A setting
    that does not load is a ``FAIL`` naming the variable (the models' own messages); the plan then has no
    tenants."""
    from monitor_pipeline.resources import App4SalesApi, ConnectorSettings, MonitorFileTransport, MonitorTenancy
    from monitor_pipeline.tenants import TENANTS_FILE_VARIABLE, load_tenants

    plan = Plan()

    def settings_fail(text: str, who: str | None = None) -> None:
        plan.checks.append(Check(FAIL, "settings", text, who))

    try:
        deployment = DeploymentSettings.from_env()
    except ConfigError as exc:
        settings_fail(str(exc))
        return plan
    for model in all_settings():
        if model is DeploymentSettings:
            continue
        try:
            model.from_env()
        except ConfigError as exc:
            settings_fail(str(exc))
    if plan.failed:
        return plan
    secrets = list(environment_secrets())
    try:
        tenants = load_tenants(deployment.tenants_file) if deployment.tenants_file else None
        monitor_ftp = MonitorFileTransport.from_env()
        app4sales = App4SalesApi.from_env()
        connector = ConnectorSettings.from_env(state_dir=deployment.state_folder(), state_url=deployment.state_url)
    except ConfigError as exc:
        settings_fail(str(exc))
        return plan
    if tenant is not None and tenants is None:
        settings_fail(f"--tenant {tenant}: there are no tenants ({TENANTS_FILE_VARIABLE} is not set); leave "
                      "--tenant out to check the one tenant of the variables")
        return plan
    if tenant is not None and tenant not in tenants:
        settings_fail(f"--tenant {tenant}: no such tenant in {deployment.tenants_file} "
                      f"(it has: {', '.join(tenants)})")
        return plan
    names: list[str | None] = [tenant] if tenant is not None else (list(tenants) if tenants else [None])
    tenancy = MonitorTenancy(monitor_ftp, app4sales, connector, deployment.tenants_file)
    for name in names:
        try:
            resources = tenancy.for_tenant(name)
        except ConfigError as exc:
            settings_fail(str(exc), name)
            continue
        plan.tenants.append(resources)
        secrets += _secrets_of(resources)
    plan.secrets = tuple(s for s in secrets if s)
    if tenants is None:
        plan.embedded_folder = not _set(variable_of(TransportConfig, "url"))
        plan.embedded_sandbox = not _set(variable_of(App4SalesSettings, "url"))
        what = "one tenant from the variables"
        embedded = [part for part, on in (("Monitor is the local folder", plan.embedded_folder),
                                          ("App4Sales is the sandbox on loopback", plan.embedded_sandbox)) if on]
        if embedded:
            what += " (embedded default: " + ", ".join(embedded) + ")"
    else:
        shown = ", ".join(r.name for r in plan.tenants) or "none"
        what = (f"tenant {tenant} of {deployment.tenants_file}" if tenant is not None else
                f"{len(tenants)} tenants in {deployment.tenants_file}; checking every one: {shown} "
                "(--tenant NAME checks one)")
    if plan.tenants:
        plan.checks.insert(0, Check(OK, "settings", f"loaded; {what}"))
    return plan


def prepare_embedded_folder() -> Check | None:
    """The embedded default's local folder with a customers.xml: when it has none (a fresh checkout), the
    bundled sample is put there, as ``monitor-pipeline demo`` does; an existing file is left as it is."""
    from monitor_pipeline.samples import write_demo_customers_xml

    folder = defaults.default_ftp_folder()
    target = folder / "customers.xml"
    if target.exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    write_demo_customers_xml(target)
    return Check(NOTE, "monitor", f"embedded default: {folder} had no customers.xml; put the bundled sample "
                                  "there (as `monitor-pipeline demo` does)")


def _when(mtime: datetime) -> str:
    age = (datetime.now(timezone.utc) - mtime).total_seconds()
    if age < 0:
        ago = "in the future by the server's clock"
    elif age < 120:
        ago = f"{age:.0f} s ago"
    elif age < 2 * 3600:
        ago = f"{age / 60:.0f} min ago"
    elif age < 2 * 86400:
        ago = f"{age / 3600:.0f} h ago"
    else:
        ago = f"{age / 86400:.0f} days ago"
    return f"{mtime.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC ({ago})"


def _host_key_text(exc: HostKeyError) -> str:
    """The transport's message, plus how to pin the presented key when the message does not say it."""
    text = str(exc)
    pin = f"MONITOR_SFTP_HOST_KEY={exc.fingerprint}"
    if exc.fingerprint and pin not in text:
        text += f" If the administrator confirms {exc.fingerprint} is the server's key, pin it: {pin}"
    return text


def _transport_failure(exc: TransportError, step: str) -> str:
    if isinstance(exc, HostKeyError):
        return f"host key: {_host_key_text(exc)}"
    if isinstance(exc, TLSVerificationError):
        return f"TLS certificate verification failed: {exc}"
    if isinstance(exc, TransportAuthError):
        return f"authentication: {exc}"
    if isinstance(exc, TransientTransportError) and step == "connect":
        return f"cannot connect: {exc}"
    return f"{step}: {exc}"


def _connected_checks(config: TransportConfig) -> Iterator[Check]:
    """What a successful connect proved, scheme by scheme."""
    from monitor_pipeline.transport.hostkeys import known_hosts_path, known_keys

    parsed = config.parsed
    if parsed.scheme == "file":
        yield Check(OK, "monitor", f"local folder {config.describe()} (no server, no login)")
        return
    yield Check(OK, "monitor", f"connected to {config.describe()}")
    if parsed.scheme == "sftp":
        if config.host_key:
            how = f"matches the pinned {variable_of(TransportConfig, 'host_key')}"
        elif known_keys(config, parsed.host, parsed.port):
            how = f"is in {known_hosts_path(config)}"
        else:
            how = (f"was NOT verified ({variable_of(TransportConfig, 'sftp_insecure_accept_unknown_host_key')} "
                   "is set)")
        yield Check(OK, "monitor", f"host key of {parsed.host}:{parsed.port} {how}")
    elif config.use_tls:
        verified = (f"NOT verified ({variable_of(TransportConfig, 'tls_insecure_skip_verify')} is set)"
                    if config.tls_insecure_skip_verify else "verified")
        yield Check(OK, "monitor", f"TLS certificate of {parsed.host}:{parsed.port} {verified}")
    user = config.effective_username or "anonymous"
    yield Check(OK, "monitor", f"logged in as {user!r}")


def _rejections(frame: pd.DataFrame) -> str:
    shown = []
    for row in frame.head(_SHOWN).itertuples(index=False):
        where = f"line {int(row.Line)}" if pd.notna(row.Line) else f"customer {row.Position}"
        code = f", {row.CustomerCode}" if row.CustomerCode else ""
        shown.append(f"{where}{code}: {row.Reason}")
    more = f", +{len(frame) - _SHOWN} more" if len(frame) > _SHOWN else ""
    return "; ".join(shown) + more


def check_monitor(resources: TenantResources, seconds: float = SECONDS) -> Iterator[Check]:
    """Connect (host key, TLS, login), list the customers folder, stat customers.xml, download it to a temp
    folder and parse it as the sync would (extraCustomerData.csv too, when one is configured). Stops at the
    first failure: the checks after it depend on it."""
    config = resources.monitor_ftp.transport_config()
    settings = resources.settings
    remote = settings.customers_xml_path()
    folder = settings.customers_folder.strip("/")
    location = server_location(config, remote)
    step = "connect"
    try:
        with resources.monitor_ftp.one_attempt(seconds).open(slot_wait=seconds) as transport:
            yield from _connected_checks(config)
            step = "list"
            names = transport.listdir(folder)
            shown = server_location(config, folder) if folder else config.describe()
            has = "customers.xml is there" if "customers.xml" in names else "no customers.xml among them"
            entries = f"{len(names):,} {'entry' if len(names) == 1 else 'entries'}"
            yield Check(OK, "monitor", f"folder {shown} lists {entries}; {has}")
            step = "stat"
            stat = transport.stat(remote)
            yield Check(OK, "monitor", f"customers.xml: {stat.size:,} bytes, modified {_when(stat.mtime)}")
            step = "download"
            with tempfile.TemporaryDirectory(prefix="monitor-doctor-") as tmp:
                local = Path(tmp) / "customers.xml"
                transport.download(remote, local)
                extra = None
                extra_remote = settings.extra_data_path()
                if extra_remote is not None:
                    try:
                        transport.download(extra_remote, Path(tmp) / "extraCustomerData.csv")
                        extra = (Path(tmp) / "extraCustomerData.csv").read_bytes()
                    except RemoteNotFoundError:
                        yield Check(NOTE, "monitor", f"no {server_location(config, extra_remote)}: the sync "
                                                     "runs without extra customer data")
                step = "parse"
                result = normalize_customers(local, NormalizeSettings(**settings.values(NormalizeOptions),
                                                                      extra_data=extra))
    except RemoteNotFoundError as exc:
        if step == "list":
            yield Check(FAIL, "monitor", f"folder not found: {exc}")
        else:
            setting = ("the tenant's customers_folder" if resources.name else
                       variable_of(type(settings), "customers_folder"))
            yield Check(FAIL, "monitor", f"no customers.xml at {location} (Monitor has not exported it yet, or "
                                         f"{setting} names another folder): {exc}")
        return
    except TransportError as exc:
        yield Check(FAIL, "monitor", _transport_failure(exc, step))
        return
    except CustomersXmlError as exc:
        line = f", line {exc.line}" if exc.line else ""
        yield Check(FAIL, "monitor", f"customers.xml rejected, a sync would send nothing: {location}{line}: "
                                     f"{exc.problem}")
        return
    except ExtraDataError as exc:
        where = server_location(config, settings.extra_data_path() or "")
        line = f", line {exc.line}" if exc.line else ""
        yield Check(FAIL, "monitor", f"extraCustomerData.csv rejected: {where}{line}: {exc.problem}")
        return
    rejected = len(result.rejected)
    text = (f"customers.xml parses (nothing sent): {_plural(len(result.customers), 'customer')}, {rejected} rejected"
            + (f" ({_rejections(result.rejected)})" if rejected else "")
            + f", {_plural(len(result.warnings), 'warning')}")
    yield Check(OK, "monitor", text)


def check_app4sales(resources: TenantResources, seconds: float = SECONDS) -> Iterator[Check]:
    """Log in and read the customer index (GETs only); the scripts are not checked (see the module)."""
    api = resources.app4sales.one_attempt(seconds)
    try:
        with api.client(max_in_flight=4) as client:
            index = client.list_customers()
    except App4SalesAuthError as exc:
        yield Check(FAIL, "app4sales", f"authentication: {exc} ({api.url})")
        return
    except App4SalesError as exc:
        yield Check(FAIL, "app4sales", f"{exc} ({api.url})")
        return
    enabled = sum(1 for row in index if row.get("CustomerEnabled", True))
    yield Check(OK, "app4sales", f"logged in to {api.url} as {api.username!r} (administration {api.administration})")
    yield Check(OK, "app4sales", f"customer index: {_plural(len(index), 'customer')} ({enabled:,} enabled)")
    yield Check(SKIP, "app4sales", f"scripts {', '.join(SCRIPTS)}: not checked — the API's only script call "
                                   "(POST scripts/NAME/run) runs the script; a sync logs and skips a script the "
                                   "administration does not have")


def check_tenant(resources: TenantResources, seconds: float = SECONDS,
                 secrets: tuple[str, ...] = ()) -> Iterator[Check]:
    """The Monitor and App4Sales checks of one tenant, tagged with its name and redacted; an unexpected
    error is one ``FAIL`` line too (its type and message), never a traceback."""
    secrets = (*secrets, *_secrets_of(resources))
    for area, checks in (("monitor", check_monitor), ("app4sales", check_app4sales)):
        try:
            for check in checks(resources, seconds):
                yield replace(check, text=redact(check.text, *secrets), tenant=resources.name)
        except Exception as exc:  # noqa: BLE001 - the doctor reports whatever broke as one line
            text = redact(f"unexpected {type(exc).__name__}: {exc}", *secrets)
            yield Check(FAIL, area, text, resources.name)


def run(tenant: str | None = None, *, seconds: float = SECONDS,
        sandbox: Callable[[], AbstractContextManager] | None = None) -> Iterator[Check]:
    """Every check in order: the settings, then each tenant's. ``sandbox``: a context manager factory that
    serves the embedded sandbox around the tenant checks when App4Sales is the embedded default (the CLI
    passes the demo's; without it the sandbox must already be running)."""
    plan = load(tenant)
    for check in plan.checks:  # the settings' messages name variables, never values; redacted all the same
        yield replace(check, text=redact(check.text, *environment_secrets(), *plan.secrets))
    if not plan.tenants:
        return
    if plan.embedded_folder:
        seeded = prepare_embedded_folder()
        if seeded is not None:
            yield seeded
    context = sandbox() if plan.embedded_sandbox and sandbox is not None else nullcontext()
    with context:
        for resources in plan.tenants:
            yield from check_tenant(resources, seconds, plan.secrets)
