"""Photos decoded once and kept by the content of their file, at the size the models work at."""

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import fit_image


@dataclass(frozen=True)
class Photo:
    """A decoded photo. pixels: (h, w, 3) uint8 RGB, read-only, the file's image shrunk so its longer
    side is at most the cache's `max_side`; size: the file's own (H, W); scale: h / H (1.0 when the
    file already fitted); key: the digest of the file's bytes, by which `PhotoCache.find` finds it."""

    pixels: np.ndarray
    size: tuple[int, int]
    scale: float
    key: str = ""


class PhotoCache:
    """`read` (a path -> (H, W, 3) uint8 RGB) run once per distinct file content, its result shrunk
    to `max_side` and kept: a client that sends the same photo with every SAM click (the API) pays
    for hashing the file's bytes (3 ms a megabyte here), not for decoding and shrinking it again.

    Bounded by the pixels' bytes, least recently used dropped first (the default 64 MiB holds 21
    photos at 1024x1024, more than the 8 embeddings SAM keeps), and safe for concurrent users.
    Errors from `read` (a broken or oversized file) are raised and nothing is kept.
    """

    def __init__(self, read: Callable[[str], np.ndarray], *, max_side: int, max_bytes: int = 64 << 20):
        if max_side < 1 or max_bytes < 1:
            raise ValueError(f"max_side and max_bytes must be positive, got {max_side} and {max_bytes}")
        self.read, self.max_side, self.max_bytes = read, max_side, max_bytes
        self._photos: OrderedDict[str, Photo] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.decodes = 0  # how many times `read` ran (for tests and benchmarks)

    def find(self, key: str) -> Photo | None:
        """The photo kept under `key` (a `Photo.key`), or None when it was never read or was dropped."""
        with self._lock:
            photo = self._photos.get(key) if isinstance(key, str) else None
            if photo is not None:
                self._photos.move_to_end(key)
            return photo

    def get(self, path: str | Path) -> Photo:
        """The photo in the file at `path`, decoded now or found by its content."""
        key = hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()
        with self._lock:
            if key in self._photos:
                self._photos.move_to_end(key)
                return self._photos[key]
        original = self.read(str(path))
        pixels, scale = fit_image(original, self.max_side)
        pixels = pixels.copy() if pixels is original else pixels  # not the caller's array: frozen below
        pixels.setflags(write=False)  # shared by every request for this photo: nobody may draw on it
        photo = Photo(pixels, original.shape[:2], scale, key)
        with self._lock:
            self.decodes += 1
            if key not in self._photos:
                self._photos[key] = photo
                self._bytes += pixels.nbytes
            while self._bytes > self.max_bytes and len(self._photos) > 1:
                _, dropped = self._photos.popitem(last=False)
                self._bytes -= dropped.pixels.nbytes
        return photo
