"""Dagster resources: Monitor's file server, the App4Sales API, connector settings and asset storage.

``build_resources()`` reads the SPEC §2 variables; secrets stay ``EnvVar`` references, so their
values never reach the UI or run metadata. Unset variables fall back to the embedded default
(a local folder for Monitor, the App4Sales sandbox on loopback).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from monitor_pipeline.lib import defaults
from monitor_pipeline.lib.env import env_at_least, env_bool, env_float, env_str
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.resources.storage import MonitorStorage
from monitor_pipeline.tenants import tenants_file
from monitor_pipeline.transport import TransportConfig
from monitor_pipeline.transport.config import DEFAULT_MIN_RATE, DEFAULT_RATE_WINDOW

__all__ = ["App4SalesApi", "ConnectorSettings", "MonitorFileTransport", "MonitorStorage", "build_resources",
           "storage_dir", "state_dir"]


def _secret(name: str, default: str = "") -> dg.EnvVar | str:
    """An ``EnvVar`` when the variable is set (resolved at run time, never shown), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def _dagster_home_subdir(*parts: str) -> Path:
    home = os.environ.get("DAGSTER_HOME")
    base = Path(home) if home else defaults.local_home() / "dagster_home"
    return base.joinpath(*parts)


def storage_dir() -> str:
    return env_str("MONITOR_STORAGE_DIR") or str(_dagster_home_subdir("storage", "monitor_pipeline"))


def state_dir() -> str:
    return env_str("MONITOR_STATE_DIR") or str(_dagster_home_subdir("monitor_pipeline", "sync_state"))


def monitor_ftp_from_env() -> MonitorFileTransport:
    url = env_str("MONITOR_FTP_URL") or defaults.default_ftp_url()
    # Fail at start, naming the variable, for a bad URL or flag (SPEC §2).
    TransportConfig(url=url, active=env_bool("MONITOR_FTP_ACTIVE", False), tls=env_bool("MONITOR_FTP_TLS", False)).validate()
    return MonitorFileTransport(
        url=url,
        username=_secret("MONITOR_FTP_USERNAME"),
        password=_secret("MONITOR_FTP_PASSWORD"),
        active=env_bool("MONITOR_FTP_ACTIVE", False),
        tls=env_bool("MONITOR_FTP_TLS", False),
        ca_file=env_str("MONITOR_FTP_CA_FILE"),
        tls_insecure_skip_verify=env_bool("MONITOR_FTP_TLS_INSECURE_SKIP_VERIFY", False),
        known_hosts=env_str("MONITOR_SFTP_KNOWN_HOSTS"),
        host_key=env_str("MONITOR_SFTP_HOST_KEY"),
        private_key=env_str("MONITOR_SFTP_PRIVATE_KEY"),
        sftp_insecure_accept_unknown_host_key=env_bool("MONITOR_SFTP_INSECURE_ACCEPT_UNKNOWN_HOST_KEY", False),
        connect_timeout=env_float("MONITOR_FTP_CONNECT_TIMEOUT", 15.0, low=0.1),
        read_timeout=env_float("MONITOR_FTP_READ_TIMEOUT", 60.0, low=0.1),
        min_rate=env_at_least("MONITOR_FTP_MIN_RATE", DEFAULT_MIN_RATE, 0, unit=" B/s (0: no minimum)"),
        rate_window=env_at_least("MONITOR_FTP_RATE_WINDOW", DEFAULT_RATE_WINDOW, 0.1, unit=" s"),
        tenants_file=tenants_file(),
    )


def app4sales_from_env() -> App4SalesApi:
    url = env_str("APP4SALES_URL")
    if url is None:
        return App4SalesApi(url=defaults.default_app4sales_url(), username=defaults.SANDBOX_USERNAME,
                            password=defaults.SANDBOX_PASSWORD, tenants_file=tenants_file())
    return App4SalesApi(url=url, username=_secret("APP4SALES_USERNAME"), password=_secret("APP4SALES_PASSWORD"),
                        connect_timeout=env_float("APP4SALES_CONNECT_TIMEOUT", 5.0, low=0.1),
                        read_timeout=env_float("APP4SALES_READ_TIMEOUT", 60.0, low=0.1),
                        answer_timeout=env_float("APP4SALES_ANSWER_TIMEOUT", 120.0, low=0.1),
                        tenants_file=tenants_file())


def build_resources() -> dict[str, object]:
    return {
        "monitor_ftp": monitor_ftp_from_env(),
        "app4sales": app4sales_from_env(),
        "connector_settings": ConnectorSettings.from_env(state_dir=state_dir()),
        "monitor_storage": MonitorStorage(base_dir=storage_dir()),
    }
