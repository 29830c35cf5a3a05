"""Segmentation metrics that accumulate counts over batches, then compute scores from the counts.

- `ConfusionMatrix`: a (C, C) count matrix (rows: ground truth, columns: prediction), from which
  `scores_from_confusion` derives per-class IoU and Dice, mIoU, pixel accuracy, mean class
  accuracy and frequency-weighted IoU.
- `BoundaryFScore`: per-class precision/recall of boundary pixels within a pixel tolerance.
- `SegmentationMetrics`: both together, what training and evaluation use.

All take `pred=` and `target=` by keyword (so the two cannot be swapped), as torch tensors or
numpy arrays of integer labels shaped (H, W) or (B, H, W). Pixels whose target is the ignore label
are left out of every count. A class absent from both prediction and ground truth is reported as
absent (NaN in arrays, None in `to_dict`) and left out of every mean; a class predicted but not
present in the ground truth scores 0.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .labels import IGNORE_INDEX

# How far (in pixels) a predicted boundary pixel may lie from a true one and still count: the
# usual setting for CamVid-sized images (about 0.4% of the diagonal of 360x480).
BOUNDARY_TOLERANCE = 2


def _as_label_tensor(labels: np.ndarray | Tensor, name: str) -> Tensor:
    """Integer labels as a (B, H, W) int64 tensor, on the device they came on."""
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids, got dtype {labels.dtype}: "
                         "take the argmax of logits before scoring")
    if labels.ndim == 2:
        labels = labels.unsqueeze(0)
    if labels.ndim != 3:
        raise ValueError(f"{name} must be (H, W) or (B, H, W) labels, got shape {tuple(labels.shape)}")
    return labels.long()


def _check_pair(pred: np.ndarray | Tensor, target: np.ndarray | Tensor, num_classes: int,
                ignore_index: int) -> tuple[Tensor, Tensor, Tensor]:
    """Validated (pred, target, valid) tensors, all (B, H, W); valid marks non-ignored pixels."""
    pred, target = _as_label_tensor(pred, "pred"), _as_label_tensor(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred is {tuple(pred.shape)} but target is {tuple(target.shape)}: "
                         "resize the prediction to the ground truth's size before scoring")
    pred = pred.to(target.device)
    valid = target != ignore_index
    for name, labels in (("target", target), ("pred", pred)):
        out_of_range = valid & ((labels < 0) | (labels >= num_classes))
        if out_of_range.any():
            bad = sorted(labels[out_of_range].unique().tolist())
            raise ValueError(f"{name} holds class ids {bad[:10]} outside [0, {num_classes}) "
                             f"(ignore label {ignore_index}): check num_classes and the label mapping")
    return pred, target, valid


class ConfusionMatrix:
    """Accumulates `matrix[t, p]`: how many non-ignored pixels of true class t were predicted p.

    The counting is one `bincount` of `t * C + p`, which is as fast as counting gets in PyTorch.
    """

    def __init__(self, num_classes: int, *, ignore_index: int = IGNORE_INDEX):
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, *, pred: np.ndarray | Tensor, target: np.ndarray | Tensor) -> None:
        self._add(*_check_pair(pred, target, self.num_classes, self.ignore_index))

    def _add(self, pred: Tensor, target: Tensor, valid: Tensor) -> None:
        n = self.num_classes
        index = torch.where(valid, target * n + pred, n * n)  # ignored pixels go to one spare bin
        counts = torch.bincount(index.flatten(), minlength=n * n + 1)[:-1].reshape(n, n)
        self.matrix = self.matrix.to(counts.device) + counts

    def reset(self) -> None:
        self.matrix.zero_()

    def compute(self) -> "SegmentationScores":
        return scores_from_confusion(self.matrix.cpu().numpy())


@dataclass
class SegmentationScores:
    """Scores of one accumulated evaluation. Per-class arrays are (C,) float with NaN for absent classes.

    present: (C,) bool, the class occurs in the ground truth or the prediction.
    iou, dice: per class; 0 for a class predicted but absent from the ground truth.
    class_accuracy: per class recall, NaN where the ground truth has no pixels of the class.
    miou, mean_dice, mean_class_accuracy: means over the classes where the per-class value exists.
    pixel_accuracy: correct / labelled pixels. fwiou: IoU weighted by ground-truth frequency.
    boundary_f: per-class boundary F-score, if it was measured; mean_boundary_f its mean.
    """

    present: np.ndarray
    iou: np.ndarray
    dice: np.ndarray
    class_accuracy: np.ndarray
    miou: float
    mean_dice: float
    pixel_accuracy: float
    mean_class_accuracy: float
    fwiou: float
    boundary_f: np.ndarray | None = None
    mean_boundary_f: float | None = None
    confusion: np.ndarray = field(default=None, repr=False)

    def to_dict(self, class_names: list[str] | None = None) -> dict:
        """JSON-ready: summary numbers and a per-class table; absent values become None."""
        names = class_names or [str(i) for i in range(len(self.iou))]
        per_class = {}
        for i, name in enumerate(names):
            per_class[name] = {
                "present": bool(self.present[i]),
                "iou": number(self.iou[i]),
                "dice": number(self.dice[i]),
                "accuracy": number(self.class_accuracy[i]),
                "boundary_f": None if self.boundary_f is None else number(self.boundary_f[i]),
            }
        return {
            "miou": number(self.miou), "mean_dice": number(self.mean_dice),
            "pixel_accuracy": number(self.pixel_accuracy),
            "mean_class_accuracy": number(self.mean_class_accuracy), "fwiou": number(self.fwiou),
            "mean_boundary_f": number(self.mean_boundary_f), "per_class": per_class,
        }


def number(x: float | None) -> float | None:
    """A score for JSON: rounded to 6 decimals; None for an absent one (None or NaN)."""
    return None if x is None or math.isnan(x) else round(float(x), 6)


def mean_present(values: np.ndarray) -> float:
    """The mean over the classes present (the non-NaN values); NaN when none is."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def scores_from_confusion(confusion: np.ndarray) -> SegmentationScores:
    """Every confusion-matrix metric from a (C, C) matrix (rows: ground truth, columns: prediction)."""
    cm = np.asarray(confusion, dtype=np.float64)
    true_pos = np.diag(cm)
    gt_pixels, pred_pixels = cm.sum(axis=1), cm.sum(axis=0)
    union = gt_pixels + pred_pixels - true_pos
    present = union > 0
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 marks an absent class as NaN
        iou = np.where(present, true_pos / union, np.nan)
        dice = np.where(present, 2 * true_pos / (gt_pixels + pred_pixels), np.nan)
        class_accuracy = np.where(gt_pixels > 0, true_pos / gt_pixels, np.nan)
    total = cm.sum()
    return SegmentationScores(
        present=present, iou=iou, dice=dice, class_accuracy=class_accuracy,
        miou=mean_present(iou), mean_dice=mean_present(dice), mean_class_accuracy=mean_present(class_accuracy),
        pixel_accuracy=float(true_pos.sum() / total) if total else math.nan,
        fwiou=float(np.nansum(gt_pixels / total * iou)) if total else math.nan,
        confusion=cm.astype(np.int64),
    )


