"""A SQLite database file of a test's own, migrated: for tests that need ids
and rows nobody else's test can touch (module fixtures of the SQLite-only
driver-SQL tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from storage.db import make_engine, upgrade


@contextmanager
def migrated_sqlite(path: Path) -> Iterator[Engine]:
    """An engine on a new SQLite file at `path` with the schema migrated;
    disposed when the block ends."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
