"""The writes a transaction sends, in order, and a transaction thrown away:
for tests of what storage writes first (the SQLite driver-SQL paths run no
session hook, so they write buffered state themselves)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event

from storage.repository import SqlStore, SqlTransaction


@contextmanager
def writes_sent(engine: Engine) -> Iterator[list[str]]:
    """The UPDATE and INSERT statements sent on `engine` while the block
    runs, each as its head ("UPDATE sources", "INSERT INTO items"), in order."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        head = statement.split(" (")[0].split(" SET")[0]
        if head.startswith(("UPDATE", "INSERT")):
            sent.append(head)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


class _Discard(Exception):
    pass


@contextmanager
def rolled_back(store: SqlStore) -> Iterator[SqlTransaction]:
    """A transaction of `store` rolled back when the block ends: what it
    wrote is sent, then thrown away (an error in the block propagates)."""
    try:
        with store.transaction() as tx:
            yield tx
            raise _Discard
    except _Discard:
        pass
