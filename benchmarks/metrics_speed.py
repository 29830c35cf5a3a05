"""Metric speed on a 1024x1024, 12-class label map: seg.metrics vs torchmetrics vs a per-pixel Python loop.

    python benchmarks/metrics_speed.py [--repeats 10] [--markdown benchmarks/RESULTS.md]

The maps are realistic rather than random: blocky regions (so boundaries are a small share of
the pixels, as in a real segmentation), a prediction that disagrees along shifted edges and in
speckles, and 5% ignored pixels. Times are medians over `--repeats` runs of update + compute.
"""

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from report import publish  # noqa: E402

from seg.labels import IGNORE_INDEX  # noqa: E402
from seg.metrics import BoundaryFScore, ConfusionMatrix, SegmentationMetrics  # noqa: E402

SIZE, CLASSES = 1024, 12


def label_maps(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, CLASSES, (1, 1, SIZE // 64, SIZE // 64), generator=g).float()
    target = F.interpolate(coarse, size=(SIZE, SIZE), mode="nearest")[0, 0].long()
    pred = torch.roll(target, shifts=(3, -2), dims=(0, 1))
    speckle = torch.rand(SIZE, SIZE, generator=g) < 0.02
    pred[speckle] = torch.randint(0, CLASSES, (int(speckle.sum()),), generator=g)
    target[torch.rand(SIZE, SIZE, generator=g) < 0.05] = IGNORE_INDEX
    return pred, target


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def python_loop_confusion(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """One Python step per pixel, over plain lists: the fastest a per-pixel loop gets."""
    cm = [[0] * CLASSES for _ in range(CLASSES)]
    for p, t in zip(pred.ravel().tolist(), target.ravel().tolist()):
        if t != IGNORE_INDEX:
            cm[t][p] += 1
    return np.array(cm)


def numpy_pixel_loop_confusion(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The loop a first attempt usually is: index the arrays pixel by pixel."""
    cm = np.zeros((CLASSES, CLASSES), dtype=np.int64)
    for y in range(target.shape[0]):
        for x in range(target.shape[1]):
            if target[y, x] != IGNORE_INDEX:
                cm[target[y, x], pred[y, x]] += 1
    return cm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--markdown", type=Path, help="start this results file with the table")
    args = parser.parse_args()
    from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex

    pred, target = label_maps()
    pred_np, target_np = pred.numpy(), target.numpy()

    def ours_confusion():
        cm = ConfusionMatrix(CLASSES)
        cm.update(pred=pred, target=target)
        return cm.compute()

    def ours_boundary():
        bf = BoundaryFScore(CLASSES, tolerance=2)
        bf.update(pred=pred, target=target)
        return bf.compute()

    def ours_all_numpy():
        metrics = SegmentationMetrics(CLASSES, boundary_tolerance=2)
        metrics.update(pred=pred_np, target=target_np)
        return metrics.compute()

    def tm_confusion():
        metric = MulticlassConfusionMatrix(CLASSES, ignore_index=IGNORE_INDEX)
        metric.update(pred, target)
        return metric.compute()

    def tm_jaccard():
        metric = MulticlassJaccardIndex(CLASSES, average=None, ignore_index=IGNORE_INDEX)
        metric.update(pred, target)
        return metric.compute()

    # the figures must agree before their speed means anything
    np.testing.assert_array_equal(ours_confusion().confusion, tm_confusion().numpy())
    np.testing.assert_array_equal(ours_confusion().confusion, python_loop_confusion(pred_np, target_np))
    np.testing.assert_array_equal(ours_confusion().confusion, numpy_pixel_loop_confusion(pred_np, target_np))

    rows = [
        ("seg ConfusionMatrix: update + all confusion metrics", timed(ours_confusion, args.repeats)),
        ("torchmetrics MulticlassConfusionMatrix", timed(tm_confusion, args.repeats)),
        ("torchmetrics MulticlassJaccardIndex (IoU only)", timed(tm_jaccard, args.repeats)),
        ("seg BoundaryFScore (tolerance 2 px)", timed(ours_boundary, args.repeats)),
        ("seg SegmentationMetrics, numpy input (confusion + boundary)", timed(ours_all_numpy, args.repeats)),
        ("per-pixel Python loop over lists (confusion matrix only)",
         timed(lambda: python_loop_confusion(pred_np, target_np), 1)),
        ("per-pixel Python loop indexing numpy arrays (confusion matrix only)",
         timed(lambda: numpy_pixel_loop_confusion(pred_np, target_np), 1)),
    ]
    table = ["| what | time (ms) |", "| --- | ---: |"] + [f"| {name} | {1000 * t:.1f} |" for name, t in rows]
    publish(f"Metric speed, {SIZE}x{SIZE} label map, {CLASSES} classes", f"Median of {args.repeats} runs "
            f"(the Python loops: 1 run), Python {platform.python_version()}.", table, args.markdown, new_file=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
