"""Where jobs run. On a Space with ZeroGPU hardware (SPACES_ZERO_GPU set), a job that calls the
models is decorated with the `spaces` package's `GPU`, which lends it a GPU for its duration, and
the models live on "cuda"; everywhere else (no `spaces` package, or not on ZeroGPU, where its
decorator returns the function itself) nothing changes.

    lease_gpus(tab, limits)  # each @handler(..., models=True) of the tab
"""

from collections.abc import Callable

from .jobs import handlers


def on_gpu(fn: Callable, *, seconds: float) -> Callable:
    """`fn` as a ZeroGPU job of at most `seconds` where the `spaces` package is installed, else `fn`."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn, duration=int(seconds))


def lease_gpus(owner, limits) -> None:
    """Replace each handler of `owner` that reaches a model (`@handler(..., models=True)`) by its
    ZeroGPU job of its own deadline's seconds (see `on_gpu`), before any event is wired to it."""
    for name, declared in handlers(owner).items():
        if declared.models:
            setattr(owner, name, on_gpu(getattr(owner, name), seconds=getattr(limits, declared.limit)))
