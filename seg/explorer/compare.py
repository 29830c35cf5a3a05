"""Comparing semantic models on one image: run each (optionally with TTA and a CRF), score each
against a ground truth in CamVid's classes, show where each is wrong and where two of them disagree.

Predictions are CamVid ids 0-10, plus OTHER (11) where a pretrained model found a class CamVid
does not have; OTHER is scored as wrong, never dropped (it is a 12th column of the confusion
matrix that the means leave out).
"""

import time
from dataclasses import dataclass

import numpy as np

from ..data.camvid import CLASSES, OTHER
from ..labels import IGNORE_INDEX
from ..metrics import BOUNDARY_TOLERANCE, SegmentationMetrics, boundary_errors, mean_present, number
from ..postprocess import dense_crf, tta_probabilities
from ..visualize import boundary_map, error_map, overlay

TTA_SCALES = (0.75, 1.0, 1.25)


@dataclass(frozen=True)
class Prediction:
    """labels: (H, W) uint8 CamVid ids (+ OTHER); seconds: wall time of the whole prediction."""

    key: str
    title: str
    labels: np.ndarray
    seconds: float


def run_model(model, image: np.ndarray, *, key: str = "", title: str = "", tta: bool = False,
            crf: bool = False) -> Prediction:
    """Run a `seg.explorer.semantic.SemanticModel` on `(H, W, 3) uint8` image.

    tta: average over scales TTA_SCALES and horizontal flips; crf: refine with a dense CRF.
    """
    started = time.perf_counter()
    if tta:
        probs = tta_probabilities(model.probabilities, image, flips=True, scales=TTA_SCALES)
    else:
        probs = model.probabilities(image)
    if crf:
        probs = dense_crf(image, probs)
    labels = model.class_map[np.asarray(probs.argmax(0))]  # a tensor, or an array after the CRF
    return Prediction(key, title, labels, time.perf_counter() - started)


def score(labels: np.ndarray, ground_truth: np.ndarray, *, boundary_tolerance: int = BOUNDARY_TOLERANCE) -> dict:
    """Metrics of CamVid-id `labels` against `ground_truth` (IGNORE_INDEX for void), JSON-ready.

    Means are over the 11 CamVid classes present in the ground truth or the prediction;
    pixels predicted as OTHER count as wrong in pixel accuracy and in their true class's IoU.
    "confusion": pixel counts, row t (of CLASSES) and column p (of CLASSES_WITH_OTHER): how many
    pixels of true class t were predicted p.
    """
    metrics = SegmentationMetrics(OTHER + 1, boundary_tolerance=boundary_tolerance)
    metrics.update(pred=labels, target=ground_truth)
    s = metrics.compute()

    def mean(values) -> float | None:  # over CamVid's 11 classes: "other" is never a true class
        return number(mean_present(values[:OTHER]))

    confusion = s.confusion[:OTHER].tolist()  # rows: the 11 true classes; columns: predicted, "other" last
    per_class = {name: {"iou": number(s.iou[i]), "dice": number(s.dice[i]),
                        "boundary_f": number(s.boundary_f[i]) if s.boundary_f is not None else None}
                 for i, name in enumerate(CLASSES)}
    return {"miou": mean(s.iou), "mean_dice": mean(s.dice), "pixel_accuracy": number(s.pixel_accuracy),
            "boundary_f": mean(s.boundary_f) if s.boundary_f is not None else None,
            "other_fraction": round(float((labels == OTHER)[ground_truth != IGNORE_INDEX].mean()), 6)
            if (ground_truth != IGNORE_INDEX).any() else None,
            "per_class": per_class, "confusion": confusion}


# Disagreement colours: where A alone is right, B alone is right, both wrong, or no truth to judge.
A_RIGHT, B_RIGHT, BOTH_WRONG, DIFFERENT = (30, 136, 229), (255, 152, 0), (216, 27, 96), (255, 0, 255)


