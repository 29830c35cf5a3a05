"""SAM's objects beyond one click: automatic masks and a model's regions turned into editable
objects, the point that stands for an object, the semantic models' labels kept per photo, and the
objects written out as an instance-id PNG with a COCO document.

    objects, masks = add_automatic(objects, found)          # found: Sam.everything's masks
    objects, masks = add_instances(objects, found, "car", "Car")   # found: SAM 3's instances of "car"
    point = object_point(objects.current.prompts)           # its last positive click, or its box's centre
    png, coco = write_objects(folder, objects, masks, file_name="street.png", size=(720, 960))
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.io import resize_labels
from ..explorer.export import coco_annotation, coco_document, coco_objects, instance_ids, save_png
from .prompts import ObjectMask, Objects, Prompts, SamObject
from .rules import BOX


def add_automatic(objects: Objects, found: list[dict], *, scale: float = 1.0) -> tuple[Objects, dict[int, ObjectMask]]:
    """`objects` with SAM's automatic masks (`Sam.everything`'s dicts) added after them, each as a
    positive click at the grid point that found it and the one of SAM's three masks there that it is,
    so it is edited, saved and exported like a clicked object; and {new object id: its mask}.
    scale: the clicks' coordinates are divided by it (the working size to the photo's own)."""
    if not found:
        return objects, {}
    grown = objects.extend([(float(x) / scale, float(y) / scale, m["choice"])
                            for m in found for x, y in m["point_coords"][:1]])
    new = grown.items[-len(found):]
    return grown, {item.id: ObjectMask(m["segmentation"], m["predicted_iou"], m["stability_score"])
                   for item, m in zip(new, found)}


def add_regions(objects: Objects, refined, decoder, classes, *, scale: float = 1.0
                ) -> tuple[Objects, dict[int, ObjectMask]]:
    """`objects` with each region that `refined` (`seg.sam.refine.Refined`) painted added after
    them as an object of its class (a name of `classes`), prompted as it was: a positive click at its
    point and its box, with the one of SAM's three masks chosen (`decoder`: the
    `seg.sam.regions.SamRegions` that answered); and {new object id: its mask}.
    scale: coordinates are divided by it (the working size to the photo's own). A region of no class
    of `classes` (a pretrained model's "other") is left out."""
    items, masks, ranks = [], {}, decoder.ranks()
    for i, region in enumerate(refined.regions):
        if not region["painted"] or not 0 <= region["class"] < len(classes):
            continue
        (x, y), (x0, y0, x1, y1), m = region["point"], region["box"], region["mask"]
        prompts = Prompts().click(x / scale, y / scale, "positive").click(x0 / scale, y0 / scale, BOX) \
            .click(x1 / scale, y1 / scale, BOX)
        name = classes[region["class"]]
        items.append(SamObject(len(items) + 1, f"{name.lower()} {len(items) + 1}", prompts, int(ranks[i, m]), name))
        masks[len(items)] = ObjectMask(refined.masks[i], float(decoder.scores[i, m]), float(decoder.stability[i, m]))
    if not items:
        return objects, {}
    grown = objects.append(Objects(tuple(items)))
    new = grown.items[-len(items):]
    return grown, {item.id: masks[n] for n, item in enumerate(new, 1)}


def add_instances(objects: Objects, found, phrase: str, category: str | None, *, scale: float = 1.0
                  ) -> tuple[Objects, dict[int, ObjectMask]]:
    """`objects` with each instance SAM 3 found for a concept (`seg.sam.concepts.Instance`) added after
    them as an object named after `phrase`, of class `category` (or none), prompted by its box, so
    it is edited like a drawn box; and {new object id: SAM 3's mask}. scale: coordinates are divided
    by it (the working size to the photo's own). SAM 3 gives no stability score: it is NaN. Saved and
    opened again, such an object is re-created from its box by the SAM answering clicks."""
    items = []
    for n, instance in enumerate(found, 1):
        x0, y0, x1, y1 = (v / scale for v in instance.box)
        prompts = Prompts().click(x0, y0, BOX).click(x1, y1, BOX)
        items.append(SamObject(n, f"{phrase} {n}", prompts, 0, category))
    if not items:
        return objects, {}
    grown = objects.append(Objects(tuple(items)))
    new = grown.items[-len(items):]
    return grown, {item.id: ObjectMask(i.mask, i.score, float("nan")) for item, i in zip(new, found)}


def object_point(prompts: Prompts) -> tuple[float, float]:
    """The point that stands for an object: its last positive click, else its last click, else the
    centre of its box."""
    clicks = [p for p in prompts.points if p[2] == 1] or prompts.points
    if clicks:
        return clicks[-1][:2]
    if prompts.box is None:
        raise ValueError("the object has no prompt yet: click on it first")
    x0, y0, x1, y1 = prompts.box
    return (x0 + x1) / 2, (y0 + y1) / 2


@dataclass
class PhotoLabels:
    """The semantic models' label maps on one photo, kept per user: each model runs once per photo
    however often it is asked. digest: the photo's (`seg.data.photos.image_digest`); labels:
    {model key: (H, W) CamVid ids}."""

    digest: str = ""
    labels: dict = field(default_factory=dict)

    def of(self, digest: str, models: dict, run: Callable) -> tuple[dict, "PhotoLabels"]:
        """({title: labels} of `models` ({key: (title, model)}) on the photo `digest`, running `run(model)`
        for the ones not kept yet; and the store to keep (a new one for another photo)."""
        labels = dict(self.labels) if digest == self.digest else {}
        for key, (_, model) in models.items():
            if key not in labels:
                labels[key] = run(model)
        return {title: labels[key] for key, (title, _) in models.items()}, PhotoLabels(digest, labels)


def write_objects(folder: Path, objects: Objects, masks: dict[int, ObjectMask], *, file_name: str,
                  size: tuple[int, int], classes: Sequence[str] | None = None) -> tuple[Path, dict]:
    """The instance-id PNG (`folder/instances.png`) and the COCO document of the objects that have a
    mask, at the masks' size `size` (H, W); each object's category is its class among `classes`."""
    done = [o for o in objects.items if o.id in masks]
    instances = save_png(folder / "instances.png", instance_ids([masks[o.id].mask for o in done]))
    coco = coco_objects(objects, {k: v.mask for k, v in masks.items()}, file_name=file_name, size=size,
                        scores={k: v.score for k, v in masks.items()},
                        stability={k: v.stability for k, v in masks.items()}, classes=classes)
    return instances, coco


def write_full_size(folder: Path, objects: Objects, masks: Iterator[tuple[np.ndarray, float, float]], *,
                    size: tuple[int, int], file_name: str, check: Callable[[], None] = lambda: None,
                    classes: Sequence[str] | None = None) -> tuple[Path, dict]:
    """The instance-id PNG (`folder/instances.png`) and the COCO document of `objects` at the photo's
    own `size` (H, W). masks: (mask at the working or the photo's size, score, stability), one per
    object, taken one at a time: each is enlarged, painted, encoded and dropped before the next is
    made. check: called before each (a deadline's)."""
    ids, annotations = np.zeros(size, np.uint8), []
    for number, (item, (mask, predicted_iou, stability)) in enumerate(zip(objects.items, masks), 1):
        check()
        mask = resize_labels(mask, size)
        ids[mask] = number
        annotations.append(coco_annotation(number, item, mask, score=predicted_iou, stability=stability,
                                           classes=classes))
        del mask  # before the next is made: one full-size mask alive at a time
    path = save_png(folder / "instances.png", ids)
    return path, coco_document(objects, annotations, file_name=file_name, size=size, classes=classes)


def mask_files(folder: Path, stem: str, objects: Objects, masks: dict[int, ObjectMask]) -> Iterable[Path]:
    """One black-and-white PNG per object that has a mask, numbered in the objects' order."""
    done = [o for o in objects.items if o.id in masks]
    return [save_png(folder / f"{stem}_object_{i}.png", masks[o.id].mask.astype(np.uint8) * 255)
            for i, o in enumerate(done, 1)]
