"""Helpers shared by the end-to-end benchmarks: the sandbox in its own process, the environment of the
embedded default's transport (a local folder) pointed at it, and what a run of ``customer_sync_job`` reports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "bench", "bench-pw"
AUTH = (USER, PASSWORD)
UPSERT_ASSET = "customer_upsert_batches"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class SandboxError(RuntimeError):
    pass


class SandboxArgsUnsupported(SandboxError):
    """The sandbox CLI rejected the extra arguments (an older sandbox)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_url(port: int, admin: str) -> str:
    """The API base URL of ``admin`` on the sandbox at ``port``."""
    return f"http://127.0.0.1:{port}/{admin}/api/app4sales/"


def start_sandbox(db: Path, port: int, extra_args: list[str] | tuple[str, ...] = (),
                  timeout: float = 30.0) -> subprocess.Popen:
    """``python -m monitor_pipeline.sandbox serve`` on ``port`` with ``extra_args``; returns once it answers.

    Raises :class:`SandboxArgsUnsupported` if the CLI rejects ``extra_args``, :class:`SandboxError` otherwise."""
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "monitor_pipeline.sandbox", "serve", "--host", "127.0.0.1",
                                "--port", str(port), "--db", str(db), "--user", f"{USER}:{PASSWORD}", *extra_args],
                               stdout=subprocess.DEVNULL, stderr=log, cwd=REPO)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            stderr = log.read().decode(errors="replace").strip()
            log.close()
            error = SandboxArgsUnsupported if "unrecognized arguments" in stderr else SandboxError
            raise error(f"the sandbox exited with {process.returncode}: {stderr[-500:]}")
        try:
            requests.get(base_url(port, "bench") + "customers?take=1", auth=AUTH, timeout=1)
            log.close()
            return process
        except requests.RequestException:
            time.sleep(0.2)
    stop_sandbox(process)
    log.close()
    raise SandboxError(f"the sandbox did not answer within {timeout:.0f} s")


def stop_sandbox(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def sync_env(folder: Path, work: Path, url: str) -> dict[str, str]:
    """The variables of a sync from the local ``folder`` into the App4Sales at ``url`` (state and frames under ``work``)."""
    return {
        "MONITOR_FTP_URL": folder.as_uri(), "MONITOR_STABILITY_SECONDS": "0",
        "MONITOR_STORAGE_DIR": str(work / "storage"), "MONITOR_STATE_DIR": str(work / "state"),
        "APP4SALES_URL": url, "APP4SALES_USERNAME": USER, "APP4SALES_PASSWORD": PASSWORD,
        "MONITOR_SYNC_SCHEDULE": "off",
    }


def apply_env(env: dict[str, str]) -> None:
    """Set ``env`` in this process (for ``execute_in_process``); no tenants file."""
    os.environ.update(env)
    os.environ.pop("MONITOR_TENANTS_FILE", None)


def metadata_values(metadata) -> dict:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def upsert_metadata(result, asset: str = UPSERT_ASSET) -> dict:
    """The metadata of ``asset``'s materialization in an ``execute_in_process`` result ({} if none)."""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return metadata_values(materialization.metadata)
    return {}


def step_seconds(result) -> dict[str, float]:
    """Step key → seconds of the successful steps of an ``execute_in_process`` result."""
    return {e.step_key: e.event_specific_data.duration_ms / 1000 for e in result.all_events if e.is_step_success}


def run_job(job, instance, label: str, run_config: dict | None = None) -> dict:
    """Execute ``job`` in process; wall seconds, the upsert's metadata and the step seconds."""
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, raise_on_error=True, run_config=run_config)
    seconds = time.perf_counter() - started
    meta = upsert_metadata(result)
    return {"run": label, "seconds": seconds, "sent": meta.get("sent"), "unchanged": meta.get("unchanged"),
            "requests": meta.get("requests"), "meta": meta, "steps": step_seconds(result)}


def fmt(value, spec: str = "") -> str:
    """``value`` formatted, or ``n/a`` when missing."""
    return "n/a" if value is None else format(value, spec)
