"""A spider source's lease lasts as long as its run (crawler.spiders).

A feed poll ends well within its lease (scheduler.poll_policy.lease_duration);
a spider run may last NEWSWATCH_SPIDER_RUN_SECONDS and wait first for one of
the process's spider slots (scheduler.spider_slots). Were the lease left as
claimed, it could lapse mid-run and another replica claim and run the same
spider at the same time. So, from claim to the end of the run:

- while it waits for a slot and while it runs, the lease is renewed every
  third of the poll lease, to `spider_lease_duration` from now;
- when the slot is ours, it is renewed once more before the child starts, and
  that renewal must succeed: it covers the whole run up to its hard kill
  (run limit + grace + margin), so the bound holds even if the event loop
  stalls; if another process holds the source by then (our lease had lapsed
  and it claimed it), the run does not start (`LeaseLost`, a deferred poll
  that leaves the other process's lease alone).

Renewals run in the saver thread (scheduler.saver), behind saves and never
racing them for SQLite's write lock. A process that dies stops renewing: its
lease lapses (or is taken back at once when its death can be proved,
storage.leases).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from crawler.crawl_records import Source
from scheduler.context import CrawlContext
from scheduler.poll_policy import spider_lease_duration
from scheduler.saver import in_saver

log = logging.getLogger("newswatch.crawl")


class LeaseLost(Exception):
    """Another process holds the source now: this one must not run it."""


def spider_lease(ctx: CrawlContext) -> timedelta:
    limits = ctx.spider_limits
    return spider_lease_duration(ctx.limits.lease, limits.run_seconds, limits.grace_seconds)


def _renew(ctx: CrawlContext, source: Source, lease: timedelta) -> bool:
    with ctx.store.transaction() as tx:
        return tx.renew_lease(source.id, ctx.owner, until=ctx.clock() + lease)


@asynccontextmanager
async def leased_run(ctx: CrawlContext, source: Source) -> AsyncIterator[None]:
    """A spider slot for `source`, its lease kept from now until the block ends
    (see the module docstring); LeaseLost if the source is no longer ours."""
    lease = spider_lease(ctx)
    every = max(0.05, ctx.limits.lease.total_seconds() / 3)

    async def keep() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                held = await in_saver(_renew, ctx, source, lease)
            except Exception as e:  # an outage: the next renewal or the run's save says so
                log.warning("lease_renew status=failed source=%s error=%r", source.name, str(e))
                continue
            if not held:
                log.warning("lease_renew status=lost source=%s", source.name)
                return

    keeper = asyncio.create_task(keep(), name=f"lease:{source.name}")
    try:
        async with ctx.spider_slots.slot():
            if not await in_saver(_renew, ctx, source, lease):
                raise LeaseLost("another process took the source while it waited for a spider slot")
            yield
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
