"""SAM's mask related to the semantic models: each model's class and region at the object's point,
and how well each agrees with SAM and with the ground truth.

    rows = relate(mask, (x, y), {"U-Net": labels}, CLASSES_WITH_OTHER, ground_truth)
"""

import numpy as np


def region_at(labels: np.ndarray, x: float, y: float) -> np.ndarray:
    """The connected region (4-neighbour) of `labels` that holds pixel (x, y): `(H, W)` bool."""
    from scipy import ndimage

    row, col = int(round(y)), int(round(x))
    h, w = labels.shape
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"point ({x}, {y}) is outside the {w}x{h} image")
    components, _ = ndimage.label(labels == labels[row, col])
    return components == components[row, col]


def iou(a: np.ndarray, b: np.ndarray) -> float | None:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else None


def relate(mask: np.ndarray, point: tuple[float, float], predictions: dict[str, np.ndarray], class_names,
           ground_truth: np.ndarray | None = None) -> list[dict]:
    """For the object SAM found at `point` (x, y): each semantic model's class there, the IoU of
    SAM's mask with that model's connected region there and, with a ground truth, the IoU of each
    (SAM included) with the true region of the true class there. One row per model, SAM first."""
    def name(labels: np.ndarray) -> str:
        value = int(labels[int(round(point[1])), int(round(point[0]))])
        return class_names[value] if value < len(class_names) else ("void" if value == 255 else str(value))

    truth = region_at(ground_truth, *point) if ground_truth is not None else None
    rows = [{"model": "SAM", "class": "(object)", "iou_with_sam": 1.0,
             "iou_with_truth": iou(mask, truth) if truth is not None else None}]
    for title, labels in predictions.items():
        region = region_at(labels, *point)
        rows.append({"model": title, "class": name(labels), "iou_with_sam": iou(mask, region),
                     "iou_with_truth": iou(region, truth) if truth is not None else None})
    if ground_truth is not None:
        rows.append({"model": "ground truth", "class": name(ground_truth), "iou_with_sam": iou(mask, truth),
                     "iou_with_truth": 1.0})
    return rows
