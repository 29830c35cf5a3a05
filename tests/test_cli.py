"""The command lines end to end on tiny budgets, as a user runs them."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT, TINY_TRAIN, run_module
from seg.data.io import read_labels

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)


@pytest.mark.parametrize("module", ["seg.cli.train", "seg.cli.evaluate", "seg.cli.predict", "seg.cli.download"])
def test_help(module):
    result = run_module(module, "--help")
    assert "usage: python -m " + module in result.stdout


@pytest.mark.parametrize("args,message", [
    (["seg.cli.train", "--model", "segnet"], "invalid choice: 'segnet'"),
    (["seg.cli.train", "--epochs", "0"], "--epochs must be at least 1"),
    (["seg.cli.train", "--loss", "dice", "--class-weights", "median"], "--class-weights applies to cross-entropy"),
    (["seg.cli.train", "--data", "camvid", "--data-dir", "/nonexistent"], "fetch it with `python -m seg.cli.download"),
    (["seg.cli.train", "--model-args", "{bad json"], "invalid loads value"),
    (["seg.cli.train", "--model-args", "[8]"], "--model-args must be a JSON object"),
    (["seg.cli.train", "--model", "unet", "--model-args", '{"output_stride": 8}', "--epochs", "1"], "does not accept"),
    (["seg.cli.train", "--holdout-sequence", "0006R0"], "--holdout-sequence applies to --data camvid"),
    (["seg.cli.train", "--focus-classes", "Pole", "--focus-share", "2"], "--focus-share is a share of the crops"),
    (["seg.cli.train", "--focus-classes", "Lamppost", "--synthetic-images", "4", "--epochs", "1"],
     "Lamppost not among synthetic's classes (background"),
    (["seg.cli.evaluate"], "give either --checkpoint"),
    (["seg.cli.evaluate", "--checkpoint", "/nonexistent.safetensors"], "no weights at"),
    (["seg.cli.predict", "x.png", "--checkpoint", "m.safetensors", "--out", "o", "--alpha", "2"], "--alpha must be in"),
])
def test_bad_arguments_give_a_message_not_a_traceback(args, message, tmp_path):
    result = run_module(*args, check=False, cwd=tmp_path)  # anything written lands in tmp_path
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_train_writes_weights_card_and_resumes(trained_checkpoint):
    out = trained_checkpoint.parent
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"] == {"name": "unet", "arguments": {"width_mult": 0.25}}
    assert card["classes"] == ["background", "disc", "square", "triangle"] and len(card["palette"]) == 4
    assert card["training"]["command"].startswith("python -m seg.cli.train --model unet")
    assert card["data"] == {"dataset": "synthetic", "train_split": "train", "holdout_sequence": None,
                            "train_images": 192, "val_images": 48, "synthetic_images": 192,
                            "image_size": [64, 64], "object_size": 0.2, "validation": "the val split"}
    assert card["training"]["loss"] == "ce" and card["training"]["epoch"] == 2
    assert card["input_size"] == [64, 64]  # no --resize: the size it trained at, which the app runs it at
    assert 0 < card["val_metrics"]["miou"] <= 1 and "square" in card["val_metrics"]["per_class"]
    # resume from last.pt: two more epochs continue the step count and the history
    copy = out.parent / "resumed"
    shutil.copytree(out, copy)
    result = run_module("seg.cli.train", *TINY_TRAIN, "--epochs", "4", "--out", str(copy), "--resume")
    assert "resumed from" in result.stdout and "epoch 3:" in result.stdout and "epoch 1:" not in result.stdout
    state = torch.load(copy / "last.pt", weights_only=True)
    assert state["epoch"] == 4 and state["step"] == 4 * 12 and len(state["history"]) == 4
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3, 4]


def test_evaluate_checkpoint_and_json(trained_checkpoint, tmp_path):
    result = run_module("seg.cli.evaluate", "--checkpoint", str(trained_checkpoint), "--json", str(tmp_path / "s.json"))
    assert "synthetic val: 48 images" in result.stdout and "triangle" in result.stdout
    scores = json.loads((tmp_path / "s.json").read_text())
    card = json.loads(trained_checkpoint.with_suffix(".json").read_text())
    # the same data, model and metric code as training's last best epoch: the same mIoU
    assert scores["miou"] == pytest.approx(card["val_metrics"]["miou"], abs=1e-6)


def test_evaluate_on_camvid_and_predict_then_score_the_folder(trained_checkpoint, camvid_dir, tmp_path):
    # a synthetic-trained model has 4 classes, so CamVid scoring goes through the folder mode:
    # predict CamVid images, then score folders of label PNGs with CamVid's raw void label 11
    images = sorted((camvid_dir / "val").glob("*.png"))[:3]
    run_module("seg.cli.predict", *map(str, images), "--checkpoint", str(trained_checkpoint), "--out",
               str(tmp_path / "p"))
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir(), gt_dir.mkdir()
    for image in images:
        labels = read_labels(tmp_path / "p" / f"{image.stem}_labels.png")
        assert labels.shape == (360, 480) and labels.max() < 4
        Image.fromarray(labels).save(pred_dir / image.name)  # another tool's predictions: the ground truth's names
        shutil.copy(camvid_dir / "valannot" / image.name, gt_dir / image.name)
        assert Image.open(tmp_path / "p" / f"{image.stem}_overlay.png").size == (480, 360)
    result = run_module("seg.cli.evaluate", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), "--num-classes", "11",
                        "--ignore-index", "11", "--json", str(tmp_path / "f.json"))
    assert "3 images" in result.stdout
    scores = json.loads((tmp_path / "f.json").read_text())
    assert 0 <= scores["miou"] < 0.5  # a model of shapes knows nothing of streets
    # a missing prediction is named
    (pred_dir / images[0].name).unlink()
    failed = run_module("seg.cli.evaluate", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), "--num-classes", "11",
                        check=False)
    assert failed.returncode != 0 and images[0].name in failed.stderr and "Traceback" not in failed.stderr
    nothing = run_module("seg.cli.evaluate", "--pred-dir", str(pred_dir), "--gt-dir", str(gt_dir), check=False)
    assert nothing.returncode == 2 and "--num-classes" in nothing.stderr  # no classes.json: it must be told


def test_predict_then_evaluate_chain_as_documented(camvid_dir, tmp_path):
    """The two documented commands, as they are: seg.cli.predict's folder scores against CamVid's ground truth
    with no renaming and no class count, and the table names CamVid's classes."""
    images = sorted((camvid_dir / "val").glob("*.png"))[:2]
    pred = tmp_path / "pred"
    run_module("seg.cli.predict", *map(str, images), "--checkpoint",
               str(ROOT / "weights" / "camvid" / "fcn8s.safetensors"),
               "--out", str(pred))
    gt = tmp_path / "gt"
    gt.mkdir()
    for image in images:
        shutil.copy(camvid_dir / "valannot" / image.name, gt / image.name)
    result = run_module("seg.cli.evaluate", "--pred-dir", str(pred), "--gt-dir", str(gt), "--json",
                        str(tmp_path / "s.json"))
    assert "2 images" in result.stdout and "Bicyclist" in result.stdout and "SignSymbol" in result.stdout
    scores = json.loads((tmp_path / "s.json").read_text())
    assert list(scores["per_class"])[0] == "Sky" and scores["miou"] > 0.4  # a CamVid model on CamVid frames
    void = read_labels(gt / images[0].name) == 11
    assert void.any()  # CamVid's void, ignored as the card says, not scored as a twelfth class


