"""Metrics against independent references: torchmetrics, per-class numpy masks, and a
brute-force boundary matcher; plus the edge cases spelled out."""

import math

import numpy as np
import pytest
import torch
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

from seg.labels import IGNORE_INDEX
from seg.metrics import BoundaryFScore, ConfusionMatrix, SegmentationMetrics

C = 6


def random_batches(seed: int, n: int = 4, shape=(3, 24, 32)):
    """Predictions that mostly agree with the target, with ignored pixels; class 5 never occurs."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        target = torch.randint(0, C - 1, shape, generator=g)
        pred = torch.where(torch.rand(shape, generator=g) < 0.7, target, torch.randint(0, C - 1, shape, generator=g))
        target[torch.rand(shape, generator=g) < 0.1] = IGNORE_INDEX
        yield pred, target


def test_confusion_and_scores_match_torchmetrics_accumulated_over_batches():
    ours = SegmentationMetrics(C, boundary_tolerance=None)
    reference = {
        "cm": MulticlassConfusionMatrix(C, ignore_index=IGNORE_INDEX),
        "iou": MulticlassJaccardIndex(C, average=None, ignore_index=IGNORE_INDEX),
        "f1": MulticlassF1Score(C, average=None, ignore_index=IGNORE_INDEX, multidim_average="global"),
        "acc": MulticlassAccuracy(C, average="micro", ignore_index=IGNORE_INDEX),
        "recall": MulticlassAccuracy(C, average=None, ignore_index=IGNORE_INDEX),
    }
    for pred, target in random_batches(0):
        ours.update(pred=pred, target=target)
        for metric in reference.values():
            metric.update(pred, target)
    scores = ours.compute()
    np.testing.assert_array_equal(scores.confusion, reference["cm"].compute().numpy())
    present = scores.present
    assert present.tolist() == [True] * 5 + [False]
    np.testing.assert_allclose(scores.iou[present], reference["iou"].compute().numpy()[present], rtol=1e-6)
    np.testing.assert_allclose(scores.dice[present], reference["f1"].compute().numpy()[present], rtol=1e-6)
    recall = reference["recall"].compute().numpy()
    np.testing.assert_allclose(scores.class_accuracy[present], recall[present], rtol=1e-6)
    assert scores.pixel_accuracy == pytest.approx(reference["acc"].compute().item())
    assert scores.miou == pytest.approx(reference["iou"].compute().numpy()[present].mean())
    assert math.isnan(scores.iou[5])  # absent, not 0


def test_scores_match_per_class_masks_and_frequency_weighting():
    """An independent numpy computation, class by class, including fwIoU."""
    batches = list(random_batches(1))
    metrics = SegmentationMetrics(C, boundary_tolerance=None)
    for pred, target in batches:
        metrics.update(pred=pred.numpy(), target=target.numpy())  # numpy inputs too
    scores = metrics.compute()
    pred = np.concatenate([p.numpy().ravel() for p, _ in batches])
    target = np.concatenate([t.numpy().ravel() for _, t in batches])
    valid = target != IGNORE_INDEX
    pred, target = pred[valid], target[valid]
    fwiou = 0.0
    for c in range(C - 1):
        inter, union = np.sum((pred == c) & (target == c)), np.sum((pred == c) | (target == c))
        assert scores.iou[c] == pytest.approx(inter / union)
        fwiou += np.mean(target == c) * inter / union
    assert scores.fwiou == pytest.approx(fwiou)
    assert scores.mean_class_accuracy == pytest.approx(
        np.mean([np.mean(pred[target == c] == c) for c in range(C - 1)]))


def test_perfect_disjoint_and_absent():
    target = np.array([[0, 0, 1], [1, 2, 2]])
    perfect = SegmentationMetrics(4)
    perfect.update(pred=target, target=target)
    s = perfect.compute()
    assert s.miou == 1 and s.pixel_accuracy == 1 and s.mean_dice == 1 and s.mean_boundary_f == 1
    table = s.to_dict(["a", "b", "c", "d"])
    assert table["per_class"]["d"] == {"present": False, "iou": None, "dice": None, "accuracy": None,
                                       "boundary_f": None}
    disjoint = ConfusionMatrix(4)
    disjoint.update(pred=(target + 1) % 3, target=target)
    s = disjoint.compute()
    assert s.miou == 0 and s.pixel_accuracy == 0 and s.present.tolist() == [True, True, True, False]


def test_predicted_but_absent_class_scores_zero_and_counts_in_the_mean():
    cm = ConfusionMatrix(3)
    cm.update(pred=np.array([[0, 0, 2, 2]]), target=np.array([[0, 0, 0, 0]]))
    s = cm.compute()
    assert s.iou[0] == 0.5 and s.iou[2] == 0 and math.isnan(s.iou[1])
    assert s.miou == 0.25
    assert math.isnan(s.class_accuracy[2])  # no true pixels of class 2: recall undefined


def test_everything_ignored_gives_nan_not_a_crash():
    cm = ConfusionMatrix(3)
    cm.update(pred=np.zeros((2, 2), int), target=np.full((2, 2), IGNORE_INDEX))
    s = cm.compute()
    assert math.isnan(s.miou) and math.isnan(s.pixel_accuracy) and not s.present.any()
    assert s.to_dict()["miou"] is None


def test_bad_inputs_raise_value_errors_that_say_what_to_do():
    cm = SegmentationMetrics(3)
    with pytest.raises(ValueError, match="resize the prediction"):
        cm.update(pred=np.zeros((4, 4), int), target=np.zeros((4, 5), int))
    with pytest.raises(ValueError, match="argmax"):
        cm.update(pred=np.zeros((4, 4)), target=np.zeros((4, 4), int))
    with pytest.raises(ValueError, match=r"target holds class ids \[7\]"):
        cm.update(pred=np.zeros((2, 2), int), target=np.array([[0, 7], [1, 2]]))
    with pytest.raises(ValueError, match=r"pred holds class ids \[3\]"):
        cm.update(pred=np.array([[0, 3], [1, 2]]), target=np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="shape"):
        cm.update(pred=np.zeros((1, 2, 2, 2), int), target=np.zeros((1, 2, 2, 2), int))
    with pytest.raises(ValueError):
        ConfusionMatrix(0)
    with pytest.raises(ValueError):
        BoundaryFScore(3, tolerance=-1)


def brute_force_boundary_f(pred: np.ndarray, target: np.ndarray, num_classes: int, tol: int) -> np.ndarray:
    """Reference: loops over pixels and pairs, no shared code with seg.metrics."""
    h, w = target.shape
    valid = target != IGNORE_INDEX

    def edges(labels):
        out = []
        for y in range(h):
            for x in range(w):
                if not valid[y, x]:
                    continue
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h and 0 <= xx < w and valid[yy, xx] and labels[yy, xx] != labels[y, x]:
                            break
                    else:
                        continue
                    out.append((y, x, labels[y, x]))
                    break
        return out

    pe, te = edges(pred), edges(target)
    result = np.full(num_classes, np.nan)
    for c in range(num_classes):
        p = [(y, x) for y, x, k in pe if k == c]
        t = [(y, x) for y, x, k in te if k == c]
        if not p and not t:
            continue

        def near(a, b):
            return sum(any((y - v) ** 2 + (x - u) ** 2 <= tol**2 for v, u in b) for y, x in a)

        precision = near(p, t) / len(p) if p else 0.0
        recall = near(t, p) / len(t) if t else 0.0
        result[c] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return result


@pytest.mark.parametrize("tol", [0, 1, 2, 3])
def test_boundary_f_matches_brute_force(tol):
    rng = np.random.default_rng(tol)
    target = np.zeros((20, 26), dtype=np.int64)
    target[4:14, 5:15] = 1
    target[10:18, 16:24] = 2
    target[0:3, :] = IGNORE_INDEX
    pred = np.roll(target.clip(0, 2), shift=(1, 2), axis=(0, 1))  # shifted, so edges move
    pred[rng.random(pred.shape) < 0.05] = 3  # speckle of a class absent from the target
    ours = BoundaryFScore(4, tolerance=tol)
    ours.update(pred=pred, target=target)
    np.testing.assert_allclose(ours.compute(), brute_force_boundary_f(pred, target, 4, tol), rtol=1e-9)


def test_boundary_f_tolerance_and_accumulation():
    target = np.zeros((32, 32), dtype=np.int64)
    target[:, 16:] = 1
    shifted = np.zeros_like(target)
    shifted[:, 18:] = 1  # the edge moved two pixels right
    for tol, expected in ((1, 0.0), (2, 1.0)):
        bf = BoundaryFScore(2, tolerance=tol)
        bf.update(pred=shifted, target=target)
        np.testing.assert_allclose(bf.compute(), [expected, expected])
    # counts accumulate: one perfect image and one missed image give the pooled precision/recall
    bf = BoundaryFScore(2, tolerance=0)
    bf.update(pred=target, target=target)
    bf.update(pred=shifted, target=target)
    np.testing.assert_allclose(bf.compute(), [0.5, 0.5])


def test_edges_against_void_are_not_edges():
    target = np.zeros((10, 10), dtype=np.int64)
    target[:, 5:] = IGNORE_INDEX
    bf = BoundaryFScore(2)
    bf.update(pred=np.zeros((10, 10), dtype=np.int64), target=target)
    assert np.isnan(bf.compute()).all()  # no boundaries on either side
