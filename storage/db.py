"""Engines and sessions for SQLite and PostgreSQL, and schema upgrades.

SQLite runs in WAL mode with foreign keys on and a busy timeout, so the CLI
and the daemon can share a file. Postgres connections are pinged before use,
so a database restart costs one failed operation, not a dead daemon.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import SQLAlchemyError as _SAError
from sqlalchemy.orm import Session, sessionmaker

from storage import StorageError

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or refused the operation."""


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StorageError(f"invalid database URL {redact_url(url)!s}") from e
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.update(pool_pre_ping=True, pool_recycle=1800, pool_size=5, max_overflow=10)
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as e:
        raise StorageError(f"unsupported database URL {redact_url(url)}: {e}") from e
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    Database connection failures surface as `DatabaseUnavailable` with a
    one-line message that never contains the password.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except OperationalError as e:
        session.rollback()
        raise DatabaseUnavailable(_first_line(e)) from e
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _first_line(e: _SAError) -> str:
    orig = getattr(e, "orig", None) or e
    text = str(orig).strip().splitlines()
    return f"database unavailable: {text[0] if text else type(orig).__name__}"


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as e:
        raise DatabaseUnavailable(
            f"cannot reach database {redact_url(str(engine.url.render_as_string(False)))}: "
            f"{_first_line(e).removeprefix('database unavailable: ')}"
        ) from e


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest revision; safe to run again."""
    from alembic import command

    check_connection(engine)
    command.upgrade(_alembic_config(engine), "head")


def schema_ready(engine: Engine) -> bool:
    return inspect(engine).has_table("alembic_version")
