"""A real local HTTP server for tests: routes map a path to a handler.

A handler gets the request and returns (status, headers, body), where body is
bytes or an iterable of bytes (streamed, optionally slowly). Every request is
recorded so tests can assert what was sent (conditional GET headers, counts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Response = tuple[int, dict[str, str], bytes | Iterable[bytes]]
Handler = Callable[[Request], Response]


class BusyHTTPServer(ThreadingHTTPServer):
    """A threading server with a real listen backlog: Python's default of 5
    drops SYNs when dozens of clients connect at once, and the kernel's
    retries (1 s, 3 s, 7 s) then look like slow responses to the crawler."""

    request_queue_size = 256
    daemon_threads = True


@dataclass
class LocalHTTPServer:
    host: str = "127.0.0.1"
    routes: dict[str, Handler | Response] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def route(self, path: str, response: Handler | Response) -> str:
        self.routes[path] = response
        return self.url(path)

    def serve(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "application/xml",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        data = body.encode() if isinstance(body, str) else body
        return self.route(path, (status, {"Content-Type": content_type, **(headers or {})}, data))

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def start(self) -> LocalHTTPServer:
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    self.command, self.path, {k: v for k, v in self.headers.items()}, body
                )
                outer.requests.append(req)
                path_only = self.path.split("?", 1)[0]
                target = outer.routes.get(self.path, outer.routes.get(path_only))
                if target is None:
                    status, headers, payload = 404, {"Content-Type": "text/plain"}, b"not found"
                else:
                    status, headers, payload = target(req) if callable(target) else target
                try:
                    self.send_response(status)
                    if isinstance(payload, bytes | bytearray):
                        if not any(k.lower() == "content-length" for k in headers):
                            headers = {**headers, "Content-Length": str(len(payload))}
                        for k, v in headers.items():
                            self.send_header(k, v)
                        self.end_headers()
                        if self.command != "HEAD":
                            self.wfile.write(payload)
                    else:
                        for k, v in headers.items():
                            self.send_header(k, v)
                        if not any(k.lower() == "content-length" for k in headers):
                            self.send_header("Connection", "close")
                        self.end_headers()
                        for chunk in payload:
                            self.wfile.write(chunk)
                            self.wfile.flush()
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_HEAD = do_PUT = _handle

        self._server = BusyHTTPServer((self.host, 0), H)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def trickle(data: bytes, every: float) -> Iterable[bytes]:
    """Yield one byte at a time, `every` seconds apart (a hostile slow server)."""
    for i in range(len(data)):
        time.sleep(every)
        yield data[i : i + 1]
