"""Label maps to pictures: a palette colouring and an overlay on the photo."""

import numpy as np

from .labels import IGNORE_INDEX


def colorize(labels: np.ndarray, palette, *, unknown_color=(0, 0, 0)) -> np.ndarray:
    """`(H, W)` class ids -> `(H, W, 3) uint8` colours; ids outside the palette (the ignore label
    among them) get `unknown_color`. palette: sequence of C RGB triples."""
    lut = np.tile(np.asarray(unknown_color, dtype=np.uint8), (256, 1))
    lut[:len(palette)] = np.asarray(palette, dtype=np.uint8)
    labels = np.asarray(labels)
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
        raise ValueError(f"class ids must be in [0, 255] to colour, got {labels.min()}..{labels.max()}")
    return lut[labels.astype(np.uint8)]


def overlay(image: np.ndarray, labels: np.ndarray, palette, *, alpha: float = 0.5,
            ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Blend the colouring over `(H, W, 3) uint8` `image` with opacity `alpha`; ignored pixels stay as they are."""
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image is {image.shape[:2]} but labels are {labels.shape}: they must be the same size")
    colours = colorize(labels, palette).astype(np.float32)
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours
    blended[labels == ignore_index] = image[labels == ignore_index]
    return blended.round().astype(np.uint8)