def disagreement(image: np.ndarray, a: np.ndarray, b: np.ndarray,
                 ground_truth: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Where label maps `a` and `b` differ, painted over a dimmed `image`, with pixel shares.

    Without a ground truth every differing pixel is magenta. With one: blue where only A agrees
    with it, orange where only B does, crimson where neither does (void pixels are left dimmed).
    Returns `(H, W, 3) uint8` and {"differ", "a_right", "b_right", "both_wrong"} as fractions of
    the image (the last three None without a ground truth).
    """
    if not (image.shape[:2] == a.shape == b.shape):
        raise ValueError(f"image {image.shape[:2]} and label maps {a.shape}, {b.shape} must be the same size")
    picture = (image.astype(np.float32) * 0.35 + 255 * 0.15).astype(np.uint8)
    differ = a != b
    total = differ.size
    stats = {"differ": round(float(differ.mean()), 6), "a_right": None, "b_right": None, "both_wrong": None}
    if ground_truth is None:
        picture[differ] = DIFFERENT
        return picture, stats
    if ground_truth.shape != a.shape:
        raise ValueError(f"ground truth is {ground_truth.shape}, predictions are {a.shape}: same size needed")
    known = differ & (ground_truth != IGNORE_INDEX)
    a_right = known & (a == ground_truth)
    b_right = known & (b == ground_truth)
    both_wrong = known & ~a_right & ~b_right
    for where, colour in ((a_right, A_RIGHT), (b_right, B_RIGHT), (both_wrong, BOTH_WRONG)):
        picture[where] = colour
    stats.update(a_right=round(a_right.sum() / total, 6), b_right=round(b_right.sum() / total, 6),
                 both_wrong=round(both_wrong.sum() / total, 6))
    return picture, stats


@dataclass(frozen=True)
class Comparison:
    """What `compare` found, kept whole so later views need not run or read anything again.

    image: the `(H, W, 3) uint8` photo the models saw; ground_truth: its `(H, W)` labels or None.
    predictions: by model key. rows: {"model", "mIoU", "Dice", "pixel acc.", "boundary F", "other"};
    with TTA or a CRF each model has two rows, the refined one and "(plain)", so their effect on the
    metrics is visible. per_class: model title -> {class name: IoU or None}; scores: model key ->
    what `score` returned (the confusion counts among it); both for the refined runs only.
    applied: what every prediction went through beyond the model, as its row says it (" + TTA + CRF").
    """

    image: np.ndarray
    ground_truth: np.ndarray | None
    predictions: dict[str, Prediction]
    rows: list[dict]
    per_class: dict[str, dict[str, float | None]]
    scores: dict[str, dict]
    applied: str = ""

    def errors(self, key: str, palette, *, boundary_tolerance: int = BOUNDARY_TOLERANCE) -> dict:
        """Model `key`'s mistakes, as pictures beside its overlay (needs the ground truth).

        Returns {"overlay", "errors", "boundaries"}: `(H, W, 3) uint8` each (see
        `seg.visualize.error_map` and `boundary_map`), and "shares": the error map's
        {"correct", "wrong", "ignored"} fractions of the image.
        """
        if self.ground_truth is None:
            raise ValueError("no ground truth: add one (label ids or CamVid colours, PNG) to see the errors")
        if key not in self.predictions:
            raise ValueError(f"{key!r} was not in this comparison: pick one of {', '.join(self.predictions)}")
        labels = self.predictions[key].labels
        errors, shares = error_map(self.image, labels, self.ground_truth, palette)
        edges = boundary_errors(pred=labels, target=self.ground_truth, num_classes=OTHER + 1,
                                tolerance=boundary_tolerance)
        return {"overlay": overlay(self.image, labels, palette), "errors": errors,
                "boundaries": boundary_map(self.image, edges), "shares": shares}

    def truth(self, palette) -> dict:
        """The ground truth's own pictures: {"overlay", "boundaries"} (every boundary its own match)."""
        if self.ground_truth is None:
            raise ValueError("no ground truth: add one (label ids or CamVid colours, PNG)")
        edges = boundary_errors(pred=self.ground_truth, target=self.ground_truth, num_classes=256)
        return {"overlay": overlay(self.image, self.ground_truth, palette),
                "boundaries": boundary_map(self.image, edges)}


def _row(title: str, s: dict) -> dict:
    return {"model": title, "mIoU": s["miou"], "Dice": s["mean_dice"], "pixel acc.": s["pixel_accuracy"],
            "boundary F": s["boundary_f"], "other": s["other_fraction"]}


def compare(models: dict, image: np.ndarray, ground_truth: np.ndarray | None = None, *, tta: bool = False,
            crf: bool = False, progress=None) -> Comparison:
    """Run every model on `image` and score it. models: key -> (title, `seg.explorer.semantic.SemanticModel`).

    progress: optional callable(fraction, description).
    """
    predictions, rows, per_class, scores = {}, [], {}, {}
    applied = "".join(f" + {name}" for name, on in (("TTA", tta), ("CRF", crf)) if on)
    for i, (key, (title, model)) in enumerate(models.items()):
        if progress:
            progress(i / len(models), f"running {title}")
        p = run_model(model, image, key=key, title=title, tta=tta, crf=crf)
        predictions[key] = p
        if ground_truth is None:
            continue
        s = score(p.labels, ground_truth)
        rows.append(_row(title + applied, s))
        per_class[title] = {c: v["iou"] for c, v in s["per_class"].items()}
        scores[key] = s
        if tta or crf:  # the same model without refinement, to show what refinement changed
            rows.append(_row(f"{title} (plain)", score(run_model(model, image).labels, ground_truth)))
    return Comparison(image, ground_truth, predictions, rows, per_class, scores, applied)


REFINED = " + SAM"  # a refined model's title: "U-Net + SAM"
CHANGE = "change with SAM"  # the column of a refined row: its mIoU and boundary F against the model's


def with_refined(result: Comparison, key: str, labels: np.ndarray, seconds: float) -> Comparison:
    """`result` with model `key`'s prediction refined by SAM (`labels`, `(H, W)` ids, see
    `seg.sam.refine`) as a prediction of its own, `key + "+sam"` titled "<title> + SAM" (or
    "<title> + TTA + CRF + SAM": SAM refines what the model's row shows), right after the model's:
    scored like the others, its row's CHANGE giving mIoU and boundary F against the model's.
    seconds: the refinement's own time."""
    if key not in result.predictions:
        raise ValueError(f"{key!r} was not in this comparison: pick one of {', '.join(result.predictions)}")
    model = result.predictions[key]
    refined = Prediction(f"{key}+sam", model.title + result.applied + REFINED, labels, seconds)
    predictions = {}
    for k, p in result.predictions.items():
        predictions[k] = p
        if k == key:
            predictions[refined.key] = refined
    if result.ground_truth is None:
        return Comparison(result.image, None, predictions, result.rows, result.per_class, result.scores, result.applied)
    s, before = score(labels, result.ground_truth), result.scores[key]
    change = ", ".join(f"{name} {s[m] - before[m]:+.3f}" for name, m in (("mIoU", "miou"), ("boundary F", "boundary_f"))
                       if s[m] is not None and before[m] is not None)
    at = next(i for i, row in enumerate(result.rows) if row["model"].startswith(model.title)) + 1
    rows = [{**row, CHANGE: ""} for row in result.rows]
    rows.insert(at, {**_row(refined.title, s), CHANGE: change})
    return Comparison(result.image, result.ground_truth, predictions, rows,
                      {**result.per_class, refined.title: {c: v["iou"] for c, v in s["per_class"].items()}},
                      {**result.scores, refined.key: s}, result.applied)
