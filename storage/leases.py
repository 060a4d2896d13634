"""Lease owners whose death can be proved, so their leases are taken back at
once instead of when they expire.

An owner id is `host:pid:start:ns:tag` (see `owner_id`): the host name, the
process id, the process's start time (in clock ticks since boot, from
/proc/<pid>/stat, so a reused pid is told apart), a digest of the boot id and
the pid namespace (two containers sharing a host name do not share pids), and
a random tag. An outbox claim token is `<owner id>/<claim tag>`.

An owner is provably dead when
- it ran on this machine (same host, boot and pid namespace) and its pid is
  gone or now belongs to a process started at another time; or
- on PostgreSQL, it holds no session advisory lock on its key (`lock_key`):
  every claiming process takes one before its first claim (`OwnerLock`) and the
  server drops it when the connection dies with the process. Lock absence is
  only proof for a lease taken while the server was up: a server restart
  drops every lock, so leases older than the server's start wait out their
  time as before.

Anything else (an unknown id format, an owner on another host with SQLite, a
pid that is alive) is honoured until the lease expires.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

HOST_CHARS = 40  # owner ids fit the 100-character lease columns with a claim tag
ANCHOR_CHECK_SECONDS = 1.0  # how often a process checks that its lock connection lives


@dataclass(frozen=True, slots=True)
class OwnerId:
    host: str
    pid: int
    start: str  # "" where the platform does not tell
    machine: str  # digest of boot id and pid namespace
    tag: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}:{self.machine}:{self.tag}"


def process_start(pid: int) -> str:
    """The start time of `pid` in clock ticks since boot (field 22 of
    /proc/<pid>/stat), "" if unknown; the command name (field 2) may hold
    spaces and parentheses, so fields are counted after its last ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return ""
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else ""


@cache
def machine_id() -> str:
    """Tells apart machines and pid namespaces that share a host name."""
    parts = []
    for path in ("/proc/sys/kernel/random/boot_id",):
        try:
            with open(path, encoding="ascii") as fh:
                parts.append(fh.read().strip())
        except OSError:
            parts.append("")
    try:
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        parts.append("")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


def host_name() -> str:
    return socket.gethostname().replace(":", "_").replace("/", "_")[:HOST_CHARS]


def owner_id() -> str:
    """The owner id of this process (a fresh tag per call)."""
    pid = os.getpid()
    return str(OwnerId(host_name(), pid, process_start(pid), machine_id(), uuid.uuid4().hex[:6]))


def parse_owner(value: str) -> OwnerId | None:
    """An owner id, or the owner part of a claim token; None if not one."""
    parts = value.split("/", 1)[0].split(":")
    if len(parts) != 5 or not parts[1].isdigit():
        return None
    return OwnerId(parts[0], int(parts[1]), parts[2], parts[3], parts[4])


def pid_alive(pid: int, start: str) -> bool:
    """True while `pid` runs and (when known) was started at `start`."""
    if pid <= 0:
        return True  # not a process we can reason about
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return not start or process_start(pid) in ("", start)


def lock_key(owner: OwnerId) -> int:
    """The signed 64-bit advisory lock key of an owner (its full id)."""
    digest = hashlib.blake2b(str(owner).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True, slots=True)
class Liveness:
    """What one check knows: this machine, and (Postgres) the owner locks held."""

    host: str
    machine: str
    locks_held: frozenset[int] | None  # None: no lock registry (SQLite)
    server_started: datetime | None = None

    def dead(
        self,
        token: str,
        claimed_at: datetime | None,
        alive: Callable[[int, str], bool] = pid_alive,
    ) -> bool:
        """Whether the owner of lease `token` (claimed at `claimed_at`) is provably dead."""
        owner = parse_owner(token)
        if owner is None:
            return False
        if owner.host == self.host and owner.machine == self.machine:
            return not alive(owner.pid, owner.start)
        if self.locks_held is None or claimed_at is None or self.server_started is None:
            return False
        return claimed_at > self.server_started and lock_key(owner) not in self.locks_held


