"""scheduler.daemon.RerunOnWake: a wake while the job runs is not lost (the
backlog gauge lagged up to its 15 s interval after a delivery whose wake fell
during a refresh; CI's daemon test saw "sent 1" for 5 s after the second send)."""

from __future__ import annotations

import asyncio

import pytest

from scheduler.daemon import RerunOnWake


@pytest.mark.parametrize("wakes_during_run", [0, 1, 3])
def test_a_wake_during_a_run_runs_it_once_more(wakes_during_run: int) -> None:
    runs: list[int] = []
    job: RerunOnWake

    async def refresh() -> None:
        runs.append(len(runs))
        if len(runs) == 1:  # changes arrive while the first refresh reads
            for _ in range(wakes_during_run):
                job.want()
        await asyncio.sleep(0)

    job = RerunOnWake("backlog", refresh)
    asyncio.run(job.run())
    assert len(runs) == (2 if wakes_during_run else 1)  # several wakes: one more run


def test_a_wake_between_runs_is_for_the_next_run_only() -> None:
    runs: list[int] = []

    async def refresh() -> None:
        runs.append(1)

    job = RerunOnWake("backlog", refresh)
    job.want()  # woken while idle: the scheduler's run starts now and is that run
    asyncio.run(job.run())
    asyncio.run(job.run())
    assert len(runs) == 2


def test_the_job_is_a_coroutine_function_the_scheduler_awaits() -> None:
    """APScheduler's AsyncIOExecutor awaits coroutine functions only; any
    other callable runs in a thread, where an async __call__ would return a
    coroutine nobody awaits and the gauge would never refresh."""
    assert asyncio.iscoroutinefunction(RerunOnWake("job", asyncio.sleep).run)  # type: ignore[arg-type]
