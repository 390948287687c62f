"""What the sensors' tenant tests share: a tenants file over given servers, a clock the test moves, and a
sensor tick that also returns what the tick logged and how long it took."""

from __future__ import annotations

import logging
import textwrap
import time
from contextlib import nullcontext
from pathlib import Path

import dagster as dg


def tenants_file(path: Path, tenants: dict[str, dict[str, str]]) -> Path:
    """A tenants file: ``{name: {"monitor": url, "app4sales": url}}``; every tenant logs in with the
    passwords in ``<NAME>_FTP_PASSWORD`` and ``<NAME>_APP4SALES_PASSWORD``."""
    entries = []
    for name, urls in tenants.items():
        entries.append(textwrap.dedent(f"""\
          - name: {name}
            monitor:
              url: {urls.get("monitor", "ftp://127.0.0.1:9/")}
              username: monitor
              password_env: {name.upper()}_FTP_PASSWORD
            app4sales:
              url: {urls.get("app4sales", f"http://127.0.0.1:9/{name}/api/app4sales/")}
              username: {urls.get("app4sales_username", "sandbox-user")}
              password_env: {name.upper()}_APP4SALES_PASSWORD
        """))
    path.write_text("tenants:\n" + "".join(textwrap.indent(e, "  ") for e in entries), encoding="utf-8")
    return path


class Clock:
    """Wall-clock seconds that move only when the test says so (the sensors' backoff clock)."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Tick:
    """One evaluated tick: ``result`` (a SensorResult or SkipReason), ``seconds`` it took, and
    ``logged``: (level, message) of what it wrote to its log."""

    def __init__(self, result, seconds: float, logged: list[tuple[str, str]]):
        self.result, self.seconds, self.logged = result, seconds, logged

    @property
    def requests(self) -> list[dg.RunRequest]:
        return list(getattr(self.result, "run_requests", None) or [])

    @property
    def skip(self) -> str:
        if isinstance(self.result, dg.SkipReason):
            return self.result.skip_message or ""
        return self.result.skip_reason.skip_message if self.result.skip_reason else ""

    @property
    def cursor(self) -> str | None:
        return getattr(self.result, "cursor", None)

    def log_text(self, level: str | None = None) -> str:
        return "\n".join(m for lvl, m in self.logged if level is None or lvl == level)


class _ListHandler(logging.Handler):
    def __init__(self, into: list[tuple[str, str]]):
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append((record.levelname.lower(), record.getMessage()))


def tick(sensor: dg.SensorDefinition, resources: dict, cursor: str | None,
         instance: dg.DagsterInstance | None = None) -> Tick:
    logged: list[tuple[str, str]] = []
    with (nullcontext(instance) if instance is not None else dg.DagsterInstance.ephemeral()) as instance, \
            dg.build_sensor_context(cursor=cursor, resources=resources, instance=instance) as context:
        context.log.addHandler(_ListHandler(logged))
        context.resources  # noqa: B018 - built now (an ephemeral instance, on a first tick): not the tick's time
        started = time.monotonic()
        result = sensor(context)  # the sensor's own result (evaluate_tick would need the repository)
        return Tick(result, time.monotonic() - started, logged)
