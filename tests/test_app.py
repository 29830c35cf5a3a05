"""The app: its handlers called directly, and the launched server driven through gradio_client.

The weights are small random-initialised models in the shipped layout (conftest `weights_dir`)
and a random MobileSAM checkpoint, so every code path runs offline; what the tests check is the
plumbing (shapes, files, metrics, errors), not the quality of random models.
"""

import json
import os
import re
import sys
from dataclasses import replace
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from conftest import upload
from seg.data.camvid import CLASSES, PALETTE
from seg.explorer import demos
from seg.explorer.export import rle_decode
from ui.app import build
from ui.context import ROOT
from ui.tabs.compare import METRIC_COLUMNS, TIMING_COLUMNS, examples
from ui.tabs.leaderboard import LEADERBOARD, leaderboard
from ui.tabs.learn import AVERAGE_SCENES
from ui.tabs.sam.models import RELATE_COLUMNS


@pytest.fixture
def colour_truth(sample, tmp_path):
    ids = np.array(Image.open(sample[1]))
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(PALETTE)] = PALETTE
    path = tmp_path / "truth_colour.png"
    Image.fromarray(lut[ids]).save(path)
    return path


def test_the_catalogue_lists_what_loads_and_says_how_to_get_the_rest(app):
    names = app.ctx.zoo.semantic_names()
    assert {"fcn32s", "fcn8s", "unet", "segformer_b0"} <= names.keys()
    missing = dict(app.ctx.zoo.missing())
    assert any("deeplabv3" in m.lower() for m in missing)  # not in the test weights
    assert any("hf download" in how for how in missing.values())  # pretrained SegFormer is not cached
    status = app.ctx.status_markdown()
    assert "Unavailable models and how to enable them" in status and "SAM vit_t" in status


@pytest.mark.parametrize("truth_kind", ["ids", "colours"])
def test_compare_with_a_ground_truth(app, sample, colour_truth, truth_kind):
    truth = sample[1] if truth_kind == "ids" else colour_truth
    keys = ["fcn32s", "unet", "segformer_b0"]
    view = app.compare.run(str(sample[0]), str(truth), keys, False, False)
    tiles = view.gallery  # the ground truth first, then each model's overlay, errors, boundaries
    assert len(tiles) == 3 + 3 * len(keys)
    assert [caption for _, caption in tiles[:3]] == ["ground truth", "photo", "true boundaries"]
    assert all(picture.shape == (360, 480, 3) for picture, _ in tiles)
    assert "wrong" in tiles[4][1] and "boundary F" in tiles[5][1]
    metrics = view.metrics
    titles = [app.ctx.zoo.semantic_names()[k] for k in keys]
    assert list(metrics["model"]) == [t.replace(" (from scratch)", "") for t in titles]
    assert metrics[["mIoU", "pixel acc.", "boundary F"]].notna().all().all()
    assert ("label ids" in view.note) if truth_kind == "ids" else ("colour-coded" in view.note)
    assert view.chart.ndim == 3 and len(view.timing) == 3
    names = sorted(os.path.basename(f) for f in view.files)
    stem = sample[0].stem  # each download named after the photo
    assert {f"{stem}_metrics.json", f"{stem}_fcn32s_labels.png", f"{stem}_unet_colour.png"} <= set(names)
    saved = json.loads(open([f for f in view.files if f.endswith("metrics.json")][0]).read())
    assert [m["model"] for m in saved["runs"]] == titles
    assert set(saved["per_class_iou"]) == set(titles)  # each model's IoU for each class
    assert set(saved["per_class_iou"][titles[0]]) == set(CLASSES)
    labels = np.array(Image.open([f for f in view.files if f.endswith("fcn32s_labels.png")][0]))
    predictions = view.comparison.predictions
    assert np.array_equal(labels, predictions["fcn32s"].labels)
    picture, text = app.compare.show_disagreement(view.comparison, "fcn32s", "unet")
    assert picture.shape == (360, 480, 3) and "differ on" in text and "sides with" in text


