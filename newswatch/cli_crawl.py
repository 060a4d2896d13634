"""`newswatch crawl`: poll every enabled source now, then deliver what is due."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from crawler.crawl_records import PollOutcome, Source
from newswatch import cli_common
from newswatch.cli_common import echo, get_app, one_line, printable

if TYPE_CHECKING:
    from newswatch.app import App
    from storage.outbox import PendingSummary

T = TypeVar("T")
log = logging.getLogger("newswatch.crawl")


def crawl(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only this source (repeatable).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every poll.")] = False,
) -> None:
    """Poll every enabled source now, store new items, match them, deliver the alerts, exit."""
    from newswatch.logs import setup_logging
    from scheduler.crawl import crawl as run_crawl
    from scheduler.deliver import deliver_all, pending_summary

    a = get_app(ctx)
    setup_logging(a.settings.log_format, verbose=verbose, quiet=not verbose)
    progress = _Progress() if sys.stderr.isatty() else None
    stop = _Stop()
    previous = signal.signal(signal.SIGTERM, stop.note)
    a.hold_owner_lock()  # before claiming sources: proves this process alive (Postgres)
    try:
        report = asyncio.run(
            stop.guard(
                run_crawl(
                    a.crawl_context(),
                    names=source or None,
                    on_start=progress.start if progress else None,
                    on_done=progress.advance if progress else None,
                )
            )
        )
        if progress:
            progress.stop()
        for name, error in report.failed:
            echo(f"newswatch: source {name} failed: {one_line(error)}", file=sys.stderr)
        _say_held_sources(a, source)
        grace = a.settings.crawl_grace
        delivery = a.delivery_context()
        delivered = _summary(asyncio.run(stop.guard(deliver_all(delivery, grace=grace))))
        _say_left(pending_summary(delivery), grace)
        # Last, the stories of the new items that matched nothing (no alert
        # waits for them): every item has its story when `crawl` exits, unless
        # a SIGTERM stops it between batches (the next crawl or daemon goes on).
        _drain(a, lambda: not stop.requested)
    except Terminated:
        if progress:
            progress.stop()
        echo("newswatch: crawl stopped by SIGTERM; run it again to finish", file=sys.stderr)
        return
    finally:
        # The work is done or abandoned: a SIGTERM that lands while the process
        # tears down exits 0 quietly rather than killing it with -15.
        signal.signal(signal.SIGTERM, _finished if cli_common.OWN_PROCESS else previous)
    echo(
        f"crawled {report.sources} sources: {report.polled} polled, "
        f"{report.not_modified} not modified, {len(report.failed)} failed; "
        f"{report.new_items} new items, {report.new_matches} new matches{delivered}"
    )
    if all_failed(report.polled + report.not_modified + report.deferred, len(report.failed)):
        echo(f"newswatch: error: all {len(report.failed)} polled sources failed", file=sys.stderr)
        raise typer.Exit(EXIT_ALL_FAILED)


# Exit status of `crawl` when every source it polled failed (README: exit codes).
EXIT_ALL_FAILED = 3


def all_failed(succeeded: int, failed: int) -> bool:
    """An outage cron and monitoring must see: something was polled and
    nothing succeeded. Some failures among successes are the normal life of
    a crawler (exit 0); no source at all is not an outage either."""
    return failed > 0 and succeeded == 0


class Terminated(Exception):
    """SIGTERM: the crawl was abandoned at an `await`. Every write is one
    transaction per batch of sources or per alert outcome, so what was in
    flight is rolled back whole; the next run does what was not done (it
    takes back the leases of alerts in flight as soon as this process is
    gone: storage.leases)."""


class _Stop:
    """SIGTERM, the asyncio way: the event loop's handler cancels the running
    task, so the crawl stops at its next `await`, never inside a database
    statement or a library callback. Between the two event loops (polling,
    then delivery) a signal is noted and honoured before delivery starts."""

    def __init__(self) -> None:
        self.requested = False

    def note(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True

    async def guard(self, work: Coroutine[Any, Any, T]) -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_term() -> None:
            self.requested = True
            task.cancel()

        loop.add_signal_handler(signal.SIGTERM, on_term)
        try:
            if self.requested:
                work.close()
                raise Terminated
            return await work
        except asyncio.CancelledError:
            if self.requested:
                raise Terminated from None
            raise
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self.note)


def _drain(a: App, keep_going: Callable[[], bool]) -> None:
    """Best effort: the crawl's own work is saved; items left without a story
    are assigned by the next crawl, the daemon or `stories rebuild`."""
    from scheduler.crawl import drain_stories

    try:
        drain_stories(a.crawl_context(), keep_going=keep_going, one_shot=True)
    except Exception as e:
        log.error("story_drain status=failed error=%r", one_line(str(e), 300))


def _finished(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _say_held_sources(a: App, names: list[str] | None) -> None:
    """Sources this crawl skipped because another live process holds their lease."""
    from storage.sources import held_sources

    with a.session() as s:
        held = held_sources(s, now=a.now(), owner=a.owner, names=names)
    if held.count:
        print(
            f"newswatch: skipped {held.count} sources another running newswatch is polling "
            f"(its lease ends by {_when(held.until)})",
            file=sys.stderr,
        )


def _say_left(left: PendingSummary, grace: float) -> None:
    """What delivery leaves for later: held by another live process, or not due yet."""
    if left.held:
        print(
            f"newswatch: skipped {left.held} alerts another running newswatch is delivering "
            f"(its lease ends by {_when(left.held_until)})",
            file=sys.stderr,
        )
    if left.pending:
        print(
            f"newswatch: {left.pending} alerts still pending after a {grace:g} s grace; "
            f"the earliest falls due at {_when(left.next_due)}",
            file=sys.stderr,
        )


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "unknown"


def _summary(r: Any) -> str:
    parts = [f"{r.sent} alerts sent"]
    if r.retried:
        parts.append(f"{r.retried} to retry")
    if r.failed:
        parts.append(f"{r.failed} failed")
    if r.waiting:
        parts.append(f"{r.waiting} waiting for configuration")
    return "; " + ", ".join(parts)


class _Progress:
    def __init__(self) -> None:
        from rich.progress import Progress

        self._p = Progress(transient=True)
        self._task: object = None

    def start(self, total: int) -> None:
        self._p.start()
        self._task = self._p.add_task("polling", total=total)

    def advance(self, source: Source, outcome: PollOutcome) -> None:
        from rich.markup import escape

        text = escape(printable(f"{source.name}: {outcome.status}"))  # never read as markup
        self._p.update(self._task, advance=1, description=text)  # type: ignore[arg-type]

    def stop(self) -> None:
        self._p.stop()


def register(app: typer.Typer) -> None:
    app.command("crawl")(crawl)
