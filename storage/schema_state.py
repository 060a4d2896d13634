"""Whether the database schema is at the newest migration (`newswatch check`)."""

from __future__ import annotations

from sqlalchemy import Engine

from storage.db import _alembic_config


def schema_behind(engine: Engine) -> str | None:
    """None when the schema is at the newest revision; else "at X, newest Y"."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(_alembic_config(engine)).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current == heads:
        return None
    return f"at {', '.join(sorted(current)) or 'none'}, newest {', '.join(sorted(heads))}"
