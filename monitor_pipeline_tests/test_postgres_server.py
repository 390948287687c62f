"""The PostgreSQL test peer itself: password authentication is really required, databases are separate."""

import psycopg2
import pytest
import sqlalchemy as sa


def test_the_server_requires_the_password(postgres_server, postgres_url):
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar() == postgres_server.username
            assert conn.execute(sa.text("SHOW password_encryption")).scalar() == "scram-sha-256"
    finally:
        engine.dispose()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host=postgres_server.host, port=postgres_server.port, user=postgres_server.username,
                         password="wrong", dbname=postgres_server.database, connect_timeout=5).close()


def test_each_test_database_is_new_and_empty(postgres_db_url, postgres_url):
    engine = sa.create_engine(postgres_db_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar() == 0
            conn.execute(sa.text("CREATE TABLE mine (x int)"))
    finally:
        engine.dispose()
    assert sa.make_url(postgres_db_url).database != sa.make_url(postgres_url).database
