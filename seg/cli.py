"""Shared plumbing of the command lines: expected failures end in a one-line message, not a traceback."""

import sys
from typing import Callable, NoReturn


def run(main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s status; a missing file, a bad value or a diverging loss exits 1 with
    `error: ...` on stderr (the messages say what to do). Anything else is a bug and keeps its traceback."""
    try:
        sys.exit(main())
    except (OSError, ValueError, FloatingPointError) as error:
        sys.exit(f"error: {error}")
