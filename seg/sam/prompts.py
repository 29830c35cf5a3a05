"""SAM prompts and objects as a user builds them by clicking, and drawn on the image.

A `Prompts` value is immutable: every click returns a new one, so it can live in per-user state
and be undone by keeping the clicks that came before.

    p = Prompts().click(120, 80, "positive").click(10, 10, "box").click(200, 150, "box")
    sam.predict(image, **p.to_sam())   # points, labels and the box, in image pixels
    p = p.undo()                        # the second box corner is gone again
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw

from .rules import BOX, MODES, POINT_LABELS, as_box, as_points, numbers


class PromptCaps(Protocol):
    """The caps a caller puts on the prompts and objects it reads from users: the app passes its own
    (`ui.limits.Limits`); the library has none of its own."""

    text_bytes: int
    json_depth: int
    points_per_object: int
    points_per_request: int
    objects_per_request: int


@dataclass(frozen=True)
class Prompts:
    """clicks: ((x, y, mode), ...) in original-image pixels, oldest first. Two "box" clicks make
    a box (a third starts a new one, replacing it); "positive"/"negative" clicks are points."""

    clicks: tuple[tuple[float, float, str], ...] = ()

    def click(self, x: float, y: float, mode: str, *, size: tuple[int, int] | None = None) -> "Prompts":
        """These clicks and one more, checked by `check_click` (inside `size` (H, W) where given)."""
        return Prompts(self.clicks + (check_click(x, y, mode, size),))

    def undo(self) -> "Prompts":
        return Prompts(self.clicks[:-1])

    @property
    def points(self) -> list[tuple[float, float, int]]:
        """(x, y, label) with label 1 positive, 0 negative."""
        return [(x, y, POINT_LABELS[mode]) for x, y, mode in self.clicks if mode != BOX]

    @property
    def corners(self) -> list[tuple[float, float]]:
        """The corners of the current box: 0, 1 (waiting for the second) or 2."""
        corners = [(x, y) for x, y, mode in self.clicks if mode == BOX]
        return corners[-1:] if len(corners) % 2 else corners[-2:]

    @property
    def box(self) -> tuple[float, float, float, float] | None:
        """x0, y0, x1, y1 of the last complete box, or None."""
        corners = [(x, y) for x, y, mode in self.clicks if mode == BOX]
        if len(corners) < 2:
            return None
        complete = len(corners) // 2 * 2  # a pending first corner does not end the box before it
        (ax, ay), (bx, by) = corners[complete - 2:complete]
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)

    def ready(self) -> bool:
        """Whether SAM has something to answer: a point or a complete box."""
        return bool(self.points) or self.box is not None

    def check(self, size: tuple[int, int]) -> "Prompts":
        """These prompts, refused with SAM's own message (`seg.sam.rules`) where SAM
        would refuse them on an image of `size` (H, W): a zero-area box, a point outside."""
        prompt = self.to_sam()
        if as_points(prompt["points"], prompt["labels"], size) is None and as_box(prompt["box"], size) is None:
            raise ValueError("SAM needs a prompt: at least one point (with its label) or a box")
        return self

    def to_sam(self) -> dict:
        """Keyword arguments for `seg.sam.model.Sam.predict`."""
        points = self.points
        return {"points": [(x, y) for x, y, _ in points] or None, "labels": [lab for _, _, lab in points] or None,
                "box": self.box}


def check_click(x, y, mode, size: tuple[int, int] | None = None) -> tuple[float, float, str]:
    """One click `(x, y, mode)` as the prompts keep it: a mode of `MODES`, coordinates that are real,
    finite numbers, inside the `size` (H, W) image where given (its edges included, as SAM's points)."""
    if mode not in MODES:
        raise ValueError(f"unknown click mode {str(mode)[:20]!r}: choose one of {', '.join(MODES)}")
    try:
        x, y = numbers([x, y], "a click's x and y", "(x, y)").tolist()
    except ValueError:
        raise ValueError(f"a click is [x, y, mode] with x and y numbers, got {str([x, y, mode])[:60]}") from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise ValueError(f"a click needs finite coordinates, got ({x}, {y})")
    if size is not None and not (0 <= x <= size[1] and 0 <= y <= size[0]):
        raise ValueError(f"click ({x:g}, {y:g}) is outside the {size[1]}x{size[0]} image")
    return float(x), float(y), mode


@dataclass(frozen=True)
class SamObject:
    """One object a person outlines: a stable id (masks are kept under it), a name, its prompts,
    which of SAM's three masks was chosen (0: the best scored) and its class (a name of the caller's
    classes, or None). Its mask is a function of its prompts and choice alone, so saved objects
    re-create the same masks."""

    id: int
    name: str
    prompts: Prompts = Prompts()
    choice: int = 0
    category: str | None = None


@dataclass(frozen=True)
class ObjectMask:
    """The mask kept for one object: `(H, W)` bool, SAM's predicted IoU and its stability score."""

    mask: np.ndarray
    score: float
    stability: float


@dataclass(frozen=True)
class MaskChoices:
    """SAM's three masks for object `object` (best scored first), offered to choose from; `chosen`
    is the one kept. masks: `(3, H, W)` bool; scores, stability: `(3,)` float."""

    object: int
    masks: np.ndarray
    scores: tuple[float, ...]
    stability: tuple[float, ...]
    chosen: int = 0

    def chosen_mask(self, choice: int | None = None) -> ObjectMask:
        """Mask `choice` (default: the chosen one) as the object's mask."""
        i = self.chosen if choice is None else choice
        return ObjectMask(self.masks[i], self.scores[i], self.stability[i])


@dataclass(frozen=True)
class Objects:
    """The objects on one image, in order; `selected` is the one the next click edits. Immutable:
    every change returns a new value, so it can live in per-user state and in the browser.

        objects = Objects().click(120, 80, "positive").add().click(300, 40, "positive")
        objects.current.prompts     # the second object's clicks
    """

    items: tuple[SamObject, ...] = (SamObject(1, "object 1"),)
    selected: int = 0

    @property
    def current(self) -> SamObject:
        return self.items[self.selected]

    def _replace(self, item: SamObject) -> "Objects":
        items = list(self.items)
        items[self.selected] = item
        return Objects(tuple(items), self.selected)

    def click(self, x: float, y: float, mode: str) -> "Objects":
        """One more click on the selected object; SAM's best mask for it is the one kept again."""
        item = self.current
        return self._replace(replace(item, prompts=item.prompts.click(x, y, mode), choice=0))

    def undo(self) -> "Objects":
        item = self.current
        return self._replace(replace(item, prompts=item.prompts.undo(), choice=0))

    def choose(self, choice: int) -> "Objects":
        """The selected object with SAM's mask number `choice` (0-2) instead of the best scored."""
        if choice not in (0, 1, 2):
            raise ValueError(f"SAM gives three masks: choose 0, 1 or 2, got {choice}")
        return self._replace(replace(self.current, choice=choice))

    def classify(self, category: str | None) -> "Objects":
        """The selected object with class `category` (None: no class)."""
        return self._replace(replace(self.current, category=category))

    def move(self, step: int) -> "Objects":
        """The selected object `step` places later (negative: earlier) in the order, which is the
        order a ground truth paints them in (later over earlier); it stays selected."""
        to = min(max(self.selected + step, 0), len(self.items) - 1)
        items = list(self.items)
        items.insert(to, items.pop(self.selected))
        return Objects(tuple(items), to)

    def clear(self) -> "Objects":
        return self._replace(SamObject(self.current.id, self.current.name, category=self.current.category))

    def add(self, name: str | None = None) -> "Objects":
        """A new empty object after the others, selected."""
        new_id = max(item.id for item in self.items) + 1
        return Objects(self.items + (SamObject(new_id, name or f"object {new_id}"),), len(self.items))

    def extend(self, clicks: list[tuple[float, float, int]]) -> "Objects":
        """New objects after the others, one per (x, y, choice): a positive click there with SAM's
        mask number `choice`; the last one selected. Objects without a prompt are dropped first."""
        if not clicks:
            return self
        kept = tuple(item for item in self.items if item.prompts.clicks)
        objects = Objects(kept, len(kept) - 1).add() if kept else Objects()
        for n, (x, y, choice) in enumerate(clicks):
            objects = (objects if n == 0 else objects.add()).click(x, y, "positive").choose(choice)
        return objects

    def append(self, other: "Objects") -> "Objects":
        """`other`'s objects after these (renumbered after the highest id here), the last selected.
        Objects without a prompt are dropped first, here and in `other`."""
        mine = tuple(item for item in self.items if item.prompts.clicks)
        theirs = tuple(item for item in other.items if item.prompts.clicks)
        if not theirs:
            return self
        start = max((item.id for item in mine), default=0)
        renumbered = tuple(replace(item, id=start + n) for n, item in enumerate(theirs, 1))
        return Objects(mine + renumbered, len(mine) + len(renumbered) - 1)

    def select(self, index: int) -> "Objects":
        if not 0 <= index < len(self.items):
            raise ValueError(f"there is no object {index + 1}: there are {len(self.items)}")
        return Objects(self.items, index)

    def delete(self) -> "Objects":
        """Without the selected object (the one before it is selected); never empty."""
        items = self.items[:self.selected] + self.items[self.selected + 1:]
        if not items:
            return Objects((SamObject(self.current.id + 1, f"object {self.current.id + 1}"),))
        return Objects(items, max(0, self.selected - 1))

    def to_json(self) -> dict:
        return {"selected": self.selected,
                "objects": [{"id": o.id, "name": o.name, "clicks": [list(c) for c in o.prompts.clicks],
                             "choice": o.choice, **({"class": o.category} if o.category else {})}
                            for o in self.items]}

    @classmethod
    def from_json(cls, data, *, size: tuple[int, int] | None = None, limits: PromptCaps,
                  classes: Sequence[str] | None = None) -> "Objects":
        """The inverse of `to_json`, every value checked: ids, names, clicks `[x, y, mode]`
        (`check_click`), a "class" among `classes` (where given) and, with the image's `size` (H, W),
        each object's prompts as SAM checks them (`Prompts.check`); at most `limits.objects_per_request`
        objects, each with at most `limits.points_per_object` clicks and `limits.points_per_request`
        in all. ValueError otherwise."""
        where = "the saved objects"
        if not isinstance(data, dict) or not isinstance(data.get("objects"), list) or not data["objects"]:
            raise ValueError(f"{where} must be {{\"objects\": [{{\"id\", \"name\", \"clicks\"}}, ...]}}")
        raw = data["objects"]
        counted = ClickCount(limits, len(raw))
        items = []
        for number, entry in enumerate(raw, 1):
            if not isinstance(entry, dict) or not isinstance(entry.get("clicks"), list):
                raise ValueError(f"object {number} must be {{\"id\", \"name\", \"clicks\": [[x, y, mode], ...]}}")
            for click in entry["clicks"]:
                if not (isinstance(click, list) and len(click) == 3):
                    raise ValueError(f"object {number}: a click is [x, y, mode] with mode one of "
                                     f"{', '.join(MODES)}, got {str(click)[:60]}")
            ident = entry.get("id", number)
            ident = ident if isinstance(ident, int) and not isinstance(ident, bool) and 0 < ident < 10**9 else number
            choice = entry.get("choice", 0)
            if not (isinstance(choice, int) and not isinstance(choice, bool) and 0 <= choice <= 2):
                raise ValueError(f"object {number}: \"choice\" is which of SAM's three masks was kept, 0, 1 or 2, "
                                 f"got {str(choice)[:20]}")
            items.append(sam_object(number, entry["clicks"], counted, ident=ident,
                                    name=entry.get("name") or f"object {ident}", choice=choice,
                                    category=entry.get("class"), size=size, classes=classes))
        selected = data.get("selected", 0)
        return cls.of(items, selected if isinstance(selected, int) else 0)

    @classmethod
    def of(cls, items: list[SamObject], selected: int = 0) -> "Objects":
        """Checked objects as one value: ids made unique (renumbered when two share one), `selected`
        kept where it names an object."""
        if len({o.id for o in items}) != len(items):
            items = [replace(o, id=i) for i, o in enumerate(items, 1)]
        return cls(tuple(items), selected if 0 <= selected < len(items) else 0)


class ClickCount:
    """The caps on one request's objects and clicks (`limits`: objects_per_request, points_per_object,
    points_per_request), counted as the objects are read."""

    def __init__(self, limits: PromptCaps, objects: int):
        if objects > limits.objects_per_request:
            raise ValueError(f"{objects} objects; one request takes at most {limits.objects_per_request}")
        self.limits, self.total = limits, 0

    def add(self, number: int, clicks: int) -> None:
        self.total += clicks
        most, everything = self.limits.points_per_object, self.limits.points_per_request
        if clicks > most or self.total > everything:
            raise ValueError(f"object {number} has {clicks} points ({self.total} so far; a box counts as two); the "
                             f"limits are {most} per object and {everything} in all")


def sam_object(number: int, clicks, counted: ClickCount, *, ident: int, name: str, choice: int = 0, category=None,
               size: tuple[int, int] | None = None, classes: Sequence[str] | None = None) -> SamObject:
    """Object `number` of a request or a file, read once: its clicks `(x, y, mode)` counted against the
    caps and checked (`check_click`, inside `size` (H, W) where given), with `size` its prompts as SAM
    checks them (`Prompts.check`), its class among `classes`. Every reader of objects comes here."""
    counted.add(number, len(clicks))
    try:
        prompts = Prompts()
        for x, y, mode in clicks:
            prompts = prompts.click(x, y, mode, size=size)
        if size is not None and prompts.ready():
            prompts.check(size)  # what SAM would refuse (a zero-area box), refused now with its own words
    except ValueError as error:
        outside = " (these objects were made for another image)" if "outside" in str(error) else ""
        raise ValueError(f"object {number}: {error}{outside}") from None
    return SamObject(ident, str(name)[:60], prompts, choice, check_class(category, classes, number))


def check_class(category, classes: Sequence[str] | None, number: int) -> str | None:
    """Object `number`'s "class": None, or a name (one of `classes` where given)."""
    if category is None:
        return None
    if not isinstance(category, str) or not category or len(category) > 40 \
            or (classes is not None and category not in classes):
        known = f"one of {', '.join(classes)}" if classes is not None else "a class name"
        raise ValueError(f"object {number}: unknown class {str(category)[:40]!r}: choose {known}")
    return category


POSITIVE, NEGATIVE, BOX_COLOUR = (0, 200, 83), (229, 57, 53), (255, 214, 0)
OBJECT_COLOURS = ((30, 136, 229), (255, 112, 67), (102, 187, 106), (171, 71, 188), (255, 202, 40),
                  (38, 198, 218), (236, 64, 122), (141, 110, 99))  # distinct hues, cycled; the first is SAM's blue


def tint(picture: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], strength: float, *,
         outline: int = 0) -> None:
    """Blend `colour` into `picture` ((H, W, 3) uint8, changed in place) by `strength` where `mask`
    ((H, W) bool), and draw the mask's inner outline, `outline` pixels wide, in the colour itself.
    Only the mask's bounding box is read and written: a clicked object is usually a small part of
    the photo, and this runs for every object on every click."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return
    h, w = mask.shape  # the box widened by the outline, so the erosion sees the mask's true border
    box = (slice(max(rows[0] - outline, 0), min(rows[-1] + 1 + outline, h)),
           slice(max(cols[0] - outline, 0), min(cols[-1] + 1 + outline, w)))
    region, inside = picture[box], mask[box]
    keep = round((1 - strength) * 256)  # in 256ths: 16-bit integers blend several times faster than float32
    blended = (region.astype(np.uint16) * keep + (np.asarray(colour, dtype=np.uint16) * (256 - keep) + 128)) >> 8
    np.copyto(region, blended.astype(np.uint8), where=inside[..., None])
    if outline:
        from scipy import ndimage

        region[inside & ~ndimage.binary_erosion(inside, iterations=outline)] = colour


def draw_prompts(image: np.ndarray, prompts: Prompts, mask: np.ndarray | None = None, *,
                 scale: float = 1.0) -> np.ndarray:
    """The image with the mask tinted blue, the points as green (+) / red (-) dots, the box in yellow.

    image: (H, W, 3) uint8; mask: (H, W) bool. scale: the image is the prompts' photo resized by this
    factor (a thumbnail, `fit_image`): the prompts are mapped onto it.
    """
    picture = np.array(image, dtype=np.uint8)  # a copy: the caller's image stays as it was
    if mask is not None:
        tint(picture, mask, OBJECT_COLOURS[0], 0.55)
    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    r = max(4, round(max(image.shape[:2]) / 120))  # visible on small and large images alike
    if prompts.box is not None:
        draw.rectangle([v * scale for v in prompts.box], outline=BOX_COLOUR, width=max(2, r // 2))
    for x, y in prompts.corners if len(prompts.corners) == 1 else []:
        x, y = x * scale, y * scale
        draw.rectangle((x - r, y - r, x + r, y + r), outline=BOX_COLOUR, width=2)
    for x, y, label in prompts.points:
        x, y = x * scale, y * scale
        draw.ellipse((x - r, y - r, x + r, y + r), fill=POSITIVE if label else NEGATIVE, outline=(255, 255, 255),
                     width=2)
    return np.array(canvas)


def draw_objects(image: np.ndarray, objects: Objects, masks: dict[int, np.ndarray],
                 colours: dict[str, tuple[int, int, int]] | None = None) -> np.ndarray:
    """Every object's mask (`masks`: object id -> (H, W) bool) tinted in order, later over earlier,
    with its outline: in its class's colour (`colours`: class name -> RGB) where it has one, else in
    a colour of its own; the selected object's prompts on top."""
    picture = np.array(image, dtype=np.uint8)
    width = max(1, round(max(image.shape[:2]) / 400))
    colours = colours or {}
    for index, item in enumerate(objects.items):
        if item.id in masks:
            colour = colours.get(item.category) or OBJECT_COLOURS[index % len(OBJECT_COLOURS)]
            tint(picture, masks[item.id], colour, 0.55 if index == objects.selected else 0.35, outline=width)
    return draw_prompts(picture, objects.current.prompts)
