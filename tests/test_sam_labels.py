"""SAM as labeller and refiner in the app (random MobileSAM weights and random semantic models: the
plumbing, not the quality): objects get classes and an order, become Compare's ground truth and its
PNGs; a model's regions become SAM's prompts, in Compare (a refined row) and in "Find every object";
the two endpoints /sam_truth and /refine, with their refusals."""

import json

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from conftest import click, upload
from seg.data.camvid import CLASSES
from seg.data.ground_truth import read_ground_truth
from seg.explorer.compare import CHANGE
from seg.sam.prompts import Objects
from ui.tabs.compare import TAB_ID as COMPARE_TAB
from ui.tabs.sam.labels import GRID

pytestmark = pytest.mark.slow  # SAM's image encoder, seconds a test on 2 cores (docs/testing.md)


def test_objects_with_classes_become_the_compare_tabs_ground_truth(app, sample):
    photo = app.ctx.photo(str(sample[0]))
    tab, upload_state = app.sam, {"path": str(sample[0]), "digest": photo.digest}
    view = tab.canvas_click(photo, Objects(), "positive", {}, click(240, 300))
    view = tab.labels.classify(photo, view.objects, view.masks, "Road")
    assert view.category == gr.update(value="Road") and view.objects.current.category == "Road"
    with pytest.raises(gr.Error, match="unknown class 'Boat'"):
        tab.labels.classify(photo, view.objects, view.masks, "Boat")
    view = tab.add(photo, view.objects, view.masks)
    view = tab.canvas_click(photo, view.objects, "positive", view.masks, click(100, 50))
    with pytest.raises(gr.Error, match=r"object 2 has no class: pick one of Sky"):
        tab.labels.to_truth(photo, view.objects, view.masks, upload_state)
    view = tab.labels.classify(photo, view.objects, view.masks, "Sky")
    road, sky = (view.masks[o.id].mask for o in view.objects.items)
    image_path, truth_path, files, note, shown = tab.labels.to_truth(photo, view.objects, view.masks, upload_state)
    assert image_path == str(sample[0]) and truth_path == files[0] and "Compare" in note
    assert shown.selected == COMPARE_TAB  # the page turns to Compare
    labels = read_ground_truth(truth_path, image_shape=(360, 480)).labels
    assert np.array_equal(labels == CLASSES.index("Sky"), sky)  # the sky, painted last, lies on top
    assert np.array_equal(labels == CLASSES.index("Road"), road & ~sky)
    assert np.array_equal(read_ground_truth(files[1], image_shape=(360, 480)).labels, labels)  # the colour PNG
    moved = tab.labels.move(photo, view.objects, view.masks, -1)  # the sky first: the road now on top
    assert [o.category for o in moved.objects.items] == ["Sky", "Road"] and "painted 1 of 2" in moved.note
    # Compare scores its models against it, as against any uploaded ground truth
    result = app.compare.run(image_path, truth_path, ["fcn8s"], False, False)
    assert result.metrics["model"].tolist() == ["FCN-8s"] and 0 <= result.metrics["mIoU"][0] <= 1
    saved = tab.save(upload_state, view.objects)  # the classes are kept in the browser with the objects
    assert [o["class"] for o in saved["objects"]["objects"]] == ["Road", "Sky"]
    objects, masks, _ = tab.restore_objects(photo, saved)
    assert [o.category for o in objects.items] == ["Road", "Sky"]


def test_a_models_regions_prompt_sam_in_find_every_object_each_with_its_class(app, sample):
    photo = app.ctx.photo(str(sample[0]))
    assert (GRID in dict((v, k) for k, v in app.sam.labels.sources())) and \
        "unet" in [v for _, v in app.sam.labels.sources()]
    view = app.sam.every_object(photo, Objects(), {}, "unet")
    named = [o for o in view.objects.items if o.prompts.clicks]
    assert all(o.category in CLASSES for o in named) and all(o.id in view.masks for o in named)
    assert "region(s)" in view.note
    for item in named:  # a point and a box each, all inside the photo
        assert len(item.prompts.points) == 1 and item.prompts.box is not None
    with pytest.raises(gr.Error, match="unknown or unavailable model"):
        app.sam.every_object(photo, Objects(), {}, "nosuch")


def test_compare_shows_a_model_refined_by_sam_beside_the_model(app, sample):
    result = app.compare.run(str(sample[0]), str(sample[1]), ["fcn8s"], False, False, "unet")  # not ticked: added
    rows = result.metrics["model"].tolist()
    assert rows == ["FCN-8s", "U-Net", "U-Net + SAM"]
    change = result.metrics[CHANGE].tolist()
    assert change[:2] == ["", ""] and change[2].startswith("mIoU ") and "boundary F " in change[2]
    assert len(result.gallery) == 3 * (1 + 3)  # the truth's row, then one per prediction, the refined one too
    assert any("unet+sam" in f for f in result.files)
    plain = app.compare.run(str(sample[0]), str(sample[1]), ["fcn8s"], False, False, "")
    assert CHANGE not in plain.metrics.columns


def test_the_sam_truth_and_refine_endpoints(app, sample):
    objects = json.dumps([{"points": [[240, 300]], "labels": [1], "class": "Road"},
                          {"box": [10, 10, 200, 150], "class": "Building"}])
    png = app.api.sam_truth(upload(str(sample[0])), objects)
    labels = np.array(Image.open(png.path))
    assert labels.shape == (360, 480) and set(np.unique(labels)) <= {CLASSES.index("Road"), CLASSES.index("Building"),
                                                                     11}
    assert (labels == CLASSES.index("Building")).any()  # painted last, on top
    png, info = app.api.refine(upload(str(sample[0])), "unet")
    assert np.array(Image.open(png.path)).shape == (360, 480) and info["model"] == "unet"
    assert info["regions"] and all(set(r) >= {"class", "box", "point", "painted", "iou"} for r in info["regions"])
    assert info["regions"][0]["area"] >= info["regions"][-1]["area"] and info["seconds"] > 0
    for objects, message in ((json.dumps([{"points": [[10, 10]], "labels": [1], "class": "Boat"}]),
                              "unknown class 'Boat'"),
                             (json.dumps([{"points": [[10, 10]], "labels": [1]}]), "has no class"),
                             (json.dumps([{"points": [[4000, 10]], "labels": [1], "class": "Sky"}]), "outside")):
        with pytest.raises(gr.Error, match=message):
            app.api.sam_truth(upload(str(sample[0])), objects)
    with pytest.raises(gr.Error, match="unknown or unavailable model"):
        app.api.refine(upload(str(sample[0])), "nosuch")


def test_without_sam_refining_and_ground_truths_say_so(weights_dir, tmp_path, sample):
    from ui.app import build
    from ui.settings import Settings

    bare = build(Settings(weights_dir=weights_dir, pretrained=(), cache_dir=tmp_path, sam_checkpoint=None))
    try:
        with pytest.raises(gr.Error, match="refining needs SAM, which is not available on this server"):
            bare.compare.run(str(sample[0]), None, ["fcn8s"], False, False, "fcn8s")
        with pytest.raises(gr.Error, match="SAM"):
            bare.api.refine(upload(str(sample[0])), "fcn8s")
    finally:
        bare.close()
