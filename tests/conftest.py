"""Shared fixtures: real databases (SQLite and PostgreSQL) and a local HTTP server.

Backends come from NEWSWATCH_TEST_BACKENDS (default "sqlite,postgres"). For
PostgreSQL one throwaway database is created per test run (per xdist worker)
from NEWSWATCH_TEST_POSTGRES (an admin URL), migrated once, and emptied
before each test; it is dropped at the end. A requested backend that cannot
be reached fails the run rather than skipping silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, session_factory, upgrade
from storage.tables import Base
from tests.support.httpserver import LocalHTTPServer

BACKENDS = [
    b.strip()
    for b in os.environ.get("NEWSWATCH_TEST_BACKENDS", "sqlite,postgres").split(",")
    if b.strip()
]
PG_ADMIN = os.environ.get(
    "NEWSWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@dataclass
class Database:
    backend: str
    url: str
    engine: Engine
    factory: sessionmaker[Session]
    revision: str = ""  # the schema's migration after the run's upgrade (head)

    def session(self) -> Session:
        return self.factory()


def _pg_database(tmp_name: str) -> Iterator[str]:
    admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{tmp_name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + tmp_name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{tmp_name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def _databases(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[dict[str, Database]]:
    dbs: dict[str, Database] = {}
    cleanups = []
    for backend in BACKENDS:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        elif backend == "postgres":
            gen = _pg_database(f"newswatch_test_{worker_id}_{uuid.uuid4().hex[:8]}")
            url = next(gen)
            cleanups.append(gen)
        else:
            raise pytest.UsageError(f"unknown backend {backend}")
        engine = make_engine(url)
        upgrade(engine)
        dbs[backend] = Database(backend, url, engine, session_factory(engine), _revision(engine))
    yield dbs
    for db in dbs.values():
        db.engine.dispose()
    for gen in cleanups:
        next(gen, None)


def _revision(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(text("SELECT version_num FROM alembic_version")))


@pytest.fixture(autouse=True)
def _schema_kept(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the worker's shared databases (through `db`,
    `pg_db`, `store` or any fixture of its own): each is still at the run's
    schema revision. Every test of a worker shares them, so a test that
    migrates one elsewhere (stamps it back) broke later ones (an `init` re-ran
    a migration); it fails here instead, by name (such a test takes
    `fresh_engine`)."""
    yield
    if "_databases" not in request.fixturenames:
        return
    databases: dict[str, Database] = request.getfixturevalue("_databases")
    moved = []
    for database in databases.values():
        now_at = _revision(database.engine)
        if now_at != database.revision:  # blamed once: the tests after it are not
            moved.append(f"{database.backend} one at revision {now_at}, not {database.revision}")
            database.revision = now_at
    assert not moved, f"the test left a shared database, the {'; '.join(moved)}: use its own"


def _empty(db: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if db.backend == "postgres":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f"DELETE FROM {t}"))


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, _databases: dict[str, Database]) -> Database:
    """An empty, migrated database on each configured backend."""
    database = _databases[request.param]
    _empty(database)
    return database


@pytest.fixture(params=[b for b in BACKENDS if b == "postgres"])
def pg_db(request: pytest.FixtureRequest, _databases: dict[str, Database]) -> Database:
    """PostgreSQL only: for what SQLite cannot do by design (concurrent
    replicas). With NEWSWATCH_TEST_BACKENDS=sqlite these tests are not
    run at all: pytest reports them skipped, for an empty parametrisation."""
    database = _databases[request.param]
    _empty(database)
    return database


@pytest.fixture
def http_server() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer().start()
    yield server
    server.stop()


# Single parameter cases that are `slow` (the daemon's end-to-end smoke test
# keeps its SQLite case in the fast suite; the PostgreSQL twin runs in
# `make test-all`).
SLOW_CASES = frozenset(
    {"tests/integration/test_daemon.py::test_new_item_becomes_alert_and_sigterm_exits_0[postgres]"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid in SLOW_CASES:
            item.add_marker(pytest.mark.slow)
