"""Request bodies as they arrive: counted while they stream, never held whole for an upload, stopped
when they go quiet, a few open at a time per address, and a quota of bytes per address per window.

An upload is passed on to Gradio chunk by chunk (its parser writes each to disk), so a held upload
costs a connection, not its size in memory; a JSON body is at most `Limits.request_bytes`. Either is
stopped when it exceeds its cap, sends nothing for `idle_seconds`, or takes its address past its
quota. A stopped upload raises Starlette's `MultiPartException` inside Gradio's parser, which deletes
its partial file and answers with our message; `BodyGate.status` then gives the answer its status.

    gate = BodyGate(open_per_address={"upload": 4, "request": 32}, idle_seconds=20, quota_bytes=300_000_000,
                    window_seconds=600)
    refusal = gate.enter(address, "upload")   # None, or (status, message)
    receive = gate.counted(receive, address=address, cap=20_000_000)
    ...                                    # the app reads from `receive`
    gate.leave(address, "upload")
"""

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable

from starlette.formparsers import MultiPartException


class BodyStopped(MultiPartException):
    """A body stopped while streaming: `status` and `message` are the answer the client gets."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class BodyGate:
    """Args:
        open_per_address: bodies one address may be sending at once, by kind ("upload", "request").
        idle_seconds: a body that sends nothing for this long is stopped (408).
        quota_bytes: bytes one address may send in `window_seconds` (a sliding window), then 429.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, *, open_per_address: dict[str, int], idle_seconds: float, quota_bytes: int, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        self.open_per_address, self.idle_seconds = open_per_address, idle_seconds
        self.quota_bytes, self.window_seconds, self.clock = quota_bytes, window_seconds, clock
        self._open: dict[tuple[str, str], int] = defaultdict(int)  # (address, kind) -> bodies open
        # per address, [start, bytes] buckets of a sixtieth of the window, oldest first: bounded memory
        # however many chunks arrive, and the quota is exact to within one bucket's time
        self._spent: dict[str, deque[list]] = defaultdict(deque)
        self._bucket = window_seconds / 60
        self._next_sweep = 0.0

    def _add(self, address: str, n: int) -> None:
        now, entries = self.clock(), self._spent[address]
        if entries and now - entries[-1][0] < self._bucket:
            entries[-1][1] += n
        else:
            entries.append([now, n])

    def _sweep(self) -> None:
        """Forget the addresses that sent nothing within the window (at most once a bucket)."""
        now = self.clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._bucket
        for address in [a for a, entries in self._spent.items() if entries[-1][0] < now - self.window_seconds]:
            del self._spent[address]

    def spent(self, address: str) -> int:
        """Bytes `address` sent within the window."""
        entries = self._spent.get(address)
        cutoff = self.clock() - self.window_seconds
        while entries and entries[0][0] < cutoff:
            entries.popleft()
        if not entries:
            self._spent.pop(address, None)
            return 0
        return sum(n for _, n in entries)

    def quota_refusal(self, address: str, coming: int = 0) -> tuple[int, str] | None:
        spent = self.spent(address)
        if spent + coming <= self.quota_bytes:
            return None
        entries = self._spent.get(address)
        wait = int(entries[0][0] + self.window_seconds - self.clock()) + 1 if entries else 1
        return 429, (f"your address has sent {spent / 1e6:.0f} MB in the last {self.window_seconds / 60:.0f} "
                     f"minutes; the limit is {self.quota_bytes / 1e6:.0f} MB: retry in about {wait} s")

    def enter(self, address: str, kind: str, declared: int = 0) -> tuple[int, str] | None:
        """Let a body of `kind` from `address` (that says it carries `declared` bytes) start, or why not."""
        self._sweep()
        sending, limit = self._open.get((address, kind), 0), self.open_per_address[kind]
        if sending >= limit:
            return 429, (f"busy: your address is already sending {sending} {kind}s (the limit is {limit}); "
                         "send the next when one has finished")
        refusal = self.quota_refusal(address, declared)
        if refusal:
            return refusal
        self._open[address, kind] += 1
        return None

    def leave(self, address: str, kind: str) -> None:
        self._open[address, kind] -= 1
        if self._open[address, kind] <= 0:
            del self._open[address, kind]

    def counted(self, receive: Callable[[], Awaitable[dict]], *, address: str, cap: int,
                too_large: str) -> "CountedBody":
        """`receive`, counting the body's bytes against `cap` (`too_large` is the message past it) and
        the address's quota, and stopping a body that goes quiet."""
        return CountedBody(self, receive, address=address, cap=cap, too_large=too_large)


class CountedBody:
    """An ASGI `receive` that counts what it passes on; raises `BodyStopped`, and keeps it in `stopped`."""

    def __init__(self, gate: BodyGate, receive: Callable[[], Awaitable[dict]], *, address: str, cap: int,
                 too_large: str):
        self.gate, self.receive, self.address, self.cap, self.too_large = gate, receive, address, cap, too_large
        self.size = 0
        self.stopped: BodyStopped | None = None

    async def __call__(self) -> dict:
        try:
            message = await asyncio.wait_for(self.receive(), self.gate.idle_seconds)
        except TimeoutError:
            self.stop(408, f"the request sent nothing for {self.gate.idle_seconds:.0f} s and was stopped: "
                           "send it again in one go")
        chunk = len(message.get("body", b""))
        if chunk:
            self.size += chunk
            self.gate._add(self.address, chunk)
            if self.size > self.cap:
                self.stop(413, self.too_large)
            refusal = self.gate.quota_refusal(self.address)
            if refusal:
                self.stop(*refusal)
        return message

    def stop(self, status: int, message: str):
        self.stopped = BodyStopped(status, message)
        raise self.stopped


async def read_body(receive: Callable[[], Awaitable[dict]]) -> bytes | None:
    """The whole body from `receive` (chunks joined once at the end); None when the client left."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)
