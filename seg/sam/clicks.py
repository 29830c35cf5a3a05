"""SAM's click curve against a ground truth: the standard simulation of a person clicking (each
click where the error is largest), the IoU after every click, and NoC@85 / NoC@90.

The simulation (Xu et al. 2016, as in RITM and SAM's evaluations): the first click is positive, at
the object's interior point farthest from its border; each next click goes to the largest
connected error region (by pixel count), at its point farthest from that region's border: positive
where the object was missed, negative where the mask spilled over. Image borders count as borders.
Void pixels of the ground truth are neither object nor error. SAM answers each click as the app
does: the best scored of its three masks for all the clicks so far, no earlier mask fed back.
Its command line over a CamVid split is `python -m seg.cli.clicks`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..labels import IGNORE_INDEX

Click = tuple[int, int, bool]  # x, y in pixels; True for a positive click
Decoder = Callable[[np.ndarray, np.ndarray], np.ndarray]  # points (N, 2) xy, labels (N,) 1/0 -> (H, W) bool
THRESHOLDS = (0.85, 0.90)  # NoC@85 and NoC@90
MIN_OBJECT_PIXELS = 200  # objects smaller than this are specks of annotation, left out (here and in the app)


def interior_point(region: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel of `(H, W)` bool `region` farthest from its border (the image's edge is a
    border too); the first in row-major order on a tie."""
    if not region.any():
        raise ValueError("the region is empty: it has no interior point")
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), region.shape)
    return int(x), int(y)


