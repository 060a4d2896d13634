"""Delivering the outbox: claim due alerts, render, send, record the outcome.

Exactly once in effect: an outbox row exists once per (item, watchlist,
recipient) (a unique key), is sent only by the holder of its lease, and is
marked sent only after the channel accepted it. The rows of several
watchlists to one address about one item (or folded story) are claimed as
one batch and go as one message; a late one after that message is marked
sent without a second (storage.alert_groups). The one gap is a crash (or a
database outage) between the send and the mark: that alert is sent again when
the lease expires; an email repeat carries the same Message-ID.

Pacing is not failure: an HTTP 429 or 503 with Retry-After waits exactly
what the peer asked (at least MIN_RETRY_AFTER, at most MAX_RETRY_AFTER) and
counts no attempt. A short wait is slept through in the pass, holding the
lease; a longer one reschedules the row. Sends to one webhook URL are spaced
in-process (Slack: NEWSWATCH_SLACK_PER_SECOND, 1 by default). Either way the
recipient's later alerts wait behind it: order per recipient holds, and no
other recipient waits.

Failures: temporary ones are retried with exponential backoff and jitter,
never sooner than the peer's Retry-After; a permanent one, or the
`max_attempts`-th try, marks the row failed with its error. Missing
configuration (NEWSWATCH_SMTP_URL unset, a `${NAME}` not in the environment)
is not an attempt: the rows stay pending with that note and go out as soon
as a process with the configuration runs. Nothing is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage

from alerts import AlertError, render
from alerts.channels import (
    DeliveryError,
    EmailChannel,
    PermanentFailure,
    Poster,
    RateLimited,
    SmtpTarget,
    TemporaryFailure,
)
from alerts.pacing import Pacer
from alerts.secrets import scrub
from alerts.watchlist_files import resolve_refs
from scheduler.context import DeliveryContext
from scheduler.delivery_policy import (
    MAX_RETRY_AFTER,
    MIN_RETRY_AFTER,
    SMTP_NOT_SET,
    backoff_delay,
    blocked_recipients,
    pacing_wait,
)
from scheduler.http_poster import HttpPoster
from storage import StorageError
from storage.outbox import ClaimedAlert, ClaimedBatch, PendingSummary
from storage.protocol import StoreTransaction

__all__ = [
    "MAX_RETRY_AFTER",
    "MIN_RETRY_AFTER",
    "DeliveryReport",
    "backoff_delay",
    "deliver_all",
    "deliver_due",
    "pacing_wait",
    "pending_summary",
]

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
WAIT_IN_PASS = 5.0  # a Retry-After up to this is slept through, holding the lease
WAITS_PER_BATCH = 10  # rate limits slept through per alert before rescheduling it
PASS_BUDGET = LEASE.total_seconds() / 2  # no waiting past this in a pass: the lease must hold


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """Counts are alerts (outbox rows); a digest message counts each alert in it."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    waiting: int = 0  # pending until configuration is supplied
    errors: tuple[str, ...] = field(default=())
    paced: int = 0  # rescheduled at the peer's Retry-After, or left for the next pass

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.sent + other.sent,
            self.retried + other.retried,
            self.failed + other.failed,
            max(self.waiting, other.waiting),
            self.errors + other.errors,
            self.paced + other.paced,
        )

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed


def smtp_problem(smtp_url: str | None) -> str | None:
    """Why email cannot be sent with this configuration, or None."""
    if smtp_url is None:
        return SMTP_NOT_SET
    try:
        SmtpTarget.parse(smtp_url)
    except PermanentFailure as e:
        return str(e)
    return None


def _blocked(ctx: DeliveryContext, tx: StoreTransaction) -> dict[int, str]:
    return blocked_recipients(tx.pending_recipients(), smtp_problem(ctx.smtp_url), ctx.env)


def _claim_token(ctx: DeliveryContext) -> str:
    """Unique per claim, so two delivery runs in one process never share rows."""
    return f"{ctx.owner[:90]}/{uuid.uuid4().hex[:8]}"


