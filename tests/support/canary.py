"""A TCP listener that only counts connections: proof that no request was sent.

Tests of the SSRF guard point refused URLs at a canary; `connections` must
stay 0. It also serves as a generator of compression bombs for fetch tests.
"""

from __future__ import annotations

import socket
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Canary:
    host: str = "127.0.0.1"
    family: socket.AddressFamily = socket.AF_INET
    connections: int = 0
    _sock: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def start(self) -> Canary:
        self._sock = socket.socket(self.family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self._sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            conn.close()

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()


def gzip_bomb(total: int, block: int = 1 << 20) -> Iterator[bytes]:
    """A gzip stream of `total` zero bytes, generated in ~1 kB pieces (no trailer).

    After a full flush the compressor's output for each identical block is
    identical, so the stream costs almost nothing to produce.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(block)
    yield compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    for _ in range(total // block - 1):
        yield piece
