"""Email over TLS against a real local aiosmtpd: STARTTLS when offered,
smtps:// from the start, credentials only inside TLS, and a certificate the
client does not trust is a (temporary) failure, never a plain-text fallback."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from alerts.channels import EmailChannel, SmtpTarget, TemporaryFailure


def _is_tls(server: Any) -> bool:
    """Whether the connection is encrypted, asked of the transport itself."""
    return server.transport.get_extra_info("ssl_object") is not None


@dataclass
class TLSRecorder:
    seen: list[tuple[bool, bytes]] = field(default_factory=list)  # (was TLS, body)
    logins: list[tuple[bool, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.seen.append((_is_tls(server), bytes(envelope.content)))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((_is_tls(server), data.login.decode()))
        return AuthResult(success=(data.login, data.password) == (b"ana", b"pw"), handled=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    return ctx


def _client_ctx(ca: trustme.CA | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if ca is not None:
        ca.configure_trust(ctx)
    return ctx


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "[air-defence] Pantsir"
    msg["From"] = "nw@example.org"
    msg["To"] = "analyst@example.org"
    msg.set_content("Pantsir spotted")
    return msg


def _serve(**tls: Any) -> Iterator[tuple[TLSRecorder, int]]:
    rec = TLSRecorder()
    port = _port()
    ctl = Controller(rec, hostname="127.0.0.1", port=port, authenticator=rec.authenticate, **tls)
    ctl.start()
    yield rec, port
    ctl.stop()


@pytest.fixture
def starttls_server(ca: trustme.CA) -> Iterator[tuple[TLSRecorder, int]]:
    yield from _serve(tls_context=_server_ctx(ca), require_starttls=True, auth_require_tls=True)


@pytest.fixture
def smtps_server(ca: trustme.CA) -> Iterator[tuple[TLSRecorder, int]]:
    # aiosmtpd's auth_require_tls only knows STARTTLS; this socket is TLS from the start
    yield from _serve(ssl_context=_server_ctx(ca), auth_require_tls=False)


def send(channel: EmailChannel) -> None:
    asyncio.run(channel.send(_message(), "analyst@example.org"))


def test_starttls_is_used_when_offered_and_login_happens_inside_it(
    ca: trustme.CA, starttls_server: tuple[TLSRecorder, int]
) -> None:
    rec, port = starttls_server
    target = SmtpTarget.parse(f"smtp://ana:pw@127.0.0.1:{port}")
    send(EmailChannel(target, "nw@example.org", timeout=10, tls_context=_client_ctx(ca)))
    assert rec.logins == [(True, "ana")]
    assert [tls for tls, _ in rec.seen] == [True]
    assert b"Pantsir spotted" in rec.seen[0][1]


def test_smtps_is_tls_from_the_start(ca: trustme.CA, smtps_server: tuple[TLSRecorder, int]) -> None:
    rec, port = smtps_server
    target = SmtpTarget.parse(f"smtps://ana:pw@127.0.0.1:{port}")
    assert target.tls
    send(EmailChannel(target, "nw@example.org", timeout=10, tls_context=_client_ctx(ca)))
    assert rec.logins == [(True, "ana")] and [tls for tls, _ in rec.seen] == [True]


def test_untrusted_certificate_fails_without_falling_back_to_plain_text(
    starttls_server: tuple[TLSRecorder, int],
) -> None:
    rec, port = starttls_server
    target = SmtpTarget.parse(f"smtp://ana:pw@127.0.0.1:{port}")
    with pytest.raises(TemporaryFailure, match=r"SSL|certificate") as err:
        send(EmailChannel(target, "nw@example.org", timeout=10, tls_context=_client_ctx(None)))
    assert "pw" not in str(err.value).replace("SMTP", "")
    assert rec.seen == [] and rec.logins == []
