"""Datasets and paired augmentations.

Every dataset yields `(image, mask)`: `(H, W, 3) uint8` and `(H, W) uint8` class ids with the
ignore label where unlabelled, or whatever its `transform` makes of them; and carries `classes`
and `palette` (one RGB triple per class).
"""

from .camvid import CamVid
from .synthetic import SyntheticScenes

__all__ = ["CamVid", "SyntheticScenes"]
