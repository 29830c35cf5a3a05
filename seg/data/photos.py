"""Photos decoded once and kept by the content of their file, at the size the models work at."""

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..cache import BoundedCache
from .io import fit_image, read_image


class LoadedPhoto(NamedTuple):
    """A photo file decoded and shrunk: pixels (h, w, 3) uint8 RGB at most `max_side` on the longer
    side; size: the file's own (H, W), upright; scale: h / H (1.0 when it already fitted)."""

    pixels: np.ndarray
    size: tuple[int, int]
    scale: float


def load_photo(path: str | os.PathLike, *, max_side: int, max_pixels: int | None = None) -> LoadedPhoto:
    """The photo in the file at `path` (`read_image`: screened, upright, RGB; refused past `max_pixels`
    from its header), shrunk to `max_side` (`fit_image`). Whatever Pillow raises for a broken,
    truncated or oversized file becomes a ValueError that says what to upload instead."""
    try:
        original = read_image(path, max_pixels=max_pixels)
    except (ValueError, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 -- Pillow raises many types for broken files
        most = f" of at most {max_pixels / 1e6:.0f} megapixels" if max_pixels else ""
        raise ValueError(f"{Path(path).name} is not a readable image ({type(error).__name__}): upload a PNG "
                         f"or JPEG photo{most}") from None
    pixels, scale = fit_image(original, max_side)
    return LoadedPhoto(pixels, original.shape[:2], scale)


def image_digest(pixels: np.ndarray) -> str:
    """The content key of an `(H, W, 3) uint8` image: what SAM caches and serves its embedding by."""
    return hashlib.blake2b(np.ascontiguousarray(pixels).data, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Photo:
    """A decoded photo. pixels: (h, w, 3) uint8 RGB, read-only, the file's image shrunk so its longer
    side is at most the cache's `max_side`; size: the file's own (H, W); scale: h / H (1.0 when the
    file already fitted); key: the keyed digest of the file's bytes, by which `PhotoCache.find` finds it;
    digest: the pixels' (`image_digest`), computed once here so that no click hashes them again."""

    pixels: np.ndarray
    size: tuple[int, int]
    scale: float
    key: str = ""
    digest: str = ""


class PhotoCache:
    """`load` (a path -> a `LoadedPhoto`, e.g. `load_photo` with its sizes, or a
    `seg.data.decoder.Decoder`'s `photo`, which decodes where a deadline can stop it) run once per
    distinct file content, and its result kept: a client that sends the same photo with every SAM
    click (the API) pays for hashing the file's bytes (3 ms a megabyte here), not for decoding and
    shrinking it again.

    A `seg.cache.BoundedCache` bounded by the pixels' bytes (the default 64 MiB holds 21 photos at
    1024x1024, more than the 8 embeddings SAM keeps): least recently used dropped first, one decode
    per file however many ask at once, safe for concurrent users. Errors from `read` (a broken or
    oversized file) are raised and nothing is kept.
    """

    def __init__(self, load: Callable[[str], LoadedPhoto], *, max_bytes: int = 64 << 20, secret: bytes | None = None,
                 hold_seconds: float = 0, max_held_bytes: int | None = None):
        """secret: keys the files' digests (a random one per cache where None), so that a photo's key
        (the API's handle) cannot be worked out from the file: only its uploader learns it, and nobody
        can test whether a given photo was sent here by asking for its handle. hold_seconds: a photo
        asked for again (a click after its upload) within this many seconds is kept past `max_bytes`
        (its visitor is still at work: photos sent once must not take it away mid-session), up to
        `max_held_bytes`."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.load = load
        self._secret = secret if secret is not None else os.urandom(16)
        self._photos: BoundedCache[str, Photo] = BoundedCache(capacity=max_bytes, cost=lambda p: p.pixels.nbytes,
                                                              hold_seconds=hold_seconds, ceiling=max_held_bytes)

    @property
    def decodes(self) -> int:
        """How many times `load` ran (for tests and benchmarks)."""
        return self._photos.made

    def find(self, key: str) -> Photo | None:
        """The photo kept under `key` (a `Photo.key`), or None when it was never read or was dropped."""
        return self._photos.get(key) if isinstance(key, str) else None

    def get(self, path: str | Path) -> Photo:
        """The photo in the file at `path`, decoded now or found by its content."""
        key = hashlib.blake2b(Path(path).read_bytes(), digest_size=16, key=self._secret).hexdigest()
        return self._photos.get_or_make(key, lambda: self._decode(path, key))

    def _decode(self, path: str | Path, key: str) -> Photo:
        pixels, size, scale = self.load(str(path))
        pixels = pixels.copy()  # ours alone (not an array the loader keeps): frozen below
        pixels.setflags(write=False)  # shared by every request for this photo: nobody may draw on it
        return Photo(pixels, tuple(size), scale, key, image_digest(pixels))
