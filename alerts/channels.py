"""Alert channels: SMTP, Slack incoming webhooks and JSON webhooks (I/O only).

Payloads come ready-made from `alerts.render`; a channel only moves bytes and
classifies the outcome. `send` returns on success (the peer accepted) and
raises a `DeliveryError`:

- `RateLimited` (HTTP 429 or 503 with Retry-After): the outbox waits what the
  peer asked, without counting an attempt;
- `TemporaryFailure` (connection refused, timeout, SMTP 4xx, HTTP 429/5xx
  without Retry-After): the outbox retries with backoff;
- `PermanentFailure` (SMTP 5xx for the recipient, HTTP 400/401/403/404/410,
  a URL or address we refuse): the outbox marks the row failed.

Messages never hold a secret: SMTP passwords and webhook URLs are masked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

from alerts import AlertError
from alerts.secrets import mask_secret, scrub

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

log = logging.getLogger(__name__)

SLACK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
SIGNATURE_HEADER = "X-Newswatch-Signature"
TIMESTAMP_HEADER = "X-Newswatch-Timestamp"
PERMANENT_HTTP = frozenset({400, 401, 403, 404, 405, 410, 413, 422})
SMTP_TIMEOUT = 30.0


class DeliveryError(AlertError):
    """A send did not go through; subclasses say whether trying again can help."""

    retry_after: float | None = None


class TemporaryFailure(DeliveryError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TemporaryFailure):
    """HTTP 429 or 503 with Retry-After: the peer paces us. Not a failure: the
    outbox waits what the peer asked (bounded) and counts no attempt."""

    retry_after: float

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after)
        self.retry_after = retry_after


class PermanentFailure(DeliveryError):
    pass


class PostResponse(Protocol):
    """What `crawler.fetch.PostResult` provides."""

    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def retry_after(self) -> float | None: ...


class PostFailed(AlertError):
    """The port's one error: the request did not get an answer. `permanent`:
    trying again cannot help (an address or scheme the client refuses)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Poster(Protocol):
    """The port to the one HTTP client (SSRF guard, timeouts, size caps), bound
    by the root (scheduler.http_poster.HttpPoster). Raises `PostFailed` when
    no answer came."""

    async def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> PostResponse: ...


# ---------------------------------------------------------------- HTTP channels


def classify_status(status: int, retry_after: float | None, what: str) -> None:
    """Raise the right DeliveryError for a non-2xx status; return for 2xx."""
    if 200 <= status < 300:
        return
    if status in (429, 503) and retry_after is not None:
        raise RateLimited(
            f"{what} answered HTTP {status} (Retry-After {retry_after:g} s)", retry_after
        )
    if status == 429 or status >= 500 or status == 408:
        raise TemporaryFailure(f"{what} answered HTTP {status}", retry_after)
    if status in PERMANENT_HTTP or 300 <= status < 500:
        raise PermanentFailure(f"{what} answered HTTP {status}")
    raise TemporaryFailure(f"{what} answered HTTP {status}", retry_after)  # pragma: no cover


async def _post(
    poster: Poster, url: str, body: bytes, headers: Mapping[str, str], what: str
) -> PostResponse:
    try:
        result = await poster.post(url, body=body, headers=headers)
    except PostFailed as e:
        message = scrub(str(e), url)
        raise (PermanentFailure(message) if e.permanent else TemporaryFailure(message)) from e
    classify_status(result.status, result.retry_after, what)
    return result


