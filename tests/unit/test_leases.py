"""Owner ids and the proof of death (storage.leases), with real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from storage.leases import (
    Liveness,
    OwnerId,
    lock_key,
    machine_id,
    owner_id,
    parse_owner,
    pid_alive,
    process_start,
)

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


def _child() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    return proc, process_start(proc.pid)


def test_owner_id_round_trips_and_names_this_process() -> None:
    me = parse_owner(owner_id())
    assert me is not None and me.pid == os.getpid() and me.machine == machine_id()
    assert me.start == process_start(os.getpid()) != ""
    token = f"{me}/abcd1234"  # an outbox claim token
    assert parse_owner(token) == me
    assert len(owner_id()) <= 90  # leaves room for the claim tag in 100 characters


@given(st.text(max_size=60))
def test_any_other_string_is_no_owner_or_parses_safely(value: str) -> None:
    owner = parse_owner(value)
    assert owner is None or (owner.pid >= 0 and str(owner).count(":") == 4)


def test_unknown_formats_are_never_dead() -> None:
    check = Liveness("h", "m", frozenset(), NOW - timedelta(days=1))
    for token in ("test", "replica-1", "host:123:uuid", "host:pid:1:m:t", "", "a/b"):
        assert not check.dead(token, NOW)


def test_a_dead_pid_on_this_machine_is_dead_a_live_one_is_not() -> None:
    proc, start = _child()
    here = Liveness(parse_owner(owner_id()).host, machine_id(), None)  # type: ignore[union-attr]
    owner = OwnerId(here.host, proc.pid, start, machine_id(), "t1")
    assert here.dead(f"{owner}/x", NOW) is False  # running
    proc.kill()
    proc.wait()
    assert here.dead(f"{owner}/x", NOW) is True  # gone
    assert here.dead(str(OwnerId(here.host, os.getpid(), "1", machine_id(), "t")), NOW)


def test_a_reused_pid_is_told_apart_by_its_start_time() -> None:
    assert pid_alive(os.getpid(), process_start(os.getpid()))
    assert not pid_alive(os.getpid(), "1")  # same pid, another start: another process
    assert pid_alive(os.getpid(), "")  # start unknown: the pid decides


def test_other_machines_need_the_lock_registry() -> None:
    other = OwnerId("elsewhere", 4242, "99", "ffffffff", "t")
    token = f"{other}/x"
    started = NOW - timedelta(hours=1)
    assert not Liveness("here", "m", None).dead(token, NOW)  # SQLite: honoured
    assert Liveness("here", "m", frozenset(), started).dead(token, NOW)  # no lock: dead
    assert not Liveness("here", "m", frozenset({lock_key(other)}), started).dead(token, NOW)
    # claimed before the server (re)started: every lock vanished then, so no proof
    assert not Liveness("here", "m", frozenset(), NOW + timedelta(seconds=1)).dead(token, NOW)
    # same host name, other machine or pid namespace: the pid says nothing here
    same_name = OwnerId("here", os.getpid() + 10_000_000, "1", "0000beef", "t")
    assert not Liveness("here", "m", None).dead(str(same_name), NOW)