def liveness(conn: Connection) -> Liveness:
    """This machine's identity and, on Postgres, the owner locks held in this database."""
    if conn.dialect.name != "postgresql":
        return Liveness(host_name(), machine_id(), None)
    rows = conn.execute(
        text(
            "SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory'"
            " AND objsubid = 1 AND granted AND database ="
            " (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    )
    held = frozenset(_signed((hi << 32) | lo) for hi, lo in rows)
    started = conn.scalar(text("SELECT pg_postmaster_start_time()"))
    return Liveness(host_name(), machine_id(), held, started)


def _signed(key: int) -> int:
    return key - (1 << 64) if key >= 1 << 63 else key


def dead_tokens(check: Liveness, leases: Iterable[tuple[str, datetime | None]]) -> set[str]:
    """The lease tokens, of (token, claimed at) pairs, whose owner is provably dead."""
    return {token for token, claimed in leases if check.dead(token, claimed)}


class OwnerLock:
    """The session advisory lock that proves this process alive on Postgres.

    Held on a connection of its own for the life of the process. `keep` runs
    before every transaction of a claiming process (`App.hold_owner_lock`,
    then `App.transaction`): it checks the connection at
    most every ANCHOR_CHECK_SECONDS, and while there is none (a server
    restart, a dropped connection) tries to take the lock again each time, so
    a claim is rarely made without it. Failures are logged, never raised: the
    transaction that follows reports an unreachable database (so they log at
    info: the outage is reported once, by whoever owns that report)."""

    def __init__(self, owner: str) -> None:
        parsed = parse_owner(owner)
        self.key = lock_key(parsed) if parsed else None
        self.conn: Connection | None = None
        self.checked = 0.0
        self._busy = threading.Lock()

    def keep(self, engine: Engine) -> None:
        if self.key is None or engine.dialect.name != "postgresql":
            return
        if self.conn is not None and time.monotonic() - self.checked < ANCHOR_CHECK_SECONDS:
            return
        if not self._busy.acquire(blocking=False):
            return  # another thread is at it
        try:
            self.checked = time.monotonic()
            if self.conn is not None and not self._still_held():
                self.close()
            if self.conn is None:
                self._take(engine)
        finally:
            self._busy.release()

    def _still_held(self) -> bool:
        assert self.conn is not None
        try:
            self.conn.execute(text("SELECT 1")).close()
            self.conn.commit()
        except Exception:
            return False
        return True

    def _take(self, engine: Engine) -> None:
        try:
            conn = engine.connect()
        except Exception as e:
            log.info("owner_lock status=unavailable error=%s", type(e).__name__)
            return
        try:
            got = conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            conn.commit()
        except Exception as e:
            log.info("owner_lock status=unavailable error=%s", type(e).__name__)
            conn.close()
            return
        if got:
            self.conn = conn
            log.info("owner_lock status=held")
        else:  # an old session of ours is not gone yet: try again next time
            conn.invalidate()
            conn.close()

    def close(self) -> None:
        """Close the lock's connection for real (invalidate: a pooled connection
        put back in the pool would keep its session, and the lock with it).
        The lock is released by a statement first: the server ends a closed
        session's backend (and frees its locks) only some time after the
        socket closes, and a liveness check in that gap would see us alive."""
        if self.conn is not None:
            with contextlib.suppress(Exception):  # best effort on a broken connection
                self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self.conn.commit()
            with contextlib.suppress(Exception):
                self.conn.invalidate()
                self.conn.close()
            self.conn = None


def claimed_at(lease_until: datetime | None, lease: timedelta) -> datetime | None:
    return None if lease_until is None else lease_until - lease


# Session advisory lock keys of exclusive sections (see `exclusive_section`).
SECTION_KEYS = {
    "story_drain": 0x6E657773_64726E31,  # "newsdrn1": one replica drains pending stories
}


@contextlib.contextmanager
def exclusive_section(engine: Engine, name: str, *, wait: bool) -> Iterator[bool]:
    """Whether this process may run section `name` now, held until the block ends.

    PostgreSQL: a session advisory lock on a connection of its own (so the
    section's own transactions come and go under it); `wait=False` takes it
    only if it is free (yields False otherwise), `wait=True` waits for it. A
    holder that dies loses it with its session. SQLite (one writer per file,
    and the section's transactions are serialised by it already): always
    True. The lock is released by a statement and the connection discarded,
    as OwnerLock does: a pooled connection would keep the session's lock."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = SECTION_KEYS[name]
    conn = engine.connect()
    try:
        if wait:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            got = True
        else:
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        conn.commit()
        yield got
    finally:
        with contextlib.suppress(Exception):  # best effort on a broken connection
            conn.execute(text("SELECT pg_advisory_unlock_all()"))
            conn.commit()
        with contextlib.suppress(Exception):
            conn.invalidate()
            conn.close()
