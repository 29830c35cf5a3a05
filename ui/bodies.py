"""Request bodies as they arrive: counted while they stream, never held whole for an upload, stopped
when they go quiet, a few open at a time per address, and a quota of bytes and of files per address
per window.

Files are counted as the multipart body streams (each part that names a `filename`): a form of a
thousand ten-byte files cost Gradio a thousand folders for 10 kB of the byte quota, so one address
made 19,000 folders in 8 s. An upload may carry `files_per_upload` files, an address
`quota_files` per window.

An upload is passed on to Gradio chunk by chunk (its parser writes each to disk), so a held upload
costs a connection, not its size in memory; a JSON body is at most `Limits.request_bytes`. Either is
stopped when it exceeds its cap, sends nothing for `idle_seconds`, or takes its address past its
quota. A stopped upload raises Starlette's `MultiPartException` inside Gradio's parser, which deletes
its partial file and answers with our message; `BodyGate.status` then gives the answer its status.

    gate = BodyGate(open_per_address={"upload": 4, "request": 32}, idle_seconds=20, quota_bytes=300_000_000,
                    quota_files=1000, files_per_upload=4, window_seconds=600)
    refusal = gate.enter(address, "upload")   # None, or a Refusal(status, message, retry_after)
    receive = gate.counted(receive, address=address, cap=20_000_000, files=True)
    ...                                    # the app reads from `receive`
    gate.leave(address, "upload")
"""

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from starlette.formparsers import MultiPartException

FILENAME = b"filename"  # in a part's Content-Disposition (also as `filename*`), in any case


class Refusal(NamedTuple):
    """An answer instead of the request: its status, the message, and for a 429 the seconds after which
    a retry can pass (sent as `Retry-After`)."""

    status: int
    message: str
    retry_after: int | None = None


class BodyStopped(MultiPartException):
    """A body stopped while streaming: `refusal` is the answer the client gets."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message)
        self.refusal = refusal
        self.status = refusal.status


class BodyGate:
    """Args:
        open_per_address: bodies one address may be sending at once, by kind ("upload", "request").
        idle_seconds: a body that sends nothing for this long is stopped (408).
        quota_bytes: bytes one address may send in `window_seconds` (a sliding window), then 429.
        quota_files: files one address may upload in that window, then 429.
        files_per_upload: files one upload request may carry, then 413.
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, *, open_per_address: dict[str, int], idle_seconds: float, quota_bytes: int,
                 window_seconds: float, quota_files: int = 1 << 30, files_per_upload: int = 1 << 30,
                 clock: Callable[[], float] = time.monotonic):
        self.open_per_address, self.idle_seconds = open_per_address, idle_seconds
        self.quota_bytes, self.window_seconds, self.clock = quota_bytes, window_seconds, clock
        self.quota_files, self.files_per_upload = quota_files, files_per_upload
        self._open: dict[tuple[str, str], int] = defaultdict(int)  # (address, kind) -> bodies open
        # per address, [start, bytes, files] buckets of a sixtieth of the window, oldest first: bounded
        # memory however many chunks arrive, and the quota is exact to within one bucket's time
        self._spent: dict[str, deque[list]] = defaultdict(deque)
        self._bucket = window_seconds / 60
        self._next_sweep = 0.0

    def _add(self, address: str, n: int, files: int = 0) -> None:
        now, entries = self.clock(), self._spent[address]
        if entries and now - entries[-1][0] < self._bucket:
            entries[-1][1] += n
            entries[-1][2] += files
        else:
            entries.append([now, n, files])

    def _sweep(self) -> None:
        """Forget the addresses that sent nothing within the window (at most once a bucket)."""
        now = self.clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._bucket
        for address in [a for a, entries in self._spent.items() if entries[-1][0] < now - self.window_seconds]:
            del self._spent[address]

    def spent(self, address: str) -> tuple[int, int]:
        """Bytes and files `address` sent within the window."""
        entries = self._spent.get(address)
        cutoff = self.clock() - self.window_seconds
        while entries and entries[0][0] < cutoff:
            entries.popleft()
        if not entries:
            self._spent.pop(address, None)
            return 0, 0
        return sum(e[1] for e in entries), sum(e[2] for e in entries)

    def quota_refusal(self, address: str, coming: int = 0, coming_files: int = 0) -> Refusal | None:
        """A 429 when `address` has spent its bytes or its files (with `coming` and `coming_files` more),
        with the seconds until enough of the window has passed for them to fit."""
        sent, files = self.spent(address)
        over_bytes, over_files = sent + coming > self.quota_bytes, files + coming_files > self.quota_files
        if not (over_bytes or over_files):
            return None
        wait = self.wait(address, bytes_needed=sent + coming - self.quota_bytes if over_bytes else 0,
                         files_needed=files + coming_files - self.quota_files if over_files else 0)
        minutes = self.window_seconds / 60
        what = (f"sent {sent / 1e6:.0f} MB in the last {minutes:.0f} minutes; the limit is "
                f"{self.quota_bytes / 1e6:.0f} MB" if over_bytes else
                f"uploaded {files:,} files in the last {minutes:.0f} minutes; the limit is {self.quota_files:,}")
        return Refusal(429, f"your address has {what}: retry in about {wait} s", wait)

    def wait(self, address: str, *, bytes_needed: int, files_needed: int) -> int:
        """Whole seconds until the window has dropped at least the bytes and files needed."""
        now, freed_bytes, freed_files = self.clock(), 0, 0
        for start, n, files in self._spent.get(address, ()):
            freed_bytes, freed_files = freed_bytes + n, freed_files + files
            if freed_bytes >= bytes_needed and freed_files >= files_needed:
                return max(1, int(start + self.window_seconds - now) + 1)
        return int(self.window_seconds)

    def enter(self, address: str, kind: str, declared: int = 0) -> Refusal | None:
        """Let a body of `kind` from `address` (that says it carries `declared` bytes) start, or why not."""
        self._sweep()
        sending, limit = self._open.get((address, kind), 0), self.open_per_address[kind]
        if sending >= limit:
            return Refusal(429, f"busy: your address is already sending {sending} {kind}s (the limit is {limit}); "
                                "send the next when one has finished", 2)  # an upload takes a second or two
        refusal = self.quota_refusal(address, declared, 1 if kind == "upload" else 0)  # an upload holds a file
        if refusal:
            return refusal
        self._open[address, kind] += 1
        return None

    def leave(self, address: str, kind: str) -> None:
        self._open[address, kind] -= 1
        if self._open[address, kind] <= 0:
            del self._open[address, kind]

    def counted(self, receive: Callable[[], Awaitable[dict]], *, address: str, cap: int, too_large: str,
                files: bool = False) -> "CountedBody":
        """`receive`, counting the body's bytes against `cap` (`too_large` is the message past it) and
        the address's quota, and with `files` (a multipart upload) its files against theirs; stopping a
        body that goes quiet."""
        return CountedBody(self, receive, address=address, cap=cap, too_large=too_large, files=files)


