"""Images and label maps: checking an image array, reading both from files, writing label maps."""

import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .screen import LABEL_FORMATS, PHOTO_FORMATS, PILLOW_FORMATS, screen


def check_image(image) -> np.ndarray:
    """Return `image` if it is an `(H, W, 3) uint8 RGB` array; else ValueError saying what arrived."""
    if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8):
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {type(image).__name__} of shape {shape} "
                         f"and dtype {getattr(image, 'dtype', None)}: convert it to RGB uint8 first")
    return image


@contextmanager
def _open(path, formats: tuple[str, ...] = PHOTO_FORMATS):
    """Image.open of a file `seg.data.screen` let through (one of `formats`, a structure within its
    caps: ValueError otherwise), with Pillow told its format so that no other reader tries it, and
    without Pillow's decompression-bomb warning: callers check pixels themselves."""
    kind = screen(path, formats=formats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path, formats=PILLOW_FORMATS[kind]) as image:
            yield image


def check_pixels(image: Image.Image, max_pixels: int | None, name: str) -> None:
    """ValueError if an opened (not yet decoded) image has more than `max_pixels` pixels."""
    if max_pixels is not None and image.width * image.height > max_pixels:
        raise ValueError(f"{name} is {image.width}x{image.height} = {image.width * image.height / 1e6:.1f} "
                         f"megapixels; the limit is {max_pixels / 1e6:.1f}: shrink it first")


def stored_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image file as stored, from its header alone (an EXIF rotation may swap the two)."""
    with _open(path) as image:
        return image.height, image.width


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> np.ndarray:
    """An image file as `(H, W, 3) uint8 RGB`, upright (EXIF orientation applied), any mode converted.

    16-bit and 32-bit grey images are scaled to 8 bits (Pillow's own conversion would clip them
    to white); an animated image gives its first frame; transparency is dropped.
    max_pixels: refuse (ValueError) a larger image from its header, before decoding it. Only the
    formats of `seg.data.screen.PHOTO_FORMATS` are read, each checked by its structure first.
    """
    with _open(path) as image:
        check_pixels(image, max_pixels, "the image")
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            grey = np.array(image).astype(np.float64)
            top = 65535.0 if image.mode.startswith("I;16") else max(float(grey.max()), 1.0)
            grey = np.clip(grey / top * 255 + 0.5, 0, 255).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=2)
        return np.array(image.convert("RGB"))


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """A label-id PNG (8-bit grey or palette, or 16-bit) as `(H, W)` integer class ids."""
    with Image.open(path) as image:
        labels = np.array(image)
    if labels.ndim != 2:
        raise ValueError(f"{path}: a label map must be single-channel class ids, got shape {labels.shape} "
                         f"(mode {image.mode}); colour-coded masks need converting first")
    return labels


def write_labels(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Save `(H, W)` class ids in [0, 255] as an 8-bit PNG (lossless)."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
        raise ValueError(f"expected (H, W) class ids in [0, 255], got shape {labels.shape}")
    path = Path(path)
    Image.fromarray(labels.astype(np.uint8), mode="L").save(path)
    return path


def fit_image(image: np.ndarray, max_side: int, *,
              resample: Image.Resampling = Image.Resampling.LANCZOS) -> tuple[np.ndarray, float]:
    """Shrink `(H, W, 3) uint8` so its longer side is at most `max_side` (antialiased); returns
    the image and the scale applied (1.0 when it already fits, so small images stay untouched).
    resample: LANCZOS (sharpest) for what a model reads; BOX, a quarter of the time, for a thumbnail."""
    check_image(image)
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image, 1.0
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return np.array(Image.fromarray(image).resize(size, resample)), scale


def read_raw(path: str | os.PathLike, *, max_pixels: int | None = None, lossless: bool = False) -> np.ndarray:
    """A label file's stored values, untouched: palette indices stay indices, colours stay colours.

    max_pixels: refuse a larger file from its header, before decoding. lossless: refuse formats
    that change values (JPEG, WebP): a label map saved as JPEG has wrong ids along every edge.
    """
    name = Path(path).name
    try:
        with _open(path) as image:
            if lossless and image.format not in LABEL_FORMATS:
                raise ValueError(f"{name} is a {image.format} file, which changes label values along every edge: "
                                 f"save the label map as PNG")
            check_pixels(image, max_pixels, name)
            return np.array(image)
    except (OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise ValueError(f"{name} is not a readable image ({type(error).__name__}): upload a PNG") from None


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`(h, w)` uint8 labels (or a bool mask) to `size` (H, W) with nearest neighbour: the way back
    from `fit_image`'s working size to the original image."""
    if labels.shape == tuple(size):
        return labels
    resized = Image.fromarray(labels.astype(np.uint8)).resize((size[1], size[0]), Image.Resampling.NEAREST)
    return np.array(resized).astype(labels.dtype)


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The inclusive bounding box (x0, y0, x1, y1) of a `(H, W)` bool mask's pixels, or None when it
    is empty. Read from the row and column profiles: np.nonzero would hold 16 bytes per mask pixel."""
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    if not len(cols):
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def coco_box(mask: np.ndarray) -> list[int]:
    """A mask's box as COCO writes it, [x, y, width, height], or [0, 0, 0, 0] when it is empty."""
    box = mask_box(mask)
    return [0, 0, 0, 0] if box is None else [box[0], box[1], box[2] - box[0] + 1, box[3] - box[1] + 1]
