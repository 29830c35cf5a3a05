"""Datasets and paired augmentations.

Every dataset yields `(image, mask)`: `(H, W, 3) uint8` and `(H, W) uint8` class ids with the
ignore label where unlabelled, or whatever its `transform` makes of them; and carries `classes`
and `palette` (one RGB triple per class). `build_dataset` makes either by name, so the training
and evaluation command lines (and a model card) describe data the same way.
"""

from collections.abc import Callable

from torch.utils.data import Dataset

from .camvid import CamVid
from .synthetic import SPLIT_SEEDS, SyntheticScenes

DATASETS = ("camvid", "synthetic")


def build_dataset(name: str, split: str, *, root: str | None = None, transform: Callable | None = None,
                  limit: int | None = None, synthetic_images: int = 256, image_size: tuple[int, int] = (128, 128),
                  object_size: float = 0.2, sequences: tuple[str, ...] | None = None,
                  exclude: tuple[str, ...] = ()) -> Dataset:
    """A split of `name`: CamVid from `root`, or synthetic scenes.

    CamVid takes `sequences` / `exclude` (video sequences to keep / drop, see `CamVid`).
    Synthetic splits hold `synthetic_images` scenes for "train" and a quarter as many otherwise,
    each split with its own seed; `image_size` and `object_size` shape them.
    """
    if name == "camvid":
        return CamVid(root, split, transform=transform, limit=limit, sequences=sequences, exclude=exclude)
    if name == "synthetic":
        if split not in SPLIT_SEEDS:
            raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLIT_SEEDS)}")
        count = synthetic_images if split == "train" else max(1, synthetic_images // 4)
        return SyntheticScenes(min(count, limit or count), size=image_size, object_size=object_size,
                               seed=SPLIT_SEEDS[split], transform=transform)
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


__all__ = ["CamVid", "SyntheticScenes", "DATASETS", "build_dataset"]
