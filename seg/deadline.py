"""Deadlines for model work: a job that runs past its time stops at the next layer it enters.

Python cannot stop a thread from outside, and one convolution cannot be interrupted; but a
network is a sequence of modules, so a pre-forward hook on each (installed once by `watch`) can
check the calling thread's deadline and raise. The work stops within one layer's time.

    model = watch(model)                    # once, when loaded
    with deadline(60, "segmenting"):        # per job, in the thread that runs it
        logits = model(x)                   # raises DeadlineExceeded past 60 s
"""

import threading
import time
from contextlib import contextmanager

from torch import nn

_local = threading.local()


class DeadlineExceeded(TimeoutError):
    """A job ran past its deadline; the message says what and how long."""


@contextmanager
def deadline(seconds: float | None, what: str):
    """Run the block with a deadline `seconds` from now (None: none) for the calling thread.

    Nested deadlines keep the earlier one."""
    previous = getattr(_local, "deadline", None)
    if seconds is not None:
        ends = time.monotonic() + seconds
        if previous is None or ends < previous[0]:
            _local.deadline = (ends, seconds, what)
    try:
        yield
    finally:
        _local.deadline = previous


def check() -> None:
    """Raise DeadlineExceeded if the calling thread's deadline has passed."""
    current = getattr(_local, "deadline", None)
    if current is not None and time.monotonic() > current[0]:
        raise DeadlineExceeded(f"{current[2]} took longer than its {current[1]:g} s limit and was stopped: "
                               "try a smaller image or fewer models")


def _hook(module, inputs):
    check()


def watch(model: nn.Module) -> nn.Module:
    """Make every submodule of `model` check the deadline before it runs (idempotent); returns it."""
    if not getattr(model, "_deadline_watched", False):
        for module in model.modules():
            module.register_forward_pre_hook(_hook)
        model._deadline_watched = True
    return model
