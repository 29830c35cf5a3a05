"""SAM prompts as a user builds them by clicking, drawn on the image, and SAM's mask related to
the semantic models' classes.

A `Prompts` value is immutable: every click returns a new one, so it can live in per-user state
and be undone by keeping the clicks that came before.

    p = Prompts().click(120, 80, "positive").click(10, 10, "box").click(200, 150, "box")
    sam.predict(image, **p.to_sam())   # points, labels and the box, in image pixels
    p = p.undo()                        # the second box corner is gone again
"""

import json
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .limits import LIMITS, Limits

MODES = ("positive", "negative", "box")


@dataclass(frozen=True)
class Prompts:
    """clicks: ((x, y, mode), ...) in original-image pixels, oldest first. Two "box" clicks make
    a box (a third starts a new one, replacing it); "positive"/"negative" clicks are points."""

    clicks: tuple[tuple[float, float, str], ...] = ()

    def click(self, x: float, y: float, mode: str) -> "Prompts":
        if mode not in MODES:
            raise ValueError(f"unknown click mode {mode!r}: choose one of {', '.join(MODES)}")
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"a click needs finite coordinates, got ({x}, {y})")
        return Prompts(self.clicks + ((float(x), float(y), mode),))

    def undo(self) -> "Prompts":
        return Prompts(self.clicks[:-1])

    @property
    def points(self) -> list[tuple[float, float, int]]:
        """(x, y, label) with label 1 positive, 0 negative."""
        return [(x, y, int(mode == "positive")) for x, y, mode in self.clicks if mode != "box"]

    @property
    def corners(self) -> list[tuple[float, float]]:
        """The corners of the current box: 0, 1 (waiting for the second) or 2."""
        corners = [(x, y) for x, y, mode in self.clicks if mode == "box"]
        return corners[-1:] if len(corners) % 2 else corners[-2:]

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        """x0, y0, x1, y1 of the last complete box, or None."""
        corners = [(x, y) for x, y, mode in self.clicks if mode == "box"]
        if len(corners) < 2:
            return None
        complete = len(corners) // 2 * 2  # a pending first corner does not end the box before it
        (ax, ay), (bx, by) = corners[complete - 2:complete]
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)

    def ready(self) -> bool:
        """Whether SAM has something to answer: a point or a complete box."""
        return bool(self.points) or self.box is not None

    def to_sam(self) -> dict:
        """Keyword arguments for `seg.pretrained.sam.Sam.predict`."""
        points = self.points
        return {"points": [(x, y) for x, y, _ in points] or None, "labels": [lab for _, _, lab in points] or None,
                "box": self.box}


def parse_json_text(text: str | None, what: str, example: str, *, limits: Limits = LIMITS):
    """A JSON text input (`None` when empty), refused with a message when it is not JSON, longer
    than `limits.text_bytes` or nested deeper than `limits.json_depth`."""
    if text is None or (isinstance(text, str) and text.strip() in ("", "null")):
        return None
    if not isinstance(text, str):
        raise ValueError(f"{what} must be JSON text such as {example}, got a {type(text).__name__}")
    if len(text) > limits.text_bytes:
        raise ValueError(f"{what} is {len(text):,} characters long; the limit is {limits.text_bytes:,}")
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):  # ValueError: an integer of over 4300 digits
        raise ValueError(f"{what} must be JSON such as {example}, got {text[:60]!r}") from None
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limits.json_depth:
            raise ValueError(f"{what} is nested deeper than {limits.json_depth} levels: expected e.g. {example}")
        level = [v for item in level if isinstance(item, (list, dict))
                 for v in (item.values() if isinstance(item, dict) else item)]
    return value


def parse_prompt(points: str | None, labels: str | None, box: str | None, *, limits: Limits = LIMITS) -> dict:
    """SAM keyword arguments (points, labels, box) from the API's three JSON texts, with the counts
    capped; the values themselves (numbers, inside the image) are checked by `Sam.predict`."""
    points = parse_json_text(points, "points", "[[120, 80]]", limits=limits)
    labels = parse_json_text(labels, "labels", "[1]", limits=limits)
    box = parse_json_text(box, "box", "[10, 20, 200, 160]", limits=limits)
    for value, what, example in ((points, "points", "[[120, 80], [40, 60]]"), (labels, "labels", "[1, 0]"),
                                 (box, "box", "[10, 20, 200, 160]")):
        if value is not None and not isinstance(value, list):
            raise ValueError(f"{what} must be a JSON list such as {example}, got {type(value).__name__}")
    if points is not None and len(points) > limits.points_per_object:
        raise ValueError(f"{len(points)} points; one object takes at most {limits.points_per_object}")
    return {"points": points, "labels": labels, "box": box}


POSITIVE, NEGATIVE, BOX = (0, 200, 83), (229, 57, 53), (255, 214, 0)


def draw_prompts(image: np.ndarray, prompts: Prompts, mask: np.ndarray | None = None) -> np.ndarray:
    """The image with the mask tinted blue, the points as green (+) / red (-) dots, the box in yellow."""
    picture = image.astype(np.float32)
    if mask is not None:
        picture[mask] = picture[mask] * 0.45 + np.array((30, 136, 229)) * 0.55
    canvas = Image.fromarray(picture.round().astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    r = max(4, round(max(image.shape[:2]) / 120))  # visible on small and large images alike
    if prompts.box is not None:
        draw.rectangle(prompts.box, outline=BOX, width=max(2, r // 2))
    for x, y in prompts.corners if len(prompts.corners) == 1 else []:
        draw.rectangle((x - r, y - r, x + r, y + r), outline=BOX, width=2)
    for x, y, label in prompts.points:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=POSITIVE if label else NEGATIVE, outline=(255, 255, 255),
                     width=2)
    return np.array(canvas)


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
