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


def _faded(image: np.ndarray, *, level: float, contrast: float) -> np.ndarray:
    """`image` in grey, squeezed to `level + contrast * [0, 255]`: a backdrop that colours stand out on."""
    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.repeat((level + contrast * grey)[..., None], 3, axis=-1).round().astype(np.uint8)


IGNORED_COLOR = (70, 70, 70)  # error map: pixels the ground truth leaves out (void), striped with the backdrop


def error_map(image: np.ndarray, pred: np.ndarray, target: np.ndarray, palette, *,
              ignore_index: int = IGNORE_INDEX) -> tuple[np.ndarray, dict]:
    """Where `pred` is wrong, in the colour of the class it predicted, over a pale grey `image`.

    Correct pixels keep the pale photo, void pixels (`ignore_index` in `target`) are striped dark
    grey. image: `(H, W, 3) uint8`; pred, target: `(H, W)` class ids. Returns the picture and the
    shares of the image {"correct", "wrong", "ignored"}.
    """
    if not (image.shape[:2] == pred.shape == target.shape):
        raise ValueError(f"image {image.shape[:2]}, prediction {pred.shape} and ground truth {target.shape} "
                         "must be the same size")
    picture = _faded(image, level=150, contrast=0.4)
    ignored = target == ignore_index
    wrong = ~ignored & (pred != target)
    stripes = (np.add.outer(np.arange(pred.shape[0]), np.arange(pred.shape[1])) // 4) % 2 == 0
    picture[ignored & stripes] = IGNORED_COLOR
    picture[wrong] = colorize(pred, palette)[wrong]
    shares = {"wrong": float(wrong.mean()), "ignored": float(ignored.mean())}
    return picture, {"correct": 1.0 - shares["wrong"] - shares["ignored"], **shares}


# Boundary map colours (Okabe-Ito, told apart with any colour vision): matched, extra, missed.
BOUNDARY_COLORS = {"matched": (0, 158, 115), "extra": (213, 94, 0), "missed": (86, 180, 233)}


def boundary_map(image: np.ndarray, errors: dict[str, np.ndarray], *, width: int = 1) -> np.ndarray:
    """The boundary F-score's pixels (`seg.metrics.boundary_errors`) over a dark grey `image`:
    matched boundaries green, predicted boundaries with no true one near (extra) vermilion, true
    boundaries the prediction missed sky blue. Lines are thickened by `width` pixels each side, so
    they survive a thumbnail. Returns `(H, W, 3) uint8`."""
    picture = _faded(image, level=10, contrast=0.3)
    for name in ("matched", "missed", "extra"):  # the errors last: drawn on top
        picture[_thicken(errors[name], width)] = BOUNDARY_COLORS[name]
    return picture


def _thicken(mask: np.ndarray, width: int) -> np.ndarray:
    """`mask` grown by `width` pixels in each direction (a square dilation)."""
    grown = mask.copy()
    h, w = mask.shape
    padded = np.pad(mask, width)
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            grown |= padded[width + dy:width + dy + h, width + dx:width + dx + w]
    return grown


def enlarge(picture: np.ndarray, min_side: int) -> np.ndarray:
    """`(H, W, ...)` `picture` repeated by the smallest whole factor that brings its longer side to
    `min_side` or more (nearest neighbour: each pixel becomes a block, nothing is smoothed)."""
    factor = max(1, -(-min_side // max(picture.shape[:2])))
    return picture.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else picture


def draw_contours(picture: np.ndarray, labels: np.ndarray, *, color=(0, 0, 0)) -> np.ndarray:
    """`(H, W, 3) uint8` `picture` with the borders between `labels`' classes drawn in `color`, one
    pixel wide (a pixel whose right or lower neighbour has another class)."""
    if picture.shape[:2] != labels.shape:
        raise ValueError(f"picture is {picture.shape[:2]} but labels are {labels.shape}: they must be the same size")
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1] |= labels[:-1] != labels[1:]
    out = picture.copy()
    out[edge] = color
    return out
