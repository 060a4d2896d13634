"""A real local SMTP server (aiosmtpd) that records what it accepts.

Variants for failure tests: `fail_first=N` answers 451 to the first N
messages then accepts; `reject={"x@y"}` refuses those recipients with 550.
Optional AUTH (PLAIN/LOGIN) with one user, allowed without TLS on loopback.
"""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class RecordingHandler:
    fail_first: int = 0
    reject: set[str] = field(default_factory=set)
    messages: list[Received] = field(default_factory=list)
    attempts: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.reject:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return "451 4.3.0 try again later"
        self.messages.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
            )
        )
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(
    *,
    fail_first: int = 0,
    reject: set[str] | None = None,
    auth: tuple[str, str] | None = None,
) -> Iterator[tuple[RecordingHandler, str]]:
    """Start a server; yield (handler, NEWSWATCH_SMTP_URL for it)."""
    handler = RecordingHandler(fail_first=fail_first, reject=set(reject or ()))
    port = _free_port()
    kwargs: dict[str, Any] = {}
    if auth is not None:

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == auth
            )
            return AuthResult(success=ok, handled=False)

        kwargs = {"authenticator": authenticator, "auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        cred = f"{auth[0]}:{auth[1]}@" if auth else ""
        yield handler, f"smtp://{cred}127.0.0.1:{port}"
    finally:
        controller.stop()
