"""The SAM adapter with real architectures and random weights saved in the real on-disk format,
plus stand-in prompt encoder and decoder where a test needs a known answer."""

import functools
import hashlib
import http.server
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from seg import fetch
from seg.sam import weights as sam_weights
from seg.sam.model import Sam
from seg.sam.weights import build_sam, find_checkpoint

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)


@pytest.fixture(scope="session")
def real_sam(vit_t_checkpoint):
    return Sam.load("vit_t", vit_t_checkpoint, download=False)


def image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


class EchoPromptEncoder(nn.Module):
    """Stand-in: passes the prompts through untouched, in the input frame, as the 'embeddings'."""

    def forward(self, points, boxes, masks):
        parts = []
        if points is not None:
            coords, labels = points  # (B, N, 2), (B, N)
            parts.append(torch.cat([coords, labels[..., None].float()], dim=-1))
        if boxes is not None:  # corners tagged 2 and 3, as SAM's own prompt encoder does
            corners = boxes.reshape(-1, 2, 2)
            parts.append(torch.cat([corners, torch.tensor([2.0, 3.0]).expand(len(corners), 2)[..., None]], dim=-1))
        return torch.cat(parts, dim=1), masks

    def get_dense_pe(self):
        return torch.zeros(1)


class PaintingDecoder(nn.Module):
    """Stand-in: low-res logits +10 within 16 input pixels of each positive point and inside the box,
    except within 16 input pixels of a negative point."""

    def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, multimask_output):
        centres = torch.arange(256, dtype=torch.float32) * 4 + 2  # low-res pixel i covers input pixels 4i..4i+3
        yy, xx = torch.meshgrid(centres, centres, indexing="ij")
        out = []
        for prompt in sparse_prompt_embeddings:  # (N, 3): x, y, tag
            mask, negative = torch.zeros(256, 256, dtype=torch.bool), torch.zeros(256, 256, dtype=torch.bool)
            for x, y, tag in prompt.tolist():
                if tag in (0, 1):
                    disc = (xx - x) ** 2 + (yy - y) ** 2 <= 16**2
                    mask, negative = (mask | disc, negative) if tag == 1 else (mask, negative | disc)
            corners = prompt[prompt[:, 2] >= 2]
            if len(corners) == 2:
                (x0, y0), (x1, y1) = corners[:, :2].tolist()
                mask |= (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
            mask &= ~negative
            out.append(torch.where(mask, 10.0, -10.0))
        m = 3 if multimask_output else 1
        logits = torch.stack(out)[:, None].expand(-1, m, -1, -1)
        return logits, torch.tensor([0.95, 0.8, 0.7][:m]).expand(len(out), m)


@pytest.fixture(scope="session")
def painting_sam(vit_t_checkpoint):
    model = build_sam("vit_t", vit_t_checkpoint)
    model.prompt_encoder, model.mask_decoder = EchoPromptEncoder(), PaintingDecoder()
    return Sam(model, variant="vit_t")


@pytest.mark.parametrize("size", [(360, 480), (480, 360), (101, 257), (1500, 70)])
def test_real_model_shapes_at_any_size(real_sam, size):
    h, w = size
    result = real_sam.predict(image(h, w), points=[[w / 2, h / 2]], labels=[1])
    assert result.masks.shape == (3, h, w) and result.masks.dtype == bool
    assert result.scores.shape == (3,) and np.all(np.diff(result.scores) <= 0)  # best first
    assert result.low_res_logits.shape == (3, 256, 256)
    single = real_sam.predict(image(h, w), box=[0, 0, w / 2, h / 2], multimask=False)
    assert single.masks.shape == (1, h, w)


@pytest.mark.parametrize("size", [(360, 480), (480, 360), (203, 611), (1024, 1024), (77, 50)])
def test_masks_land_under_the_clicks_in_original_pixels(painting_sam, size):
    h, w = size
    scale = 1024 / max(h, w)
    for x, y in [(w * 0.25, h * 0.5), (w * 0.8, h * 0.2), (w - 1, h - 1)]:
        mask = painting_sam.predict(image(h, w), points=[[x, y]], labels=[1]).masks[0]
        assert mask[int(y), int(x)], f"click ({x}, {y}) not inside its mask"
        ys, xs = np.nonzero(mask)
        radius = 16 / scale  # the painted radius, in original pixels
        assert abs(xs.mean() - x) < radius + 2 and abs(ys.mean() - y) < radius + 2
        assert np.hypot(xs - x, ys - y).max() <= radius + 2 / scale + 1.5
    box = [w * 0.1, h * 0.2, w * 0.6, h * 0.9]
    mask = painting_sam.predict(image(h, w), box=box).masks[0]
    ys, xs = np.nonzero(mask)
    tolerance = 4 / scale + 1  # one low-res pixel
    assert abs(xs.min() - box[0]) <= tolerance and abs(xs.max() - box[2]) <= tolerance
    assert abs(ys.min() - box[1]) <= tolerance and abs(ys.max() - box[3]) <= tolerance


def test_negative_points_and_box_plus_points(painting_sam):
    """A negative point inside the box takes its disc out of the box's mask: a label 0 dropped, or read
    as positive, would leave it in."""
    img = image(300, 400)
    result = painting_sam.predict(img, points=[[100, 100], [300, 200]], labels=[1, 0], box=[250, 50, 390, 290])
    mask = result.masks[0]
    assert mask[100, 100] and mask[100, 300]  # the positive point's disc, and the box away from the negative
    assert not mask[200, 300] and not mask[200, 295]  # the negative point and its neighbourhood
    assert not mask[250, 50]  # under no prompt


def test_the_encoder_runs_once_for_many_clicks_and_the_cache_is_bounded(vit_t_checkpoint):
    sam = Sam.load("vit_t", vit_t_checkpoint, download=False, cache_size=2)
    first = image(120, 160, seed=1)
    for x in range(10, 160, 30):
        sam.predict(first, points=[[x, 60]], labels=[1])
    assert sam.encoder_runs == 1
    sam.predict(first.copy(), points=[[5, 5]], labels=[1])  # same content, another array: still a hit
    assert sam.encoder_runs == 1
    for seed in (2, 3):
        sam.predict(image(120, 160, seed=seed), points=[[5, 5]], labels=[1])
    assert sam.encoder_runs == 3 and sam.embeddings_kept == 2
    sam.predict(image(120, 160, seed=3), points=[[9, 9]], labels=[1])  # the latest is kept: no new run
    assert sam.encoder_runs == 3
    sam.predict(first, points=[[5, 5]], labels=[1])  # bounded: the first image was dropped, and is read again
    assert sam.encoder_runs == 4


def test_refinement_with_the_previous_low_res_mask(real_sam):
    img = image(200, 300, seed=4)
    first = real_sam.predict(img, points=[[150, 100]], labels=[1])
    refined = real_sam.predict(img, points=[[150, 100]], labels=[1], mask_input=first.best_logits)
    assert refined.masks.shape == first.masks.shape
    assert not np.array_equal(refined.low_res_logits, first.low_res_logits)  # the mask prompt was used
    with pytest.raises(ValueError, match="256, 256"):
        real_sam.predict(img, points=[[1, 1]], labels=[1], mask_input=np.zeros((64, 64)))


def test_concurrent_users_on_different_images(painting_sam):
    """Eight threads click on three images at once: each gets the mask of its own click, and each
    image is encoded once however many threads asked for it at the same moment."""
    sam = Sam(painting_sam.model, variant="vit_t", cache_size=8)
    images = [image(200, 300, seed=10 + i) for i in range(3)]

    def click(job: int):
        i = job % 3
        x, y = 40 + 60 * i, 50 + 10 * (job % 5)
        mask = sam.predict(images[i], points=[[x, y]], labels=[1]).masks[0]
        ys, xs = np.nonzero(mask)
        return abs(xs.mean() - x) < 3 and abs(ys.mean() - y) < 3

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(click, range(48)))
    assert sam.encoder_runs == 3


