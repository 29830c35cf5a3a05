"""Refining a semantic model's regions with SAM (seg.sam.refine), proved with stand-in decoders
whose answers are known: one that gives back each region exactly changes nothing; one that snaps
each region to the true object raises the boundary F-score by the amount worked out by hand below.
Then SAM itself (random MobileSAM weights: the mechanics, not the quality) as the decoder."""

import numpy as np
import pytest

from seg.explorer.compare import CHANGE, Comparison, Prediction, score, with_refined
from seg.labels import IGNORE_INDEX
from seg.sam.refine import find_regions, refine


def squares(big: bool) -> np.ndarray:
    """A 32x48 map of class 0 with two squares of class 1: A, 8x8 at rows 4-11, cols 4-11, and B,
    16x16 at rows 8-23, cols 24-39; with `big`, B drawn 3 px too large on every side (22x22 at rows
    5-26, cols 21-42), as a blobby model draws a small object."""
    labels = np.zeros((32, 48), np.uint8)
    labels[4:12, 4:12] = 1
    if big:
        labels[5:27, 21:43] = 1
    else:
        labels[8:24, 24:40] = 1
    return labels


TRUTH, PREDICTED = squares(big=False), squares(big=True)


def component_at(labels: np.ndarray, x: float, y: float) -> np.ndarray:
    from scipy import ndimage

    components, _ = ndimage.label(labels == labels[int(y), int(x)])
    return components == components[int(y), int(x)]


class StandIn:
    """A decoder answering each prompt with [nothing, what `answer(x, y)` says, the whole image] as
    +-1 logits at the image's size (so the refinement must choose among them)."""

    def __init__(self, answer, shape):
        self.answer, self.shape, self.prompts = answer, shape, []

    def candidates(self, boxes, points):
        self.prompts.append((boxes.copy(), points.copy()))
        out = np.full((len(points), 3, *self.shape), -1.0, np.float32)
        for i, (x, y) in enumerate(points):
            out[i, 1][self.answer(x, y)] = 1.0
            out[i, 2] = 1.0
        return out

    def full_size(self, logits):
        return logits > 0


def test_regions_are_found_largest_first_with_their_box_and_most_interior_point():
    labels = np.full((20, 30), 3, np.uint8)
    labels[2:8, 2:12] = 8  # a 6x10 car
    labels[12:15, 20:23] = 8  # a 3x3 car: under min_pixels
    labels[15:, :5] = IGNORE_INDEX  # void is never a region
    regions = find_regions(labels, min_pixels=10, max_regions=5)
    assert [(r.label, r.area) for r in regions] == [(3, 20 * 30 - 60 - 9 - 25), (8, 60)]
    car = regions[1]
    assert car.box == (2, 2, 12, 8)  # pixel edges: x0, y0, x1, y1 around cols 2-11 and rows 2-7
    # 3 px from the edge at most, along rows 4-5 from col 4 to 9: the first of them in reading order
    assert car.point == (4, 4)
    assert [r.label for r in find_regions(labels, min_pixels=5, max_regions=5)] == [3, 8, 8]
    assert len(find_regions(labels, min_pixels=5, max_regions=1)) == 1
    with pytest.raises(ValueError, match="one \\(H, W\\) label map"):
        find_regions(labels[None])


def test_a_decoder_that_gives_back_each_region_exactly_changes_nothing():
    decoder = StandIn(lambda x, y: component_at(PREDICTED, x, y), PREDICTED.shape)
    refined = refine(PREDICTED, decoder, min_pixels=20)
    assert np.array_equal(refined.labels, PREDICTED)
    assert [r["mask"] for r in refined.regions] == [1, 1, 1]  # the region itself, not nothing nor everything
    assert all(r["painted"] and r["iou"] == 1.0 and r["changed_pixels"] == 0 for r in refined.regions)
    boxes, points = decoder.prompts[0]  # one batch: every region's box and interior point
    assert boxes.tolist()[1:] == [[21, 5, 43, 27], [4, 4, 12, 12]]  # B then A: largest first
    assert [PREDICTED[int(y), int(x)] for x, y in points] == [0, 1, 1]


