"""The API's JSON texts read into SAM prompts and objects: decoded with caps on size and nesting,
counts capped by the caller's caps (the app's: `ui.limits`), every click checked as the app checks its
own (`seg.sam.prompts`).

    prompt = parse_prompt("[[120, 80]]", "[1]", "", limits=limits)     # keyword arguments for Sam.predict
    objects = parse_objects('[{"points": [[120, 80]], "labels": [1]}]', limits=limits)
"""

import json
from collections.abc import Sequence

from .prompts import ClickCount, Objects, PromptCaps, sam_object
from .rules import BOX, POINT_LABELS


def parse_json_text(text: str | None, what: str, example: str, *, limits: PromptCaps):
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
    level, depth = [value] if isinstance(value, (list, dict)) else [], 0
    while level:  # one level of lists / objects at a time
        depth += 1
        if depth > limits.json_depth:
            raise ValueError(f"{what} is nested deeper than {limits.json_depth} levels: expected e.g. {example}")
        level = [v for item in level for v in (item.values() if isinstance(item, dict) else item)
                 if isinstance(v, (list, dict))]
    return value


def parse_prompt(points: str | None, labels: str | None, box: str | None, *, limits: PromptCaps) -> dict:
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


MODE_OF_LABEL = {label: mode for mode, label in POINT_LABELS.items()}  # 1 -> "positive", 0 -> "negative"


def parse_objects(text: str | None, *, limits: PromptCaps, classes: Sequence[str] | None = None) -> Objects:
    """Several objects' prompts from the API's JSON text `[{"name", "points", "labels", "box"}, ...]`
    (points `[[x, y], ...]` with labels 1/0, a box `[x0, y0, x1, y1]`, in image pixels), as `Objects`;
    counts capped by `limits` (objects, points per object, points in all). Each click is checked as
    every click is (`check_click`); against the photo, once its size is known, by `Prompts.check`.
    With `classes`, an object may name its "class", one of them."""
    example = '[{"name": "car", "points": [[120, 80]], "labels": [1]}, {"box": [10, 20, 200, 160]}]'
    value = parse_json_text(text, "objects", example, limits=limits)
    if not isinstance(value, list) or not value:
        raise ValueError(f"objects must be a non-empty JSON list such as {example}")
    counted, items = ClickCount(limits, len(value)), []
    for number, entry in enumerate(value, 1):
        keys = {"name", "points", "labels", "box"} | ({"class"} if classes is not None else set())
        if not isinstance(entry, dict) or not set(entry) <= keys:
            also = ", and a class" if classes is not None else ""
            raise ValueError(f"object {number} must be an object with name, points, labels and/or box{also}, "
                             f"as in {example}")
        points, labels, box = entry.get("points") or [], entry.get("labels") or [], entry.get("box")
        if not isinstance(points, list) or not isinstance(labels, list) or len(points) != len(labels):
            raise ValueError(f"object {number}: points and labels must be lists of the same length")
        if box is not None and not (isinstance(box, list) and len(box) == 4):
            raise ValueError(f"object {number}: a box is [x0, y0, x1, y1]")
        if not points and box is None:
            raise ValueError(f"object {number} needs a prompt: points with labels, or a box")
        clicks = []
        for point, label in zip(points, labels):
            if not (isinstance(point, list) and len(point) == 2 and label in MODE_OF_LABEL
                    and not isinstance(label, bool)):
                raise ValueError(f"object {number}: a point is [x, y] and its label 1 or 0, got {str(point)[:40]} "
                                 f"and {str(label)[:10]}")
            clicks.append((point[0], point[1], MODE_OF_LABEL[label]))
        if box is not None:
            clicks += [(box[0], box[1], BOX), (box[2], box[3], BOX)]
        name = entry.get("name")
        items.append(sam_object(number, clicks, counted, ident=number,
                                name=name if isinstance(name, str) and name else f"object {number}",
                                category=entry.get("class"), classes=classes))
    return Objects.of(items)