@dataclass(frozen=True, slots=True)
class SlackChannel:
    """Slack incoming webhooks.

    URL rule: `https://hooks.slack.com/…` (or hooks.slack-gov.com) always;
    any other URL only when its host is, or resolves to, non-public addresses
    that NEWSWATCH_ALLOW_PRIVATE_ADDRESSES permits (a relay or a test
    endpoint). Everything else is a permanent failure: a typo must not send
    alert text to an arbitrary host.
    """

    poster: Poster
    # Whether a non-public address may be posted to (NEWSWATCH_ALLOW_PRIVATE_ADDRESSES),
    # given by the root: alerts knows nothing of the crawler's address policy.
    permits_private: Callable[[IPAddress], bool]

    async def send(self, url: str, body: bytes) -> None:
        await self.check_url(url)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        await _post(self.poster, url, body, headers, f"Slack ({mask_secret(url)})")

    async def check_url(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as e:
            raise PermanentFailure(f"invalid Slack URL {mask_secret(url)}") from e
        if parts.scheme == "https" and host in SLACK_HOSTS:
            return
        if host and await self._private_and_permitted(host, parts.port or 443):
            return
        raise PermanentFailure(
            f"Slack URL {mask_secret(url)} refused: use https://hooks.slack.com/… "
            "(other hosts only on addresses NEWSWATCH_ALLOW_PRIVATE_ADDRESSES permits)"
        )

    async def _private_and_permitted(self, host: str, port: int) -> bool:
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except OSError:
                return False
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        return bool(addresses) and all(self.permits_private(ip) for ip in addresses)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` under the recipient's secret.

    The timestamp is inside the signed bytes (as Slack and Stripe do), so a
    captured delivery cannot be replayed later with a fresh timestamp: the
    receiver recomputes the HMAC over the header's timestamp, a dot and the
    raw body, compares in constant time, and refuses timestamps outside its
    window (README: 5 minutes).
    """
    signed = timestamp.encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float, window: float = 300.0
) -> bool:
    """What a receiver does: a fresh timestamp and a matching signature.
    The reference for the README and the test receiver."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    return age <= window and hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    """JSON webhooks. `X-Newswatch-Timestamp` is Unix seconds; with a secret,
    `X-Newswatch-Signature: sha256=<hex>` is the HMAC-SHA256 of
    `<timestamp>.<exact body bytes>` (see `sign`), so the timestamp cannot be
    changed without the secret. The HttpClient applies the SSRF guard."""

    poster: Poster

    async def send(
        self, url: str, body: bytes, *, secret: str | None = None, timestamp: float | None = None
    ) -> None:
        ts = str(int(time.time() if timestamp is None else timestamp))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: ts,
        }
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, ts, body)
        await _post(self.poster, url, body, headers, f"webhook {mask_secret(url)}")


# ---------------------------------------------------------------- email


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """A parsed NEWSWATCH_SMTP_URL."""

    host: str
    port: int
    tls: bool  # smtps: TLS from the start
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """smtp://[user:pass@]host[:port] (port 25) or smtps://… (port 465)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise PermanentFailure("NEWSWATCH_SMTP_URL is not a valid URL") from e
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise PermanentFailure("NEWSWATCH_SMTP_URL must be smtp://host[:port] or smtps://…")
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if tls else 25),
            tls=tls,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    @property
    def loopback(self) -> bool:
        return self.host in ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class EmailChannel:
    """SMTP through smtplib in a worker thread.

    STARTTLS is used whenever the server offers it; credentials are sent only
    over TLS (or to a loopback relay). The envelope recipient is passed
    explicitly, so headers never decide who receives the message.
    """

    target: SmtpTarget
    mail_from: str
    timeout: float = SMTP_TIMEOUT
    tls_context: ssl.SSLContext | None = None

    async def send(self, message: EmailMessage, to: str) -> None:
        await asyncio.to_thread(self._send_sync, message, to)

    def _send_sync(self, message: EmailMessage, to: str) -> None:
        try:
            with self._connect() as smtp:
                smtp.send_message(message, from_addr=self.mail_from, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as e:
            code, reply = next(iter(e.recipients.values()), (550, b""))
            raise _smtp_failure(code, reply, f"recipient {to} refused") from e
        except smtplib.SMTPAuthenticationError as e:
            raise TemporaryFailure(f"SMTP login refused ({e.smtp_code})") from e
        except smtplib.SMTPResponseException as e:
            raise _smtp_failure(e.smtp_code, e.smtp_error, "SMTP server refused the message") from e
        except (smtplib.SMTPException, OSError) as e:  # refused, reset, timeout, TLS
            detail = scrub(" ".join(str(e).split()) or type(e).__name__, self.target.password)
            raise TemporaryFailure(
                f"SMTP {self.target.host}:{self.target.port}: {type(e).__name__}: {detail}"[:300]
            ) from e

    def probe(self) -> None:
        """Connect, EHLO, STARTTLS and log in as a send would, then QUIT: no
        mail. DeliveryError (one line, no password) when any step fails."""
        try:
            with self._connect() as smtp:
                smtp.noop()
        except smtplib.SMTPAuthenticationError as e:
            raise PermanentFailure(f"SMTP login refused ({e.smtp_code})") from e
        except (smtplib.SMTPException, OSError) as e:
            detail = scrub(" ".join(str(e).split()) or type(e).__name__, self.target.password)
            raise TemporaryFailure(
                f"SMTP {self.target.host}:{self.target.port}: {type(e).__name__}: {detail}"[:300]
            ) from e

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        context = self.tls_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if t.tls:
            smtp = smtplib.SMTP_SSL(t.host, t.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(t.host, t.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            secure = t.tls
            if not t.tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
                secure = True
            if t.user is not None:
                if not secure and not t.loopback:
                    raise PermanentFailure(
                        "refusing to send SMTP credentials without TLS "
                        "(the server offers no STARTTLS; use smtps://)"
                    )
                smtp.login(t.user, t.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp


def _smtp_failure(code: int, reply: bytes | str, what: str) -> DeliveryError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"{what}: {code} {' '.join(text.split())}"[:300]
    if 400 <= code < 500:
        return TemporaryFailure(message)
    return PermanentFailure(message)
