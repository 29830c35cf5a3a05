"""Where jobs run. On a Space with ZeroGPU hardware (SPACES_ZERO_GPU set), a job that calls the
models is decorated with the `spaces` package's `GPU`, which lends it a GPU for its duration, and
the models live on "cuda"; everywhere else (no `spaces` package, or not on ZeroGPU, where its
decorator returns the function itself) nothing changes.

    self.run = on_gpu(self.run, seconds=60)
"""

from collections.abc import Callable


def on_gpu(fn: Callable, *, seconds: float) -> Callable:
    """`fn` as a ZeroGPU job of at most `seconds` where the `spaces` package is installed, else `fn`."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(fn, duration=int(seconds))


def gpu_jobs(owner, names: tuple[str, ...], *, seconds: float) -> None:
    """Replace each named method of `owner` by its ZeroGPU job (see `on_gpu`), before any event is
    wired to it."""
    for name in names:
        setattr(owner, name, on_gpu(getattr(owner, name), seconds=seconds))
