"""The App4Sales HTTP API (``app4sales-api.md``) as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import dagster as dg

from monitor_pipeline.app4sales.client import App4SalesClient
from monitor_pipeline.app4sales.errors import App4SalesTransientError
from monitor_pipeline.app4sales.settings import App4SalesSettings
from monitor_pipeline.lib import host_slots
from monitor_pipeline.lib.settings import variable_of


class App4SalesApi(dg.ConfigurableResource, App4SalesSettings):
    """One App4Sales administration. The fields are :class:`App4SalesSettings`' (declared there once, with
    their variables); ``session()`` opens a client that holds connection slots of the host, ``client()`` one
    that holds none (a sensor's look). The password comes in through ``EnvVar``."""

    def one_attempt(self, seconds: float | None = None) -> App4SalesApi:
        """This administration with one try of each call: for a caller that retries itself (a sensor's look,
        whose next tick is the retry), so that retries never nest. ``seconds``: every timeout no longer
        than that."""
        values = {**self.values(App4SalesSettings), "retry_attempts": 1}
        if seconds is not None:
            values.update({name: min(float(getattr(self, name)), seconds)
                           for name in ("connect_timeout", "read_timeout", "answer_timeout")})
        return App4SalesApi(**values)

    @contextmanager
    def session(self, max_in_flight: int = 1, *, minimum: int = 1, slot_wait: float | None = None,
                logger: Any = None) -> Iterator[App4SalesClient]:
        """An open client holding up to ``max_in_flight`` (at least ``minimum``) of the host's connection
        slots (``MONITOR_APP4SALES_HOST_CONNECTIONS``, :mod:`monitor_pipeline.lib.host_slots`); its calls in
        flight are capped at the number granted (``client.max_in_flight``). ``slot_wait``: seconds to wait
        for the slots (default 300 s in a run's step, one look outside one). No slot in time: a transient
        ``App4SalesError`` naming who holds them, before any call was made."""
        step = host_slots.step_context()
        timeout = slot_wait if slot_wait is not None else (host_slots.WAIT_SECONDS if step is not None else 0.0)
        with ExitStack() as stack:
            try:
                granted = stack.enter_context(host_slots.host_slots().acquire(
                    "app4sales", self.slot_host, max_in_flight, limit=self.host_connections, minimum=minimum,
                    timeout=timeout, owner=host_slots.owner_of(step),
                    setting=variable_of(App4SalesSettings, "host_connections"),
                    on_wait=step.log.info if step is not None else None))
            except host_slots.HostSlotsError as exc:
                raise App4SalesTransientError("connection slots", None, str(exc)) from None
            with self.client(max_in_flight=granted, logger=logger) as client:
                yield client
