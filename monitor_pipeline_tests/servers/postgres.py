"""A private PostgreSQL server on a free loopback port, for the sync state on PostgreSQL (``MONITOR_STATE_URL``).

``initdb`` into a temporary data directory, then ``postgres`` in the foreground: listening on 127.0.0.1
only, its unix socket in the temporary directory (never /var/run/postgresql), password authentication
(``scram-sha-256``) for every connection, so a test user with a real password exercises what a
deployment's URL carries. Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``):
the data dies with the test session anyway.

PostgreSQL refuses to run as root: when the tests run as root the server runs as the ``postgres`` user
(the Debian package creates it), which owns the data directory. The binaries come from
``/usr/lib/postgresql/<version>/bin`` (Debian's layout; ``.ci/install-postgres.sh`` installs them), or
``MONITOR_POSTGRES_BIN``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from monitor_pipeline_tests.servers.net import free_port

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "pg-Super/s3cret"
USERNAME = "monitor_state"
PASSWORD = "St@te-s3cret/pw"  # '@' and '/' must be quoted in a URL: a URL built naively breaks
DATABASE = "monitor_state"
RUN_AS = "postgres"  # the account the server runs as when the tests run as root


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries (or the account to run them as) are missing; the message says how to fix it."""


def postgres_bin() -> Path:
    """The folder of ``initdb``/``postgres``: ``MONITOR_POSTGRES_BIN``, else Debian's newest version."""
    given = os.environ.get("MONITOR_POSTGRES_BIN")
    if given:
        candidates = [given]
    else:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    for folder in candidates:
        if os.access(Path(folder) / "initdb", os.X_OK) and os.access(Path(folder) / "postgres", os.X_OK):
            return Path(folder)
    raise PostgresUnavailable("PostgreSQL is not installed (no initdb/postgres in "
                              f"{given or '/usr/lib/postgresql/*/bin'}); run .ci/install-postgres.sh "
                              "(apt-get install postgresql) or set MONITOR_POSTGRES_BIN")


def _version(folder: str) -> tuple[int, ...]:
    part = Path(folder).parent.name
    return tuple(int(p) for p in part.split(".") if p.isdigit()) or (0,)


@dataclass
class PostgresTestServer:
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    database: str
    workdir: Path
    log_file: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def url(self, database: str | None = None, *, password: str | None = None,
            driver: str = "postgresql+psycopg2") -> str:
        """A SQLAlchemy URL of ``database`` (default: the test user's) with the test password (or ``password``;
        ``""`` for none, as when it comes from ``PGPASSWORD``)."""
        secret = self.password if password is None else password
        auth = quote(self.username, safe="") + (f":{quote(secret, safe='')}" if secret else "")
        return f"{driver}://{auth}@{self.host}:{self.port}/{database or self.database}"

    def superuser_connect(self, database: str = "postgres"):
        """A psycopg2 connection as the superuser, autocommit (CREATE/DROP DATABASE)."""
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=SUPERUSER, password=SUPERUSER_PASSWORD,
                                dbname=database, connect_timeout=5)
        conn.autocommit = True
        return conn

    def create_database(self, name: str | None = None) -> str:
        """A new empty database owned by the test user; returns its name."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        conn = self.superuser_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{self.username}"')
        finally:
            conn.close()
        return name

    def drop_database(self, name: str) -> None:
        conn = self.superuser_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def terminate_backends(self, database: str) -> int:
        """Kill every session on ``database`` (as a database restart or failover would); returns how many."""
        conn = self.superuser_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
                return cur.fetchone()[0]
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: PostgreSQL's "fast" shutdown (SIGTERM waits for clients)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_postgres() -> PostgresTestServer:
    """initdb + postgres on a free loopback port; the test user ``USERNAME`` owns database ``DATABASE``."""
    bindir = postgres_bin()
    account = None
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam(RUN_AS)
        except KeyError:
            raise PostgresUnavailable(f"running as root and there is no {RUN_AS!r} user to run PostgreSQL as; "
                                      "run .ci/install-postgres.sh (apt-get install postgresql creates it)") from None
    workdir = Path(tempfile.mkdtemp(prefix="monitor-postgres-"))
    try:
        data, socket_dir = workdir / "data", workdir / "socket"
        socket_dir.mkdir()
        pwfile = workdir / "pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        if account is not None:
            workdir.chmod(0o755)
            for path in (workdir, socket_dir, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        pwfile.chmod(0o600)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C",
               "HOME": account.pw_dir if account else os.environ.get("HOME", str(workdir))}
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions", "--no-sync"],
            capture_output=True, text=True, env=env, cwd=workdir, timeout=120, **as_user)
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {(init.stderr or init.stdout).strip()[-2000:]}")
        log_file = workdir / "postgres.log"
        port, process = _launch(bindir, data, socket_dir, log_file, env, as_user)
        server = PostgresTestServer(host="127.0.0.1", port=port, username=USERNAME, password=PASSWORD,
                                    database=DATABASE, workdir=workdir, log_file=log_file, process=process)
        try:
            conn = server.superuser_connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(f"CREATE ROLE {USERNAME} LOGIN PASSWORD %s", (PASSWORD,))
                    cur.execute(f"CREATE DATABASE {DATABASE} OWNER {USERNAME}")
            finally:
                conn.close()
        except BaseException:
            server.stop()
            raise
        return server
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _launch(bindir: Path, data: Path, socket_dir: Path, log_file: Path, env: dict, as_user: dict
            ) -> tuple[int, subprocess.Popen]:
    last_error = ""
    for _ in range(3):  # the free port may be taken between choosing and binding
        port = free_port()
        with open(log_file, "ab") as log:
            if as_user:
                os.chown(log_file, as_user["user"], as_user["group"])
            process = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                 "-c", f"unix_socket_directories={socket_dir}", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=32MB"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data.parent, **as_user)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            ready = subprocess.run([str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "1"],
                                   env=env, capture_output=True)
            if ready.returncode == 0:
                return port, process
            time.sleep(0.1)
        if process.poll() is None:
            process.kill()
        process.wait(5)
        last_error = log_file.read_text(errors="replace")
    raise RuntimeError(f"postgres did not start: {last_error.strip()[-2000:]}")
