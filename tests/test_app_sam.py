"""The Prompt SAM tab's handlers called directly (clicks, boxes, objects, automatic masks, export and
import, the browser's saved objects, relating a mask to the semantic models, the click curve), on
the tests' random MobileSAM; the other tabs and the API are in test_app.py."""

import json
from dataclasses import replace
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from conftest import click
from seg.data.camvid import CLASSES, CLASSES_WITH_OTHER
from seg.data.photos import Photo, image_digest
from seg.explorer.export import rle_decode
from seg.sam import model as seg_sam
from seg.sam.prompts import Objects
from ui.context import Context
from ui.settings import Settings
from ui.tabs.sam import browser as browser_sam
from ui.tabs.sam.models import CURVE_MIN_PIXELS
from ui.tabs.sam.tab import Opened, SamView


def opened(outputs: tuple) -> Opened:
    """A photo opened in the SAM tab (what `open` and `restore` hand Gradio), read back by name."""
    return Opened(outputs[0], outputs[1], SamView(*outputs[2:]))


def test_the_sam_tab_says_when_sam_is_missing(app, weights_dir, tmp_path):
    assert app.ctx.sam_notice() == ""  # the fixture's checkpoint is there
    # no checkpoint and an empty download cache
    bare = Context.create(Settings(weights_dir=weights_dir, pretrained=(), cache_dir=tmp_path))
    notice = bare.sam_notice()
    bare.close()
    assert "SAM is not available" in notice and "SEG_SAM_CHECKPOINT" in notice


def as_photo(pixels: np.ndarray) -> Photo:
    """A photo the app did not read from a file (the tab's state holds a `Photo`)."""
    return Photo(pixels, pixels.shape[:2], 1.0, "", image_digest(pixels))


@pytest.mark.slow
def test_sam_reads_the_photo_when_it_arrives_and_a_click_never_reads_it_again(app, sample, monkeypatch):
    import threading

    sam = app.ctx.zoo.sam()
    photo = opened(app.sam.open(str(sample[0]), None)).photo
    flipped = as_photo(photo.pixels[:, ::-1].copy())  # a photo SAM has not seen in this test
    runs = sam.encoder_runs
    sent = app.sam.embed(photo, Objects())  # read, then handed to the browser decoder
    assert sam.encoder_runs - runs in (0, 1)  # 0: cached already
    assert sent["photo"] == image_digest(photo.pixels) and sent["embedding"].startswith("gradio_api/file=")
    runs = sam.encoder_runs
    hashed = []  # the real digest, counted: a click must not hash the photo again
    for module in (seg_sam, browser_sam):
        monkeypatch.setattr(module, "image_digest", lambda image: hashed.append(1) or image_digest(image))
    app.sam.canvas_click(photo, Objects(), "positive", {}, click(240, 180))
    assert sam.encoder_runs == runs and hashed == []  # the click decoded only, and hashed nothing
    # a click that comes while the photo is still being read waits for that reading
    reading = threading.Thread(target=app.sam.embed, args=(flipped, Objects()))
    reading.start()
    app.sam.canvas_click(flipped, Objects(), "positive", {}, click(240, 180))
    reading.join()
    assert sam.encoder_runs == runs + 1
    assert app.sam.embed(None, Objects()) == gr.skip()  # no photo: nothing to read


@pytest.mark.slow
def test_everything_makes_each_automatic_mask_an_editable_object(app, sample, monkeypatch):
    photo = app.ctx.photo(str(sample[0]))
    sam = app.ctx.zoo.sam()
    points = [(100.0, 100.0), (300.0, 200.0), (400.0, 50.0)]
    wanted = [1, 2, 0]  # which of SAM's three masks at each point the generator kept
    # the real generator on random weights finds nothing it is sure of at SAM's thresholds: it runs here
    assert "no object it is sure of" in app.sam.every_object(photo, Objects(), {}).note
    results = [sam.predict(photo.pixels, points=[[x, y]], labels=[1]) for x, y in points]
    found = [{"point_coords": [[x, y]], "segmentation": r.masks[i], "choice": i, "predicted_iou": float(r.scores[i]),
              "stability_score": float(r.stability[i])} for (x, y), i, r in zip(points, wanted, results)]
    monkeypatch.setattr(sam, "everything", lambda image, settings, digest=None: found[:settings.max_masks])
    start = app.sam.canvas_click(photo, Objects(), "positive", {}, click(240, 180))
    view = app.sam.every_object(photo, start.objects, start.masks)
    objects, kept, note, picker = view.objects, view.masks, view.note, view.picker
    assert [item.prompts.clicks[0][:2] for item in objects.items[1:]] == points and "3 object(s)" in note
    assert [item.choice for item in objects.items[1:]] == wanted and len(picker["choices"]) == 4
    for item, mask in zip(objects.items[1:], found):
        assert np.array_equal(kept[item.id].mask, mask["segmentation"])
    # a new visit re-creates the same masks from the objects' prompts alone
    restored = app.sam.object_masks(photo, objects)
    assert all(np.array_equal(restored[k].mask, kept[k].mask) for k in kept)
    # the objects limit bounds what the generator is asked for: one clicked object, room for one more
    monkeypatch.setattr(app.ctx, "limits", replace(app.ctx.limits, objects_per_request=2))
    assert len(app.sam.every_object(photo, start.objects, start.masks).objects.items) == 2
    with pytest.raises(gr.Error, match="at most 2 objects"):
        app.sam.every_object(photo, objects, kept)
    monkeypatch.setattr(sam, "everything", lambda image, settings, digest=None: [])
    assert "no object it is sure of" in app.sam.every_object(photo, Objects(), {}).note
    with pytest.raises(gr.Error, match="no image"):
        app.sam.every_object(None, Objects(), {})


