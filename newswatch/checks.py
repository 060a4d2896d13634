"""`newswatch check` and the checks `run` makes at start: every setting
checked up front, not when it is first used.

Each check returns `Verdict`s: one line each, `ok`, `warn` or `fail`. A
check never raises and never prints a secret: messages name the setting
and what is wrong, and URLs pass through `mask_secret`. The SMTP check
connects, says EHLO (STARTTLS and login when the delivery would) and quits:
no mail is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from alerts.secrets import mask_secret
from newswatch.config import Settings, unknown_variables

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Verdict:
    check: str
    status: Status
    message: str

    def line(self) -> str:
        return f"{self.status.upper():4} {self.check}: {self.message}"


def configuration(settings: Settings, environ: Mapping[str, str]) -> list[Verdict]:
    """Settings already parsed (a bad value fails `load_settings` before
    this); here: the variables nothing reads."""
    unknown = unknown_variables(environ)
    out = [Verdict("configuration", "warn", w) for w in unknown]
    if not unknown:
        out.append(Verdict("configuration", "ok", "every NEWSWATCH_* variable is known"))
    return out


def database(settings: Settings, engine: object) -> tuple[list[Verdict], bool]:
    """Reachable and initialised at the newest revision; (verdicts, schema present)."""
    from storage import StorageError
    from storage.db import DatabaseEngine, check_connection, redact_url, schema_ready
    from storage.schema_state import schema_behind

    assert isinstance(engine, DatabaseEngine)
    where = redact_url(settings.database_url)
    try:
        check_connection(engine)
        if not schema_ready(engine):
            return [Verdict("database", "fail", f"{where}: no schema: run `newswatch init`")], False
        behind = schema_behind(engine)
    except StorageError as e:
        return [Verdict("database", "fail", " ".join(str(e).split()))], False
    except Exception as e:  # a driver's own error type: still one line, no traceback
        return [Verdict("database", "fail", f"{where}: {type(e).__name__}")], False
    if behind:
        return [
            Verdict(
                "database", "warn", f"{where}: schema is behind ({behind}): run `newswatch init`"
            )
        ], True
    return [Verdict("database", "ok", f"{where}: reachable, schema up to date")], True


def smtp(settings: Settings, timeout: float = 10.0) -> list[Verdict]:
    """Connect, EHLO, STARTTLS / login as delivery would, QUIT; no mail sent."""
    from alerts.channels import DeliveryError, EmailChannel, SmtpTarget

    if settings.smtp_url is None:
        return [Verdict("smtp", "warn", "NEWSWATCH_SMTP_URL is not set: email alerts stay pending")]
    url = settings.smtp_url.get_secret_value()
    try:
        target = SmtpTarget.parse(url)
        EmailChannel(target, settings.effective_mail_from, timeout=timeout).probe()
    except DeliveryError as e:
        return [Verdict("smtp", "fail", f"{mask_secret(url)}: {' '.join(str(e).split())}")]
    return [Verdict("smtp", "ok", f"{target.host}:{target.port} answers (no mail sent)")]


def recipients(
    watchlists: Iterable[object], env: Mapping[str, str], settings: Settings
) -> list[Verdict]:
    """Every recipient of every active watchlist as delivery will see it:
    `${NAME}` set and permitted, an email address, a Slack URL Slack's rule
    accepts, a webhook URL."""
    from alerts.alert_records import Watchlist

    out: list[Verdict] = []
    for wl in watchlists:
        assert isinstance(wl, Watchlist)
        for r in wl.notify:
            problem = recipient_problem(r.channel, r.target, r.secret, env, settings)
            if problem:
                out.append(Verdict("recipients", "fail", f"{wl.name}: {r.channel}: {problem}"))
    if not out:
        out.append(Verdict("recipients", "ok", "every recipient resolves and is well formed"))
    return out


def recipient_problem(
    channel: str, target: str, secret: str | None, env: Mapping[str, str], settings: Settings
) -> str | None:
    from alerts import AlertError
    from alerts.channels import DeliveryError, SlackChannel
    from alerts.watchlist_files import EMAIL_RE, resolve_refs
    from scheduler.http_poster import permits_private

    try:
        value = resolve_refs(target, env)
        if secret is not None:
            resolve_refs(secret, env)
    except AlertError as e:
        return str(e)
    if channel == "email":
        return None if EMAIL_RE.match(value) else "not an email address"
    if not value.lower().startswith(("https://", "http://")):
        return f"{mask_secret(value)} is not an http(s) URL"
    if channel == "slack":
        slack = SlackChannel(None, permits_private(settings.address_policy))  # type: ignore[arg-type]
        try:
            asyncio.run(slack.check_url(value))
        except DeliveryError as e:
            return " ".join(str(e).split())
    return None


def watchlists(active: Iterable[object]) -> list[Verdict]:
    """Each stored watchlist compiles (queries parse, every term has a key)."""
    from alerts import AlertError
    from alerts.alert_records import Watchlist
    from alerts.matching.engine import compile_watchlists

    out: list[Verdict] = []
    n = 0
    for wl in active:
        assert isinstance(wl, Watchlist)
        n += 1
        try:
            compile_watchlists([wl], "aho")
        except AlertError as e:
            out.append(Verdict("watchlists", "fail", f"{wl.name}: {' '.join(str(e).split())}"))
    if not out:
        out.append(Verdict("watchlists", "ok", f"{n} watchlists compile"))
    return out


def run_all(
    settings: Settings,
    environ: Mapping[str, str],
    engine: object,
    load_watchlists: Callable[[], list[object]],
    env: Mapping[str, str],
    *,
    smtp_timeout: float = 10.0,
    database_check: bool = True,
) -> tuple[list[Verdict], bool]:
    """Every check in order; (verdicts, database schema present).

    `database_check=False` (the daemon's start, which checks the database
    itself and says so in one line) leaves the database verdict out and
    skips the checks that read it when it is not ready."""
    verdicts = configuration(settings, environ)
    if database_check:
        db, ready = database(settings, engine)
        verdicts += db
    else:
        ready = _quietly_ready(engine)
    verdicts += smtp(settings, smtp_timeout)
    if ready:
        try:
            stored = load_watchlists()
        except Exception as e:
            verdicts.append(Verdict("watchlists", "fail", f"cannot read: {type(e).__name__}"))
        else:
            verdicts += recipients(stored, env, settings)
            verdicts += watchlists(stored)
    return verdicts, ready


def _quietly_ready(engine: object) -> bool:
    from storage.db import DatabaseEngine, schema_ready

    assert isinstance(engine, DatabaseEngine)
    try:
        return schema_ready(engine)
    except Exception:  # unreachable: the daemon logs its own outage line
        return False