def test_the_closer_look_shows_one_models_errors_and_confusion(app, sample):
    view = app.compare.run(str(sample[0]), str(sample[1]), ["fcn32s", "unet"], False, False)
    truth = view.comparison.ground_truth
    unet = view.comparison.predictions["unet"].labels
    picture, legend, text, chart, counts = app.compare.look_closely(view.comparison, "unet", "errors")
    wrong = (unet != truth) & (truth != 255)
    assert picture.shape == (720, 960, 3)  # a 480 px photo shown twice as large, each pixel a 2x2 block
    assert f"{wrong.sum() / wrong.size:.1%} wrong" in text
    assert "Wrong pixels take the colour" in legend and chart.ndim == 3
    # the counts table is U-Net's confusion matrix: rows true classes, counted here independently
    assert list(counts["true class"]) == list(CLASSES) and list(counts.columns[-1:]) == ["pixels"]
    for t in range(len(CLASSES)):
        for p in range(len(CLASSES) + 1):
            assert counts.iloc[t, 1 + p] == int(((truth == t) & (unet == p)).sum())
    boundaries = app.compare.look_closely(view.comparison, "unet", "boundaries")
    assert "true boundary missed" in boundaries[1] and not np.array_equal(boundaries[0], picture)
    assert app.compare.look_closely(None, "unet", "errors")[2].startswith("Run a comparison first")


def test_without_a_ground_truth_the_gallery_holds_the_overlays(app, sample):
    view = app.compare.run(str(sample[0]), None, ["fcn32s", "unet"], False, False)
    assert [caption.split(" · ")[0] for _, caption in view.gallery] == ["FCN-32s", "U-Net"]
    picture, _, text, chart, counts = app.compare.look_closely(view.comparison, "unet", "errors")
    assert picture.shape == (720, 960, 3) and "Add a ground truth" in text and chart is None


def test_both_ground_truth_formats_give_the_same_scores(app, sample, colour_truth):
    by_ids = app.compare.run(str(sample[0]), str(sample[1]), ["fcn8s"], False, False).metrics
    by_colours = app.compare.run(str(sample[0]), str(colour_truth), ["fcn8s"], False, False).metrics
    assert by_ids.equals(by_colours)


def test_tta_and_crf_run_through_the_comparison(app, sample):
    """Their effect is tested on known answers in test_postprocess; here: they are wired in."""
    refined = app.compare.run(str(sample[0]), str(sample[1]), ["fcn8s", "segformer_b0"], True, True)
    assert refined.comparison.predictions["fcn8s"].labels.shape == (360, 480)
    assert refined.metrics["mIoU"].notna().all()
    assert list(refined.metrics["model"]) == ["FCN-8s + TTA + CRF", "FCN-8s (plain)", "SegFormer-B0 + TTA + CRF",
                                              "SegFormer-B0 (plain)"]
    assert (refined.timing["time (ms)"] > 0).all()
    with pytest.raises(gr.Error, match="unknown or unavailable"):
        app.compare.run(str(sample[0]), None, ["fcn8s", "nope"], False, False)


@pytest.mark.parametrize("bad, message", [
    ("text.png", "not a readable image"),
    ("truth_wrong_size", "made for this image"),
    ("no_model", "no model chosen"),
])
def test_compare_errors_are_messages(app, sample, tmp_path, bad, message):
    image, truth, keys = str(sample[0]), str(sample[1]), ["fcn8s"]
    if bad == "text.png":
        image = tmp_path / "text.png"
        image.write_text("not an image")
    elif bad == "truth_wrong_size":
        truth = tmp_path / "small.png"
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(truth)
    else:
        keys = []
    with pytest.raises(gr.Error, match=message):
        app.compare.run(str(image), str(truth), keys, False, False)


