"""Webhook and Slack URLs with an IPv6 literal host (issue #16): delivered when
the address policy permits the address, refused (before connecting) when it
does not. A real receiver on [::1], through the real HttpClient."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from alerts import render
from alerts.channels import PermanentFailure, SlackChannel, WebhookChannel
from crawler.addresses import AddressPolicy
from scheduler.http_poster import permits_private
from tests.integration.test_channels import M, _signature_ok, run
from tests.support.httpserver import Request


class _V6Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True


@pytest.fixture
def v6_receiver() -> Iterator[tuple[int, list[Request]]]:
    seen: list[Request] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(Request("POST", self.path, dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    try:
        server = _V6Server(("::1", 0), Handler)
    except OSError as e:  # pragma: no cover - a host without IPv6 loopback
        pytest.skip(f"no IPv6 loopback: {e}")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


HOSTS = ["[::1]", "[0:0:0:0:0:0:0:1]", "[0000:0000:0000:0000:0000:0000:0000:0001]", "[0::1]"]
PERMIT = AddressPolicy.parse("::1")
DENY = [AddressPolicy.parse("false"), AddressPolicy.parse("127.0.0.1"), AddressPolicy.parse("::2")]


@pytest.mark.parametrize("host", HOSTS)
def test_webhook_to_ipv6_literal(host: str, v6_receiver: tuple[int, list[Request]]) -> None:
    port, seen = v6_receiver
    url = f"http://{host}:{port}/hook?token=t0k3n"
    body = render.webhook_body(M)
    run(lambda c: WebhookChannel(c).send(url, body, secret="k3y"), policy=PERMIT)
    [got] = seen
    assert got.path == "/hook?token=t0k3n" and got.body == body
    assert _signature_ok("k3y", got, float(got.headers["X-Newswatch-Timestamp"]))
    for policy in DENY:
        with pytest.raises(PermanentFailure, match="refused") as e:
            run(lambda c: WebhookChannel(c).send(url, body), policy=policy)
        assert "t0k3n" not in str(e.value)
    assert len(seen) == 1


@pytest.mark.parametrize("host", HOSTS)
def test_slack_to_ipv6_literal(host: str, v6_receiver: tuple[int, list[Request]]) -> None:
    port, seen = v6_receiver
    url = f"http://{host}:{port}/services/T/B/X"
    body = b'{"text": "hi"}'
    run(lambda c: SlackChannel(c, permits_private(PERMIT)).send(url, body), policy=PERMIT)
    assert [r.body for r in seen] == [body]
    for policy in DENY:
        with pytest.raises(PermanentFailure):
            run(
                lambda c, p=policy: SlackChannel(c, permits_private(p)).send(url, body),
                policy=policy,
            )
    assert len(seen) == 1