def test_snapping_to_the_true_objects_raises_boundary_f_by_the_amount_worked_out_by_hand():
    """Boundary F with a 2 px tolerance, per class, averaged over classes 0 and 1. An 8-neighbour
    edge of a k x k square is its outline, 4k - 4 pixels of class 1, and the ring around it, 4k + 4
    pixels of class 0. The prediction's A is exact: 28 + 36 edge pixels, all matched. Its B is 3 px
    too large on every side, so none of its edges is within 2 px of B's true edges.

    class 1: predicted 28 + (4*22 - 4) = 112 edge pixels, 28 matched; true 28 + 60 = 88, 28 matched:
             precision 1/4, recall 7/22, F = 7/25.
    class 0: predicted 36 + (4*22 + 4) = 128, 36 matched; true 36 + 68 = 104, 36 matched:
             precision 9/32, recall 9/26, F = 9/29.
    mean F = (7/25 + 9/29) / 2 = 214/725 before; snapped to the truth, 1 after.
    """
    before = score(PREDICTED, TRUTH)
    assert before["boundary_f"] == pytest.approx(214 / 725, abs=1e-6)
    decoder = StandIn(lambda x, y: component_at(TRUTH, x, y), TRUTH.shape)
    refined = refine(PREDICTED, decoder, min_pixels=20)
    after = score(refined.labels, TRUTH)
    assert np.array_equal(refined.labels, TRUTH)
    assert after["boundary_f"] - before["boundary_f"] == pytest.approx(1 - 214 / 725, abs=1e-6)
    # the background's true region, then B's (256 of its 484 pixels: IoU 0.53), then A's
    assert [r["iou"] for r in refined.regions] == [pytest.approx(988 / 1216, abs=1e-4),
                                                   pytest.approx(256 / 484, abs=1e-4), 1.0]


def test_a_mask_that_is_another_object_is_not_painted():
    """SAM answering with a mask that overlaps the region less than min_iou (here: a corner of the
    photo) leaves the model's region as it was."""
    corner = np.zeros(PREDICTED.shape, bool)
    corner[:3, :3] = True
    refined = refine(PREDICTED, StandIn(lambda x, y: corner, PREDICTED.shape), min_pixels=20, min_iou=0.99)
    assert np.array_equal(refined.labels, PREDICTED)
    assert not any(r["painted"] for r in refined.regions) and refined.masks == {}


def test_a_refined_model_is_scored_beside_the_model_with_its_change():
    image = np.zeros((*TRUTH.shape, 3), np.uint8)
    s = score(PREDICTED, TRUTH)
    row = {"model": "U-Net", "mIoU": s["miou"], "Dice": s["mean_dice"], "pixel acc.": s["pixel_accuracy"],
           "boundary F": s["boundary_f"], "other": s["other_fraction"]}
    result = Comparison(image, TRUTH, {"unet": Prediction("unet", "U-Net", PREDICTED, 0.1),
                                       "fcn8s": Prediction("fcn8s", "FCN-8s", PREDICTED, 0.1)},
                        [row, {**row, "model": "FCN-8s"}], {"U-Net": {}, "FCN-8s": {}},
                        {"unet": s, "fcn8s": s})
    refined = with_refined(result, "unet", TRUTH, 0.5)
    assert list(refined.predictions) == ["unet", "unet+sam", "fcn8s"]
    assert [r["model"] for r in refined.rows] == ["U-Net", "U-Net + SAM", "FCN-8s"]
    assert refined.rows[1]["boundary F"] == 1.0
    change = f"mIoU {1 - s['miou']:+.3f}, boundary F {1 - 214 / 725:+.3f}"
    assert refined.rows[1][CHANGE] == change and refined.rows[0][CHANGE] == ""
    assert refined.errors("unet+sam", [(0, 0, 0), (255, 255, 255)])["shares"]["wrong"] == 0
    with pytest.raises(ValueError, match="was not in this comparison"):
        with_refined(result, "deeplabv3", TRUTH, 0.5)
    # with TTA and CRF on, SAM refines what the row shows: the title says so
    smoothed = Comparison(image, TRUTH, {"unet": Prediction("unet", "U-Net", PREDICTED, 0.1)},
                          [{**row, "model": "U-Net + TTA + CRF"}, {**row, "model": "U-Net (plain)"}],
                          {"U-Net": {}}, {"unet": s}, " + TTA + CRF")
    refined = with_refined(smoothed, "unet", TRUTH, 0.5)
    assert [r["model"] for r in refined.rows] == ["U-Net + TTA + CRF", "U-Net + TTA + CRF + SAM", "U-Net (plain)"]
    assert refined.predictions["unet+sam"].title == "U-Net + TTA + CRF + SAM"


