"""What a user takes away: label-id and colour PNGs, metrics JSON, and binary masks as COCO RLE."""

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .visualize import colorize


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


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def rle_encode(mask: np.ndarray) -> dict:
    """`(H, W)` bool mask -> COCO compressed RLE `{"size": [H, W], "counts": str}`.

    COCO runs go down the columns (Fortran order) and start with a run of zeros (possibly empty);
    the run lengths are written as the delta to the run two back, in 5-bit groups offset into
    printable ASCII, which is what pycocotools' `mask.encode`/`decode` read and write.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    flat = mask.ravel(order="F").astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
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
