"""A corpus of bad and unusual inputs, generated here, sent through the launched app's API.

Every case ends either in a correct answer (unusual but valid images) or in a message that says
what was expected (broken input); afterwards the server still answers a normal request and its
memory is back near where it started.
"""

import ctypes
import gc
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)

MB = 1 << 20


def rss() -> int:
    """Resident memory after a collection, with freed heap handed back to the system (glibc keeps
    freed blocks otherwise, which would count memory nobody holds)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size (a decompression bomb) but holds almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def save(path: Path, image: Image.Image, **options) -> Path:
    image.save(path, **options)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    good_png = save(d / "good.png", photo)
    files = {"good": good_png}
    data = good_png.read_bytes()
    (d / "corrupt.png").write_bytes(data[:40] + b"\0" * 50 + data[90:])
    files["corrupt png"] = d / "corrupt.png"
    jpeg = io.BytesIO()
    photo.save(jpeg, format="JPEG")
    (d / "truncated.jpg").write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 3])
    files["truncated jpeg"] = d / "truncated.jpg"
    (d / "text.png").write_text("this is not an image")
    files["text named .png"] = d / "text.png"
    (d / "empty.png").write_bytes(b"")
    files["zero bytes"] = d / "empty.png"
    (d / "bomb.png").write_bytes(png_header_only(20000, 20000))
    files["decompression bomb"] = d / "bomb.png"
    files["1x1"] = save(d / "one.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    files["16-bit"] = save(d / "deep.png", Image.fromarray((np.arange(60 * 80).reshape(60, 80) * 13).astype(np.uint16)))
    files["palette"] = save(d / "palette.png", photo.convert("P"))
    files["grayscale"] = save(d / "grey.png", photo.convert("L"))
    files["rgba"] = save(d / "rgba.png", photo.convert("RGBA"))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to show upright
    files["exif rotated"] = save(d / "rotated.jpg", photo, exif=exif.tobytes())
    frames = [Image.new("RGB", (80, 60), c) for c in ((255, 0, 0), (0, 255, 0))]
    files["animated gif"] = save(d / "anim.gif", frames[0], save_all=True, append_images=frames[1:], duration=100)
    files["over the pixel cap"] = save(d / "wide.png", Image.new("L", (10000, 5001)))  # 50.01 MP, a small file
    yy, xx = np.mgrid[0:6000, 0:8000]
    files["8000x6000"] = save(d / "huge.jpg", Image.fromarray(np.stack([(xx // 40) % 256, (yy // 32) % 256,
                                                                           np.full_like(xx, 90)], -1).astype(np.uint8)),
                               quality=70)
    del yy, xx
    (d / "too_big.png").write_bytes(b"\0" * (21 * MB))
    files["over the upload limit"] = d / "too_big.png"
    return files


VALID = {"1x1": (1, 1), "16-bit": (60, 80), "palette": (60, 80), "grayscale": (60, 80), "rgba": (60, 80),
         "exif rotated": (80, 60), "animated gif": (60, 80), "8000x6000": (6000, 8000), "good": (60, 80)}
BROKEN = {"corrupt png": "not a readable image", "truncated jpeg": "not a readable image",
          "text named .png": "not a readable image", "zero bytes": "not a readable image",
          "decompression bomb": "not a readable image.*at most 50 megapixels",
          "over the upload limit": "(size|large|limit)",
          "over the pixel cap": "10000x5001 = 50.0 megapixels; the limit is 50.0"}


@pytest.fixture(scope="module")
def client(server, corpus):
    """One API client for the whole corpus, warmed (models loaded), with the memory before it."""
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    client.predict(handle_file(str(corpus["good"])), "fcn8s", api_name="/segment")
    client.predict(handle_file(str(corpus["good"])), "[[5, 5]]", "[1]", "", api_name="/sam_prompt")
    client.rss_before = rss()
    return client


@pytest.mark.parametrize("name", VALID)
def test_an_unusual_but_valid_image_is_segmented_upright_at_its_size(client, corpus, name):
    from gradio_client import handle_file

    labels, info = client.predict(handle_file(str(corpus[name])), "fcn8s", api_name="/segment")
    assert (info["height"], info["width"]) == VALID[name]
    assert np.array(Image.open(labels)).shape == VALID[name]


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_image_gets_a_message(client, server, corpus, name):
    import httpx
    from gradio_client import handle_file

    # gradio_client refuses a file over the server's announced max_file_size itself, before sending it;
    # sent anyway, the server refuses it too
    refusal = ValueError if name == "over the upload limit" else AppError
    with pytest.raises(refusal, match=BROKEN[name]):
        client.predict(handle_file(str(corpus[name])), "fcn8s", api_name="/segment")
    if name == "over the upload limit":
        with corpus[name].open("rb") as sent:
            answer = httpx.post(server + "gradio_api/upload", files={"files": sent}, timeout=60)
        assert answer.status_code == 413, (answer.status_code, answer.text[:200])


def test_sam_answers_in_a_huge_photos_own_pixels(client, corpus):
    from gradio_client import handle_file

    mask, sam = client.predict(handle_file(str(corpus["8000x6000"])), "[[7000, 5000]]", "[1]", "",
                               api_name="/sam_prompt")
    assert np.array(Image.open(mask)).shape == (6000, 8000) and sam["rle"]["size"] == [6000, 8000]


@pytest.mark.parametrize("points, labels, box, message", [
    ("[[900, 10]]", "[1]", "", "outside"), ("[[-5, 10]]", "[1]", "", "outside"),
    ("[[NaN, 10]]", "[1]", "", "finite"), ("", "", "", "needs a prompt"),
    ("", "", "[10, 10, 10, 50]", "zero area|empty"), ("[[1, 2], [3]]", "[1, 1]", "", "shaped \\[\\[x, y\\]"),
    ("[[10, 10]]", "[1, 0]", "", "label"), ("{bad json", "[1]", "", "must be JSON"),
])
def test_a_bad_sam_prompt_gets_a_message(client, sample, points, labels, box, message):
    from gradio_client import handle_file

    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(sample[0])), points, labels, box, api_name="/sam_prompt")


def _truth(kind: str, folder: Path, corpus: dict) -> Path:
    """A ground truth that /score must refuse, made in `folder`."""
    arrays = {"small": np.zeros((10, 10), np.uint8), "unknown": np.full((360, 480), 40, np.uint8),
              "rgb": np.full((360, 480, 3), (5, 6, 7), np.uint8)}
    if kind not in arrays:
        return corpus[kind]
    Image.fromarray(arrays[kind]).save(folder / f"{kind}.png")
    return folder / f"{kind}.png"


@pytest.mark.parametrize("kind, message", [("small", "made for this image"), ("unknown", "class ids \\[40\\]"),
                                           ("rgb", "outside the CamVid palette"),
                                           ("text named .png", "not a readable image")])
def test_a_bad_ground_truth_gets_a_message(client, corpus, sample, tmp_path, kind, message):
    from gradio_client import handle_file

    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(sample[1])), handle_file(str(_truth(kind, tmp_path, corpus))),
                       api_name="/score")


def test_a_path_for_a_model_name_is_refused(client, sample):
    from gradio_client import handle_file

    with pytest.raises(AppError, match="unknown or unavailable model"):
        client.predict(handle_file(str(sample[0])), "../weights/camvid/fcn8s", api_name="/segment")


def test_after_the_corpus_the_server_still_serves_and_gives_the_memory_back(client, sample):
    """Last in this file: it reads the memory after every case above (pytest runs them in order)."""
    from gradio_client import handle_file

    labels, info = client.predict(handle_file(str(sample[0])), "fcn8s", api_name="/segment")
    assert info["height"] == 360 and np.array(Image.open(labels)).shape == (360, 480)
    grown = (rss() - client.rss_before) / MB
    print(f"RSS after the corpus: {grown:+.0f} MiB")
    assert grown < 100, f"memory grew by {grown:.0f} MiB over the corpus"