def test_the_sample_picker_copies_camvid_files_out_of_the_dataset(app, camvid_dir):
    name = sorted((camvid_dir / "val").glob("*.png"))[0].name
    image, truth = app.compare.pick_sample(name)
    assert not image.startswith(str(camvid_dir)) and np.array_equal(
        np.array(Image.open(truth)), np.array(Image.open(camvid_dir / "valannot" / name)))
    with pytest.raises(gr.Error, match="not a CamVid val image"):
        app.compare.pick_sample("../../etc/passwd")


def test_the_examples_are_real_camvid_photos_first_with_their_licence(app, camvid_dir):
    photos = [Path(photo).name for photo, _ in examples()]
    assert len(photos) == 5 and all(p.startswith("camvid_") for p in photos[:3])  # at most three, shown first
    assert all(p.startswith("street_") for p in photos[3:])
    for photo, truth in examples()[:3]:  # unchanged copies of val files, with their ground truth
        name = Path(photo).name.removeprefix("camvid_")
        assert Path(photo).read_bytes() == (camvid_dir / "val" / name).read_bytes()
        assert Path(truth).read_bytes() == (camvid_dir / "valannot" / name).read_bytes()
    licence = (ROOT / "examples" / "README.md").read_text()
    assert "CC BY-NC 4.0" in licence and all(p in licence for p in photos[:3])


def test_empty_tables_have_their_headers_before_the_first_run(app):
    demo = app.demo
    frames = {c.elem_id or c.label: c.value for c in demo.blocks.values() if isinstance(c, gr.Dataframe)}
    assert frames["timing"]["headers"] == TIMING_COLUMNS
    assert frames["metrics"]["headers"] == METRIC_COLUMNS
    assert frames["Class at the click, and overlap with SAM's mask"]["headers"] == RELATE_COLUMNS
    picker = [c for c in demo.blocks.values() if getattr(c, "label", "") == "CamVid val sample (image + ground truth)"]
    assert [c.value for c in picker] == [None]  # nothing looks chosen while nothing is loaded


@pytest.mark.slow
def test_the_warm_up_waits_for_the_server_then_loads_the_default_models_and_sam(app):
    import types

    fresh = build(replace(app.ctx.settings, pretrained=()))  # a new start: nothing loaded yet
    server = types.SimpleNamespace(is_running=False)
    starting = replace(fresh, demo=server)
    thread = starting.warm_up()
    thread.join(timeout=1)
    zoo = fresh.ctx.zoo
    assert thread.is_alive() and not zoo.loaded()  # nothing before the server answers
    server.is_running = True
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert zoo.loaded() == {"fcn32s", "fcn8s", "unet", "sam"}
    assert zoo.sam().embeddings_kept == 0  # warmed, but no blank photo takes a place in the cache
    fresh.close()


@pytest.mark.slow
def test_learn_demos(app):
    seed, scene, gallery, table = app.learn.scene(0)
    assert seed == 1 and len(gallery) == 4 and list(table["model"]) == ["FCN-32s", "FCN-8s", "U-Net"]
    averages = demos.average_scores(app.ctx.zoo.synthetic(), AVERAGE_SCENES)
    assert list(table["BF, 32 scenes"]) == [round(averages[k]["boundary_f"], 3) for k in averages]
    assert all(min(tile.shape[:2]) >= 256 for tile, _ in gallery)  # large enough to see a boundary
    assert app.learn.first_scene(3) == (gr.skip(),) * 4  # a scene is already shown: the tab keeps it
    race, curve, losses, gallery, text = app.learn.train(None, 0.08, 3)
    assert race.steps == 3 and len(losses) == 6 and "cross-entropy" in text
    assert list(curve["step"]) == [0, 0, 3, 3]  # the IoU where both start, then after the last step
    race, curve, *_ = app.learn.train(race, 0.08, 7)
    assert race.steps == 10  # the same user's models keep training, and the IoU curve grows with them
    assert sorted(set(curve["step"])) == [0, 3, 5, 10] and set(curve["trained with"]) == {"cross-entropy", "Dice"}
    assert curve["IoU"].between(0, 1).all()
    field, text = app.learn.receptive("three layers, rates 2-2-2 (gridding)")
    assert "49" in text  # 7x7 samples, two apart: the holes of gridding


