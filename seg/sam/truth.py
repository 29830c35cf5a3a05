"""A ground truth made by clicking: SAM's objects, each with a class, painted into a label map.

Objects are painted in their order, later over earlier (a car in front of a building is listed after
it); pixels under no object are void, so a label map made of a few objects scores only those pixels.

    labels = truth_from_objects(objects, masks, CLASSES, size=(720, 960))   # (H, W) ids, void 255
    labels = paint(((item, mask_of(item)) for item in outlined(objects, CLASSES)), CLASSES, size=(720, 960))
    ids_png, colour_png = save_truth(folder, "street", labels, PALETTE)
"""

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..data.io import resize_labels
from ..explorer.export import save_png
from ..labels import IGNORE_INDEX
from .prompts import Objects, SamObject
from .rules import BOX

VOID_ID = 11  # void in a label-id PNG, as CamVid's own annotations write it (our reader takes 11 or 255)
VOID_COLOUR = (0, 0, 0)  # void in a colour PNG, as CamVid's colour annotations draw it


def outlined(objects: Objects, classes: Sequence[str]) -> list[SamObject]:
    """The objects with a prompt, in order, each checked to have a class of `classes`. ValueError
    naming the first object without one, or when no object has a prompt."""
    found = [item for item in objects.items if item.prompts.ready()]  # one just added, not clicked yet, is not
    if not found:
        raise ValueError("no object is outlined yet: click an object, pick its class, then use it as ground truth")
    for number, item in enumerate(objects.items, 1):
        if item in found and item.category not in classes:
            named = "" if item.name == f"object {number}" else f" ({item.name})"
            raise ValueError(f"object {number}{named} has no class: pick one of {', '.join(classes)}"
                             if item.category is None else
                             f"object {number}: unknown class {item.category!r}: pick one of {', '.join(classes)}")
    return found


def left_out(objects: Objects, masks: dict) -> str:
    """A sentence naming every object without a mask, which an export or a ground truth leaves out, and
    why (half a box, nothing clicked, no mask yet), or "" when every object has one."""
    missing = []
    for number, item in enumerate(objects.items, 1):
        if item.id in masks:
            continue
        corners = sum(mode == BOX for _, _, mode in item.prompts.clicks)
        why = ("one corner of its box: click the other" if corners % 2 and not item.prompts.points else
               "nothing clicked" if not item.prompts.clicks else "no mask yet: click it again")
        named = "" if item.name == f"object {number}" else f" ({item.name})"
        missing.append(f"object {number}{named}: {why}")
    return f"Left out, without a mask: {'; '.join(missing)}." if missing else ""


def paint(masks: Iterable[tuple[SamObject, np.ndarray]], classes: Sequence[str], *, size: tuple[int,
                                                                                                int]) -> np.ndarray:
    """`(H, W)` uint8 label map of `size`: each (object, `(h, w)` bool mask) painted with the id of the
    object's class in `classes`, in order, later over earlier (a mask smaller than `size` is
    enlarged); IGNORE_INDEX (void) elsewhere. `masks` may be made one at a time: none is kept."""
    labels = np.full(size, IGNORE_INDEX, np.uint8)
    for item, mask in masks:
        labels[resize_labels(mask, size)] = classes.index(item.category)
    return labels


def truth_from_objects(objects: Objects, masks: dict[int, np.ndarray], classes: Sequence[str], *,
                       size: tuple[int, int]) -> np.ndarray:
    """The ground truth of `objects` (`outlined`, then `paint`ed) from their masks (object id -> `(h, w)`
    bool). ValueError for an object without a class or without a mask, or when none has a prompt."""
    items = outlined(objects, classes)
    for item in items:
        if item.id not in masks:
            raise ValueError(f"{item.name} has no mask yet: click it again")
    return paint(((item, masks[item.id]) for item in items), classes, size=size)


def label_ids(labels: np.ndarray) -> np.ndarray:
    """`labels` ((H, W) ids, void IGNORE_INDEX) as a label-id PNG holds them: void as VOID_ID."""
    return np.where(labels == IGNORE_INDEX, VOID_ID, labels).astype(np.uint8)


def save_truth(folder: str | Path, stem: str, labels: np.ndarray, palette) -> tuple[Path, Path]:
    """`labels` ((H, W) ids, void IGNORE_INDEX) as `stem_labels.png` (`label_ids`) and
    `stem_colour.png` (RGB in `palette`, void black): both read back by `seg.data.ground_truth`."""
    folder = Path(folder)
    colours = np.asarray(palette, np.uint8)[np.minimum(labels, len(palette) - 1)]
    colours[labels == IGNORE_INDEX] = VOID_COLOUR
    return save_png(folder / f"{stem}_labels.png", label_ids(labels)), save_png(folder / f"{stem}_colour.png", colours)
