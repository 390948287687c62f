"""Two "pods" that share no disk: the production setup of ``deploy/`` (README "Running in production").

Each pod is a ``dagster job execute`` with its own DAGSTER_HOME (``deploy/dagster.yaml``), working folder
and temp folder. All they share is one PostgreSQL server (the Dagster instance, and the sync state through
``MONITOR_STATE_URL``) and one S3 bucket (``MONITOR_STORAGE_URL``). Pod A syncs over FTP and is deleted;
pod B's re-sync of the unchanged file finds A's frames and state and sends nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from benchmarks.generate import generate
from monitor_pipeline_tests.e2e.dagster_processes import BIN, REPO
from monitor_pipeline_tests.servers.ftp import start_ftp_server

pytestmark = pytest.mark.e2e
CUSTOMERS = 150


@pytest.fixture
def ftp(tmp_path):
    server = start_ftp_server(tmp_path / "monitor-ftp", base="")
    (server.root / "monitor").mkdir()
    generate(server.root / "monitor" / "customers.xml", CUSTOMERS, nested=True, seed=12)
    yield server
    server.stop()


@pytest.fixture
def production(postgres_server, s3_bucket, s3_env, ftp, sandbox):
    """The environment every pod gets: instance and state in PostgreSQL, frames in S3, Monitor over FTP."""
    instance_db = postgres_server.create_database()
    state_db = postgres_server.create_database()
    env = {
        "DAGSTER_PG_HOST": postgres_server.host, "DAGSTER_PG_PORT": str(postgres_server.port),
        "DAGSTER_PG_USER": postgres_server.username, "DAGSTER_PG_PASSWORD": postgres_server.password,
        "DAGSTER_PG_DB": instance_db,
        "MONITOR_STATE_URL": postgres_server.url(state_db),
        "MONITOR_STORAGE_URL": s3_bucket.url("monitor/prod"),
        "MONITOR_FTP_URL": f"ftp://{ftp.host}:{ftp.port}/monitor",
        "MONITOR_FTP_USERNAME": ftp.username, "MONITOR_FTP_PASSWORD": ftp.password,
        "MONITOR_STABILITY_SECONDS": "0",
        "APP4SALES_URL": sandbox.base_url(), "APP4SALES_USERNAME": sandbox.username,
        "APP4SALES_PASSWORD": sandbox.password,
        **s3_env,
    }
    yield env
    postgres_server.drop_database(instance_db)
    postgres_server.drop_database(state_db)


def _pod(root: Path, env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A pod's own DAGSTER_HOME, working and temp folders; its environment (no MONITOR_*_DIR: nothing local)."""
    home, work, tmp = root / "dagster_home", root / "work", root / "tmp"
    for folder in (home, work, tmp):
        folder.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("MONITOR_", "APP4SALES_", "DAGSTER_", "AWS_"))}
    return work, {**base, **env, "DAGSTER_HOME": str(home), "TMPDIR": str(tmp), "HOME": str(root)}


def _sync(work: Path, env: dict[str, str]) -> str:
    result = subprocess.run([str(BIN / "dagster"), "job", "execute", "-m", "monitor_pipeline.definitions",
                             "-j", "customer_sync_job"], cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file())


def test_pod_b_resyncs_from_what_pod_a_left_in_postgresql_and_s3_only(tmp_path, production, sandbox, s3_bucket):
    pod_a, pod_b = tmp_path / "pod-a", tmp_path / "pod-b"

    work, env = _pod(pod_a, production)
    _sync(work, env)
    assert len(sandbox.client().list_customers()) == CUSTOMERS
    sent_a = len(sandbox.admin_api().events("batch"))
    assert sent_a >= 2
    assert _files(pod_a, "*.sqlite") == [] and _files(pod_a, "*.parquet") == []
    stored = s3_bucket.keys("monitor/prod/")
    assert "monitor/prod/customers_xml.xml" in stored and "monitor/prod/customers.parquet" in stored
    shutil.rmtree(pod_a)

    work, env = _pod(pod_b, production)
    _sync(work, env)
    assert len(sandbox.admin_api().events("batch")) == sent_a  # nothing sent by pod B
    assert _files(pod_b, "*.sqlite") == [] and _files(pod_b, "*.parquet") == []

    # both runs are in the one instance database, and pod B's upsert says why it sent nothing
    settings = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert "postgres" in settings["storage"]
    os.environ.update({k: v for k, v in production.items() if k.startswith("DAGSTER_PG_")})
    home = tmp_path / "reader"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name="customer_sync_job"))
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
        upserts = instance.fetch_materializations(dg.AssetKey("customer_upsert_batches"), limit=2).records
        newest, oldest = (r.asset_materialization.metadata for r in upserts)
        assert (oldest["created"].value, newest["sent"].value, newest["unchanged"].value) == (CUSTOMERS, 0, CUSTOMERS)
        frames = instance.fetch_materializations(dg.AssetKey("customers"), limit=1).records[0]
        assert frames.asset_materialization.metadata["reparsed"].value is False  # pod A's frames, from S3