def test_the_leaderboard_tab_shows_the_shipped_figures(app):
    board = json.loads((LEADERBOARD / "leaderboard.json").read_text())
    caption, table = leaderboard()
    shipped = len(board["models"])
    assert list(table["model"])[:shipped + 1] == [m["title"] for m in board["models"]] + [board["reference"]["title"]]
    assert list(table["val mIoU"][:shipped]) == ["fine-tuned on val" if m.get("trained_on_val")
                                                 else f"{100 * m['miou']:.1f}" for m in board["models"]]  # "62.0"
    tested = {m["title"]: f"{100 * m['test']['miou']:.1f}" for m in board["models"] if m.get("test")}
    assert tested and all(table.set_index("model")["test mIoU"][t] == v for t, v in tested.items())
    assert table["test mIoU"][shipped] == "57.2"  # ESPNet, beside them
    assert all(re.fullmatch(r"\d+\.\d\d", p) for p in table["params (M)"])
    assert board["machine"] in caption and "issue" not in caption.lower()
    assert not any("Intel(R)" in t for t in table["trained"])  # machines named briefly, the caption says which


def test_api_handlers(app, sample, tmp_path):
    labels_file, info = app.api.segment(upload(str(sample[0])), "fcn8s")
    labels = np.array(Image.open(labels_file.path))
    assert labels.shape == (360, 480) and info["model"] == "fcn8s" and info["seconds"] > 0
    scores = app.api.score(upload(labels_file.path), upload(str(sample[1])))
    assert 0 <= scores["miou"] <= 1 and scores["ground_truth_format"].startswith("label ids")
    mask_path, sam = app.api.sam_prompt(upload(str(sample[0])), "[[240, 180]]", "[1]", "")
    assert np.array(Image.open(mask_path.path)).shape == (360, 480) and 0 <= sam["score"] <= 1
    with pytest.raises(gr.Error, match="unknown or unavailable model"):
        app.api.segment(upload(str(sample[0])), "../../etc/passwd")
    with pytest.raises(gr.Error, match="must be JSON"):
        app.api.sam_prompt(upload(str(sample[0])), "[[1, 2]", "[1]", "")
    with pytest.raises(gr.Error, match="outside"):
        app.api.sam_prompt(upload(str(sample[0])), "[[4000, 10]]", "[1]", "")