@pytest.mark.slow  # SAM's image encoder, seconds on 2 cores (docs/testing.md)
@pytest.mark.parametrize("exported", [True, False])
def test_sam_answers_a_models_regions_and_its_objects_re_create_the_same_masks(vit_t_checkpoint, tmp_path,
                                                                               exported):
    """Random MobileSAM weights, so the masks mean nothing: the prompts, the choice among SAM's three
    masks, the painting and the objects made from the regions are what is checked. Each object, as
    the SAM tab re-creates a saved one (`Sam.predict` on its clicks and choice), gives back its mask."""
    from seg.data.camvid import CLASSES, OTHER
    from seg.sam.model import Sam
    from seg.sam.objects import add_regions
    from seg.sam.prompts import Objects
    from seg.sam.regions import SamRegions

    sam = Sam.load("vit_t", vit_t_checkpoint, download=False, onnx_dir=tmp_path if exported else None)
    labels = np.full((180, 240), CLASSES.index("Road"), np.uint8)
    labels[30:120, 20:100] = CLASSES.index("Building")
    labels[100:, 120:230] = CLASSES.index("Car")
    labels[:20, 200:240] = OTHER  # what a pretrained model finds outside CamVid's classes
    image = np.random.default_rng(0).integers(0, 255, (180, 240, 3), dtype=np.uint8)
    image[labels == CLASSES.index("Car")] = (30, 200, 60)
    decoder = SamRegions(sam, image, batch=2)  # two batches for three regions
    refined = refine(labels, decoder, min_pixels=200, min_iou=0.0)  # every region painted, whatever SAM says
    assert [r["class"] for r in refined.regions] == [CLASSES.index(c) for c in ("Road", "Car", "Building")] + [OTHER]
    assert decoder.scores.shape == decoder.stability.shape == (4, 3) and len(refined.masks) == 4
    assert refined.labels.shape == labels.shape and refined.labels.dtype == np.uint8
    for i, region in enumerate(refined.regions):  # each painted over the ones before it
        later = set().union(*[np.flatnonzero(refined.masks[j]).tolist() for j in range(i + 1, 4)])
        own = set(np.flatnonzero(refined.masks[i]).tolist()) - later
        assert all(refined.labels.flat[p] == region["class"] for p in own)
    objects, masks = add_regions(Objects(()), refined, decoder, CLASSES)
    assert [o.category for o in objects.items] == ["Road", "Car", "Building"]  # "other" is no object's class
    for item in objects.items:
        again = sam.predict(image, **item.prompts.to_sam())
        mask = masks[item.id].mask
        assert (again.masks[item.choice] & mask).sum() / max((again.masks[item.choice] | mask).sum(), 1) > 0.98
        assert again.scores[item.choice] == pytest.approx(masks[item.id].score, abs=2e-3)


@pytest.mark.slow
def test_the_command_line_scores_refined_against_unrefined_and_writes_its_json_and_chart(camvid_dir, vit_t_checkpoint,
                                                                                         tmp_path):
    import json

    from conftest import ROOT, run_module
    from seg.data.camvid import CLASSES

    out = tmp_path / "refine"
    done = run_module("seg.cli.refine", "--data-dir", str(camvid_dir), "--split", "val", "--limit", "1", "--model",
                      "fcn8s",
                      "--weights", str(ROOT / "weights"), "--checkpoint", str(vit_t_checkpoint), "--variant", "vit_t",
                      "--no-download", "--min-iou", "0", "--out", str(out))
    report = json.loads((out / "refine.json").read_text())
    [image] = report["per_image"]
    assert report["images"] == 1 and image["regions"] > 0 and image["painted"] == image["regions"]  # min IoU 0
    for side in ("model_alone", "refined"):
        assert 0 <= report[side]["miou"] <= 1 and 0 <= report[side]["boundary_f"] <= 1
        assert list(report[side]["per_class"]) == list(CLASSES)
    assert (out / "refine.png").stat().st_size > 0 and "boundary F" in done.stdout
    bad = run_module("seg.cli.refine", "--data-dir", str(camvid_dir), "--model", "nosuch", "--out", str(out),
                     check=False)
    assert bad.returncode != 0 and "no model 'nosuch'" in bad.stderr and "Traceback" not in bad.stderr
