"""What only the PostgreSQL state has (issue #12): ``MONITOR_STATE_URL`` checked at load, the password
never shown, bounded waits on a database that is down or refuses the login, one statement per batch,
the lease judged by the database server's clock."""

from __future__ import annotations

import time
from urllib.parse import quote, quote_plus

import dagster as dg
import pytest
import sqlalchemy as sa

from monitor_pipeline.app4sales.state import StateLockedError
from monitor_pipeline.app4sales.state_postgres import (
    PostgresSyncState,
    StateStoreError,
    dispose_engines,
    engine_for,
    parse_state_url,
    scope_key,
)
from monitor_pipeline.app4sales.state_store import open_state
from monitor_pipeline.app4sales.sync import SyncSettings, SyncStateError, run_sync
from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.errors import ConfigError
from monitor_pipeline.resources import build_resources
from monitor_pipeline_tests.servers.net import SilentServer, free_port

from .fakes import FakeClient, make_frames

PASSWORD = "Pw-of/the@state"
QUOTED = quote(PASSWORD, safe="")  # as it stands in a URL


@pytest.fixture
def db_url(postgres_db_url):
    yield postgres_db_url
    dispose_engines()


def _quoted(password: str) -> list[str]:
    return [password, quote(password, safe=""), quote_plus(password)]


# --- MONITOR_STATE_URL ---------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    f"mysql://sync:{QUOTED}@db.example/state", f"sqlite:////tmp/{PASSWORD}.db",
    f"postgresql+asyncpg://sync:{PASSWORD}@db/state", f"{PASSWORD}://x", f"not a url {PASSWORD}",
    f"postgresql://sync:{QUOTED}@db.example:5432/", f"postgresql://sync:{PASSWORD}@db.example:5432/",
])
def test_a_url_that_is_not_postgresql_fails_at_load_naming_the_variable_and_never_the_password(url):
    with pytest.raises(ConfigError) as refused:
        DeploymentSettings.from_env({"MONITOR_STATE_URL": url})
    message = str(refused.value)
    assert message.startswith("MONITOR_STATE_URL")
    assert not any(p in message for p in _quoted(PASSWORD)), message


def test_a_bad_url_fails_the_definitions_load(monkeypatch):
    from monitor_pipeline.definitions import build_defs

    monkeypatch.delenv("MONITOR_TENANTS_FILE", raising=False)
    monkeypatch.setenv("MONITOR_STATE_URL", f"mysql://sync:{PASSWORD}@db/state")
    with pytest.raises(ConfigError, match="^MONITOR_STATE_URL") as refused:
        build_defs()
    assert PASSWORD not in str(refused.value)


@pytest.mark.parametrize("url", ["postgresql://sync:{pw}@db.example:5432/state",
                                 "postgresql+psycopg2://sync:{pw}@db.example/state", "postgresql:///state"])
def test_postgresql_urls_are_accepted_and_never_shown(url, monkeypatch):
    url = url.format(pw=QUOTED)
    settings = DeploymentSettings.from_env({"MONITOR_STATE_URL": f" {url} "})
    assert settings.state_url == url
    assert parse_state_url(url).drivername == "postgresql+psycopg2"  # psycopg2, never another driver
    assert not any(p in repr(settings) for p in _quoted(PASSWORD))
    assert DeploymentSettings.from_env({"MONITOR_STATE_URL": "  "}).state_url is None


def test_the_resources_carry_the_url_as_the_variable_not_its_value(monkeypatch, tmp_path):
    url = f"postgresql://sync:{QUOTED}@db.example/state"
    monkeypatch.setenv("MONITOR_STATE_URL", url)
    monkeypatch.setenv("MONITOR_STATE_DIR", str(tmp_path))
    settings = build_resources()["connector_settings"]
    assert isinstance(settings.state_url, dg.EnvVar) and settings.state_url.env_var_name == "MONITOR_STATE_URL"
    assert not any(p in repr(settings) for p in _quoted(PASSWORD))
    monkeypatch.delenv("MONITOR_STATE_URL")
    assert build_resources()["connector_settings"].state_url is None  # unset: the SQLite files, as before


# --- the password never shown, every wait bounded -----------------------------------------------

def _assert_refused_quickly(url: str, secret: str, within: float) -> str:
    started = time.monotonic()
    with pytest.raises(StateStoreError) as failed:
        open_state(url, "demo")
    took = time.monotonic() - started
    message = str(failed.value)
    assert took < within, f"took {took:.1f} s"
    assert "MONITOR_STATE_URL" in message and failed.value.transient
    assert not any(p in message for p in _quoted(secret)), message
    assert not any(p in repr(failed.value) for p in _quoted(secret))
    return message


def test_a_wrong_password_fails_quickly_and_never_shows_it(postgres_server, db_url):
    wrong = "Wr0ng/pass@word"
    url = postgres_server.url(sa.make_url(db_url).database, password=wrong)
    message = _assert_refused_quickly(url, wrong, within=15)
    assert "password authentication failed" in message
    assert f"{postgres_server.username}:***@" in message  # the URL is named, its password hidden