async def deliver_due(
    ctx: DeliveryContext, poster: Poster, *, limit: int = 200, rng: random.Random | None = None
) -> DeliveryReport:
    """One delivery pass: everything due now (up to `limit` alerts), oldest match first;
    recipients in parallel, each recipient's alerts in order."""
    ctx.hold_owner_lock()  # before claiming: proves this process alive (Postgres)
    now = ctx.clock()
    record_unrecorded_sends(ctx)
    with ctx.store.transaction() as tx:
        blocked = _blocked(ctx, tx)
    waiting = 0
    if blocked:
        with ctx.store.transaction() as tx:
            for reason in set(blocked.values()):
                ids = [rid for rid, why in blocked.items() if why == reason]
                waiting += tx.note_waiting(ids, reason)
        log.info("alerts_waiting status=waiting count=%d", waiting)
    token = _claim_token(ctx)
    with ctx.store.transaction() as tx:
        batches = tx.claim_due_alerts(
            now=now,
            owner=token,
            lease=ctx.limits.lease,
            limit=limit,
            exclude_recipients=blocked.keys(),
        )
    if not batches:
        return DeliveryReport(waiting=waiting)
    sender = _Sender(ctx, poster, token, rng or random.Random())
    by_recipient: dict[int, list[ClaimedBatch]] = {}
    for b in batches:
        by_recipient.setdefault(b.recipient.id, []).append(b)
    gate = asyncio.Semaphore(ctx.limits.parallel_recipients)

    async def run(queue: list[ClaimedBatch]) -> DeliveryReport:
        total, n = DeliveryReport(), -1
        try:
            async with gate:
                for n, batch in enumerate(queue):
                    step = await sender.deliver(batch)
                    total += step
                    if step.retried or step.paced:  # later alerts must not overtake
                        sender.release(queue[n + 1 :])
                        break
        except asyncio.CancelledError:  # shutdown: hand back what was not begun
            sender.release(queue[n + 1 :])
            raise
        return total

    report = DeliveryReport(waiting=waiting)
    for part in await asyncio.gather(*(run(q) for q in by_recipient.values())):
        report += part
    return report


def read_stories(ctx: DeliveryContext, batch: ClaimedBatch) -> render.Stories:
    """The batch's stories as known now (other outlets, English headline).
    Rendering without them beats not sending: a read that fails is logged and
    the alert goes out plain (the mark after the send meets any real outage)."""
    try:
        with ctx.store.transaction() as tx:
            return tx.story_contexts([a.match.item_id for a in batch.alerts])
    except StorageError as e:
        log.warning("alert_stories status=unavailable ids=%s error=%s", batch.ids, e)
        return {}


def record_unrecorded_sends(ctx: DeliveryContext) -> None:
    """Write the "sent" marks an outage kept from being written. The rows are
    still leased to the token that sent them, so no other deliverer has taken
    them meanwhile; a mark whose lease was lost changes nothing."""
    pending = ctx.unrecorded.pending
    while pending:
        ids, token, sent_at = pending[0]
        with ctx.store.transaction() as tx:  # DatabaseUnavailable: still down, keep them
            tx.mark_sent(list(ids), owner=token, now=sent_at)
        pending.pop(0)
        log.info("alert_recorded status=sent ids=%s", list(ids))


async def deliver_all(
    ctx: DeliveryContext, *, limit: int = 200, max_passes: int = 100, grace: float = 0.0
) -> DeliveryReport:
    """Deliver everything due now, for one-shot commands (`crawl`): opens an
    HttpClient itself and repeats passes until nothing due is left; then, while
    an alert falls due within `grace` seconds of the start (a Retry-After, a
    backoff, a digest period's end), sleeps until it does and delivers again."""
    deadline = ctx.clock() + timedelta(seconds=grace)
    async with ctx.http() as client:
        poster = HttpPoster(client)
        report = DeliveryReport()
        for _ in range(max_passes):
            step = await deliver_due(ctx, poster, limit=limit)
            report += step
            if step.handled:
                continue
            later = next_due(ctx)
            if later is None or later > deadline:
                break
            await asyncio.sleep(max((later - ctx.clock()).total_seconds(), 0.05))
        return report


