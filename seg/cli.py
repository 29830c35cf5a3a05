"""Shared plumbing of the command lines: the device choice, and expected failures as one-line messages."""

import sys
from collections.abc import Callable
from typing import NoReturn

import torch


def choose_device(name: str | None, *, index: int = 0) -> torch.device:
    """The `--device` a user named, else CUDA (GPU `index`) when there is one, else the CPU."""
    return torch.device(name or (f"cuda:{index}" if torch.cuda.is_available() else "cpu"))


def run(main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s status; a missing file, a bad value or a diverging loss exits 1 with
    `error: ...` on stderr (the messages say what to do). Anything else is a bug and keeps its traceback."""
    try:
        sys.exit(main())
    except (OSError, ValueError, FloatingPointError) as error:
        sys.exit(f"error: {error}")
