"""Which items of a poll alert: the first-poll baseline rule. Pure.

A new source's feed holds its whole backlog (articles from 2009 as well as
this morning's); alerting on all of it floods the inbox on the day a source
is added. So the first successful poll of a new or re-enabled source is a
baseline: every item is stored and matched (`matches` lists them, `backfill`
reaches them), but only those published within `window` of now alert. An
item without a usable date counts as old: its "date" is only the fetch time.
Items new on any later poll alert whatever their date: they are news to us.
"""

from __future__ import annotations

from datetime import datetime, timedelta

DEFAULT_WINDOW = timedelta(hours=24)


def alerts_on(
    published: datetime, *, dated: bool, now: datetime, window: timedelta, baseline: bool
) -> bool:
    """Whether a newly stored item owes alerts (see the module docstring).

    Invariant: outside a baseline poll every new item alerts; inside one,
    an item alerts only when it is dated and `now - window <= published`.
    """
    if not baseline:
        return True
    return dated and published >= now - window