def test_a_wrong_pgpassword_is_never_shown_either(postgres_server, db_url, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "Wr0ng-PGPASSWORD")
    url = postgres_server.url(sa.make_url(db_url).database, password="")
    _assert_refused_quickly(url, "Wr0ng-PGPASSWORD", within=15)


def test_the_password_may_come_from_pgpassword(postgres_server, db_url, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)
    url = postgres_server.url(sa.make_url(db_url).database, password="")
    with open_state(url, "demo") as st:
        st.save_hashes([("C1", "h1")])
        assert st.load() == {"C1": ("h1", None)}
        assert postgres_server.password not in st.path


def test_no_server_listening_fails_at_once():
    url = f"postgresql://sync:{QUOTED}@127.0.0.1:{free_port()}/state"
    assert "refused" in _assert_refused_quickly(url, PASSWORD, within=10).lower()


def test_a_server_that_never_answers_fails_within_the_connect_timeout():
    silent = SilentServer()
    try:
        url = f"postgresql://sync:{QUOTED}@127.0.0.1:{silent.port}/state?connect_timeout=2"
        assert "timeout" in _assert_refused_quickly(url, PASSWORD, within=8).lower()
    finally:
        silent.stop()


def test_a_sync_against_an_unreachable_state_sends_nothing():
    client = FakeClient()
    url = f"postgresql://sync:{QUOTED}@127.0.0.1:{free_port()}/state"
    with pytest.raises(SyncStateError) as failed:
        run_sync(client, *make_frames(5, with_dashboards=False), state_url=url, settings=SyncSettings())
    assert client.calls == [] and failed.value.transient
    assert "MONITOR_STATE_URL" in str(failed.value) and PASSWORD not in str(failed.value)


def test_a_connection_the_server_dropped_is_replaced_not_failed_on(postgres_server, db_url):
    with open_state(db_url, "demo") as st:
        st.save_hashes([("C1", "h1")])
        assert postgres_server.terminate_backends(sa.make_url(db_url).database) >= 1  # a restart, a failover
        assert st.load() == {"C1": ("h1", None)}  # pool_pre_ping


def test_every_statement_is_bounded_by_the_servers_timeouts(db_url):
    engine = engine_for(parse_state_url(db_url))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW statement_timeout")).scalar() == "1min"
        assert conn.execute(sa.text("SHOW lock_timeout")).scalar() == "30s"
    assert engine is engine_for(parse_state_url(db_url))  # one engine per URL per process


# --- one statement per batch, the server's clock --------------------------------------------------

def test_a_batch_is_one_insert_statement(db_url):
    with open_state(db_url, "demo") as st:
        statements: list[str] = []
        engine = engine_for(st.url)
        listener = lambda conn, cursor, statement, *rest: statements.append(statement.split()[0])  # noqa: E731
        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            with st.lock("run"):
                statements.clear()
                st.save_hashes([(f"C{i}", f"h{i}", f"g{i}") for i in range(100)])
                assert statements == ["SELECT", "SELECT", "INSERT"]  # advisory lock, fence, the 100 rows
                statements.clear()
                st.save_dashboard_hashes([(f"C{i}", f"d{i}") for i in range(100)])
                assert statements.count("INSERT") == 1
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        assert st.count() == 100 and len(st.guids()) == 100


def test_the_lease_is_judged_by_the_database_servers_clock(db_url, monkeypatch):
    """A pod whose clock is an hour ahead must not take over a live lease (nor one an hour behind keep a
    dead one): only the server's clock_timestamp() counts."""
    with open_state(db_url, "demo") as holder, open_state(db_url, "demo") as other:
        with holder.lock("live run", lease=5):
            real = time.time
            monkeypatch.setattr(time, "time", lambda: real() + 3600)
            with pytest.raises(StateLockedError, match="live run"):
                with other.lock("pod with a fast clock", timeout=0.3, lease=5, poll=0.05):
                    pass
            monkeypatch.setattr(time, "time", real)
        engine = engine_for(holder.url)
        with engine.begin() as conn:  # a lease renewed 10 s ago by the server's clock, whatever the pods say
            conn.execute(sa.text("INSERT INTO monitor_sync_lock VALUES ('demo', 't', 'dead run', "
                                 "clock_timestamp() - interval '10 s', clock_timestamp() - interval '10 s')"))
        with other.lock("next run", timeout=0.5, lease=5):
            assert other.lock_holder() == "next run"


def test_scopes_have_distinct_advisory_keys_and_rows(db_url):
    assert scope_key("demo") != scope_key("north/demo")
    assert -(2 ** 63) <= scope_key("demo") < 2 ** 63
    with PostgresSyncState.for_administration(db_url, "demo", "north") as st:
        st.save_hashes([("C1", "h1")])
        assert st.scope == "north/demo" and "north/demo" in st.path and "***" in st.path
    engine = engine_for(parse_state_url(db_url))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT scope, code FROM monitor_sync_state")).all() == [("north/demo", "C1")]
