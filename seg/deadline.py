"""Deadlines for model work: a job that runs past its time stops at the next layer it enters.

Python cannot stop a thread from outside, and one convolution cannot be interrupted; but a
network is a sequence of modules, so a pre-forward hook on each (installed once by `watch`) can
check the calling thread's deadline and raise. The work stops within one layer's time. A job may
also be stopped early: `stop` is asked at every check (the app's says whether the client has left).
Work that no check can reach (decoding a file in C) runs in a child process that the waiting
thread ends at its first failed check (`seg.data.decoder`).

    model = watch(model)                                  # once, when loaded
    with deadline(60, "segmenting", stop=client_left):    # per job, in the thread that runs it
        logits = model(x)                                 # raises DeadlineExceeded past 60 s
"""

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is not imported here: the decoding children use `check` without it
    from torch import nn

_local = threading.local()


class DeadlineExceeded(TimeoutError):
    """A job ran past its deadline; the message says what and how long."""


class Stopped(Exception):
    """A job was stopped before its deadline because its `stop` said so (its client left)."""


@contextmanager
def deadline(seconds: float | None, what: str, *, stop: Callable[[], bool] | None = None):
    """Run the block with a deadline `seconds` from now (None: none) for the calling thread; `stop`,
    when given, is asked at every `check` and ends the job when it answers True (it must be cheap:
    it runs before every layer).

    Nested deadlines keep the earlier one, and the outer `stop` when the inner gives none."""
    previous = getattr(_local, "deadline", None)
    ends = time.monotonic() + seconds if seconds is not None else float("inf")
    if previous is None or ends < previous[0]:
        _local.deadline = (ends, seconds, what, stop or (previous[3] if previous else None))
    elif stop is not None:
        _local.deadline = (*previous[:3], stop)
    try:
        yield
    finally:
        _local.deadline = previous


def check() -> None:
    """Raise DeadlineExceeded if the calling thread's deadline has passed, Stopped if its `stop` says so."""
    current = getattr(_local, "deadline", None)
    if current is None:
        return
    if time.monotonic() > current[0]:
        raise DeadlineExceeded(f"{current[2]} took longer than its {current[1]:g} s limit and was stopped: "
                               "try a smaller image or fewer models")
    if current[3] is not None and current[3]():
        raise Stopped(f"{current[2]} was stopped before it ended: whoever asked for it has gone")


def _hook(module, inputs):
    check()


def watch(model: "nn.Module") -> "nn.Module":
    """Make every submodule of `model` check the deadline before it runs (idempotent); returns it."""
    if not getattr(model, "_deadline_watched", False):
        for module in model.modules():
            module.register_forward_pre_hook(_hook)
        model._deadline_watched = True
    return model
