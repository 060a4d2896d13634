"""CONTRACT.md, "Commands": "`backfill` reaches the rest" of a first poll's
items, and "Alerts": one alert per (item, watchlist, recipient). At the
store's level, on the in-memory fake and both databases: a match stored
without alerts (a first poll's old item) gets its outbox rows when it is
recorded again with alerts, and never a second set."""

from __future__ import annotations

import pytest

from storage.protocol import Store
from tests.integration.test_store_contract import T0, match, setup_items, watchlist


@pytest.mark.parametrize("recipients", [1, 3])
def test_a_match_stored_without_alerts_owes_them_once_recorded_with_alerts(
    store: Store, recipients: int
) -> None:
    ids = sorted(setup_items(store, 2).values())
    hooks = [f"https://hook/{n}" for n in range(recipients)]
    with store.transaction() as tx:
        tx.save_watchlists([watchlist("w", *hooks)], T0)
        active = tx.get_watchlist("w")
        assert tx.record_matches(ids[0], [(active, match("w"))], T0, alert=False) == 1
        assert tx.record_matches(ids[1], [(active, match("w"))], T0) == 1
        assert tx.count_alerts(active.id) == recipients
        assert tx.count_matches_without_alerts(active.id, ids) == 1
        # again without alerts: nothing
        assert tx.record_matches(ids[0], [(active, match("w"))], T0, alert=False) == 0
        assert tx.count_alerts(active.id) == recipients
        # with alerts (a backfill): the match is not new, its alerts are
        assert tx.record_matches(ids[0], [(active, match("w"))], T0) == 0
        assert tx.count_alerts(active.id) == 2 * recipients
        assert tx.count_matches(active.id, ids) == 2
        assert tx.count_matches_without_alerts(active.id, ids) == 0
        assert tx.count_matches_without_alerts(active.id, []) == 0
        # and never twice, for either item
        for item_id in ids:
            assert tx.record_matches(item_id, [(active, match("w"))], T0) == 0
        assert tx.count_alerts(active.id) == 2 * recipients
        counts = tx.backlog(now=T0)
    assert counts.pending == 2 * recipients
