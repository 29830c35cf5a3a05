"""What a user takes away: label-id and colour PNGs, metrics JSON, and binary masks as COCO RLE."""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.io import coco_box
from ..sam.prompts import Objects, PromptCaps
from ..visualize import colorize


def save_png(path: str | Path, array: np.ndarray) -> Path:
    """`(H, W)` uint8 ids (8-bit grey) or `(H, W, 3)` uint8 colours as a lossless PNG."""
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (H, W, 3) uint8, got {array.dtype} {array.shape}")
    Image.fromarray(array).save(path, format="PNG")
    return Path(path)


def save_prediction(folder: str | Path, stem: str, labels: np.ndarray, palette) -> tuple[Path, Path]:
    """`<stem>_labels.png` (class ids) and `<stem>_colour.png` (the palette) in `folder`."""
    folder = Path(folder)
    return (save_png(folder / f"{stem}_labels.png", labels),
            save_png(folder / f"{stem}_colour.png", colorize(labels, palette)))


def save_json(path: str | Path, data) -> Path:
    """`data` as indented JSON; NaN is not valid JSON, so floats must already be finite or None."""
    Path(path).write_text(json.dumps(data, indent=2, allow_nan=False))
    return Path(path)


def rle_encode(mask: np.ndarray) -> dict:
    """`(H, W)` bool mask -> COCO compressed RLE `{"size": [H, W], "counts": str}`.

    COCO runs go down the columns (Fortran order) and start with a run of zeros (possibly empty);
    the run lengths are written as the delta to the run two back, in 5-bit groups offset into
    printable ASCII, which is what pycocotools' `mask.encode`/`decode` read and write.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    flat = mask.ravel(order="F")  # one byte a pixel: a 50 MP mask costs 50 MB here, twice at most
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds)
    if flat.size and flat[0] == 1:
        runs = np.concatenate([[0], runs])  # the first run counts zeros
    x = runs.astype(np.int64)
    x[3:] -= runs[1:-2]  # from the fourth run on, the delta to the run two back
    # Each value becomes 5-bit groups, low bits first; a set 0x20 bit means another group follows.
    # All runs are encoded at once, one group per round, with a mask of the runs still writing.
    groups, writing = [], np.ones(len(x), dtype=bool)
    while writing.any():
        c = x & 0x1F
        x = x >> 5  # arithmetic shift: negative deltas end at -1
        more = np.where(c & 0x10, x != -1, x != 0)
        groups.append(np.where(writing, c + 48 + 0x20 * more, 0).astype(np.uint8))
        writing &= more
    chars = np.stack(groups, axis=1)  # (runs, rounds), 0 = unused; there is always a first run
    counts = chars[chars > 0].tobytes().decode("ascii")  # row-major: run by run, groups in order
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def rle_decode(rle: dict) -> np.ndarray:
    """COCO compressed RLE -> `(H, W)` bool mask (the inverse of `rle_encode`)."""
    height, width = rle["size"]
    counts, runs, i = rle["counts"], [], 0
    while i < len(counts):
        x, shift, more = 0, 0, True
        while more:
            c = ord(counts[i]) - 48
            x |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            i, shift = i + 1, shift + 1
            if not more and c & 0x10:
                x |= -1 << (5 * shift)  # negative delta: sign-extend
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    if sum(runs) != height * width:
        raise ValueError(f"RLE runs cover {sum(runs)} pixels, the size says {height}x{width}")
    values = np.arange(len(runs)) % 2
    return np.repeat(values, runs).astype(bool).reshape((height, width), order="F")


def instance_ids(masks: list[np.ndarray]) -> np.ndarray:
    """`(H, W)` uint8: 0 where no object is, i + 1 where `masks[i]` is (a later object on top)."""
    if len(masks) > 255:
        raise ValueError(f"an 8-bit instance map holds at most 255 objects, got {len(masks)}")
    ids = np.zeros(masks[0].shape, np.uint8)
    for index, mask in enumerate(masks):
        ids[mask] = index + 1
    return ids


def categories(classes: Sequence[str] | None) -> list[dict]:
    """COCO's categories: each of `classes` with its id + 1, then "object" for an object without a
    class; only "object" (id 1) without classes."""
    names = [*(classes or ()), "object"]
    return [{"id": i, "name": name} for i, name in enumerate(names, 1)]


def category_id(item, classes: Sequence[str] | None) -> int:
    """The COCO category of object `item`: its class's, else "object"'s (see `categories`)."""
    classes = classes or ()
    return classes.index(item.category) + 1 if item.category in classes else len(classes) + 1


def coco_annotation(number: int, item, mask: np.ndarray, *, score: float | None = None,
                    stability: float | None = None, classes: Sequence[str] | None = None) -> dict:
    """The COCO annotation `number` (from 1) of object `item` (`seg.sam.prompts.SamObject`) with
    its `(H, W)` bool mask: its category (`category_id`), RLE, bbox (x, y, w, h), area, predicted IoU,
    stability score, name, and its prompts (`seg_prompts`). The mask is not kept: a caller can drop it
    and make the next."""
    return {"id": number, "image_id": 1, "category_id": category_id(item, classes), "iscrowd": 0,
            "segmentation": rle_encode(mask),
            "area": int(np.count_nonzero(mask)), "bbox": coco_box(mask),
            "predicted_iou": None if score is None else float(score),
            "stability_score": None if stability is None or stability != stability else float(stability),  # NaN: none
            "name": item.name,
            "seg_prompts": [list(c) for c in item.prompts.clicks]}


def coco_document(objects, annotations: list[dict], *, file_name: str, size: tuple[int, int],
                  classes: Sequence[str] | None = None) -> dict:
    """The COCO document around `annotations` (from `coco_annotation`), with every object's prompts
    and class (`seg_objects`), so that `seg.sam.prompts.Objects.from_json(coco["seg_objects"])`
    re-creates them."""
    height, width = size
    return {"images": [{"id": 1, "file_name": file_name, "height": int(height), "width": int(width)}],
            "categories": categories(classes), "annotations": annotations, "seg_objects": objects.to_json()}


def coco_objects(objects, masks: dict, *, file_name: str, size: tuple[int, int], scores: dict | None = None,
                 stability: dict | None = None, classes: Sequence[str] | None = None) -> dict:
    """A COCO document for the objects (`seg.sam.prompts.Objects`) that have a mask: one annotation
    each (see `coco_annotation`). masks/scores/stability: object id -> value."""
    annotations = []
    for item in objects.items:
        if item.id in masks:
            annotations.append(coco_annotation(len(annotations) + 1, item, masks[item.id],
                                               score=None if scores is None else scores[item.id],
                                               stability=None if stability is None else stability[item.id],
                                               classes=classes))
    return coco_document(objects, annotations, file_name=file_name, size=size, classes=classes)


def objects_from_coco(document, *, size: tuple[int, int], limits: PromptCaps, classes: Sequence[str] | None = None):
    """The `seg.sam.prompts.Objects` saved in a COCO document written by `coco_objects`, checked
    against the image it is opened on (`size`, H x W). ValueError saying what is wrong."""
    if not isinstance(document, dict) or not isinstance(document.get("seg_objects"), dict):
        raise ValueError("this JSON has no saved prompts: export the objects from this app (its COCO JSON "
                         "carries them) and import that file")
    images = document.get("images")
    if isinstance(images, list) and images and isinstance(images[0], dict):
        saved = (images[0].get("height"), images[0].get("width"))
        if saved != tuple(size):
            raise ValueError(f"these objects were made on a {saved[1]}x{saved[0]} image, this one is "
                             f"{size[1]}x{size[0]}: open the photo they were made on")
    return Objects.from_json(document["seg_objects"], size=size, limits=limits, classes=classes)
