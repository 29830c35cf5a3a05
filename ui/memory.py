"""Hand freed heap memory back to the operating system now and then.

A job on a large photo allocates hundreds of MiB for a moment (SAM's encoder, a model's activations).
glibc's allocator keeps much of what such a job frees inside its per-thread arenas, so a server's
resident size creeps up with the number of worker threads that ever ran a big job, though nothing
leaks. `malloc_trim(0)` returns those free pages; on any other C library this does nothing.
"""

import ctypes
import ctypes.util
import logging
import threading
from functools import cache

log = logging.getLogger("seg.app")


@cache
def _libc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None


def trim() -> bool:
    """Return free heap pages to the OS once; False where the C library cannot."""
    malloc_trim = _libc_trim()
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True


def trim_every(seconds: float) -> threading.Thread | None:
    """A daemon thread that calls `trim()` every `seconds`; None where trimming is not possible."""
    if _libc_trim() is None:
        log.info("malloc_trim is not available here: freed memory stays with the allocator")
        return None

    def loop():
        stop = threading.Event()
        while not stop.wait(seconds):
            trim()

    thread = threading.Thread(target=loop, name="malloc-trim", daemon=True)
    thread.start()
    return thread
