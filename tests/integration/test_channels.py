"""Channels against real local peers: aiosmtpd, and a local HTTP server through
the real HttpClient (SSRF guard allowing 127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest

from alerts import render
from alerts.alert_records import StoredMatch
from alerts.channels import (
    EmailChannel,
    PermanentFailure,
    SlackChannel,
    SmtpTarget,
    TemporaryFailure,
    WebhookChannel,
    verify,
)
from crawler.addresses import AddressPolicy
from crawler.fetch import FetchPolicy, HttpClient
from scheduler.http_poster import HttpPoster, permits_private
from tests.support.httpserver import LocalHTTPServer, Request, Response
from tests.support.smtpserver import smtp_server

LOCAL = AddressPolicy.parse("127.0.0.1")
NOW = datetime(2026, 11, 22, 2, 10, tzinfo=UTC)
T = TypeVar("T")

M = StoredMatch(
    id=1,
    watchlist="wl",
    terms=("SAM",),
    snippets=("a SAM b",),
    matched_at=NOW,
    item_id=5,
    item_url="https://example.org/x",
    item_title="T\r\nBcc: evil@x.org",
    source_name="isw",
    published=NOW,
    language="en",
)


def run(factory: Callable[[HttpPoster], Awaitable[T]], policy: AddressPolicy = LOCAL) -> T:
    """`factory` gets the channels' port over a real HttpClient, as the root binds it."""

    async def main() -> T:
        async with HttpClient(FetchPolicy(timeout=5, address_policy=policy)) as client:
            return await factory(HttpPoster(client))

    return asyncio.run(main())


def email_for(to: str) -> render.EmailMessage:
    return render.email_message(
        render.AlertMatch(M), mail_from="nw@example.org", to=to, ids=(5, 1, 1), date=NOW
    )


def test_email_delivered_only_to_envelope_recipient() -> None:
    with smtp_server() as (handler, url):
        channel = EmailChannel(SmtpTarget.parse(url), "nw@example.org", timeout=5)
        asyncio.run(channel.send(email_for("analyst@example.org"), "analyst@example.org"))
    [got] = handler.messages
    assert got.rcpt_tos == ["analyst@example.org"]
    assert got.message["Bcc"] is None
    assert got.message["Message-ID"] == "<newswatch.alert.5.1.1@example.org>"


def test_email_login() -> None:
    with smtp_server(auth=("user", "p@ss word")) as (handler, url):
        url = url.replace("p@ss word", "p%40ss%20word")
        asyncio.run(
            EmailChannel(SmtpTarget.parse(url), "nw@example.org", timeout=5).send(
                email_for("a@example.org"), "a@example.org"
            )
        )
        assert len(handler.messages) == 1
        bad = url.replace("p%40ss%20word", "wrong")
        with pytest.raises(TemporaryFailure, match="login refused") as e:
            asyncio.run(
                EmailChannel(SmtpTarget.parse(bad), "nw@example.org", timeout=5).send(
                    email_for("a@example.org"), "a@example.org"
                )
            )
        assert "wrong" not in str(e.value)


def test_email_550_is_permanent_and_451_temporary() -> None:
    with smtp_server(reject={"gone@example.org"}) as (_, url):
        ch = EmailChannel(SmtpTarget.parse(url), "nw@example.org", timeout=5)
        with pytest.raises(PermanentFailure, match="550"):
            asyncio.run(ch.send(email_for("gone@example.org"), "gone@example.org"))
    with smtp_server(fail_first=1) as (handler, url):
        ch = EmailChannel(SmtpTarget.parse(url), "nw@example.org", timeout=5)
        with pytest.raises(TemporaryFailure, match="451"):
            asyncio.run(ch.send(email_for("a@example.org"), "a@example.org"))
        asyncio.run(ch.send(email_for("a@example.org"), "a@example.org"))
        assert len(handler.messages) == 1


def test_email_connection_refused_is_temporary_and_masks_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ch = EmailChannel(
        SmtpTarget.parse(f"smtp://u:hunter22@127.0.0.1:{port}"), "nw@x.org", timeout=2
    )
    with pytest.raises(TemporaryFailure) as e:
        asyncio.run(ch.send(email_for("a@example.org"), "a@example.org"))
    assert "hunter22" not in str(e.value)


def test_smtp_url_parsing() -> None:
    t = SmtpTarget.parse("smtps://me%40x.org:s3cret@mail.example.org")
    assert (t.host, t.port, t.tls, t.user, t.password) == (
        "mail.example.org",
        465,
        True,
        "me@x.org",
        "s3cret",
    )
    assert SmtpTarget.parse("smtp://relay").port == 25
    with pytest.raises(PermanentFailure):
        SmtpTarget.parse("http://relay")


