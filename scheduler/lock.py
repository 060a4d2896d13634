"""One daemon per SQLite file: an fcntl lock on a file next to the database.

SQLite has no row locks to share work by, so two daemons on one file would
poll the same sources and race on the outbox. The lock is advisory and held
for the life of the process: the kernel drops it when the process dies, so a
crash never leaves a stale lock behind (unlike a pid file). On PostgreSQL no
lock is taken: replicas share the work through leases.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from scheduler import DaemonAlreadyRunning


@dataclass
class DaemonLock:
    path: Path
    fd: int | None = None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


def lock_path(database: Path | None) -> Path | None:
    """`<db file>.daemon.lock` for a SQLite file (storage.db.sqlite_file), None
    for anything else."""
    if database is None:
        return None
    db = database.expanduser().resolve()
    return db.with_name(db.name + ".daemon.lock")


def acquire(database: Path | None) -> DaemonLock | None:
    """Take the lock or raise DaemonAlreadyRunning; None when no lock is needed
    (`database`: the SQLite file, None on PostgreSQL or in memory)."""
    path = lock_path(database)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(fd)
        os.close(fd)
        who = f" (pid {holder})" if holder else ""
        db = path.name.removesuffix(".daemon.lock")
        raise DaemonAlreadyRunning(
            f"another newswatch daemon is already running on {db}{who}; "
            "only one daemon may use a SQLite database"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return DaemonLock(path, fd)


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
