"""The App4Sales HTTP API (``app4sales-api.md``) as a Dagster resource."""

from __future__ import annotations

import dagster as dg

from monitor_pipeline.app4sales.settings import App4SalesSettings


class App4SalesApi(dg.ConfigurableResource, App4SalesSettings):
    """One App4Sales administration. The fields are :class:`App4SalesSettings`' (declared there once, with
    their variables); ``client()`` opens a client. The password comes in through ``EnvVar``."""