def test_slack_429_then_ok_and_404(http_server: LocalHTTPServer) -> None:
    calls: list[Request] = []

    def hook(req: Request) -> Response:
        calls.append(req)
        if len(calls) == 1:
            return 429, {"Retry-After": "1"}, b"rate_limited"
        return 200, {"Content-Type": "text/plain"}, b"ok"

    url = http_server.route("/services/T/B/secretpart", hook)
    body = render.slack_body(render.slack_payload(M))
    with pytest.raises(TemporaryFailure) as e:
        run(lambda c: SlackChannel(c, permits_private(LOCAL)).send(url, body))
    assert e.value.retry_after == 1
    assert "secretpart" not in str(e.value)
    run(lambda c: SlackChannel(c, permits_private(LOCAL)).send(url, body))
    assert json.loads(calls[1].body)["blocks"]
    revoked = http_server.serve("/services/T/B/revoked", "no_service", "text/plain", 404)
    with pytest.raises(PermanentFailure, match="404"):
        run(lambda c: SlackChannel(c, permits_private(LOCAL)).send(revoked, body))


def test_slack_url_rule(http_server: LocalHTTPServer) -> None:
    url = http_server.serve("/hook", "ok", "text/plain")
    ch = SlackChannel(None, permits_private(AddressPolicy.parse("false")))  # type: ignore[arg-type]
    with pytest.raises(PermanentFailure, match=r"hooks\.slack\.com"):
        asyncio.run(ch.check_url(url))  # loopback not permitted by the policy
    with pytest.raises(PermanentFailure):
        asyncio.run(ch.check_url("http://hooks.slack.com/services/x"))  # not https
    with pytest.raises(PermanentFailure):
        asyncio.run(
            SlackChannel(None, permits_private(LOCAL)).check_url(  # type: ignore[arg-type]
                "https://example.org/services/x"
            )
        )  # public but not Slack
    asyncio.run(ch.check_url("https://hooks.slack.com/services/T/B/X"))
    asyncio.run(SlackChannel(None, permits_private(LOCAL)).check_url(url))  # type: ignore[arg-type]
    assert http_server.requests == []


def _signature_ok(secret: str, req: Request, now: float) -> bool:
    """The README's receiver recipe, written out independently of `alerts.channels`."""
    ts = req.headers.get("X-Newswatch-Timestamp", "")
    signed = ts.encode() + b"." + req.body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = ts.isdigit() and abs(now - int(ts)) <= 300
    return fresh and hmac.compare_digest(req.headers.get("X-Newswatch-Signature", ""), expected)


def test_webhook_signature_verifies(http_server: LocalHTTPServer) -> None:
    secret = "s3cret-key"
    seen: list[bool] = []

    def receiver(req: Request) -> Response:
        ok = _signature_ok(secret, req, time.time())
        seen.append(ok)
        return (204, {}, b"") if ok else (401, {}, b"bad signature")

    url = http_server.route("/hook", receiver)
    body = render.webhook_body(M)
    run(lambda c: WebhookChannel(c).send(url, body, secret=secret))
    assert seen == [True]
    assert json.loads(http_server.requests[0].body)["watchlist"] == "wl"
    with pytest.raises(PermanentFailure, match="401"):
        run(lambda c: WebhookChannel(c).send(url, body, secret="wrong"))


@pytest.mark.parametrize(
    "body", [b"{}", render.webhook_body(M), '{"t": "\u00e9\\u0000"}'.encode(), b"1.2.3"]
)
def test_webhook_signature_binds_the_timestamp(body: bytes, http_server: LocalHTTPServer) -> None:
    """A captured delivery replayed with a fresh timestamp (or a stale one) is refused."""
    secret, seen = "k3y-for-replay", []
    url = http_server.route("/capture", lambda req: (seen.append(req), (204, {}, b""))[1])
    sent_at = time.time() - 3600
    run(lambda c: WebhookChannel(c).send(url, body, secret=secret, timestamp=sent_at))
    captured = seen[0]
    assert captured.body == body
    now = time.time()
    assert not _signature_ok(secret, captured, now)  # stale: outside the window
    assert _signature_ok(secret, captured, sent_at + 10)  # fresh when it was sent
    for forged_ts in (str(int(now)), str(int(now) - 1), str(int(sent_at) + 1)):
        replay = Request(
            captured.method,
            captured.path,
            {**captured.headers, "X-Newswatch-Timestamp": forged_ts},
            captured.body,
        )
        assert not _signature_ok(secret, replay, now)
        assert not verify(
            secret, forged_ts, body, captured.headers["X-Newswatch-Signature"], now=now
        )
    ts = captured.headers["X-Newswatch-Timestamp"]
    assert verify(secret, ts, body, captured.headers["X-Newswatch-Signature"], now=sent_at)


def test_webhook_failures_classified(http_server: LocalHTTPServer) -> None:
    url = http_server.serve("/down/tok3n", "oops", "text/plain", 503)
    with pytest.raises(TemporaryFailure, match="503"):
        run(lambda c: WebhookChannel(c).send(url, b"{}"))
    with pytest.raises(PermanentFailure) as e:
        run(lambda c: WebhookChannel(c).send(url, b"{}"), policy=AddressPolicy.parse("false"))
    assert "tok3n" not in str(e.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TemporaryFailure):
        run(lambda c: WebhookChannel(c).send(f"http://127.0.0.1:{port}/x", b"{}"))
