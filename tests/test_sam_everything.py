"""SAM's automatic masks: the same masks as segment-anything's own generator with the same settings,
decoded in batches by ONNX Runtime and by PyTorch; the coarse-then-fill variant decodes only where
nothing was found; bounded, ordered, and stopped by a job's deadline."""

import warnings

import numpy as np
import pytest

from seg.deadline import DeadlineExceeded, deadline
from seg.sam.everything import Everything, everything, non_max_suppression, point_grid
from seg.sam.model import Sam
from seg.sam.weights import sam_package

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)


@pytest.fixture(scope="module")
def sams(vit_t_checkpoint, tmp_path_factory) -> dict[str, Sam]:
    """Random-weight MobileSAM, its batch decoder exported (ONNX) and not (PyTorch)."""
    onnx = Sam.load("vit_t", vit_t_checkpoint, download=False, onnx_dir=tmp_path_factory.mktemp("onnx"),
                    everything_threads=2)
    return {"onnx": onnx, "torch": Sam.load("vit_t", vit_t_checkpoint, download=False)}


def photo(h: int = 180, w: int = 240) -> np.ndarray:
    """Two coloured blocks on a background, with noise."""
    picture = np.zeros((h, w, 3), np.uint8)
    picture[:] = (40, 90, 160)
    picture[h // 6: 2 * h // 3, w // 12: 5 * w // 12] = (200, 50, 50)
    picture[5 * h // 9:, w // 2: 23 * w // 24] = (30, 200, 60)
    noise = np.random.default_rng(0).normal(0, 10, picture.shape)
    return np.clip(picture + noise, 0, 255).astype(np.uint8)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize("decoder", ["onnx", "torch"])
@pytest.mark.parametrize("nms", [0.7, 1.0])  # SAM's default, and none (every mask of every point kept)
def test_the_same_masks_as_segment_anythings_generator(sams, decoder, nms):
    sam = sams[decoder]
    image = photo()
    # random weights predict an IoU near 0.15 and no stable mask: thresholds at 0 let every mask through
    settings = Everything(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0, box_nms_thresh=nms,
                          max_masks=100)
    ours = sam.everything(image, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        generator = sam_package("mobile_sam").SamAutomaticMaskGenerator(
            sam.model, points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0, box_nms_thresh=nms)
        theirs = generator.generate(image)
    assert len(ours) == len(theirs) and len(ours) == (48 if nms == 1.0 else len(theirs)) and ours
    unmatched = list(theirs)
    for mask in ours:  # each of ours has its own counterpart: the same prompt, the same mask
        same_point = [t for t in unmatched if np.allclose(t["point_coords"], mask["point_coords"])
                      and abs(t["predicted_iou"] - mask["predicted_iou"]) < 1e-3]
        best = max(same_point, key=lambda t: iou(t["segmentation"], mask["segmentation"]))
        assert iou(best["segmentation"], mask["segmentation"]) >= 0.99
        unmatched.remove(best)


def test_masks_are_bounded_ordered_and_say_which_of_the_three_they_are(sams):
    sam, image = sams["onnx"], photo()
    settings = Everything(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0, box_nms_thresh=1.0,
                          max_masks=5)
    masks = sam.everything(image, settings)
    assert len(masks) == 5 and all(m["segmentation"].shape == image.shape[:2] for m in masks)
    scores = [m["predicted_iou"] for m in masks]
    assert scores == sorted(scores, reverse=True)
    for m in masks:  # "choice" is the mask's place among the three at its point, as Sam.predict orders them
        result = sam.predict(image, points=m["point_coords"], labels=[1])
        assert iou(result.masks[m["choice"]], m["segmentation"]) >= 0.99
    assert sam.everything(image, Everything(points_per_side=4)) == []  # SAM's thresholds: nothing sure


class Discs:
    """A stand-in batch decoder: for each prompt, three identical discs of radius `radius` input
    pixels around the point, predicted IoU 0.95; counts the prompts it decodes."""

    def __init__(self, radius: float):
        self.radius, self.prompts = radius, 0
        centres = np.arange(256) * 4 + 2.0
        self.yy, self.xx = np.meshgrid(centres, centres, indexing="ij")

    def __call__(self, features, coords, labels):
        self.prompts += len(coords)
        discs = [np.where((self.xx - x) ** 2 + (self.yy - y) ** 2 <= self.radius ** 2, 10.0, -10.0)
                 for x, y in coords[:, 0]]
        low = np.repeat(np.stack(discs)[:, None], 3, axis=1).astype(np.float32)
        return np.full((len(coords), 3), 0.95, np.float32), low


def test_the_coarse_grid_then_only_the_points_no_mask_covers(sams):
    sam, image = sams["onnx"], photo(256, 256)  # the encoder's input is 1024: 4 input pixels a pixel
    fine = Discs(radius=100)
    everything(sam, image, Everything(points_per_side=8, box_nms_thresh=1.0), decode=fine)
    assert fine.prompts == 64
    coarse = Discs(radius=100)
    found = everything(sam, image, Everything(points_per_side=8, coarse=2, box_nms_thresh=1.0, max_masks=500),
                       decode=coarse)
    # the 2x2 grid's discs (centres 256 and 768 input pixels, radius 100) cover the 8x8 grid's points at
    # 192 and 320 on both axes around each centre: 4 of the 64 per disc, so 48 are decoded after the 4
    covered = sum(1 for x, y in point_grid(8, (256, 256)) * 4 if min(np.hypot(x - cx, y - cy) for cx in (256, 768)
                                                                   for cy in (256, 768)) <= 100)
    assert covered == 16 and coarse.prompts == 4 + 64 - 16
    assert len(found) == 3 * (4 + 48)  # every mask kept: no NMS at 1.0
    assert non_max_suppression(np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30.]]),
                               np.array([0.5, 0.9, 0.1]), 0.7).tolist() == [1, 2]


def test_a_job_past_its_deadline_stops_between_batches(sams):
    with deadline(0.001, "finding every object"), pytest.raises(DeadlineExceeded, match="finding every object"):
        sams["onnx"].everything(photo(), Everything(points_per_side=8, batch=4))


@pytest.mark.parametrize("settings, message", [
    (dict(points_per_side=0), "at least 1"), (dict(batch=0), "at least 1"),
    (dict(points_per_side=8, coarse=8), "coarse must be between 1 and points_per_side - 1"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        Everything(**settings)