@pytest.mark.parametrize("prompt,message", [
    ({}, "needs a prompt"),
    ({"points": [[500, 10]], "labels": [1]}, "outside the 400x300 image"),
    ({"points": [[-1, 10]], "labels": [1]}, "outside"),
    ({"points": [[float("nan"), 10]], "labels": [1]}, "finite"),
    ({"points": [[10, 10]], "labels": [2]}, "1 \\(positive\\) or 0"),
    ({"points": [[10, 10], [20, 20]], "labels": [1]}, "2 points but 1 labels"),
    ({"box": [50, 50, 50, 80]}, "zero area"),
    ({"box": [60, 50, 40, 80]}, "zero area"),
    ({"box": [0, 0, 500, 80]}, "outside"),
    ({"box": [0, 0, 5]}, "4 finite numbers"),
])
def test_bad_prompts_say_what_was_expected(painting_sam, prompt, message):
    runs = painting_sam.encoder_runs
    with pytest.raises(ValueError, match=message):
        painting_sam.predict(image(300, 400, seed=99), **prompt)
    assert painting_sam.encoder_runs == runs  # rejected before the expensive embedding


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the pickled module below, refused as intended
def test_bad_checkpoints(vit_t_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="is not a vit_b checkpoint"):
        build_sam("vit_b", vit_t_checkpoint)
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80\x04garbage" * 100)
    with pytest.raises(ValueError, match="not a readable SAM checkpoint"):
        build_sam("vit_t", corrupt)
    pickled = tmp_path / "object.pth"
    torch.save({"model": nn.Linear(2, 2)}, pickled)  # a pickled module: refused by weights_only
    with pytest.raises(ValueError, match="not a readable SAM checkpoint"):
        build_sam("vit_t", pickled)
    with pytest.raises(ValueError, match="choose one of vit_t, vit_b, vit_l, vit_h"):
        Sam.load("vit_x")
    with pytest.raises(FileNotFoundError, match="no SAM checkpoint"):
        Sam.load("vit_t", tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="uint8"):
        Sam(build_sam("vit_t", vit_t_checkpoint), variant="vit_t").embed(np.zeros((10, 10, 3)))