def next_click(mask: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> Click | None:
    """Where the simulated person clicks next: inside the largest connected error region (missed
    object pixels are positive clicks, spilled-over pixels negative), at its interior point. None
    when there is no error left. mask, target, valid: `(H, W)` bool."""
    valid = np.ones_like(target, dtype=bool) if valid is None else valid
    best, best_size, positive = None, 0, True
    for errors, is_positive in ((target & ~mask & valid, True), (mask & ~target & valid, False)):
        regions, count = ndimage.label(errors)  # 4-neighbour regions
        if count == 0:
            continue
        sizes = np.bincount(regions.ravel())[1:]
        largest = int(np.argmax(sizes))
        if sizes[largest] > best_size:  # on a tie the missed region wins: it is checked first
            best, best_size, positive = regions == largest + 1, int(sizes[largest]), is_positive
    if best is None:
        return None
    x, y = interior_point(best)
    return x, y, positive


def mask_iou(mask: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> float:
    """IoU of two `(H, W)` bool masks over the `valid` pixels (1.0 when both are empty)."""
    if valid is not None:
        mask, target = mask & valid, target & valid
    union = np.logical_or(mask, target).sum()
    return float(np.logical_and(mask, target).sum() / union) if union else 1.0


@dataclass(frozen=True)
class ClickCurve:
    """clicks: the simulated clicks in order; ious: IoU with the object after each of them;
    mask: the `(H, W)` bool mask after the last click."""

    clicks: tuple[Click, ...]
    ious: tuple[float, ...]
    mask: np.ndarray | None = None

    def noc(self, threshold: float) -> int | None:
        """Clicks needed to reach IoU `threshold` (1-based), None if the curve never does."""
        return next((k + 1 for k, value in enumerate(self.ious) if value >= threshold), None)


def click_curve(decode: Decoder, target: np.ndarray, *, max_clicks: int = 10,
                valid: np.ndarray | None = None) -> ClickCurve:
    """Simulate up to `max_clicks` clicks on the object `target` (`(H, W)` bool), asking `decode`
    for a mask after each. Stops early at a perfect mask (the curve then stays at 1.0)."""
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}")
    valid = np.ones_like(target, dtype=bool) if valid is None else valid
    target = target & valid
    x, y = interior_point(target)
    clicks: list[Click] = [(x, y, True)]
    ious: list[float] = []
    while True:
        points = np.array([(cx, cy) for cx, cy, _ in clicks], dtype=np.float32)
        labels = np.array([int(positive) for _, _, positive in clicks])
        mask = np.asarray(decode(points, labels), dtype=bool)
        ious.append(mask_iou(mask, target, valid))
        if len(clicks) == max_clicks:
            break
        click = next_click(mask, target, valid)
        if click is None:
            ious += [ious[-1]] * (max_clicks - len(ious))
            break
        clicks.append(click)
    return ClickCurve(tuple(clicks), tuple(ious), mask)


def objects_in(labels: np.ndarray, *, min_pixels: int = 1, classes=None,
               ignore_index: int = IGNORE_INDEX) -> list[dict]:
    """The objects of a label map: connected regions (4-neighbour) of one class, largest first.

    labels: `(H, W)` class ids. Each object: {"class": id, "mask": (H, W) bool, "pixels": count,
    "point": (x, y) its interior point}. min_pixels drops specks; classes keeps only those ids.
    """
    found = []
    for value in np.unique(labels):
        if value == ignore_index or (classes is not None and int(value) not in classes):
            continue
        regions, count = ndimage.label(labels == value)
        sizes = np.bincount(regions.ravel())
        for index in range(1, count + 1):
            if sizes[index] >= min_pixels:
                mask = regions == index
                found.append({"class": int(value), "mask": mask, "pixels": int(sizes[index]),
                              "point": interior_point(mask)})
    return sorted(found, key=lambda o: -o["pixels"])


def semantic_iou(prediction: np.ndarray, target: np.ndarray, class_id: int,
                 valid: np.ndarray | None = None) -> float:
    """How well a semantic model finds one object, for comparison with SAM's curve: its connected
    regions of `class_id` that touch the object, as one mask, against the object."""
    regions, _ = ndimage.label(prediction == class_id)
    touching = np.unique(regions[target & (regions > 0)])
    return mask_iou(np.isin(regions, touching) & (regions > 0), target, valid)


def sam_decoder(sam, image, *, digest: str | None = None) -> Decoder:
    """`decode` for `click_curve` from a `seg.sam.model.Sam` on `image` (an `(H, W, 3) uint8`
    photo, whose `image_digest` may be given, or its embedding): the best scored of SAM's three
    masks, as the app shows."""
    embedding = sam.embed(image, digest=digest) if isinstance(image, np.ndarray) else image

    def decode(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return sam.predict(embedding, points=points, labels=labels, multimask=True).masks[0]
    return decode


def summarise(curves: list[ClickCurve], *, max_clicks: int) -> dict:
    """Mean IoU after each click, and the mean NoC at each threshold, counting `max_clicks` for a
    curve that never reaches it (the usual convention), with how many did not."""
    if not curves:
        raise ValueError("no objects to summarise: lower --min-pixels or score more images")
    ious = np.array([c.ious for c in curves])
    out = {"objects": len(curves), "mean_iou": [round(float(v), 4) for v in ious.mean(axis=0)]}
    for threshold in THRESHOLDS:
        reached = [c.noc(threshold) for c in curves]
        out[f"noc@{round(threshold * 100)}"] = round(float(np.mean([n or max_clicks for n in reached])), 3)
        out[f"not_reached@{round(threshold * 100)}"] = sum(n is None for n in reached)
    return out


def summary_line(summary: dict, *, max_clicks: int) -> str:
    """The summary in words: the mean IoU after the 1st, 5th and last click (those that exist), and each
    NoC with how many objects never reached its IoU, which the mean counts as `max_clicks` each."""
    shown = sorted({1, min(5, max_clicks), max_clicks})
    ious = " / ".join(f"{summary['mean_iou'][n - 1]:.3f}" for n in shown)
    parts = [f"{summary['objects']} objects: mean IoU after {' / '.join(map(str, shown))} "
             f"click{'s' if shown != [1] else ''} {ious}"]
    for threshold in THRESHOLDS:
        percent = round(threshold * 100)
        missed = summary[f"not_reached@{percent}"]
        if missed == summary["objects"]:
            parts.append(f"NoC@{percent}: none reached {percent}% within {max_clicks} clicks")
        else:
            note = f" ({missed} never reached {percent}%, counted as {max_clicks})" if missed else ""
            parts.append(f"NoC@{percent} {summary[f'noc@{percent}']}{note}")
    return "; ".join(parts)
