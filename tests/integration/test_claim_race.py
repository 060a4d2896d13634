"""Two replicas claiming the head of one queue at once (PostgreSQL).

A claim picks candidates per host quota from an unlocked scan, then locks
them FOR UPDATE SKIP LOCKED. While another replica's claim holds the head
rows locked, a claim must still fill its limit from the rows after them:
a short claim ends the daemon's tick, and bench/scale.py saw two replicas
poll less than one did.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.sources import HostQuota, add_source, claim_due_sources
from tests.conftest import Database

NOW = datetime(2025, 7, 10, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def host(url: str) -> str:
    return url.split("/")[2]


@pytest.mark.parametrize(("hosts", "per_host", "limit"), [(1, 100, 4), (12, 1, 6), (20, 2, 5)])
def test_a_claim_fills_its_limit_past_rows_another_claim_holds(
    pg_db: Database, hosts: int, per_host: int, limit: int
) -> None:
    with pg_db.session() as s, s.begin():
        for n in range(40):
            add_source(
                s,
                name=f"f{n}",
                url=f"http://h{n % hosts}.example/{n}.xml",
                kind="feed",
                every_seconds=900,
                links_css=None,
                now=NOW - timedelta(hours=1),  # type: ignore[arg-type]
            )
    first, second = pg_db.session(), pg_db.session()
    try:
        first.begin()
        held = claim_due_sources(
            first, now=NOW, owner="a", lease=LEASE, limit=limit, hosts=HostQuota(host, per_host)
        )
        assert len(held) == limit  # locked, not committed: the race's window
        second.begin()
        got = claim_due_sources(
            second, now=NOW, owner="b", lease=LEASE, limit=limit, hosts=HostQuota(host, per_host)
        )
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
    assert len(got) == limit
    assert not {s.id for s in got} & {s.id for s in held}
    counts: dict[str, int] = {}
    for src in got:
        counts[host(src.url)] = counts.get(host(src.url), 0) + 1
    assert max(counts.values()) <= per_host
