"""Datasets and paired augmentations.

Every dataset yields `(image, mask)`: `(H, W, 3) uint8` and `(H, W) uint8` class ids with the
ignore label where unlabelled, or whatever its `transform` makes of them; and carries `classes`
and `palette` (one RGB triple per class). `build_dataset` makes either by name, so the training
and evaluation command lines (and a model card) describe data the same way.

The datasets (which need torch) are imported when first named, so that the file readers
(`seg.data.io`, `seg.data.screen`) load with numpy and Pillow alone: the decoding child processes
of `seg.data.decoder` start without loading torch.
"""

from collections.abc import Callable

DATASETS = ("camvid", "synthetic")


def build_dataset(name: str, split: str, *, root: str | None = None, transform: Callable | None = None,
                  limit: int | None = None, synthetic_images: int = 256, image_size: tuple[int, int] = (128, 128),
                  object_size: float = 0.2, sequences: tuple[str, ...] | None = None,
                  exclude: tuple[str, ...] = ()):
    """A split of `name`: CamVid from `root`, or synthetic scenes.

    CamVid takes `sequences` / `exclude` (video sequences to keep / drop, see `CamVid`).
    Synthetic splits hold `synthetic_images` scenes for "train" and a quarter as many otherwise,
    each split with its own seed; `image_size` and `object_size` shape them. Returns a torch Dataset.
    """
    from .camvid import CamVid
    from .synthetic import SPLIT_SEEDS, SyntheticScenes

    if name == "camvid":
        return CamVid(root, split, transform=transform, limit=limit, sequences=sequences, exclude=exclude)
    if name == "synthetic":
        if split not in SPLIT_SEEDS:
            raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLIT_SEEDS)}")
        count = synthetic_images if split == "train" else max(1, synthetic_images // 4)
        return SyntheticScenes(min(count, limit or count), size=image_size, object_size=object_size,
                               seed=SPLIT_SEEDS[split], transform=transform)
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def files_ignore_label(dataset: str | None) -> int:
    """The value a dataset's own label files hold where unlabelled (CamVid's PNGs: 11), which the dataset
    maps to the ignore label as it reads them: what a folder of its ground-truth files leaves out."""
    if dataset == "camvid":
        from .camvid import VOID_LABEL
        return VOID_LABEL
    from ..labels import IGNORE_INDEX
    return IGNORE_INDEX


def __getattr__(name: str):
    """`seg.data.CamVid` and `seg.data.SyntheticScenes`, imported on first use."""
    if name == "CamVid":
        from .camvid import CamVid
        return CamVid
    if name == "SyntheticScenes":
        from .synthetic import SyntheticScenes
        return SyntheticScenes
    raise AttributeError(f"module 'seg.data' has no attribute {name!r}")


__all__ = ["CamVid", "SyntheticScenes", "DATASETS", "build_dataset", "files_ignore_label"]