def _boundaries(labels: Tensor, valid: Tensor) -> Tensor:
    """(B, H, W) bool: valid pixels with a valid 8-neighbour of another class.

    Ignored pixels are neither boundaries nor neighbours, so an object's edge against void is
    not an edge (the annotation says nothing about it). The image border is not an edge either.
    """
    h, w = labels.shape[-2:]
    labels = torch.where(valid, labels, -1)  # -1: void, never a neighbour
    padded = F.pad(labels, (1, 1, 1, 1), value=-1)
    edges = torch.zeros_like(valid)
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)):
        neighbour = padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        edges |= (neighbour != labels) & (neighbour >= 0)
    return edges & valid


def _disk_offsets(radius: int) -> list[tuple[int, int]]:
    """(dy, dx) offsets within `radius` pixels (Euclidean) of the origin."""
    span = range(-radius, radius + 1)
    return [(dy, dx) for dy in span for dx in span if dy * dy + dx * dx <= radius * radius]


def _near_same_class(edges: Tensor, others: Tensor, radius: int) -> Tensor:
    """(B, H, W) bool: edge pixels of `edges` with an edge pixel of the same class in `others` within `radius`.

    Both are (B, H, W) int64 maps holding the class at edge pixels and -1 elsewhere. Comparing
    shifted copies costs one pass per offset whatever the number of classes.
    """
    h, w = edges.shape[-2:]
    padded = F.pad(others, (radius, radius, radius, radius), value=-1)
    hit = torch.zeros_like(edges, dtype=torch.bool)
    for dy, dx in _disk_offsets(radius):
        hit |= padded[:, radius + dy:radius + dy + h, radius + dx:radius + dx + w] == edges
    return hit & (edges >= 0)


def _matched_edges(pred: Tensor, target: Tensor, valid: Tensor, tolerance: int) -> tuple[Tensor, ...]:
    """The class at each predicted and true boundary pixel (-1 elsewhere), and which of them have a
    boundary pixel of the same class on the other side within `tolerance`: what the boundary F counts."""
    pred_edges = torch.where(_boundaries(pred, valid), pred, -1)
    true_edges = torch.where(_boundaries(target, valid), target, -1)
    return (pred_edges, _near_same_class(pred_edges, true_edges, tolerance),
            true_edges, _near_same_class(true_edges, pred_edges, tolerance))