@pytest.mark.slow
def test_the_api_through_gradio_client(server, sample):
    """Every endpoint through gradio_client against the launched app (docs/api.md)."""
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    labels_png, info = client.predict(handle_file(str(sample[0])), "unet", api_name="/segment")
    assert np.array(Image.open(labels_png)).shape == (360, 480) and info["model"] == "unet"
    mask_png, sam = client.predict(handle_file(str(sample[0])), "[[240, 180]]", "[1]", "", api_name="/sam_prompt")
    assert np.array(Image.open(mask_png)).dtype == np.uint8 and len(sam["scores"]) == 3
    # later clicks on the same photo: its handle instead of the file, the RLE without a PNG
    again = client.predict(sam["photo"], "[[240, 180]]", "[1]", "", api_name="/sam_click")
    assert again == sam and set(again) == {"score", "scores", "rle", "photo"}
    other = client.predict(sam["photo"], "[[100, 50]]", "[1]", "[50, 20, 200, 120]", api_name="/sam_click")
    assert other["rle"]["size"] == [360, 480] and other["rle"] != sam["rle"]
    for handle in ("0" * 32, "/etc/passwd", ""):
        with pytest.raises(AppError, match="no photo is held under this handle: send the photo with /sam_prompt"):
            client.predict(handle, "[[240, 180]]", "[1]", "", api_name="/sam_click")
    metrics = client.predict(handle_file(labels_png), handle_file(str(sample[1])), api_name="/score")
    assert set(metrics) >= {"miou", "mean_dice", "pixel_accuracy", "boundary_f", "per_class"}
    with pytest.raises(AppError, match="unknown or unavailable model"):
        client.predict(handle_file(str(sample[0])), "nope", api_name="/segment")
    objects = json.dumps([{"name": "road", "points": [[240, 300]], "labels": [1]},
                          {"name": "sky", "points": [[100, 20], [300, 20]], "labels": [1, 1]},
                          {"box": [10, 10, 200, 150]}])
    instances_png, coco = client.predict(handle_file(str(sample[0])), objects, api_name="/sam_objects")
    instances = np.array(Image.open(instances_png))
    assert instances.shape == (360, 480) and set(np.unique(instances)) <= {0, 1, 2, 3}
    assert [a["name"] for a in coco["annotations"]] == ["road", "sky", "object 3"]
    assert all(set(a) >= {"segmentation", "bbox", "area", "predicted_iou", "stability_score", "seg_prompts"}
               for a in coco["annotations"])
    assert coco["annotations"][2]["seg_prompts"] == [[10, 10, "box"], [200, 150, "box"]]
    # the last object lies on top in the instance map; each RLE is its object whole
    assert np.array_equal(instances == 3, rle_decode(coco["annotations"][2]["segmentation"]))
    assert (rle_decode(coco["annotations"][0]["segmentation"]) >= (instances == 1)).all()
    # SAM's automatic masks: on random weights none passes SAM's thresholds, so the answer is empty but whole
    instances_png, coco = client.predict(handle_file(str(sample[0])), 4, api_name="/sam_everything")
    assert np.array(Image.open(instances_png)).shape == (360, 480) and coco["annotations"] == []
    assert coco["images"][0]["file_name"] == sample[0].name
    for grid in (0, 17, 2.5):
        with pytest.raises(AppError, match="a whole number from 1 to 16"):
            client.predict(handle_file(str(sample[0])), grid, api_name="/sam_everything")


@pytest.mark.slow
def test_sam_everything_answers_objects_at_the_photos_own_size(app, tmp_path, monkeypatch):
    """The endpoint's export with masks found (a real run on random weights finds none): each mask an
    object with its click in the photo's own pixels, enlarged from the working size one at a time."""
    from seg.sam.everything import Everything

    big = np.random.default_rng(0).integers(0, 255, (1500, 2000, 3), dtype=np.uint8)  # shrunk to 768x1024
    Image.fromarray(big).save(tmp_path / "big.png")
    sam = app.ctx.zoo.sam()
    real = sam.everything
    low = Everything(points_per_side=2, pred_iou_thresh=0, stability_score_thresh=0, box_nms_thresh=1.0)
    asked = []
    monkeypatch.setattr(sam, "everything", lambda image, settings, digest=None: asked.append(settings) or
                        real(image, replace(low, max_masks=settings.max_masks)))
    png, coco = app.api.sam_everything(upload(str(tmp_path / "big.png")), 2)
    assert asked[0].points_per_side == 2 and asked[0].max_masks == app.ctx.limits.objects_per_request
    instances = np.array(Image.open(png.path))
    assert instances.shape == (1500, 2000) and len(coco["annotations"]) == 12  # 4 points x 3 masks
    clicks = [a["seg_prompts"][0] for a in coco["annotations"]]
    assert {(x, y) for x, y, _ in clicks} == {(500.0, 375.0), (1500.0, 375.0), (500.0, 1125.0), (1500.0, 1125.0)}
    assert np.array_equal(instances == 12, rle_decode(coco["annotations"][11]["segmentation"]))


@pytest.mark.slow
def test_concurrent_clients_with_mixed_requests(server, tmp_path):
    """The load test's harness (benchmarks/load_test.py), small: every request must succeed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from load_test import run_load

    latencies, failures = run_load(server, tmp_path, clients=3, requests=4, images=4, models=["fcn8s", "unet"])
    assert failures == [] and sum(len(v) for v in latencies.values()) == 12
