"""Engines and sessions for SQLite and PostgreSQL, and schema upgrades.

SQLite runs in WAL mode with foreign keys on and a busy timeout, so the CLI
and the daemon can share a file. Postgres connections are pinged before use,
so a database restart costs one failed operation, not a dead daemon.

Statement parameters hold secrets (Slack URLs, webhook HMAC secrets), so they
never leave this module: engines hide them from SQLAlchemy's messages, and
every database error becomes a one-line `StorageError` built from the
driver's first line only (Postgres puts values in its DETAIL line).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, StatementError
from sqlalchemy.exc import SQLAlchemyError as _SAError
from sqlalchemy.orm import Session, sessionmaker

from storage import StorageError

MIGRATIONS = Path(__file__).parent / "migrations"

# A write of this many rows refreshes the planner's statistics (PostgreSQL).
STATS_AFTER_ROWS = 5_000


# The engine type, for the root's checks: they name it without importing SQLAlchemy.
DatabaseEngine = Engine


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or refused the operation."""


class DatabaseRefused(StorageError):
    """The database refused one statement (a constraint, text it cannot store).
    The message is the driver's first line: never the statement's parameters."""


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StorageError(f"invalid database URL {redact_url(url)!s}") from e
    # hide_parameters: SQLAlchemy's messages and echo never show bound values.
    kwargs: dict[str, Any] = {"echo": echo, "future": True, "hide_parameters": True}
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

    Database connection failures surface as `DatabaseUnavailable`, any other
    statement error as `DatabaseRefused`, each with a one-line message that
    never contains the password or a statement parameter. The SQLAlchemy
    error is not chained (`from None`): its text, printed by `--debug` or a
    logged traceback, holds the statement and the driver's DETAIL lines.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except (OperationalError, StatementError) as e:
        session.rollback()
        raise database_error(e) from None
    except UnicodeEncodeError as e:  # SQLite's driver raises it unwrapped (lone surrogates)
        session.rollback()
        raise DatabaseRefused(
            f"database refused the operation: text it cannot encode ({e.reason})"
        ) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def storage_error(e: Exception) -> Exception:
    """`database_error(e)` for a SQLAlchemy error, `e` itself for anything else:
    the CLI describes errors without knowing SQLAlchemy."""
    return database_error(e) if isinstance(e, _SAError) else e


class SchemaMissing(DatabaseUnavailable):
    """A table is missing: the database was never initialised (or is another
    program's). Says what to do, not "no such table"."""


# SQLite's and PostgreSQL's (42P01 undefined_table) words for a missing table.
_MISSING_TABLE = re.compile(r'no such table: (\w+)|relation "(\w+)" does not exist')


def database_error(e: _SAError) -> StorageError:
    """The one-line `StorageError` for a SQLAlchemy error: an outage or a refusal."""
    missing = _MISSING_TABLE.search(driver_line(e)) if isinstance(e, DBAPIError) else None
    if missing:
        table = missing.group(1) or missing.group(2)
        return SchemaMissing(
            f"the database has no newswatch schema (no table {table}): run `newswatch init`"
        )
    if isinstance(e, OperationalError) or (isinstance(e, DBAPIError) and e.connection_invalidated):
        return DatabaseUnavailable(_first_line(e))
    name, line = type(getattr(e, "orig", None) or e).__name__, driver_line(e)
    return DatabaseRefused(
        f"database refused the operation: {line if line == name else f'{name}: {line}'}"
    )


def driver_line(e: BaseException) -> str:
    """The first line of the DBAPI driver's own message (not SQLAlchemy's, which
    adds the statement), control characters escaped. A non-DBAPI error that
    SQLAlchemy wrapped (a type processor's ValueError may quote the value) is
    named by its type only."""
    orig = getattr(e, "orig", None)
    if orig is None or not isinstance(e, DBAPIError):
        return type(orig if orig is not None else e).__name__
    lines = str(orig).strip().splitlines()
    text = lines[0] if lines else type(orig).__name__
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)[:300]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _first_line(e: _SAError) -> str:
    return f"database unavailable: {driver_line(e)}"


def refresh_statistics(session: Session, table: str, rows_written: int) -> None:
    """ANALYZE `table` after a bulk write of `rows_written` rows, on PostgreSQL.

    Autovacuum analyzes a table only after a minute or more, so within one
    crawl a 100,000-item feed was planned with the statistics of an empty
    table: each 500-id lookup of items joined to item_vectors hash-joined a
    full scan (seconds per chunk; test_hundred_thousand_item_feed[postgres]
    killed at 540 s). ANALYZE inside the transaction counts the transaction's
    own new rows, and samples at most 30,000 rows (~0.1 s). SQLite plans by
    its indexes without statistics unless ANALYZE was ever run: nothing to do.
    """
    if rows_written < STATS_AFTER_ROWS or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text(f'ANALYZE "{table}"'))


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