def boundary_errors(*, pred: np.ndarray, target: np.ndarray, num_classes: int, tolerance: int = BOUNDARY_TOLERANCE,
                    ignore_index: int = IGNORE_INDEX) -> dict[str, np.ndarray]:
    """The pixels behind one image's boundary F-score, as `(H, W)` bool maps.

    "matched": a boundary pixel (predicted or true) with a same-class partner within `tolerance`;
    "extra": a predicted boundary pixel with none (it costs precision); "missed": a true boundary
    pixel with none (it costs recall). pred, target: `(H, W)` class ids, target may hold `ignore_index`.
    """
    if np.ndim(pred) != 2:
        raise ValueError(f"pred must be one (H, W) label map, got shape {np.shape(pred)}")
    checked = _check_pair(pred, target, num_classes, ignore_index)  # (1, H, W) each
    pred_edges, pred_hit, true_edges, true_hit = (t[0].cpu().numpy() for t in _matched_edges(*checked, tolerance))
    return {"matched": (pred_hit | true_hit) & ((pred_edges >= 0) | (true_edges >= 0)),
            "extra": (pred_edges >= 0) & ~pred_hit, "missed": (true_edges >= 0) & ~true_hit}


class BoundaryFScore:
    """Per-class boundary F-score (Csurka et al., 2013) with a tolerance in pixels.

    A predicted boundary pixel of class c is correct if a ground-truth boundary pixel of class c
    lies within `tolerance` pixels (Euclidean); recall is the same with the roles swapped. The
    matched and total counts accumulate over all images, then precision, recall and F are taken
    once per class. A class with boundaries on neither side is absent (NaN).
    """

    def __init__(self, num_classes: int, *, tolerance: int = BOUNDARY_TOLERANCE, ignore_index: int = IGNORE_INDEX):
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}")
        self.num_classes, self.tolerance, self.ignore_index = num_classes, tolerance, ignore_index
        # rows: predicted boundary pixels, matched ones, true boundary pixels, matched ones
        self.counts = torch.zeros(4, num_classes, dtype=torch.int64)

    def update(self, *, pred: np.ndarray | Tensor, target: np.ndarray | Tensor) -> None:
        self._add(*_check_pair(pred, target, self.num_classes, self.ignore_index))

    def _add(self, pred: Tensor, target: Tensor, valid: Tensor) -> None:
        pred_edges, pred_hit, true_edges, true_hit = _matched_edges(pred, target, valid, self.tolerance)

        def per_class(edges: Tensor) -> Tensor:
            return torch.bincount(edges[edges >= 0], minlength=self.num_classes)

        counts = torch.stack([per_class(pred_edges), per_class(pred_edges.where(pred_hit, -1)),
                              per_class(true_edges), per_class(true_edges.where(true_hit, -1))])
        self.counts = self.counts.to(counts.device) + counts

    def reset(self) -> None:
        self.counts.zero_()

    def compute(self) -> np.ndarray:
        """(C,) boundary F-score per class, NaN where neither side has a boundary of the class."""
        pred_total, pred_hit, true_total, true_hit = self.counts.cpu().double().numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(pred_total > 0, pred_hit / pred_total, 0.0)
            recall = np.where(true_total > 0, true_hit / true_total, 0.0)
            f = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        return np.where((pred_total > 0) | (true_total > 0), f, np.nan)


class SegmentationMetrics:
    """Confusion-matrix metrics plus (unless `boundary_tolerance` is None) the boundary F-score."""

    def __init__(self, num_classes: int, *, ignore_index: int = IGNORE_INDEX,
                 boundary_tolerance: int | None = BOUNDARY_TOLERANCE):
        self.confusion = ConfusionMatrix(num_classes, ignore_index=ignore_index)
        self.boundary = None
        if boundary_tolerance is not None:
            self.boundary = BoundaryFScore(num_classes, tolerance=boundary_tolerance, ignore_index=ignore_index)

    def update(self, *, pred: np.ndarray | Tensor, target: np.ndarray | Tensor) -> None:
        checked = _check_pair(pred, target, self.confusion.num_classes, self.confusion.ignore_index)  # once for both
        self.confusion._add(*checked)
        if self.boundary is not None:
            self.boundary._add(*checked)

    def compute(self) -> SegmentationScores:
        scores = self.confusion.compute()
        if self.boundary is not None:
            scores.boundary_f = self.boundary.compute()
            scores.mean_boundary_f = mean_present(scores.boundary_f)
        return scores
