"""Fixtures shared by the integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.db import make_engine
from tests.conftest import BACKENDS, _pg_database


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
