"""One prompt, every SAM: how the generations answer the same clicks and box on the same photo.

    answers = ask_every_sam({"MobileSAM": sam, "SAM 2 (...)": sam2}, image, prompt, digest=photo.digest)
    answers[0].title, answers[0].score, answers[0].seconds, answers[0].mask
    agreement([a.mask for a in answers])          # (N, N) IoU of each pair of masks

Each SAM reads the photo once (its own bounded cache): `encoded` says whether this call paid for it,
and `seconds` is what the call took, the encoding included when it was paid.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .relate import iou


@dataclass(frozen=True)
class Answer:
    """One SAM's best mask for the prompt: `(H, W)` bool at the photo's size, its predicted IoU, the
    seconds the call took, whether it encoded the photo, and its IoU with the ground truth's region."""

    title: str
    mask: np.ndarray
    score: float
    seconds: float
    encoded: bool
    truth_iou: float | None = None


def ask_every_sam(sams: dict, image: np.ndarray, prompt: dict, *, original_size: tuple[int, int] | None = None,
                  digest: str | None = None, truth: np.ndarray | None = None,
                  check: Callable[[], None] = lambda: None) -> list[Answer]:
    """Each SAM of `sams` (title -> a `Sam` or `FamilySam`) answering `prompt` (points, labels, box
    in the photo's pixels) on `image`, in order. truth: the ground truth's `(H, W)` bool region for
    the object, to score each mask against. check: called before each SAM (a deadline's)."""
    answers = []
    for title, sam in sams.items():
        check()
        encoded = not sam.has_embedding(image, digest=digest)
        started = time.perf_counter()
        result = sam.predict(image, **prompt, best_only=True, original_size=original_size, digest=digest)
        seconds = time.perf_counter() - started
        mask = result.masks[0]
        answers.append(Answer(title, mask, float(result.scores[0]), seconds, encoded,
                              None if truth is None else iou(mask, truth)))
    return answers


def agreement(masks: list[np.ndarray]) -> np.ndarray:
    """(N, N) float: the IoU of each pair of masks (1 on the diagonal; NaN where both are empty)."""
    n = len(masks)
    table = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            value = iou(masks[i], masks[j])
            table[i, j] = table[j, i] = np.nan if value is None else value
    return table
