"""`newswatch alerts [--status …] [--json]` and `newswatch alerts retry`.

A `cancelled` alert (its recipient, or its watchlist, was removed before it
was delivered) shows the reason in the `last error` column / `last_error`.

Recipients are shown masked: Slack and webhook URLs are secrets (the token is
in the path); `${NAME}` references and email addresses are shown as written.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from alerts.secrets import mask_secret
from newswatch.cli_common import (
    UsageProblem,
    echo,
    get_app,
    iso,
    one_line,
    print_jsonl,
    print_table,
)
from storage import outbox as repo
from storage.outbox import STATUSES, AlertListing

alerts_app = typer.Typer(help="List alerts and their delivery state; retry failed ones.")


def shown_target(channel: str, target: str) -> str:
    if channel == "email" or target.startswith("${"):
        return target
    return mask_secret(target)


def _sent_with(a: AlertListing) -> str:
    return f"sent with alert {a.folded_into}" if a.folded_into is not None else "-"


def _json(a: AlertListing) -> dict[str, Any]:
    return {
        "id": a.id,
        "status": a.status,
        "watchlist": a.watchlist,
        "channel": a.channel,
        "recipient": shown_target(a.channel, a.target),
        "item": {"title": a.item_title, "url": a.item_url},
        "attempts": a.attempts,
        "next_attempt": a.next_attempt_at if a.status == "pending" else None,
        "last_error": a.last_error,
        "sent_at": a.sent_at,
        "created_at": a.created_at,
        "digest": a.digest_period,
        # sent in the message of that alert (one message per address and item)
        "sent_with": a.folded_into,
    }


@alerts_app.callback(invoke_without_command=True)
def alerts(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, sent, failed or cancelled.")
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False,
) -> None:
    """Alerts newest first, with their delivery state."""
    if ctx.invoked_subcommand is not None:
        return
    if status is not None and status not in STATUSES:
        raise UsageProblem("--status must be pending, sent, failed or cancelled")
    a = get_app(ctx)
    with a.session() as s:
        rows = repo.list_alerts(s, status=status)
    if json:
        print_jsonl(_json(r) for r in rows)
        return
    print_table(
        [
            "id",
            "status",
            "watchlist",
            "channel",
            "recipient",
            "item",
            "attempts",
            "next attempt",
            "last error",
        ],
        [
            [
                str(r.id),
                r.status,
                r.watchlist,
                r.channel,
                one_line(shown_target(r.channel, r.target), 50),
                one_line(r.item_title, 50),
                str(r.attempts),
                iso(r.next_attempt_at) if r.status == "pending" else "-",
                one_line(r.last_error or _sent_with(r), 60),
            ]
            for r in rows
        ],
    )


@alerts_app.command("retry")
def retry(ctx: typer.Context) -> None:
    """Put failed alerts back to pending, due now, with a fresh series of attempts."""
    a = get_app(ctx)
    with a.session() as s:
        n = repo.retry_failed(s, now=a.now())
    echo(f"{n} failed alert{'s' if n != 1 else ''} put back to pending")


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
