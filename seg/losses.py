"""Segmentation losses and class weights; every loss skips the ignore label.

- `cross_entropy`: pixel-wise CE, optionally class-weighted.
- `class_weights`: inverse, median-frequency (or its square root) or ENet weights from `class_pixel_stats`.
- `dice_loss`: soft multiclass Dice on softmax probabilities.
- `build_loss("ce" | "dice" | "ce+dice", class_weights=...)`: the loss a training run uses.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .labels import IGNORE_INDEX

LOSSES = ("ce", "dice", "ce+dice")
WEIGHTINGS = ("none", "inverse", "median", "sqrt", "enet")


def cross_entropy(logits: Tensor, target: Tensor, *, weight: Tensor | None = None,
                  ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Mean pixel-wise cross-entropy over non-ignored pixels.

    logits: (B, C, H, W) float; target: (B, H, W) int64 in [0, C) or `ignore_index`;
    weight: (C,) float or None. With weights the mean is weighted (PyTorch's convention:
    divided by the summed weights of the counted pixels).
    """
    return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


def dice_loss(logits: Tensor, target: Tensor, *, ignore_index: int = IGNORE_INDEX,
              smooth: float = 1.0) -> Tensor:
    """Soft multiclass Dice loss: 1 - mean over classes of (2|P∩T| + s) / (|P| + |T| + s).

    P is the softmax probability, T the one-hot target, both summed over the whole batch and
    every non-ignored pixel. Each class counts equally however few pixels it has, which is why
    Dice keeps a tiny foreground from being drowned by the background. `smooth` keeps a class
    absent from both sides at a Dice of 1 (no loss) and the gradient finite.

    logits: (B, C, H, W) float; target: (B, H, W) int64 in [0, C) or `ignore_index`.
    """
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1)  # (B, 1, H, W)
    probs = logits.softmax(dim=1) * valid
    one_hot = F.one_hot(target.masked_fill(~valid.squeeze(1), 0), num_classes)  # (B, H, W, C)
    one_hot = one_hot.permute(0, 3, 1, 2).to(probs.dtype) * valid
    dims = (0, 2, 3)
    intersection = (probs * one_hot).sum(dims)  # (C,)
    cardinality = probs.sum(dims) + one_hot.sum(dims)
    dice = (2 * intersection + smooth) / (cardinality + smooth)
    return 1 - dice.mean()


def build_loss(name: str, *, class_weights: Tensor | None = None,
               ignore_index: int = IGNORE_INDEX) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss `name` as a function `(logits, target) -> scalar`.

    "ce": cross-entropy (class-weighted if `class_weights` is given); "dice": soft Dice;
    "ce+dice": their sum, CE for well-calibrated pixels and Dice for small classes.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}: choose one of {', '.join(LOSSES)}")
    if name == "dice" and class_weights is not None:
        raise ValueError("class weights apply to cross-entropy; Dice already weighs classes equally")

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        total = logits.new_zeros(())
        if "ce" in name:
            weight = None if class_weights is None else class_weights.to(logits.device, logits.dtype)
            total = total + cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
        if "dice" in name:
            total = total + dice_loss(logits, target, ignore_index=ignore_index)
        return total

    return loss


@dataclass(frozen=True)
class ClassPixelStats:
    """Per-class pixel statistics of a dataset's label maps, the input to every weighting.

    pixels: (C,) labelled pixels of each class.
    pixels_of_images_with: (C,) all labelled pixels of the images in which each class appears
        (the denominator of median-frequency balancing).
    """

    pixels: np.ndarray
    pixels_of_images_with: np.ndarray


def class_pixel_stats(masks: Iterable[np.ndarray | Tensor], num_classes: int, *,
                      ignore_index: int = IGNORE_INDEX) -> ClassPixelStats:
    """Count pixels per class over label maps of any shape (ignored pixels are not counted)."""
    pixels = np.zeros(num_classes, dtype=np.int64)
    with_class = np.zeros(num_classes, dtype=np.int64)
    for mask in masks:
        labels = np.asarray(mask).ravel()
        labels = labels[labels != ignore_index]
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"label map holds values outside [0, {num_classes}) and {ignore_index}: "
                             f"found {sorted(set(np.unique(labels).tolist()))}")
        counts = np.bincount(labels, minlength=num_classes)
        pixels += counts
        with_class += (counts > 0) * labels.size
    return ClassPixelStats(pixels=pixels, pixels_of_images_with=with_class)


def class_weights(stats: ClassPixelStats, method: str, *, enet_c: float = 1.02) -> Tensor:
    """Per-class loss weights from pixel statistics.

    - "inverse": w_c = N / (C * n_c): the inverse frequency, scaled so a balanced set gets 1.
    - "median": w_c = median(f) / f_c with f_c = n_c / (pixels of the images containing c)
      (Eigen & Fergus, 2015): rare classes up, common classes below 1.
    - "sqrt": the square root of the median-frequency weights: the same order, half the spread on a
      log scale (Pole 4.8 becomes 2.2), so rare classes gain less recall and lose fewer false positives.
    - "enet": w_c = 1 / ln(c + n_c / N) with c = 1.02 (Paszke et al., 2016): bounded above by
      1 / ln(1.02) ≈ 50, so a very rare class cannot dominate.

    A class with no pixels gets weight 0: nothing can be learnt for it, and an infinite weight
    would poison the loss. Returns (C,) float32.
    """
    n = stats.pixels.astype(np.float64)
    present = n > 0
    weights = np.zeros_like(n)
    if method == "inverse":
        weights[present] = n.sum() / (present.sum() * n[present])
    elif method in ("median", "sqrt"):
        freq = n[present] / stats.pixels_of_images_with[present]
        weights[present] = np.median(freq) / freq
        if method == "sqrt":
            weights = np.sqrt(weights)
    elif method == "enet":
        weights[present] = 1.0 / np.log(enet_c + n[present] / n.sum())
    else:
        raise ValueError(f"unknown class weighting {method!r}: choose one of {', '.join(WEIGHTINGS[1:])}")
    return torch.from_numpy(weights).float()
