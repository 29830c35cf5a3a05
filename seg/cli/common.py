"""Shared plumbing of the command lines: the device choice, SAM's flags and its loading, and expected
failures as one-line messages."""

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import torch

from ..fetch import DEFAULT_CACHE
from ..sam.weights import DEFAULT_VARIANT


def choose_device(name: str | None, *, index: int = 0) -> torch.device:
    """The `--device` a user named, else CUDA (GPU `index`) when there is one, else the CPU."""
    return torch.device(name or (f"cuda:{index}" if torch.cuda.is_available() else "cpu"))


def add_sam_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of a command line that runs SAM, their defaults from the app's own settings."""
    p.add_argument("--variant", default=os.environ.get("SEG_SAM_VARIANT") or DEFAULT_VARIANT,
                   help=f"SAM variant: vit_t (MobileSAM), vit_b, vit_l, vit_h (default: $SEG_SAM_VARIANT or "
                        f"{DEFAULT_VARIANT})")
    p.add_argument("--checkpoint", default=os.environ.get("SEG_SAM_CHECKPOINT") or None,
                   help="SAM checkpoint file (default: $SEG_SAM_CHECKPOINT, else the cache or a download)")
    p.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("SEG_CACHE_DIR") or DEFAULT_CACHE),
                   help="where a downloaded checkpoint is kept, verified "
                        f"(default: $SEG_CACHE_DIR, else {DEFAULT_CACHE})")
    p.add_argument("--no-download", action="store_true", help="never download SAM's checkpoint")


def load_sam(args: argparse.Namespace):
    """SAM as `add_sam_arguments`' flags name it (`seg.sam.model.Sam`)."""
    from ..sam.model import Sam

    return Sam.load(args.variant, args.checkpoint, download=not args.no_download, cache_dir=args.cache_dir)


def run(main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s status; a missing file, a bad value or a diverging loss exits 1 with
    `error: ...` on stderr (the messages say what to do). Anything else is a bug and keeps its traceback."""
    try:
        sys.exit(main())
    except (OSError, ValueError, FloatingPointError) as error:
        sys.exit(f"error: {error}")
