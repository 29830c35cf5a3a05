"""A semantic model's label map refined by SAM's boundaries.

Every connected region of the prediction above a minimum size prompts SAM with the region's box and
its most interior point. Of SAM's three masks, the one that best overlaps the region (IoU) takes the
region's class, unless even that one overlaps it less than `min_iou` (SAM found another object: the
region is left as the model drew it). The chosen masks are painted largest region first, so a small
object inside a large one stays on top; a pixel no chosen mask covers keeps the model's label.

    regions = find_regions(labels, min_pixels=200, max_regions=30)      # largest first
    refined = refine(labels, SamRegions(sam, image), min_pixels=200, max_regions=30)
    refined.labels, refined.regions                                     # (H, W) ids, what each region did

The decoder is anything shaped as `RegionDecoder`: SAM's batched decoder
(`seg.sam.regions.SamRegions`), or a stand-in whose answers are known (the tests).
"""

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import ndimage

from ..data.io import resize_labels
from ..labels import IGNORE_INDEX
from .clicks import MIN_OBJECT_PIXELS, interior_point

# prompts per photo: the app's refinement answers in seconds on 2 cores (RESULTS.md, "Refine with SAM")
MAX_REGIONS = 30
MIN_IOU = 0.5  # a SAM mask overlapping its region less than this is another object


@dataclass(frozen=True)
class Region:
    """One connected region (4-neighbour) of one class. mask: `(H, W)` bool; box: x0, y0, x1, y1, the
    pixel edges around it (a box prompt covers its pixels whole); point: x, y of its most interior pixel."""

    label: int
    area: int
    box: tuple[int, int, int, int]
    point: tuple[int, int]
    mask: np.ndarray


def find_regions(labels: np.ndarray, *, min_pixels: int = MIN_OBJECT_PIXELS, max_regions: int = MAX_REGIONS,
                 ignore: tuple[int, ...] = (IGNORE_INDEX,)) -> list[Region]:
    """The connected regions of `(H, W)` label map `labels` of at least `min_pixels` pixels, largest
    first (ties in label, then reading order), at most `max_regions`; labels in `ignore` are none."""
    if np.ndim(labels) != 2:
        raise ValueError(f"labels must be one (H, W) label map, got shape {np.shape(labels)}")
    if min_pixels < 1 or max_regions < 0:
        raise ValueError(f"min_pixels must be at least 1 and max_regions at least 0, got {min_pixels}, {max_regions}")
    found = []  # (area, label, number, components, slices)
    for value in np.unique(labels):
        if int(value) in ignore:
            continue
        components, count = ndimage.label(labels == value)
        if not count:
            continue
        sizes, slices = np.bincount(components.ravel(), minlength=count + 1)[1:], ndimage.find_objects(components)
        found += [(int(sizes[i]), int(value), i, components, slices[i]) for i in np.flatnonzero(sizes >= min_pixels)]
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    regions = []
    for area, value, i, components, (rows, cols) in found[:max_regions]:
        crop = components[rows, cols] == i + 1  # the region within its box: what it is read from
        x, y = interior_point(crop)  # the box's outside is not the region, so the crop's edge is an edge
        mask = np.zeros(labels.shape, bool)
        mask[rows, cols] = crop
        regions.append(Region(value, area, (cols.start, rows.start, cols.stop, rows.stop),
                              (x + cols.start, y + rows.start), mask))
    return regions


class RegionDecoder(Protocol):
    """What refines regions: three candidate masks per prompt, and the chosen ones at the image's size."""

    def candidates(self, boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
        """`(R, 3, h, w)` float logits (a mask is logits > 0) in the decoder's own frame over the whole
        image, for R prompts: boxes `(R, 4)` x0, y0, x1, y1 and positive points `(R, 2)` x, y, in
        the image's pixels."""
        ...

    def full_size(self, logits: np.ndarray) -> np.ndarray:
        """`(K, h, w)` logits of `candidates` as `(K, H, W)` bool masks at the image's size."""
        ...


def best_overlap(candidates: np.ndarray, region: np.ndarray) -> tuple[int, float]:
    """(index, IoU) of the mask among `(M, h, w)` bool `candidates` that best overlaps `(h, w)` bool
    `region`: the first on a tie."""
    inter = (candidates & region).sum((1, 2))
    union = (candidates | region).sum((1, 2))
    iou = inter / np.maximum(union, 1)
    best = int(np.argmax(iou))
    return best, float(iou[best])


@dataclass(frozen=True)
class Refined:
    """labels: `(H, W)` the refined map; regions: one dict per region prompted, largest first: its
    class id, area, box, point, the chosen mask ("mask", in the decoder's order), its IoU with the
    region, whether it was painted, and how many pixels it changed; masks: region index -> the
    painted `(H, W)` bool mask. seconds: wall time (SAM's embedding included when the decoder made it)."""

    labels: np.ndarray
    regions: list[dict]
    seconds: float
    masks: dict[int, np.ndarray]


def refine(labels: np.ndarray, decoder: RegionDecoder, *, min_pixels: int = MIN_OBJECT_PIXELS,
           max_regions: int = MAX_REGIONS, min_iou: float = MIN_IOU, started: float | None = None) -> Refined:
    """`(H, W)` uint8 label map `labels` refined by `decoder` (see the module's docstring).
    started: `time.perf_counter()` when the work began (SAM's embedding, before the decoder existed)."""
    started = time.perf_counter() if started is None else started
    regions = find_regions(labels, min_pixels=min_pixels, max_regions=max_regions)
    out = np.array(labels, copy=True)
    if not regions:
        return Refined(out, [], time.perf_counter() - started, {})
    boxes = np.array([r.box for r in regions], np.float64)
    points = np.array([r.point for r in regions], np.float64)
    logits = decoder.candidates(boxes, points)
    if logits.shape[:2] != (len(regions), 3):
        raise ValueError(f"the decoder answered {logits.shape[:2]} masks for {len(regions)} prompts; 3 each expected")
    frame = logits.shape[-2:]
    chosen = [best_overlap(logits[i] > 0, resize_labels(r.mask, frame)) for i, r in enumerate(regions)]
    painted = [i for i, (_, iou) in enumerate(chosen) if iou >= min_iou]
    masks = decoder.full_size(np.stack([logits[i, chosen[i][0]] for i in painted])) if painted else []
    changed = dict.fromkeys(range(len(regions)), 0)
    for i, mask in zip(painted, masks):  # largest first: each smaller region over the larger ones
        changed[i] = int((out[mask] != regions[i].label).sum())
        out[mask] = regions[i].label
    report = [{"class": r.label, "area": r.area, "box": list(r.box), "point": list(r.point), "mask": chosen[i][0],
               "iou": round(chosen[i][1], 4), "painted": i in painted, "changed_pixels": changed[i]}
              for i, r in enumerate(regions)]
    return Refined(out, report, time.perf_counter() - started, dict(zip(painted, masks)))
