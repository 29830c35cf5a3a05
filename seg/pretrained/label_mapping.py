"""Mapping other datasets' classes onto CamVid's 11, so pretrained models can be scored against
CamVid ground truth and drawn in the same colours.

CamVid's 11 classes are themselves groups of its 32 original ones (the SegNet grouping): Building
takes walls and bridges, Tree takes other vegetation, Car every road vehicle, Pedestrian people,
Bicyclist riders of bicycles and motorcycles, SignSymbol signs and traffic lights, Road the lane
markings, Pavement sidewalks. The tables below follow that grouping. A source class with no
CamVid counterpart maps to OTHER (id 11, "other", defined beside CamVid's classes): it is shown and scored as wrong
wherever the ground truth has a CamVid class, never silently dropped.

To score a mapped prediction, count "other" as a twelfth class that the ground truth never
contains: `SegmentationMetrics(num_classes=len(CLASSES_WITH_OTHER))`, then average the first 11
per-class IoUs (`seg.metrics.mean_present(scores.iou[:OTHER])`, as `seg.explorer.compare.score`
does). "Other" pixels then cost the true class its recall, as they should.
"""

import numpy as np

from ..data.camvid import CLASSES as CAMVID_CLASSES
from ..data.camvid import OTHER

# Cityscapes' 19 evaluation classes (names as in the SegFormer Cityscapes configs).
CITYSCAPES_TO_CAMVID = {
    "road": "Road", "sidewalk": "Pavement", "building": "Building", "wall": "Building", "fence": "Fence",
    "pole": "Pole", "traffic light": "SignSymbol", "traffic sign": "SignSymbol", "vegetation": "Tree",
    "terrain": None,  # grass and soil: CamVid has no such class (its Tree is trees and bushes)
    "sky": "Sky", "person": "Pedestrian", "rider": "Bicyclist", "car": "Car", "truck": "Car", "bus": "Car",
    "train": "Car", "motorcycle": "Bicyclist", "bicycle": "Bicyclist",
}

# ADE20K (150 classes, names as in the SegFormer ADE20K configs): best effort, the street-scene
# classes only; every other ADE20K class is OTHER.
ADE20K_TO_CAMVID = {
    "sky": "Sky",
    "building": "Building", "house": "Building", "skyscraper": "Building", "wall": "Building",
    "bridge": "Building", "tower": "Building",
    "road": "Road", "sidewalk": "Pavement",
    "tree": "Tree", "plant": "Tree", "palm": "Tree",
    "car": "Car", "truck": "Car", "bus": "Car", "van": "Car",
    "person": "Pedestrian",
    "bicycle": "Bicyclist", "minibike": "Bicyclist",
    "fence": "Fence", "railing": "Fence",
    "pole": "Pole", "streetlight": "Pole",
    "signboard": "SignSymbol", "traffic light": "SignSymbol",
}

TABLES = {"cityscapes": CITYSCAPES_TO_CAMVID, "ade20k": ADE20K_TO_CAMVID}


def lookup_table(source_classes: list[str], table: dict[str, str | None]) -> np.ndarray:
    """(len(source_classes),) uint8: the CamVid id of each source class, OTHER where none.

    Matching is by name, case-insensitive, on the part before any ";" or "," (ADE20K labels such as
    "person;individual" or "car, auto"), so it does not depend on a model's class order.
    """
    index = {name: i for i, name in enumerate(CAMVID_CLASSES)}
    wanted = {k.lower(): v for k, v in table.items()}
    out = np.full(len(source_classes), OTHER, dtype=np.uint8)
    for i, name in enumerate(source_classes):
        key = name.lower().replace(";", ",").split(",")[0].strip()
        target = wanted.get(key)
        if target is not None:
            out[i] = index[target]
    return out


def camvid_class_map(class_names: list[str], label_space: str | None) -> np.ndarray | None:
    """(C,) uint8: the CamVid id (or OTHER) of each of a model's classes; None when its label
    space has no table (then it cannot be scored against CamVid)."""
    if label_space == "camvid":
        return np.arange(len(class_names), dtype=np.uint8)
    if label_space in TABLES:
        return lookup_table(class_names, TABLES[label_space])
    return None


def map_labels(labels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Source-class label map `(H, W)` -> CamVid ids `(H, W) uint8` (OTHER for unmatched classes)."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= len(table)):
        raise ValueError(f"labels hold ids up to {labels.max()}, but the table covers {len(table)} classes")
    return table[labels]
