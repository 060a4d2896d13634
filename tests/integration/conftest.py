"""Fixtures shared by the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.db import make_engine
from storage.memory import MemoryStore
from storage.protocol import Store
from storage.repository import SqlStore
from tests.conftest import BACKENDS, Database, _empty, _pg_database


@pytest.fixture(params=BACKENDS)
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an EMPTY database (no schema): migration tests start from any revision."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    gen = _pg_database(f"newswatch_migr_{uuid.uuid4().hex[:8]}")
    engine = make_engine(next(gen))
    yield engine
    engine.dispose()
    next(gen, None)


@pytest.fixture(params=["memory", *BACKENDS])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """A Store on the in-memory fake and on each database (emptied first): the
    use-cases' contract holds on all of them. A module may define its own."""
    if request.param == "memory":
        yield MemoryStore()
        return
    databases: dict[str, Database] = request.getfixturevalue("_databases")
    database = databases[request.param]
    _empty(database)
    yield SqlStore(database.engine, database.factory)
