"""The library pieces behind the app: ground-truth formats, COCO RLE, prompts, the catalogue, comparison."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from seg.data.camvid import OTHER, PALETTE, VOID_LABEL
from seg.data.ground_truth import parse_ground_truth
from seg.explorer.compare import disagreement, score
from seg.explorer.export import rle_decode, rle_encode
from seg.labels import IGNORE_INDEX
from seg.sam.prompts import Prompts
from seg.sam.relate import region_at, relate

# a caller's caps on the prompts it reads (the app's are ui.limits.LIMITS; the library has none)
CAPS = SimpleNamespace(text_bytes=16_384, json_depth=4, points_per_object=64, points_per_request=256,
                       objects_per_request=32)


def test_ground_truth_ids_colours_and_grey_rgb_agree():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 12, (20, 30)).astype(np.uint8)  # 11 = void
    lut = np.array(list(PALETTE) + [(0, 0, 0)], np.uint8)
    expected = np.where(ids == VOID_LABEL, IGNORE_INDEX, ids)
    for array, kind in [(ids, "label ids"), (lut[ids], "colour-coded"), (np.stack([ids] * 3, -1), "grey RGB"),
                        (np.concatenate([lut[ids], np.full((20, 30, 1), 255, np.uint8)], -1), "colour-coded")]:
        gt = parse_ground_truth(array, image_shape=(20, 30, 3))
        assert np.array_equal(gt.labels, expected) and kind in gt.format


@pytest.mark.parametrize("array, message", [
    (np.zeros((10, 10), np.uint8), "made for this image"),
    (np.full((20, 30), 40, np.uint8), "class ids \\[40\\]"),
    (np.full((20, 30, 3), (1, 2, 3), np.uint8), "outside the CamVid palette"),
    (np.full((20, 30), 1000, np.uint16), "8-bit PNG"),
    (np.zeros((20, 30, 2), np.uint8), "label-id or colour PNG"),
])
def test_ground_truth_refusals_say_what_was_expected(array, message):
    with pytest.raises(ValueError, match=message):
        parse_ground_truth(array, image_shape=(20, 30, 3))


def test_rle_matches_pycocotools():
    rng = np.random.default_rng(1)
    for h, w in [(1, 1), (7, 5), (64, 48), (3, 200)]:
        for density in (0.0, 0.1, 0.5, 1.0):
            mask = rng.random((h, w)) < density
            ours = rle_encode(mask)
            theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
            assert ours["counts"] == theirs["counts"].decode() and ours["size"] == list(theirs["size"])
            assert np.array_equal(rle_decode(ours), mask)
    blobs = np.zeros((360, 480), dtype=bool)  # long runs: multi-group values and negative deltas
    blobs[40:300, 10:200] = True
    blobs[100:101, 300:] = True
    assert rle_encode(blobs)["counts"] == coco_mask.encode(np.asfortranarray(blobs.astype(np.uint8)))["counts"].decode()


def test_prompts_points_boxes_and_undo():
    p = Prompts().click(10, 20, "positive").click(5, 5, "negative")
    assert p.points == [(10, 20, 1), (5, 5, 0)] and p.box is None and p.ready()
    p = p.click(50, 40, "box")
    assert p.box is None and p.corners == [(50, 40)]
    p = p.click(30, 60, "box")
    assert p.box == (30, 40, 50, 60)
    p2 = p.click(0, 0, "box")  # a new first corner keeps the finished box until its second corner
    assert p2.box == (30, 40, 50, 60) and p2.corners == [(0, 0)]
    assert p.undo().box is None and p.undo().undo().undo().points == [(10, 20, 1)]
    assert p.to_sam() == {"points": [(10, 20), (5, 5)], "labels": [1, 0], "box": (30, 40, 50, 60)}
    with pytest.raises(ValueError, match="finite"):
        Prompts().click(float("nan"), 1, "positive")
    with pytest.raises(ValueError, match="click mode"):
        Prompts().click(1, 1, "lasso")


def test_relate_measures_regions_at_the_click():
    labels = np.zeros((10, 10), np.uint8)
    labels[2:5, 2:5] = 8  # a car, and a second, separate car
    labels[7:9, 7:9] = 8
    assert region_at(labels, 3, 3).sum() == 9  # only the connected car under the click
    mask = np.zeros((10, 10), bool)
    mask[2:5, 2:6] = True  # SAM's mask: 12 pixels, 9 shared with the car
    truth = labels.copy()
    rows = relate(mask, (3, 3), {"model": labels}, [str(i) for i in range(12)], truth)
    assert [r["model"] for r in rows] == ["SAM", "model", "ground truth"]
    assert rows[1]["class"] == "8" and rows[1]["iou_with_sam"] == pytest.approx(9 / 12)
    assert rows[1]["iou_with_truth"] == 1.0 and rows[0]["iou_with_truth"] == pytest.approx(9 / 12)


def test_score_counts_other_as_wrong_and_leaves_it_out_of_the_means():
    truth = np.array([[0, 0, 1, 1]], np.uint8)
    perfect = score(truth.copy(), truth)
    assert perfect["miou"] == 1.0 and perfect["pixel_accuracy"] == 1.0
    other = truth.copy()
    other[0, 3] = OTHER
    s = score(other, truth)
    assert s["pixel_accuracy"] == 0.75 and s["other_fraction"] == 0.25
    assert s["miou"] == pytest.approx((1 + 0.5) / 2)  # class 1: 1 of 2 pixels; "other" is not a 12th class


def test_disagreement_sides_with_the_ground_truth():
    image = np.zeros((1, 4, 3), np.uint8)
    a = np.array([[0, 1, 1, 2]], np.uint8)
    b = np.array([[0, 2, 1, 3]], np.uint8)
    truth = np.array([[0, 1, 1, IGNORE_INDEX]], np.uint8)
    picture, stats = disagreement(image, a, b, truth)
    assert stats == {"differ": 0.5, "a_right": 0.25, "b_right": 0.0, "both_wrong": 0.0}
    assert tuple(picture[0, 1]) == (30, 136, 229)
    assert disagreement(image, a, b)[1]["a_right"] is None


def test_segformer_from_scratch_loads_through_the_pretrained_adapter(weights_dir):
    from seg.explorer.zoo import Zoo

    zoo = Zoo(weights_dir, pretrained=())
    model = zoo.semantic("segformer_b0")
    assert model.segmenter.label_space == "camvid"
    assert model.segmenter.processor.size == {"height": 90, "width": 120}  # the size it was trained at
    image = np.random.default_rng(0).integers(0, 255, (61, 83, 3), dtype=np.uint8)
    probs = model.probabilities(image)
    assert probs.shape == (11, 61, 83) and np.allclose(probs.sum(0), 1, atol=1e-4)
    labels = model.segmenter.segment(image).labels
    assert np.array_equal(labels, probs.argmax(0).numpy())  # the adapter's post-processing, same answer
    assert zoo.semantic("segformer_b0") is model  # loaded once


def test_scene_averages_accumulate_the_single_scene_scores(weights_dir):
    from seg.explorer import demos
    from seg.explorer.zoo import Zoo

    models = Zoo(weights_dir, pretrained=()).synthetic()
    image, labels = demos.new_scene(5)
    one = demos.scene_comparison(models, image, labels)
    averaged = demos.average_scores(models, [5])
    for name in models:  # one scene: the accumulated scores are that scene's
        assert averaged[name]["miou"] == pytest.approx(one[name]["miou"])
        assert averaged[name]["boundary_f"] == pytest.approx(one[name]["boundary_f"])


@pytest.mark.parametrize("image_size,expected", [
    ((360, 480), (360, 480)),  # CamVid's own shape: exactly the training size
    ((720, 960), (360, 480)),
    ((480, 360), (480, 360)),  # portrait: the same pixels, turned, not squashed into landscape
    ((100, 400), (208, 831)),  # a panorama keeps its 1:4
])
def test_working_size_keeps_the_training_pixels_in_the_images_shape(image_size, expected):
    from seg.inference import working_size

    assert working_size(image_size, (360, 480)) == expected
    assert working_size(image_size, None) == image_size


def test_scratch_models_run_a_portrait_photo_unstretched(weights_dir):
    from seg.explorer.zoo import Zoo

    model = Zoo(weights_dir, pretrained=()).semantic("fcn8s")  # card input_size 90x120
    seen = []
    handle = model.model.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape[-2:])))
    try:
        probs = model.probabilities(np.zeros((400, 300, 3), np.uint8))
    finally:
        handle.remove()
    assert seen == [(120, 90)] and probs.shape == (11, 400, 300)


def test_objects_add_select_delete_and_round_trip_through_json():
    from seg.sam.prompts import Objects

    objects = Objects().click(10, 20, "positive").add().click(30, 40, "negative").click(1, 1, "box")
    assert [o.name for o in objects.items] == ["object 1", "object 2"] and objects.selected == 1
    assert objects.current.prompts.clicks == ((30.0, 40.0, "negative"), (1.0, 1.0, "box"))
    assert objects.undo().current.prompts.clicks == ((30.0, 40.0, "negative"),)
    assert objects.select(0).current.prompts.points == [(10.0, 20.0, 1)]
    assert objects.choose(2).current.choice == 2
    assert objects.choose(2).click(5, 5, "positive").current.choice == 0  # new prompts: the best new mask
    back = Objects.from_json(json.loads(json.dumps(objects.to_json())), size=(50, 60), limits=CAPS)
    assert back == objects
    deleted = objects.delete()
    assert [o.id for o in deleted.items] == [1] and deleted.selected == 0
    assert [o.id for o in deleted.add().items] == [1, 2]  # ids stay unique, not reused while in use
    assert Objects().delete().items[0].prompts == Prompts()  # never empty
    with pytest.raises(ValueError, match="no object 3"):
        objects.select(2)


@pytest.mark.parametrize("data, message", [
    ({"objects": [{"clicks": [[70, 5, "positive"]]}]}, "outside the 60x50 image"),
    ({"objects": [{"clicks": [[5, 5, "lasso"]]}]}, "object 1: unknown click mode .lasso.: choose one of positive"),
    ({"objects": [{"clicks": [[True, 5, "positive"]]}]}, r"\[x, y, mode\]"),
    ({"objects": [{"clicks": [["5", 5, "positive"]]}]}, r"\[x, y, mode\] with x and y numbers"),
    ({"objects": [{"clicks": [[5, 5, "box"], [5, 9, "box"]]}]}, "zero area"),  # what SAM refuses, refused here
    ({"objects": [{"clicks": [[5, 5, "box"], [9, 9, "box"], [70, 9, "box"]]}]}, "outside the 60x50"),
    ({"objects": [{"clicks": []}] * 33}, "33 objects; one request takes at most 32"),
    ({"objects": [{"clicks": [[1, 1, "positive"]] * 65}]}, "65 points"),
    ({"objects": [{"clicks": [[1, 1, "positive"]] * 63 + [[2, 2, "box"], [9, 9, "box"]]}]},
     "65 points .* a box counts as two"),
    ({"objects": "all of them"}, "must be"),
    ([], "must be"),
])
def test_saved_objects_are_checked(data, message):
    from seg.sam.prompts import Objects

    with pytest.raises(ValueError, match=message):
        Objects.from_json(data, size=(50, 60), limits=CAPS)


def test_drawing_tints_only_the_mask_outlines_it_and_maps_prompts_onto_a_thumbnail():
    from seg.sam.prompts import OBJECT_COLOURS, POSITIVE, Objects, draw_objects, draw_prompts

    image = np.full((60, 80, 3), 100, np.uint8)
    mask = np.zeros((60, 80), bool)
    mask[10:30, 20:50] = True
    objects = Objects().click(70, 50, "positive")
    drawn = draw_objects(image, objects, {objects.current.id: mask})
    assert (image == 100).all()  # the caller's photo is not drawn on
    blue = np.array(OBJECT_COLOURS[0])
    tinted = 100 * 0.45 + blue * 0.55  # SAM's blue over the photo, within rounding
    assert np.abs(drawn[20, 35] - tinted).max() <= 1  # inside: tinted
    assert (drawn[10, 35] == blue).all() and (drawn[29, 20] == blue).all()  # the outline, in the colour itself
    assert (drawn[5, 5] == 100).all() and (drawn[31, 35] == 100).all()  # outside: untouched
    assert (drawn[50, 70] == POSITIVE).all()  # the click's dot
    # the same prompts on a half-size thumbnail land at half the coordinates
    thumb = draw_prompts(image[::2, ::2], objects.current.prompts, mask[::2, ::2], scale=0.5)
    assert thumb.shape == (30, 40, 3) and (thumb[25, 35] == POSITIVE).all()
    assert np.abs(thumb[10, 17] - tinted).max() <= 1 and (thumb[2, 2] == 100).all()
