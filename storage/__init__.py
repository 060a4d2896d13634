"""Persistence: SQLAlchemy models, sessions, queries and migrations."""


class StorageError(Exception):
    """Base of every expected storage failure; the message is one readable line."""