def next_due(ctx: DeliveryContext) -> datetime | None:
    """When the next alert this process could send falls due (None: none pending)."""
    with ctx.store.transaction() as tx:
        blocked = _blocked(ctx, tx)
        return tx.next_due_after(now=ctx.clock(), exclude_recipients=blocked.keys())


def pending_summary(ctx: DeliveryContext) -> PendingSummary:
    """What is left after a run: alerts still pending and alerts another live
    process holds (their leases are not this process's)."""
    with ctx.store.transaction() as tx:
        return tx.pending_summary(now=ctx.clock(), owner_prefix=ctx.owner[:90] + "/")


class _Sender:
    def __init__(
        self, ctx: DeliveryContext, poster: Poster, token: str, rng: random.Random
    ) -> None:
        self.ctx = ctx
        self.token = token
        self.rng = rng
        self.mail_from = ctx.mail_from
        self.smtp_url = ctx.smtp_url
        channels = ctx.channels(poster)
        self.slack = channels.slack
        self.webhook = channels.webhook
        self.deadline = time.monotonic() + PASS_BUDGET  # waits in this pass end by then
        self.stories: render.Stories = {}  # item id -> its story, read per batch at send time

    def release(self, batches: list[ClaimedBatch]) -> None:
        ids = [i for b in batches for i in b.ids]
        if ids:
            with self.ctx.store.transaction() as tx:
                tx.release_alerts(ids, owner=self.token)

    async def deliver(self, batch: ClaimedBatch) -> DeliveryReport:
        """One alert, or one digest as `render.digest_parts` splits it: each
        part is sent and recorded on its own (a refused part fails only its
        alerts); after a part to retry, the later parts wait (released)."""
        # Merged, not replaced: other recipients' batches render concurrently.
        self.stories = {**self.stories, **read_stories(self.ctx, batch)}
        if batch.digest_period is None:
            return await self._deliver(batch, None)
        # One entry per item (a digest of several watchlists to one address
        # names each watchlist's terms there), so a part never splits an item.
        by_item: dict[int, list[ClaimedAlert]] = {}
        for a in batch.alerts:
            by_item.setdefault(a.match.item_id, []).append(a)
        matches = [e.match for e in render.merge_by_item(self._alerts(batch))]
        parts = render.digest_parts(batch.recipient.channel, matches, self.stories)
        if len(parts) == 1:
            return await self._deliver(batch, None)
        subs = [
            replace(batch, alerts=tuple(a for m in p for a in by_item[m.item_id])) for p in parts
        ]
        total = DeliveryReport()
        for n, sub in enumerate(subs):
            step = await self._deliver(sub, (n + 1, len(subs)))
            total += step
            if step.retried:
                self.release(subs[n + 1 :])
                break
        return total

    async def _deliver(self, batch: ClaimedBatch, part: render.Part | None) -> DeliveryReport:
        r = batch.recipient
        secrets: list[str | None] = [self.smtp_url]
        try:
            target = resolve_refs(r.target, self.ctx.env)
            secret = resolve_refs(r.secret, self.ctx.env) if r.secret else None
            secrets += [target, secret]
            paced = await self._send_paced(batch, target, secret, part)
        except DeliveryError as e:
            return self._record_failure(batch, e, secrets)
        except (render.RenderError, AlertError) as e:
            return self._record_failure(batch, PermanentFailure(str(e)), secrets)
        except Exception as e:  # a bug must not lose the alert: retry, and say so
            log.exception("alert_error status=internal ids=%s", batch.ids)
            failure = TemporaryFailure(f"internal error: {type(e).__name__}: {e}")
            return self._record_failure(batch, failure, secrets)
        if paced is not None:
            return self._record_paced(batch, paced, secrets)
        self.ctx.crash.crash("after_send")
        return self._record(batch, "sent", None, self._mark_sent)

    async def _send_paced(
        self, batch: ClaimedBatch, target: str, secret: str | None, part: render.Part | None
    ) -> RateLimited | None:
        """Send, keeping to the destination's pace; sleep through a short
        Retry-After and send again. Returns None once sent, or the rate limit
        to reschedule at (a long Retry-After, or no time left in this pass)."""
        key, interval = self._pace(batch.recipient.channel, target)
        for _ in range(WAITS_PER_BATCH + 1):
            if key is not None:
                ahead = self.ctx.pacer.wait_for(key)
                if ahead > WAIT_IN_PASS or not self._may_wait(ahead + interval):
                    return RateLimited("paced: no send slot in this delivery pass", ahead)
                await asyncio.sleep(self.ctx.pacer.reserve(key, interval))
            try:
                await self._send(batch, target, secret, part)
                return None
            except RateLimited as e:
                wait = pacing_wait(e.retry_after)
                if key is None or wait > WAIT_IN_PASS or not self._may_wait(wait):
                    return RateLimited(str(e), wait)
                self.ctx.pacer.hold(key, wait)  # for every recipient posting to this URL
                log.info(
                    "alert_paced status=waiting recipient=%d wait=%gs", batch.recipient.id, wait
                )
        return RateLimited("rate limited again and again in this delivery pass", MIN_RETRY_AFTER)

    def _pace(self, channel: str, target: str) -> tuple[str | None, float]:
        """The pacing key and the interval between sends for a destination."""
        per_second = {
            "slack": self.ctx.limits.slack_per_second,
            "webhook": self.ctx.limits.webhook_per_second,
        }.get(channel, 0.0)
        if channel not in ("slack", "webhook"):
            return None, 0.0
        return Pacer.key(target), (1.0 / per_second if per_second > 0 else 0.0)

    def _may_wait(self, seconds: float) -> bool:
        return time.monotonic() + seconds <= self.deadline

    async def _send(
        self, batch: ClaimedBatch, target: str, secret: str | None, part: render.Part | None
    ) -> None:
        channel = batch.recipient.channel
        if channel == "email":
            if self.smtp_url is None:
                raise AlertError(SMTP_NOT_SET)  # pragma: no cover - filtered before claim
            email = EmailChannel(SmtpTarget.parse(self.smtp_url), self.mail_from)
            await email.send(self._email(batch, target, part), target)
        elif channel == "slack":
            await self.slack.send(target, self._slack(batch, part))
        elif channel == "webhook":
            body = self._webhook(batch, part)
            await self.webhook.send(
                target, body, secret=secret, timestamp=self.ctx.clock().timestamp()
            )
        else:
            raise PermanentFailure(f"unknown channel {channel!r}")

    def _alerts(self, batch: ClaimedBatch) -> list[render.AlertMatch]:
        return [
            render.AlertMatch(a.match, a.highlights, self.stories.get(a.match.item_id))
            for a in batch.alerts
        ]

    def _email(self, batch: ClaimedBatch, to: str, part: render.Part | None) -> EmailMessage:
        now, r = self.ctx.clock(), batch.recipient
        alerts = self._alerts(batch)
        if batch.digest_period is None:  # one alert, or one per watchlist to this address
            ids = (alerts[0].match.item_id, batch.watchlist_id, r.id)
            return render.group_email(alerts, mail_from=self.mail_from, to=to, ids=ids, date=now)
        return render.digest_email(
            ", ".join(batch.watchlists),
            batch.digest_period,
            render.merge_by_item(alerts),
            mail_from=self.mail_from,
            to=to,
            ids=(batch.watchlist_id, r.id),
            date=now,
            part=part,
        )

    def _slack(self, batch: ClaimedBatch, part: render.Part | None) -> bytes:
        matches = [a.match for a in batch.alerts]
        if batch.digest_period is None:
            return render.slack_body(render.slack_group_payload(matches, self.stories))
        merged = [e.match for e in render.merge_by_item(self._alerts(batch))]
        payload = render.slack_digest_payload(
            ", ".join(batch.watchlists), batch.digest_period, merged, part, self.stories
        )
        return render.slack_body(payload)

    def _webhook(self, batch: ClaimedBatch, part: render.Part | None) -> bytes:
        matches = [a.match for a in batch.alerts]
        if batch.digest_period is None:
            first = matches[0]
            story = self.stories.get(first.item_id)
            return render.webhook_body(first, story, group=matches, stories=self.stories)
        return render.digest_webhook_body(
            batch.watchlist, batch.digest_period, matches, part, self.stories
        )

    def _record_failure(
        self, batch: ClaimedBatch, e: DeliveryError, secrets: Sequence[str | None]
    ) -> DeliveryReport:
        error = scrub(" ".join(str(e).split()) or type(e).__name__, *secrets)[:500]
        attempts = batch.attempts + 1
        if isinstance(e, PermanentFailure) or attempts >= self.ctx.limits.max_attempts:
            return self._record(
                batch,
                "failed",
                error,
                lambda tx, ids: tx.mark_failed(ids, owner=self.token, error=error),
            )
        delay = backoff_delay(attempts, e.retry_after, self.rng)
        due = self.ctx.clock() + timedelta(seconds=delay)
        return self._record(
            batch,
            "retried",
            error,
            lambda tx, ids: tx.schedule_retry(
                ids, owner=self.token, error=error, next_attempt_at=due
            ),
        )

    def _record_paced(
        self, batch: ClaimedBatch, limit: RateLimited, secrets: Sequence[str | None]
    ) -> DeliveryReport:
        """Reschedule at the peer's Retry-After, no attempt counted (pacing is not failure)."""
        note = scrub(" ".join(str(limit).split()), *secrets)[:500]
        due = self.ctx.clock() + timedelta(seconds=pacing_wait(limit.retry_after))
        return self._record(
            batch,
            "paced",
            note,
            lambda tx, ids: tx.postpone(ids, owner=self.token, note=note, next_attempt_at=due),
        )

    def _mark_sent(self, tx: StoreTransaction, ids: list[int]) -> int:
        return tx.mark_sent(ids, owner=self.token, now=self.ctx.clock())

    def _record(
        self,
        batch: ClaimedBatch,
        outcome: str,
        error: str | None,
        mark: Callable[[StoreTransaction, list[int]], int],
    ) -> DeliveryReport:
        r = batch.recipient
        log.log(
            logging.WARNING if outcome == "failed" else logging.INFO,
            "alert_%s status=%s channel=%s recipient=%d alerts=%d attempts=%d error=%r",
            outcome,
            outcome,
            r.channel,
            r.id,
            len(batch.alerts),
            batch.attempts + 1,
            error,
        )
        try:
            with self.ctx.store.transaction() as tx:
                held = mark(tx, batch.ids)
        except StorageError as e:
            log.error("alert_unrecorded status=%s ids=%s error=%s", outcome, batch.ids, e)
            if outcome == "sent":
                self.ctx.unrecorded.pending.append((tuple(batch.ids), self.token, self.ctx.clock()))
            return DeliveryReport(errors=(f"could not record {outcome} alerts: {e}",))
        if held != len(batch.ids):
            log.warning("alert_lease_lost status=%s ids=%s held=%d", outcome, batch.ids, held)
        n = len(batch.ids)
        errors = (f"{r.channel} recipient {r.id}: {error}",) if error else ()
        if outcome == "paced":
            return DeliveryReport(paced=n)
        counts = {"sent": (n, 0, 0), "retried": (0, n, 0), "failed": (0, 0, n)}[outcome]
        return DeliveryReport(*counts, errors=errors)
