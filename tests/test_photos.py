"""Photos decoded once per file content (seg.data.photos)."""

import threading
from functools import partial

import numpy as np
import pytest
from PIL import Image

from seg.data.io import fit_image
from seg.data.photos import PhotoCache, load_photo


def photo(tmp_path, name: str, size=(60, 90), seed=0, kind="PNG"):
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    path = tmp_path / name
    Image.fromarray(pixels).save(path, kind)
    return path, pixels


def test_the_same_content_is_decoded_once_whatever_its_name(tmp_path):
    cache = PhotoCache(partial(load_photo, max_side=1024))
    first, pixels = photo(tmp_path, "a.png")
    again = tmp_path / "upload-again.png"  # each API call uploads the photo anew, under a new path
    again.write_bytes(first.read_bytes())
    one, two = cache.get(first), cache.get(again)
    assert cache.decodes == 1 and two is one
    assert np.array_equal(one.pixels, pixels) and one.size == (60, 90) and one.scale == 1.0
    with pytest.raises(ValueError, match="read-only"):
        one.pixels[0, 0] = 0  # shared by every request for the photo: nobody may draw on it
    other, _ = photo(tmp_path, "b.png", seed=1)
    cache.get(other)
    assert cache.decodes == 2


def test_a_large_photo_is_kept_at_the_working_size_with_its_own_size(tmp_path):
    path, pixels = photo(tmp_path, "big.png", size=(300, 900))
    kept = PhotoCache(partial(load_photo, max_side=300)).get(path)
    assert kept.size == (300, 900) and kept.pixels.shape == (100, 300, 3) and kept.scale == pytest.approx(1 / 3)
    assert np.array_equal(kept.pixels, fit_image(pixels, 300)[0])


def test_the_cache_is_bounded_by_bytes_least_recently_used_first(tmp_path):
    paths = [photo(tmp_path, f"{i}.png", seed=i)[0] for i in range(4)]
    one = 60 * 90 * 3
    cache = PhotoCache(partial(load_photo, max_side=1024), max_bytes=2 * one)
    cache.get(paths[0]), cache.get(paths[1]), cache.get(paths[0])  # 0 used last: 1 is dropped first
    cache.get(paths[2])
    assert cache.decodes == 3
    cache.get(paths[0])
    assert cache.decodes == 3  # still kept
    cache.get(paths[1])
    assert cache.decodes == 4  # was dropped


def test_a_broken_file_raises_and_nothing_is_kept(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    cache = PhotoCache(partial(load_photo, max_side=1024))
    for _ in range(2):
        with pytest.raises(ValueError, match="broken.png is not a readable image: send JPEG, PNG"):
            cache.get(broken)
    assert cache.decodes == 0
    with pytest.raises(FileNotFoundError):
        cache.get(tmp_path / "gone.png")
    with pytest.raises(ValueError, match="positive"):
        PhotoCache(partial(load_photo, max_side=1024), max_bytes=0)


def test_concurrent_requests_for_different_photos_get_their_own(tmp_path):
    files = [photo(tmp_path, f"{i}.png", seed=i) for i in range(6)]
    cache = PhotoCache(partial(load_photo, max_side=1024))
    seen, errors = {}, []

    def ask(i):
        try:
            for _ in range(5):
                seen[i] = cache.get(files[i][0]).pixels
        except Exception as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(files))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and all(np.array_equal(seen[i], files[i][1]) for i in range(len(files)))


def test_a_photos_handle_cannot_be_worked_out_from_the_file(tmp_path):
    """The handle is a digest keyed by the cache's secret: the same file has another handle on another
    server, and none equal to its plain digest."""
    import hashlib

    path, _ = photo(tmp_path, "a.png")
    first = PhotoCache(partial(load_photo, max_side=1024)).get(path).key
    second = PhotoCache(partial(load_photo, max_side=1024)).get(path).key
    plain = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    assert len({first, second, plain}) == 3
    same = [PhotoCache(partial(load_photo, max_side=1024), secret=b"s").get(path).key for _ in range(2)]
    assert same[0] == same[1]
