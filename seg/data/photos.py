"""Photos decoded once and kept by the content of their file, at the size the models work at."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..cache import BoundedCache
from .io import fit_image


def image_digest(pixels: np.ndarray) -> str:
    """The content key of an `(H, W, 3) uint8` image: what SAM caches and serves its embedding by."""
    return hashlib.blake2b(np.ascontiguousarray(pixels).data, digest_size=16).hexdigest()


@dataclass(frozen=True)
class Photo:
    """A decoded photo. pixels: (h, w, 3) uint8 RGB, read-only, the file's image shrunk so its longer
    side is at most the cache's `max_side`; size: the file's own (H, W); scale: h / H (1.0 when the
    file already fitted); key: the digest of the file's bytes, by which `PhotoCache.find` finds it;
    digest: the pixels' (`image_digest`), computed once here so that no click hashes them again."""

    pixels: np.ndarray
    size: tuple[int, int]
    scale: float
    key: str = ""
    digest: str = ""


class PhotoCache:
    """`read` (a path -> (H, W, 3) uint8 RGB) run once per distinct file content, its result shrunk
    to `max_side` and kept: a client that sends the same photo with every SAM click (the API) pays
    for hashing the file's bytes (3 ms a megabyte here), not for decoding and shrinking it again.

    A `seg.cache.BoundedCache` bounded by the pixels' bytes (the default 64 MiB holds 21 photos at
    1024x1024, more than the 8 embeddings SAM keeps): least recently used dropped first, one decode
    per file however many ask at once, safe for concurrent users. Errors from `read` (a broken or
    oversized file) are raised and nothing is kept.
    """

    def __init__(self, read: Callable[[str], np.ndarray], *, max_side: int, max_bytes: int = 64 << 20):
        if max_side < 1 or max_bytes < 1:
            raise ValueError(f"max_side and max_bytes must be positive, got {max_side} and {max_bytes}")
        self.read, self.max_side = read, max_side
        self._photos: BoundedCache[str, Photo] = BoundedCache(capacity=max_bytes, cost=lambda p: p.pixels.nbytes)

    @property
    def decodes(self) -> int:
        """How many times `read` ran (for tests and benchmarks)."""
        return self._photos.made

    def find(self, key: str) -> Photo | None:
        """The photo kept under `key` (a `Photo.key`), or None when it was never read or was dropped."""
        return self._photos.get(key) if isinstance(key, str) else None

    def get(self, path: str | Path) -> Photo:
        """The photo in the file at `path`, decoded now or found by its content."""
        key = hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()
        return self._photos.get_or_make(key, lambda: self._decode(path, key))

    def _decode(self, path: str | Path, key: str) -> Photo:
        original = self.read(str(path))
        pixels, scale = fit_image(original, self.max_side)
        pixels = pixels.copy() if pixels is original else pixels  # not the caller's array: frozen below
        pixels.setflags(write=False)  # shared by every request for this photo: nobody may draw on it
        return Photo(pixels, original.shape[:2], scale, key, image_digest(pixels))
