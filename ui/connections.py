"""Connections below HTTP: a request's head must arrive within a time, and one address may hold a
number of connections at once. A client that sent its headers one byte every 5 s held a connection
for ever (3,000 of them from one address on loopback): uvicorn, which Gradio runs, has no header
timeout, and the request guard sees a request only once its head is whole.

    install(header_seconds=10, per_address=64)   # before launch: the servers started afterwards use it

uvicorn builds its HTTP protocol from `uvicorn.config.HTTP_PROTOCOLS[config.http]` ("auto" for
Gradio's server), an import string; `install` points "auto" at `GuardedHTTP`, a subclass of the
protocol "auto" would have chosen. That table is uvicorn's own: `problems()` says when it is gone
(tests/test_connections.py asks).
"""

import asyncio
from collections import defaultdict

HEAD_END = b"\r\n\r\n"  # the blank line that ends a request's head


def _base() -> type:
    from uvicorn.protocols.http.auto import AutoHTTPProtocol  # h11's, or httptools' where installed

    return AutoHTTPProtocol


class GuardedHTTP(_base()):
    """uvicorn's HTTP protocol with a deadline for each request's head (armed at the connection and at
    the first byte of each later request on it) and a cap on connections per peer address. Set by
    `install`; `per_address` None: no cap (behind a proxy every connection comes from its address)."""

    header_seconds: float = 10.0
    per_address: int | None = None
    open: dict[str, int] = defaultdict(int)

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._peer = self.client[0] if self.client else "?"
        self._tail, self._waiting, self._timer = b"", True, None
        GuardedHTTP.open[self._peer] += 1
        if self.per_address is not None and GuardedHTTP.open[self._peer] > self.per_address:
            transport.close()  # over the address's share: closed before a byte is read
            return
        self._timer = self.loop.call_later(self.header_seconds, self._too_slow)

    def _too_slow(self) -> None:
        self._timer = None
        if self._waiting and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._waiting:
            if self._timer is None:  # the first byte of a later request on a kept-alive connection
                self._timer = self.loop.call_later(self.header_seconds, self._too_slow)
            seen = self._tail + data
            if HEAD_END in seen:
                self._waiting = False
                self._timer.cancel()
                self._timer = None
            self._tail = seen[-(len(HEAD_END) - 1):]
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._waiting, self._tail = True, b""  # the next request's head is timed from its first byte

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        GuardedHTTP.open[self._peer] -= 1
        if GuardedHTTP.open[self._peer] <= 0:
            del GuardedHTTP.open[self._peer]
        super().connection_lost(exc)


def install(*, header_seconds: float, per_address: int | None) -> None:
    """Every uvicorn server configured afterwards with http="auto" uses `GuardedHTTP` with these."""
    import uvicorn.config

    GuardedHTTP.header_seconds, GuardedHTTP.per_address = header_seconds, per_address
    uvicorn.config.HTTP_PROTOCOLS["auto"] = f"{__name__}:GuardedHTTP"


def problems() -> list[str]:
    """The parts of uvicorn relied on that the installed one lacks, named."""
    import uvicorn.config

    found = [] if isinstance(getattr(uvicorn.config, "HTTP_PROTOCOLS", None), dict) else \
        ["uvicorn.config.HTTP_PROTOCOLS"]
    found += [f"{_base().__name__}.{name}" for name in ("on_response_complete", "connection_made", "data_received",
                                                          "connection_lost") if not hasattr(_base(), name)]
    return found
