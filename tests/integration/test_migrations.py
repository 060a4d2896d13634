"""Migrations: an older schema upgrades in place, and the models match the
migrated schema exactly (so a model change without a migration fails here)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from storage.db import _alembic_config, upgrade
from storage.tables import Base, include_name


def test_upgrade_from_first_revision_keeps_data(fresh_engine: Engine) -> None:
    command.upgrade(_alembic_config(fresh_engine), "0001")
    with fresh_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sources (name, url, every_seconds, enabled, consecutive_failures,"
                " created_at) VALUES ('isw', 'https://isw.org/f', 900, true, 0, '2026-11-22')"
            )
        )
    upgrade(fresh_engine)
    upgrade(fresh_engine)  # safe to run again
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM sources")).scalars().all() == ["isw"]
    indexes = {ix["name"] for ix in inspect(fresh_engine).get_indexes("outbox")}
    assert "ix_outbox_recipient_order" in indexes


def test_models_match_migrations(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    with fresh_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