def test_sam_clicks_box_undo_and_export(app, sample):
    photo = app.ctx.photo(str(sample[0]))
    sam = app.ctx.zoo.sam()
    runs = sam.encoder_runs
    objects, result, kept = Objects(), None, {}
    for x, y, mode in [(240, 180, "positive"), (100, 50, "negative"), (200, 150, "box")]:
        view = app.sam.canvas_click(photo, objects, mode, kept, click(x, y))
        objects, result, kept, note = view.objects, view.result, view.masks, view.note
        assert view.canvas.shape == photo.pixels.shape and len(view.choices) == 3
    assert "2 prompt(s)" in note and "opposite corner" in note  # a pending corner is not a prompt
    only_corner = app.sam.canvas_click(photo, Objects(), "box", {}, click(5, 5))
    assert only_corner.result is None and "opposite corner" in only_corner.note
    view = app.sam.canvas_click(photo, objects, "box", kept, click(300, 250))
    objects, result, kept, note = view.objects, view.result, view.masks, view.note
    assert objects.current.prompts.box == (200, 150, 300, 250) and "3 prompt(s)" in note
    assert sam.encoder_runs - runs <= 1  # one embedding for every click on this image
    scores = result.scores
    assert list(scores) == sorted(scores, reverse=True)
    files, note = app.sam.files.export(photo, objects, kept, {"path": str(sample[0])})
    assert "1 object(s) exported" in note and "Left out" not in note
    instances, coco = files[0], json.loads(open(files[1]).read())
    mask = np.array(Image.open(files[2])) > 0
    assert np.array_equal(mask, result.masks[0]) and np.array_equal(np.array(Image.open(instances)) == 1, mask)
    assert np.array_equal(rle_decode(coco["annotations"][0]["segmentation"]), mask)
    assert coco["annotations"][0]["predicted_iou"] == pytest.approx(scores[0])
    objects = app.sam.undo(photo, objects, kept).objects
    assert objects.current.prompts.box is None and len(objects.current.prompts.clicks) == 3


