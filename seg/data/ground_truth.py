"""A user's ground truth, as label ids or as a colour-coded picture: the format detected, checked, stated.

    gt = parse_ground_truth(array, image_shape=(360, 480))
    gt.labels   # (H, W) uint8 CamVid ids, void and unlabelled pixels as IGNORE_INDEX
    gt.format   # e.g. "colour-coded CamVid PNG (11 classes + void)"

Accepted: single-channel class ids 0-10 with void as 11 or 255 (CamVid's own annotation PNGs);
an RGB picture in the CamVid palette with void black (0, 0, 0); a grey picture saved as RGB (all
channels equal) is read as ids. Anything else is refused with a message that says what was found.
"""

from dataclasses import dataclass

import numpy as np

from ..labels import IGNORE_INDEX
from .camvid import CLASSES, PALETTE, VOID_LABEL
from .io import read_raw

VOID_COLOUR = (0, 0, 0)


@dataclass(frozen=True)
class GroundTruth:
    """labels: (H, W) uint8 class ids with IGNORE_INDEX for void; format: how the upload was read."""

    labels: np.ndarray
    format: str


def _from_ids(ids: np.ndarray, num_classes: int) -> np.ndarray:
    found = np.unique(ids)
    unknown = [int(v) for v in found if v >= num_classes and v not in (VOID_LABEL, IGNORE_INDEX)]
    if unknown:
        raise ValueError(f"the ground truth holds class ids {unknown[:8]} that CamVid does not have: expected ids "
                         f"0-{num_classes - 1} (void as {VOID_LABEL} or {IGNORE_INDEX}), or the CamVid colours")
    labels = ids.astype(np.uint8)
    labels[ids == VOID_LABEL] = IGNORE_INDEX
    return labels


def _from_colours(rgb: np.ndarray, palette, max_values: int) -> np.ndarray:
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    lookup = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(palette)}
    lookup[(VOID_COLOUR[0] << 16) | (VOID_COLOUR[1] << 8) | VOID_COLOUR[2]] = IGNORE_INDEX
    found, inverse = np.unique(codes, return_inverse=True)
    if len(found) > max_values:
        raise ValueError(f"the ground truth has {len(found):,} distinct colours; a label map has one per class "
                         f"(at most {max_values}): this looks like a photo, so upload the label PNG made for it")
    strangers = [c for c in found.tolist() if c not in lookup]
    if strangers:
        shown = ", ".join(str(((c >> 16) & 255, (c >> 8) & 255, c & 255)) for c in strangers[:4])
        raise ValueError(f"the ground truth has {len(strangers)} colours outside the CamVid palette (e.g. {shown}): "
                         "upload label ids (one channel) or a picture in the CamVid colours, saved as PNG "
                         "(JPEG blurs the colours)")
    return np.array([lookup[c] for c in found.tolist()], dtype=np.uint8)[inverse].reshape(codes.shape)


def parse_ground_truth(array: np.ndarray, *, image_shape: tuple[int, ...], palette=PALETTE,
                       num_classes: int = len(CLASSES), max_values: int = 256) -> GroundTruth:
    """Read an uploaded ground truth: `(H, W)` ids, `(H, W, 3|4)` colours or grey-as-RGB ids.

    image_shape: the photo's shape; the ground truth must have its height and width.
    max_values: more distinct colours than this is a photo, refused before each is looked up.
    Raises ValueError saying what was expected and what arrived.
    """
    array = np.asarray(array)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"a ground truth must be a label-id or colour PNG, got an array of shape {array.shape}")
    if array.shape[:2] != tuple(image_shape[:2]):
        raise ValueError(f"the ground truth is {array.shape[1]}x{array.shape[0]} but the image is "
                         f"{image_shape[1]}x{image_shape[0]} (width x height): upload the mask made for this image")
    if array.dtype != np.uint8:
        if array.dtype.kind not in "ui" or array.max(initial=0) > 255:
            raise ValueError(f"a ground truth holds class ids or 8-bit colours, got {array.dtype} values up to "
                             f"{array.max(initial=0)}: save it as an 8-bit PNG")
        array = array.astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]  # alpha carries no labels
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim == 2:
        return GroundTruth(_from_ids(array, num_classes), f"label ids ({num_classes} classes + void)")
    if (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all() \
            and array.max(initial=0) <= max(VOID_LABEL, num_classes - 1):
        return GroundTruth(_from_ids(array[..., 0], num_classes), "label ids saved as a grey RGB picture")
    return GroundTruth(_from_colours(array, palette, max_values),
                       f"colour-coded CamVid picture ({num_classes} classes + void)")


def read_ground_truth(path, *, image_shape: tuple[int, ...], max_pixels: int | None = None,
                      max_values: int = 256) -> GroundTruth:
    """`parse_ground_truth` of a lossless file (PNG), read with its stored values (palette indices as
    ids); a JPEG is refused, a file over `max_pixels` is refused before it is decoded."""
    return parse_ground_truth(read_raw(path, max_pixels=max_pixels, lossless=True), image_shape=image_shape,
                              max_values=max_values)
