"""SAM's prompts checked before any work: points with their labels, and a box, in the pixels of an
image of a given size. One set of rules for every caller (`Sam.predict`, the API, the app, saved and
imported objects through `seg.sam.prompts`), and the schema the browser's decoder is sent (`rules`).

    points, box = as_points([[120, 80]], [1], size=(360, 480)), as_box(None, (360, 480))
"""

import numpy as np

# The prompt's schema. A click has a mode: a point's label comes from it, and two "box" clicks are a
# box's opposite corners. SAM's decoder takes a box as two more points labelled 2 and 3, and closes a
# list without a box with a padding point labelled -1. The browser's decoder gets these as `rules()`.
POINT_LABELS = {"positive": 1, "negative": 0}
BOX = "box"
MODES = (*POINT_LABELS, BOX)
BOX_CORNER_LABELS = (2, 3)
PADDING_LABEL = -1


def rules(clicks_per_object: int) -> dict:
    """The schema above as JSON, with the clicks one object may take, for code that builds prompts
    where this module cannot run (ui/tabs/sam/live.js)."""
    return {"labels": dict(POINT_LABELS), "box": BOX, "box_labels": list(BOX_CORNER_LABELS),
            "padding_label": PADDING_LABEL, "clicks_per_object": clicks_per_object}


def numbers(values, what: str, shape: str) -> np.ndarray:
    """`values` (nested lists or an array) as float64, refusing anything that is not a real number:
    booleans and strings would otherwise pass silently as 1.0 / 0.0 / float("10")."""
    def flat(v):
        if isinstance(v, (list, tuple)):
            for item in v:
                yield from flat(item)
        else:
            yield v
    try:
        if isinstance(values, np.ndarray):
            if values.dtype.kind not in "iuf":
                raise TypeError
            return values.astype(np.float64)
        items = list(flat(values))
        if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating))
               for v in items):
            raise TypeError
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} must be numbers shaped {shape}, got {str(values)[:80]}") from None


def as_points(points, labels, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """`(points (N, 2) float64 x, y; labels (N,) 1 or 0)`, or None for no points; refused with a message
    when malformed or outside the `size` (H, W) image."""
    if points is None and labels is None:
        return None
    points = numbers(points if points is not None else [], "points", "[[x, y], ...]")
    labels = numbers(labels if labels is not None else [], "labels", "[1, 0, ...]")
    if points.size % 2 or (points.ndim != 2 and points.size) or (points.ndim == 2 and points.shape[1] != 2):
        raise ValueError(f"points must be shaped [[x, y], ...], got an array of shape {points.shape}")
    if labels.ndim > 1:
        raise ValueError(f"labels must be a flat list [1, 0, ...], got an array of shape {labels.shape}")
    points, labels = points.reshape(-1, 2), labels.reshape(-1)
    if len(points) != len(labels):
        raise ValueError(f"got {len(points)} points but {len(labels)} labels: give one label (1 positive, "
                         "0 negative) per point")
    if not np.isfinite(points).all():
        raise ValueError("point coordinates must be finite numbers (x, y) in pixels")
    if not np.isin(labels, tuple(POINT_LABELS.values())).all():
        raise ValueError(f"point labels must be 1 (positive) or 0 (negative), got {sorted(set(labels.tolist()))}")
    h, w = size
    outside = (points[:, 0] < 0) | (points[:, 0] > w) | (points[:, 1] < 0) | (points[:, 1] > h)
    if outside.any():
        raise ValueError(f"point {points[outside][0].tolist()} is outside the {w}x{h} image: "
                         "coordinates are (x, y) in original-image pixels")
    return (points, labels) if len(points) else None


def as_box(box, size: tuple[int, int]) -> np.ndarray | None:
    """`(4,) float64` x0, y0, x1, y1, or None for no box; refused when malformed, empty or outside."""
    if box is None:
        return None
    box = numbers(box, "a box", "[x0, y0, x1, y1]")
    h, w = size
    if box.shape != (4,) or not np.isfinite(box).all():  # flat: [[x0, y0], [x1, y1]] is not read as a box
        raise ValueError(f"a box is a flat list of 4 finite numbers [x0, y0, x1, y1] in pixels, got {box.tolist()}")
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"box {box.tolist()} has zero area: x1 must exceed x0 and y1 exceed y0")
    if box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h:
        raise ValueError(f"box {box.tolist()} reaches outside the {w}x{h} image")
    return box