def test_several_objects_exported_and_imported_again(app, sample, tmp_path):
    """Two objects, a third deleted; the COCO JSON carries their prompts, and importing it on the
    same photo re-creates both, with the same masks, ready to edit."""
    photo = app.ctx.photo(str(sample[0]))
    objects, result, kept = Objects(), None, {}
    view = app.sam.canvas_click(photo, objects, "positive", kept, click(240, 300))
    objects, kept, note, picker = view.objects, view.masks, view.note, view.picker
    objects = app.sam.add(photo, objects, kept).objects
    view = app.sam.canvas_click(photo, objects, "positive", kept, click(100, 60))
    objects, result, kept = view.objects, view.result, view.masks
    view = app.sam.canvas_click(photo, objects, "negative", kept, click(120, 70))
    objects, result, kept = view.objects, view.result, view.masks
    choose_third = gr.SelectData(None, {"index": 2, "value": None})
    view = app.sam.choose(photo, objects, result, kept, choose_third)
    objects, result, kept, note = view.objects, view.result, view.masks, view.note
    assert objects.current.choice == 2 and np.array_equal(kept[2].mask, result.masks[2]) and "Mask 3" in note
    objects = app.sam.add(photo, objects, kept).objects
    view = app.sam.canvas_click(photo, objects, "positive", kept, click(400, 200))
    objects, kept = view.objects, view.masks
    view = app.sam.delete(photo, objects, kept)
    objects, kept, note, picker = view.objects, view.masks, view.note, view.picker
    assert [o.name for o in objects.items] == ["object 1", "object 2"] and set(kept) == {1, 2}
    assert picker["choices"] == [("object 1", 0), ("object 2", 1)] and "object 3 deleted" in note
    upload = {"path": str(sample[0])}
    files, _ = app.sam.files.export(photo, objects, kept, upload)
    stem = sample[0].stem
    assert [Path(f).name for f in files] == [f"{stem}_instances.png", f"{stem}_objects_coco.json",
                                             f"{stem}_object_1.png", f"{stem}_object_2.png"]
    instances = np.array(Image.open(files[0]))
    assert set(np.unique(instances)) <= {0, 1, 2} and (instances == 2).any()
    view = app.sam.files.import_coco(photo, Objects(), {}, upload, files[1])
    restored, restored_kept, note = view.objects, view.masks, view.note
    assert restored.to_json()["objects"] == objects.to_json()["objects"] and "2 object(s) added" in note
    assert "made on" not in note  # the same photo: nothing to say
    for item in objects.items:
        assert np.array_equal(restored_kept[item.id].mask, kept[item.id].mask)
    # an import adds to the objects already there, renumbered after them, their masks kept
    view = app.sam.files.import_coco(photo, objects, kept, upload, files[1])
    both, both_kept, note, picker = view.objects, view.masks, view.note, view.picker
    assert [o.id for o in both.items] == [1, 2, 3, 4] and [o.prompts for o in both.items[2:]] == \
        [o.prompts for o in objects.items] and both.selected == 3 and len(picker["choices"]) == 4
    assert all(both_kept[i].mask is kept[i].mask for i in (1, 2))
    # a file made on another photo of the same size is added, and the note says so
    note = app.sam.files.import_coco(photo, Objects(), {}, {"path": "/x/another.png"}, files[1]).note
    assert f"made on **{sample[0].name}**, this photo is **another.png**" in note
    other = as_photo(np.zeros((100, 80, 3), np.uint8))
    with pytest.raises(gr.Error, match="made on a 480x360 image, this one is 80x100"):
        app.sam.files.import_coco(other, Objects(), {}, upload, files[1])
    (tmp_path / "bad.json").write_text('{"annotations": []}')
    with pytest.raises(gr.Error, match="no saved prompts"):
        app.sam.files.import_coco(photo, Objects(), {}, upload, str(tmp_path / "bad.json"))
    many = Objects().extend([(10 + i, 10, 0) for i in range(31)])
    with pytest.raises(gr.Error, match="make 33; one image takes at most 32"):
        app.sam.files.import_coco(photo, many, {}, upload, files[1])


def test_the_browser_keeps_the_objects_for_the_same_photo(app, sample):
    """What sam_save puts in local storage brings the objects back on a reload (sam_restore) and
    when the same photo is opened again; another photo starts afresh."""
    photo = app.ctx.photo(str(sample[0]))
    view = app.sam.canvas_click(photo, Objects(), "positive", {}, click(240, 300))
    objects, kept = view.objects, view.masks
    upload = {"path": str(sample[0]), "digest": photo.digest}
    saved = app.sam.save(upload, objects)
    assert saved["objects"] == objects.to_json()
    json.dumps(saved)  # local storage holds JSON
    back = opened(app.sam.restore(saved))  # the sample lives in the upload folder, as an upload would
    assert back.view.objects == objects and np.array_equal(back.view.masks[1].mask, kept[1].mask)
    assert "back" in back.view.note
    assert opened(app.sam.open(str(sample[0]), saved)).view.objects == objects
    elsewhere = opened(app.sam.restore({**saved, "path": "/etc/hostname"}))  # a forged value names a server file
    assert "Upload the same photo" in elsewhere.view.note
    unchanged = [elsewhere.photo, elsewhere.upload,
                 *(value for name, value in elsewhere.view._asdict().items() if name != "note")]
    assert all(isinstance(v, dict) and v.get("__type__") == "update" for v in unchanged), \
        "a photo uploaded meanwhile stays: only the note changes"
    fresh = opened(app.sam.open(str(sample[0]), {**saved, "digest": "another photo"}))
    assert fresh.view.objects == Objects()


