"""Alembic environment: runs against the engine the caller hands over."""

from __future__ import annotations

from alembic import context

from storage.tables import Base, include_name

config = context.config


engine = config.attributes.get("engine")
if engine is None:  # command-line alembic (revision --autogenerate) for developers
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///dev.db")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
