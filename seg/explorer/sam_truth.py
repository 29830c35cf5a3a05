"""A ground truth made by clicking: SAM's objects, each with a class, painted into a label map.

Objects are painted in their order, later over earlier (a car in front of a building is listed after
it); pixels under no object are void, so a label map made of a few objects scores only those pixels.

    labels = truth_from_objects(objects, masks, CLASSES, size=(720, 960))   # (H, W) ids, void 255
    ids_png, colour_png = save_truth(folder, "street", labels, PALETTE)
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..data.io import resize_labels
from ..labels import IGNORE_INDEX
from .export import save_png
from .prompts import Objects

VOID_ID = 11  # void in a label-id PNG, as CamVid's own annotations write it (our reader takes 11 or 255)
VOID_COLOUR = (0, 0, 0)  # void in a colour PNG, as CamVid's colour annotations draw it


def truth_from_objects(objects: Objects, masks: dict[int, np.ndarray], classes: Sequence[str], *,
                       size: tuple[int, int]) -> np.ndarray:
    """`(H, W)` uint8 label map of `size`: each object with prompts painted with the id of its class in
    `classes`, in order, later over earlier; IGNORE_INDEX (void) elsewhere. masks: object id ->
    `(h, w)` bool (resized to `size` where they are smaller). ValueError for an object without a
    class or without a mask, or when no object has a prompt."""
    outlined = [item for item in objects.items if item.prompts.ready()]
    if not outlined:
        raise ValueError("no object is outlined yet: click an object, pick its class, then use it as ground truth")
    for number, item in enumerate(objects.items, 1):
        if not item.prompts.ready():  # an object just added, not clicked yet
            continue
        if item.category not in classes:
            raise ValueError(f"object {number} ({item.name}) has no class: pick one of {', '.join(classes)}"
                             if item.category is None else
                             f"object {number}: unknown class {item.category!r}: pick one of {', '.join(classes)}")
        if item.id not in masks:
            raise ValueError(f"object {number} ({item.name}) has no mask yet: click it again")
    labels = np.full(size, IGNORE_INDEX, np.uint8)
    for item in outlined:
        labels[resize_labels(masks[item.id], size)] = classes.index(item.category)
    return labels


def save_truth(folder: str | Path, stem: str, labels: np.ndarray, palette) -> tuple[Path, Path]:
    """`labels` ((H, W) ids, void IGNORE_INDEX) as `stem_labels.png` (ids, void VOID_ID) and
    `stem_colour.png` (RGB in `palette`, void black): both read back by `seg.data.ground_truth`."""
    folder = Path(folder)
    void = labels == IGNORE_INDEX
    ids = np.where(void, VOID_ID, labels).astype(np.uint8)
    colours = np.asarray(palette, np.uint8)[np.minimum(labels, len(palette) - 1)]
    colours[void] = VOID_COLOUR
    return save_png(folder / f"{stem}_labels.png", ids), save_png(folder / f"{stem}_colour.png", colours)