def test_train_and_evaluate_on_camvid_tiny(camvid_dir, tmp_path):
    out = tmp_path / "camvid"
    run_module("seg.cli.train", "--model", "fcn8s", "--width-mult", "0.25", "--data", "camvid", "--data-dir",
               str(camvid_dir), "--resize", "90", "120", "--limit-train", "8", "--limit-val", "4", "--epochs", "1",
               "--batch-size", "4", "--class-weights", "median", "--loss", "ce+dice", "--workers", "0",
               "--no-progress", "--out", str(out), "--focus-classes", "Pole", "Pedestrian", "--focus-share", "0.5")
    card = json.loads((out / "model.json").read_text())
    assert card["classes"][0] == "Sky" and card["input_size"] == [90, 120]
    assert card["training"]["focus_crops"] == {"classes": ["Pole", "Pedestrian"], "share": 0.5}
    result = run_module("seg.cli.evaluate", "--checkpoint", str(out / "model.safetensors"), "--data-dir",
                        str(camvid_dir),
                        "--limit", "4")
    assert "on camvid val: 4 images" in result.stdout and "Bicyclist" in result.stdout


def test_predict_skips_unreadable_inputs(trained_checkpoint, tmp_path):
    (tmp_path / "fake.png").write_text("not an image")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "ok.jpg")
    result = run_module("seg.cli.predict", str(tmp_path / "fake.png"), str(tmp_path / "ok.jpg"), "--checkpoint",
                        str(trained_checkpoint), "--out", str(tmp_path / "o"), check=False)
    assert result.returncode == 1 and "skipped" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "o" / "ok_labels.png").is_file()


def test_distributed_training_under_torchrun(tmp_path):
    """Two CPU processes (gloo): DistributedDataParallel, a sharded sampler, one writer."""
    out = tmp_path / "ddp"
    result = run_module("torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "seg.cli.train",
                        *TINY_TRAIN, "--epochs", "1", "--device", "cpu", "--out", str(out), cwd=tmp_path)
    card = json.loads((out / "model.json").read_text())
    assert card["training"]["processes"] == 2
    assert card["training"]["command"].startswith("torchrun --nproc_per_node 2 -m seg.cli.train")
    assert "x 2 processes" in result.stdout and "6 steps per epoch" in result.stdout  # 192 / (16 x 2)


def test_a_sequence_held_out_of_train_is_the_validation(camvid_dir, tmp_path):
    """--holdout-sequence: train on the other sequences, validate on that one; the card says so, and
    seg.cli.evaluate scores the same frames with --split train --sequence."""
    out = tmp_path / "holdout"
    run_module("seg.cli.train", "--model", "fcn8s", "--width-mult", "0.25", "--data", "camvid", "--data-dir",
               str(camvid_dir), "--resize", "90", "120", "--holdout-sequence", "0006R0", "--limit-train", "8",
               "--epochs", "1", "--batch-size", "4", "--workers", "0", "--no-progress", "--out", str(out))
    card = json.loads((out / "model.json").read_text())
    assert card["data"]["validation"] == "sequence 0006R0, held out of the train split"
    assert card["data"]["val_images"] == 101  # every 0006R0 frame; none of them trained on
    result = run_module("seg.cli.evaluate", "--checkpoint", str(out / "model.safetensors"), "--data-dir",
                        str(camvid_dir),
                        "--split", "train", "--sequence", "0006R0", "--json", str(tmp_path / "scores.json"))
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert "101 images" in result.stdout
    assert scores["miou"] == pytest.approx(card["val_metrics"]["miou"], abs=1e-4)  # the same frames, the same score
