"""Synthetic scenes: seeded images of discs, squares and triangles on textured backgrounds.

They reproduce, offline and in seconds, the two effects the library teaches: coarse upsampling
blurs boundaries (FCN-32s vs FCN-8s vs U-Net), and a small foreground is drowned by the
background under plain cross-entropy (set `object_size` small). Item i depends only on
`(seed, i)`, so a dataset is the same on every machine and in every worker.
"""

from collections.abc import Callable

import numpy as np
from torch.utils.data import Dataset

# Each split is its own seeded set of scenes, so validation images are never training images.
SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}
CLASSES = ("background", "disc", "square", "triangle")
PALETTE = ((40, 40, 40), (230, 25, 75), (60, 180, 75), (0, 130, 200))
# Each shape class has its own hue; per-object jitter and texture keep colour alone from being
# a perfect cue, so the networks must also use shape and context.
_BASE_COLOURS = np.array([(0, 0, 0), (200, 70, 60), (80, 170, 80), (70, 100, 200)], dtype=np.float32)


def _shape_mask(kind: int, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, radius: float,
                angle: float) -> np.ndarray:
    """(H, W) bool: a disc (1), square (2) or equilateral triangle (3) centred at (cy, cx)."""
    dy, dx = yy - cy, xx - cx
    if kind == 1:
        return dy**2 + dx**2 <= radius**2
    u = np.cos(angle) * dx + np.sin(angle) * dy  # rotate into the shape's own frame
    v = -np.sin(angle) * dx + np.cos(angle) * dy
    if kind == 2:
        half = radius * 0.85  # about the disc's area
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    inside = np.ones_like(u, dtype=bool)  # triangle: inside three half-planes
    for k in range(3):
        theta = angle + 2 * np.pi * k / 3
        inside &= np.cos(theta) * dx + np.sin(theta) * dy <= radius * 0.6
    return inside


def make_scene(rng: np.random.Generator, *, size: tuple[int, int] = (128, 128), object_size: float = 0.2,
               max_objects: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """One scene: `(H, W, 3) uint8` image and `(H, W) uint8` labels (0 = background).

    object_size: each object's radius as a fraction of the shorter side (jittered by ±30%).
    max_objects: 1..max_objects objects, later ones occluding earlier ones.
    """
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # background: a smooth blend of two muted colours, stripes at a random angle, and noise
    c0, c1 = rng.uniform(60, 190, size=(2, 3)).astype(np.float32)
    blend = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) / max(h, w)
    blend = (blend - blend.min()) / (np.ptp(blend) + 1e-6)
    image = c0 * (1 - blend[..., None]) + c1 * blend[..., None]
    freq, phi = rng.uniform(0.1, 0.5), rng.uniform(0, np.pi)
    image += 18 * np.sin(freq * (np.cos(phi) * xx + np.sin(phi) * yy))[..., None]
    labels = np.zeros((h, w), dtype=np.uint8)
    for _ in range(rng.integers(1, max_objects + 1)):
        kind = int(rng.integers(1, len(CLASSES)))
        radius = object_size * min(h, w) * rng.uniform(0.7, 1.3)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        mask = _shape_mask(kind, yy, xx, cy, cx, radius, rng.uniform(0, 2 * np.pi))
        colour = _BASE_COLOURS[kind] + rng.uniform(-35, 35, size=3)
        image[mask] = colour + rng.normal(0, 10, size=(int(mask.sum()), 3))
        labels[mask] = kind
    image += rng.normal(0, 8, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), labels


class SyntheticScenes(Dataset):
    """`num_images` deterministic scenes; items as in `seg.data.CamVid` (`(image, mask)` or transformed).

    Args:
        num_images: dataset length.
        size: (H, W) of every image.
        object_size: object radius as a fraction of the shorter side: 0.2 gives large objects,
            0.05 a foreground of about 1-2% of the pixels.
        max_objects: at most this many objects per image.
        seed: picks the dataset; use different seeds for train and val.
    """

    classes = CLASSES
    palette = PALETTE

    def __init__(self, num_images: int = 64, *, size: tuple[int, int] = (128, 128), object_size: float = 0.2,
                 max_objects: int = 4, seed: int = 0, transform: Callable | None = None):
        if num_images < 1 or min(size) < 8 or not 0 < object_size <= 1:
            raise ValueError(f"need num_images >= 1, a size of at least 8x8 and 0 < object_size <= 1; "
                             f"got {num_images}, {size}, {object_size}")
        self.num_images, self.size, self.object_size = num_images, tuple(size), object_size
        self.max_objects, self.seed, self.transform = max_objects, seed, transform

    def __len__(self) -> int:
        return self.num_images

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < self.num_images:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        return make_scene(rng, size=self.size, object_size=self.object_size, max_objects=self.max_objects)

    def masks(self):
        return (self.read(i)[1] for i in range(len(self)))

    def __getitem__(self, index: int):
        image, mask = self.read(index)
        return self.transform(image, mask) if self.transform else (image, mask)