def test_sam_relates_the_object_to_the_semantic_models(app, sample):
    photo = app.ctx.photo(str(sample[0]))
    view = app.sam.canvas_click(photo, Objects(), "positive", {}, click(240, 300))
    objects, kept = view.objects, view.masks
    table, note, semantic = app.sam.models.relate(photo, objects, kept, ["fcn8s", "unet"], str(sample[1]))
    assert "label ids" in note and set(semantic.labels) == {"fcn8s", "unet"}
    kept_labels = semantic.labels["fcn8s"]
    alone, note, semantic = app.sam.models.relate(photo, objects, kept, ["fcn8s"], None,
                                                  semantic)  # no truth in this tab
    assert semantic.labels["fcn8s"] is kept_labels  # the model ran once for this photo, not twice
    assert list(alone["model"]) == ["SAM", "FCN-8s (from scratch)"] and "No ground truth for this photo" in note
    assert list(table["model"]) == ["SAM", "FCN-8s (from scratch)", "U-Net (from scratch)", "ground truth"]
    truth_class = table["class"].iloc[-1]
    assert truth_class in CLASSES_WITH_OTHER  # the true class at the click
    assert table["IoU with SAM's mask"].between(0, 1).all() and table["IoU with the true region"].between(0, 1).all()


def test_sam_click_curve_against_the_truth(app, sample):
    photo = app.ctx.photo(str(sample[0]))
    picker, truth = app.sam.models.curve_objects(photo, str(sample[1]))
    choices = picker["choices"]
    assert choices and picker["value"] == 0 and choices[0][0].startswith(tuple(CLASSES))
    sizes = [o["pixels"] for o in truth["objects"]]
    assert sizes == sorted(sizes, reverse=True) and min(sizes) >= CURVE_MIN_PIXELS
    chart, picture, text, semantic = app.sam.models.click_curve(photo, truth, 0, ["fcn8s"], None)
    assert chart.ndim == 3 and picture.shape == photo.pixels.shape
    assert "after 1 click" in text and "NoC@85" in text and "NoC@90" in text and "FCN-8s" in text
    assert set(semantic.labels) == {"fcn8s"}
    with pytest.raises(gr.Error, match="pick one of its objects"):
        app.sam.models.click_curve(photo, None, 0, ["fcn8s"], None)
    with pytest.raises(gr.Error, match="another photo"):
        app.sam.models.click_curve(as_photo(photo.pixels[:, ::-1].copy()), truth, 0, ["fcn8s"], None)
    assert app.sam.models.curve_objects(photo, None)[1] is None  # no ground truth: nothing to pick
    # every SAM of the server: a curve and a line of NoC each, the default SAM's first
    _, _, every, _ = app.sam.models.click_curve(photo, truth, 0, [], None, True)
    lines = every.split("\n\n")
    assert [line.split(":")[0] for line in lines] == ["MobileSAM (vit_t)", "SAM 2 (tiny-sam2)", "SAM 3 (tiny-sam3)"]
    assert all("NoC@85" in line for line in lines) and lines[0] == text.split("\n\n")[0]


def test_another_sam_answers_the_clicks_when_chosen(app, sample):
    photo = app.ctx.photo(str(sample[0]))
    key = next(k for k, title in app.ctx.zoo.family_names().items() if title == "SAM 2 (tiny-sam2)")
    view = SamView(*app.sam.canvas_click(photo, Objects(), "positive", {}, click(240, 180), key))
    chosen = app.ctx.zoo.family_sam(key).predict(photo.pixels, points=[[240, 180]], labels=[1], digest=photo.digest)
    assert np.array_equal(view.masks[view.objects.current.id].mask, chosen.masks[0])
    assert "answered by SAM 2 (tiny-sam2)" in view.note
    back = SamView(*app.sam.answer_again(photo, view.objects, view.masks, ""))  # the default SAM chosen again
    default = app.ctx.zoo.sam().predict(photo.pixels, points=[[240, 180]], labels=[1], digest=photo.digest)
    assert np.array_equal(back.masks[back.objects.current.id].mask, default.masks[0]) and "answered by" not in back.note
    assert tuple(app.sam.answer_again(photo, Objects(), {}, key)) == SamView.unchanged()  # nothing to answer yet
    with pytest.raises(gr.Error, match="unknown or unavailable SAM"):
        app.sam.canvas_click(photo, Objects(), "positive", {}, click(240, 180), "nobody/no-sam")
    # objects imported from a COCO JSON get their masks from the SAM the picker names, as clicks do
    upload = {"path": str(sample[0])}
    files, _ = app.sam.files.export(photo, back.objects, back.masks, upload)
    imported = app.sam.files.import_coco(photo, Objects(), {}, upload, files[1], key)
    assert np.array_equal(imported.masks[imported.objects.items[0].id].mask, chosen.masks[0])
    assert "their masks by SAM 2 (tiny-sam2)" in imported.note
    with pytest.raises(gr.Error, match="unknown or unavailable SAM"):
        app.sam.files.import_coco(photo, Objects(), {}, upload, files[1], "nobody/no-sam")
