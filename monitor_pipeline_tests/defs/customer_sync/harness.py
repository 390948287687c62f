"""Run ``customer_sync_job`` from the real definitions against a local Monitor folder and the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import dagster as dg
import pytest

from monitor_pipeline.definitions import build_defs


def customer_xml(code: str, name: str, *, email: str = "info@example.com", usesprice: str | None = None,
                 contact: str = "Anna Svensson", city: str = "Uppsala") -> str:
    parts = [f"<customercode>{escape(code)}</customercode>", f"<customername>{escape(name)}</customername>",
             "<languagecode>SV</languagecode>", f"<contactfullname>{escape(contact)}</contactfullname>",
             f"<contactemail>{escape(email)}</contactemail>",
             f"<deliveryaddress1>Lagervägen 4</deliveryaddress1><deliverycity>{escape(city)}</deliverycity>"]
    if usesprice is not None:
        parts.append(f"<usesprice>{escape(usesprice)}</usesprice>")
    return "<customer>" + "".join(parts) + "</customer>"


def write_customers(path: Path, customers: list[str]) -> Path:
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<customers>\n' + "\n".join(customers)
                    + "\n</customers>\n", encoding="utf-8")
    return path


@dataclass
class SyncRun:
    result: dg.ExecuteInProcessResult

    @property
    def success(self) -> bool:
        return self.result.success

    def metadata(self, asset: str = "customer_upsert_batches") -> dict:
        for event in self.result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            if materialization.asset_key == dg.AssetKey(asset):
                return {k: v.value for k, v in materialization.metadata.items()}
        return {}

    def failure_message(self) -> str:
        return "\n".join(e.step_failure_data.error.message for e in self.result.all_events if e.is_step_failure)


class SyncHarness:
    def __init__(self, folder: Path, sandbox, monkeypatch: pytest.MonkeyPatch):
        self.folder, self.sandbox, self.monkeypatch = folder, sandbox, monkeypatch
        self.customers_xml = folder / "customers.xml"
        self.instance = dg.DagsterInstance.ephemeral()

    def setenv(self, **values: str) -> None:
        for name, value in values.items():
            self.monkeypatch.setenv(name, value)

    def run(self, run_config: dict | None = None) -> SyncRun:
        job = build_defs().resolve_job_def("customer_sync_job")
        return SyncRun(job.execute_in_process(instance=self.instance, run_config=run_config, raise_on_error=False))


@pytest.fixture
def sync(tmp_path, sandbox, monkeypatch) -> Iterator[SyncHarness]:
    folder = tmp_path / "monitor"
    folder.mkdir()
    for name in ("MONITOR_TENANTS_FILE", "MONITOR_EXTRA_DATA_FOLDER", "MONITOR_DEACTIVATE_MISSING",
                 "MONITOR_ENABLE_PRICE_DEDUPLICATION"):
        monkeypatch.delenv(name, raising=False)
    harness = SyncHarness(folder, sandbox, monkeypatch)
    harness.setenv(MONITOR_FTP_URL=folder.as_uri(), MONITOR_STABILITY_SECONDS="0",
                   MONITOR_STORAGE_DIR=str(tmp_path / "storage"), MONITOR_STATE_DIR=str(tmp_path / "state"),
                   APP4SALES_READ_TIMEOUT="5", **sandbox.env())
    yield harness
    harness.instance.dispose()
