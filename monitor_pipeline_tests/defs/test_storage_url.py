"""MONITOR_STORAGE_URL: a folder or an fsspec URL (s3://, gs://, az://, file://), checked when the definitions
load; every refusal one line starting with the variable, never showing a credential."""

from __future__ import annotations

import sys

import pytest

from monitor_pipeline.definitions import build_defs
from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.errors import ConfigError


def _load_error(monkeypatch, **env: str) -> str:
    for name in ("MONITOR_STORAGE_DIR", "MONITOR_STORAGE_URL", "MONITOR_TENANTS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        build_defs()
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("url, says", [
    ("gopher://x", "gopher:// is not supported"),
    ("http://bucket.example/prefix", "http:// is not supported"),
    ("s3://", "names no bucket"),
    ("s3:///prefix", "names no bucket"),
    ("s3://bucket/a/../b", "segment"),
    ("s3://bucket/prefix?versionId=1", "no ?query"),
    ("file://fileserver/share", "not on host fileserver"),
])
def test_a_bad_url_fails_the_definitions_load_naming_the_variable(monkeypatch, url, says):
    message = _load_error(monkeypatch, MONITOR_STORAGE_URL=url)
    assert message.startswith("MONITOR_STORAGE_URL") and says in message, message


def test_a_url_with_credentials_is_refused_without_showing_them(monkeypatch):
    message = _load_error(monkeypatch, MONITOR_STORAGE_URL="s3://AKIAEXAMPLE:pa55word@bucket/prefix")
    assert message.startswith("MONITOR_STORAGE_URL") and "AWS_ACCESS_KEY_ID" in message
    assert "pa55word" not in message and "AKIAEXAMPLE" not in message


def test_a_scheme_whose_fsspec_package_is_missing_names_the_package(monkeypatch):
    monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, "gs", raising=False)  # as if never imported
    monkeypatch.setitem(sys.modules, "gcsfs", None)                  # and not installed
    message = _load_error(monkeypatch, MONITOR_STORAGE_URL="gs://bucket/prefix")
    assert message.startswith("MONITOR_STORAGE_URL=gs://bucket/prefix") and "gcsfs" in message, message


def test_both_variables_set_is_refused_naming_both(monkeypatch, tmp_path):
    message = _load_error(monkeypatch, MONITOR_STORAGE_URL="s3://bucket/prefix", MONITOR_STORAGE_DIR=str(tmp_path))
    assert "MONITOR_STORAGE_URL" in message and "MONITOR_STORAGE_DIR" in message and "both" in message


@pytest.mark.parametrize("url, location", [
    ("s3://bucket/monitor/prod/", "s3://bucket/monitor/prod"),
    ("S3://bucket", "s3://bucket"),
    ("file:///srv/monitor%20storage", "/srv/monitor storage"),
    ("/srv/monitor", "/srv/monitor"),
])
def test_the_storage_location(monkeypatch, url, location):
    monkeypatch.delenv("MONITOR_STORAGE_DIR", raising=False)
    monkeypatch.setenv("MONITOR_STORAGE_URL", url)
    assert DeploymentSettings.from_env().storage_location() == location
