"""`newswatch crawl`: poll every enabled source now, then deliver what is due."""

from __future__ import annotations

import asyncio
import signal
import sys
from types import FrameType
from typing import Annotated

import typer

from crawler.models import PollOutcome, Source
from newswatch import cli_common
from newswatch.cli_common import get_app, one_line


def crawl(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only this source (repeatable).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every poll.")] = False,
) -> None:
    """Poll every enabled source now, store new items, match them, deliver the alerts, exit."""
    from newswatch.logs import setup_logging
    from newswatch.pipeline import crawl as run_crawl

    a = get_app(ctx)
    setup_logging(a.settings.log_format, verbose=verbose, quiet=not verbose)
    progress = _Progress() if sys.stderr.isatty() else None
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        report = asyncio.run(
            run_crawl(
                a,
                names=source or None,
                on_start=progress.start if progress else None,
                on_done=progress.advance if progress else None,
            )
        )
        if progress:
            progress.stop()
        for name, error in report.failed:
            print(f"newswatch: source {name} failed: {one_line(error)}", file=sys.stderr)
        delivered = _deliver(a)
    except Terminated:
        if progress:
            progress.stop()
        print("newswatch: crawl stopped by SIGTERM; run it again to finish", file=sys.stderr)
        return
    finally:
        # The work is done or abandoned: a SIGTERM that lands while the process
        # tears down exits 0 quietly rather than killing it with -15.
        signal.signal(signal.SIGTERM, _finished if cli_common.OWN_PROCESS else previous)
    print(
        f"crawled {report.sources} sources: {report.polled} polled, "
        f"{report.not_modified} not modified, {len(report.failed)} failed; "
        f"{report.new_items} new items, {report.new_matches} new matches{delivered}"
    )


class Terminated(BaseException):
    """SIGTERM: abandon the crawl. Every write is one transaction per source or per
    alert outcome, so unwinding rolls back what is in flight and nothing is
    half-written; what was not done is done by the next run (the delivery leases
    of alerts in flight expire first, as after a crash)."""


def _terminate(signum: int, _frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: let the unwinding finish
    raise Terminated


def _finished(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def _deliver(a: object) -> str:
    try:
        from alerts.outbox import deliver_pending
    except ImportError:
        return ""
    r = deliver_pending(a)  # type: ignore[arg-type]
    parts = [f"{r.sent} alerts sent"]
    if r.retried:
        parts.append(f"{r.retried} to retry")
    if r.failed:
        parts.append(f"{r.failed} failed")
    waiting = getattr(r, "waiting", 0)
    if waiting:
        parts.append(f"{waiting} waiting for configuration")
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
        self._p.update(self._task, advance=1, description=f"{source.name}: {outcome.status}")  # type: ignore[arg-type]

    def stop(self) -> None:
        self._p.stop()


def register(app: typer.Typer) -> None:
    app.command("crawl")(crawl)