class CountedBody:
    """An ASGI `receive` that counts what it passes on; raises `BodyStopped`, and keeps it in `stopped`."""

    def __init__(self, gate: BodyGate, receive: Callable[[], Awaitable[dict]], *, address: str, cap: int,
                 too_large: str, files: bool = False):
        self.gate, self.receive, self.address, self.cap, self.too_large = gate, receive, address, cap, too_large
        self.count_files = files
        self.size = self.files = 0
        self._tail = b""  # the end of the last chunk: a `filename` split between two chunks is still seen
        self.stopped: BodyStopped | None = None

    async def __call__(self) -> dict:
        try:
            message = await asyncio.wait_for(self.receive(), self.gate.idle_seconds)
        except TimeoutError:
            self.stop(Refusal(408, f"the request sent nothing for {self.gate.idle_seconds:.0f} s and was stopped: "
                                   "send it again in one go"))
        body = message.get("body", b"")
        if body:
            self.size += len(body)
            files = self._files_in(body) if self.count_files else 0
            self.files += files
            self.gate._add(self.address, len(body), files)
            if self.size > self.cap:
                self.stop(Refusal(413, self.too_large))
            if self.files > self.gate.files_per_upload:
                self.stop(Refusal(413, f"an upload may carry {self.gate.files_per_upload} files; this one carries "
                                       "more: send them in separate uploads"))
            refusal = self.gate.quota_refusal(self.address)
            if refusal:
                self.stop(refusal)
        return message

    def _files_in(self, body: bytes) -> int:
        seen = self._tail + body[:len(FILENAME) - 1]
        found = seen.lower().count(FILENAME) + body.lower().count(FILENAME)
        self._tail = body[-(len(FILENAME) - 1):]
        return found

    def stop(self, refusal: Refusal):
        self.stopped = BodyStopped(refusal)
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
