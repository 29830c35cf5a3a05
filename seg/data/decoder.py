"""Image files decoded in child processes, each ended at its caller's deadline and replaced.

Pillow decodes in C, where no deadline check can reach: a crafted file held a thread for minutes
after its request's deadline had passed. Here the decoding runs in a child process (numpy and
Pillow only, no torch: it starts quickly) that the caller waits on in short slices, asking
`seg.deadline.check` between them; past the deadline, or when the job is stopped, the child is
killed, a fresh one takes its place, and the caller gets the deadline's own error. The child also
shrinks the photo to the working size, so the caller receives a few megabytes however large the
file, and its memory is capped so that one file cannot take the server's.

    decoder = Decoder(workers=2, memory_bytes=3 << 30)
    with deadline(60, "segmenting"):
        photo = decoder.photo(path, max_side=1024, max_pixels=50_000_000)   # a LoadedPhoto
        raw = decoder.labels(path, max_pixels=50_000_000, lossless=True)    # (H, W) or (H, W, C)
    decoder.close()

Run as `python -m seg.data.decoder`, this module is the child: it reads requests from stdin and
writes answers to stdout, each a length-prefixed pickle, until stdin closes.
"""

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from ..deadline import check
from .io import read_raw, resize_labels
from .photos import LoadedPhoto, load_photo

SLICE = 0.05  # seconds between deadline checks while a child works: how late a stop can be
_HEADER = struct.Struct(">Q")


def _labels(path: str, *, max_pixels: int | None, lossless: bool, fit: tuple[int, int] | None,
            max_side: int | None) -> np.ndarray:
    raw = read_raw(path, max_pixels=max_pixels, lossless=lossless)
    if fit is not None and raw.shape[:2] != tuple(fit) and max(raw.shape[:2]) > max_side:  # the photo was shrunk
        raw = resize_labels(raw, fit)
    return raw


TASKS = {"photo": load_photo, "labels": _labels}  # what a child will run, by name: nothing else


class DecoderFailed(RuntimeError):
    """The child ended without an answer (killed for memory, or crashed)."""


class _Child:
    """One child process and its pipes."""

    def __init__(self, memory_bytes: int | None):
        root = Path(__file__).resolve().parents[2]  # `-m` finds seg from here, whatever the server's folder
        self.process = subprocess.Popen([sys.executable, "-m", "seg.data.decoder", str(memory_bytes or 0)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root)

    def send(self, request: bytes) -> None:
        self.process.stdin.write(_HEADER.pack(len(request)) + request)
        self.process.stdin.flush()

    def receive(self) -> object:
        """The answer, waiting in slices of SLICE with `check()` between them (which may raise)."""
        size = _HEADER.unpack(self._read(_HEADER.size))[0]
        return pickle.loads(self._read(size))

    def _read(self, size: int) -> bytes:
        fd, chunks, got = self.process.stdout.fileno(), [], 0
        ready = select.poll()  # not select(): a busy server's descriptors pass 1024, which select() refuses
        ready.register(fd, select.POLLIN | select.POLLHUP)
        while got < size:
            if not ready.poll(SLICE * 1000):
                check()
                continue
            chunk = os.read(fd, min(size - got, 1 << 20))
            if not chunk:
                raise DecoderFailed("the decoding process ended without an answer")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            pipe.close()


class Decoder:
    """Args:
        workers: children at most, so decodings at once; a caller waits (under its deadline) for one.
        memory_bytes: each child's address-space cap (None: none); a file that needs more is refused.
    Thread-safe. Children start on first use and live until `close`, or until one is killed."""

    def __init__(self, *, workers: int, memory_bytes: int | None = None):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.memory_bytes = memory_bytes
        self._slots = threading.Semaphore(workers)
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = False
        self.killed = 0  # children ended at a deadline or a stop (for tests and the log)

    def photo(self, path: str | os.PathLike, *, max_side: int, max_pixels: int | None) -> LoadedPhoto:
        """`seg.data.photos.load_photo` in a child: the photo at its working size and its own size."""
        return self.run("photo", path=os.path.abspath(path), max_side=max_side, max_pixels=max_pixels)

    def labels(self, path: str | os.PathLike, *, max_pixels: int | None, lossless: bool = True,
               fit: tuple[int, int] | None = None, max_side: int | None = None) -> np.ndarray:
        """`seg.data.io.read_raw` in a child; with `fit` (H, W), a file larger than `max_side` on its
        longer side is resized to it (nearest neighbour), as its photo was."""
        return self.run("labels", path=os.path.abspath(path), max_pixels=max_pixels, lossless=lossless, fit=fit,
                        max_side=max_side)

    def run(self, task: str, **kwargs):
        """TASKS[task](**kwargs) in a child; its ValueError and OSError are raised here as they were."""
        while not self._slots.acquire(timeout=SLICE):
            check()
        child = None
        try:
            with self._lock:
                child = self._idle.pop() if self._idle else None
            if child is not None and child.process.poll() is not None:  # it ended itself (see _serve)
                child.kill()
                child = None
            child = child or _Child(self.memory_bytes)
            child.send(pickle.dumps((task, kwargs)))
            status, value = child.receive()
        except BaseException:
            if child is not None:  # stopped mid-decode, or broken: a fresh child takes its place next time
                child.kill()
                self.killed += 1
            raise
        finally:
            self._slots.release()
        with self._lock:
            kept = not self._closed
            if kept:
                self._idle.append(child)
        if not kept:  # closed meanwhile: no child outlives the decoder
            child.kill()
        if status == "ok":
            return value
        kind, message = value
        raise (OSError if kind == "OSError" else ValueError)(message)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children, self._idle = self._idle, []
        for child in children:
            child.kill()


def _serve(memory_bytes: int) -> None:
    """The child's loop: one request at a time from stdin, one answer each to stdout."""
    if memory_bytes:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    while head := inp.read(_HEADER.size):
        task, kwargs = pickle.loads(inp.read(_HEADER.unpack(head)[0]))
        name, spent = Path(kwargs.get("path", "")).name, False
        try:
            answer = ("ok", TASKS[task](**kwargs))
        except Exception as error:  # noqa: BLE001 -- Pillow raises many types for a broken file
            # Out of memory, libjpeg says "broken data stream" and numpy MemoryError: the peak tells
            spent = isinstance(error, MemoryError) or (memory_bytes and _peak() > 0.9 * memory_bytes)
            if spent:
                answer = ("error", ("ValueError", f"{name} needs more memory to decode than this server gives one "
                                                  "file: send a smaller image"))
            elif isinstance(error, (ValueError, OSError)):
                answer = ("error", ("OSError" if isinstance(error, OSError) else "ValueError", str(error)))
            else:
                answer = ("error", ("ValueError", f"{name} is not a readable image ({type(error).__name__})"))
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_HEADER.pack(len(data)) + data)
        out.flush()
        if spent:  # its peak stays high for good, which would read every later failure as memory: end
            return


def _peak() -> int:
    """This process's peak address space in bytes (Linux), or 0 where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