@pytest.fixture
def weights_server(tmp_path, vit_t_checkpoint):
    site = tmp_path / "site"
    site.mkdir()
    (site / "mobile_sam.pt").write_bytes(vit_t_checkpoint.read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    httpd.shutdown()


def test_download_once_verify_and_cache(weights_server, vit_t_checkpoint, tmp_path, monkeypatch):
    url, httpd = weights_server
    md5 = hashlib.md5(vit_t_checkpoint.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    monkeypatch.setitem(sam_weights.VARIANTS, "vit_t", sam_weights.Variant("mobile_sam", f"{url}/mobile_sam.pt",
                                                                          {"md5": md5}))
    with pytest.raises(FileNotFoundError, match="SEG_SAM_CHECKPOINT"):
        find_checkpoint("vit_t", download=False, cache_dir=cache)  # offline and not cached: says how to get it
    path = find_checkpoint("vit_t", cache_dir=cache)
    assert path.parent == cache and path.with_name(path.name + ".sha256").is_file()
    httpd.shutdown()  # from now on only the cache can answer
    assert find_checkpoint("vit_t", download=False, cache_dir=cache) == path
    assert Sam.load("vit_t", download=False, cache_dir=cache).variant == "vit_t"
    with open(path, "r+b") as f:  # the cached file is altered after it was verified
        f.seek(1000)
        f.write(b"\x00" * 16)
    with pytest.raises(ValueError, match="no longer matches"):
        find_checkpoint("vit_t", download=False, cache_dir=cache)


def test_a_wrong_digest_keeps_nothing(weights_server, tmp_path, monkeypatch):
    url, _ = weights_server
    with pytest.raises(ValueError, match="md5 is"):
        fetch.cached_download(f"{url}/mobile_sam.pt", "x.pt", cache_dir=tmp_path / "cache", digests={"md5": "0" * 32},
                              progress=False)
    assert not any((tmp_path / "cache").iterdir())


def test_the_library_never_reads_the_checkpoint_variable(vit_t_checkpoint, tmp_path, monkeypatch):
    """Only app.py reads SEG_SAM_CHECKPOINT; the library takes the file as an argument."""
    monkeypatch.setenv("SEG_SAM_CHECKPOINT", str(vit_t_checkpoint))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError):
        find_checkpoint("vit_t", download=False, cache_dir=tmp_path / "cache")
    assert find_checkpoint("vit_t", vit_t_checkpoint, download=False) == vit_t_checkpoint
