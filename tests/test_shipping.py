"""Shipping a fine-tuned model over the one it started from, and the leaderboard that keeps both: a
model trained on val gets no val score, a replaced model keeps its figures and its test figure."""

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, run_module
from seg.checkpoint import save_model, saw_frames
from seg.explorer.zoo import ENSEMBLES
from seg.models import build_model
from ui.tabs.leaderboard import leaderboard

spec = importlib.util.spec_from_file_location("leaderboard_build", ROOT / "leaderboard" / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)

CLASSES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
           "Bicyclist"]


def tiny_card(**data) -> dict:
    return {"architecture": {"name": "fcn8s", "arguments": {"width_mult": 0.25}}, "classes": CLASSES,
            "input_size": [90, 120], "parameters": 1, "data": {"dataset": "camvid", **data},
            "training": {"command": "python -m seg.cli.train --base", "epoch": 5, "epochs": 5, "time_s": 60.0,
                         "hardware": "a GPU", "loss": "ce", "class_weights": "median"},
            "val_metrics": {"miou": 0.6}}


def test_which_frames_a_model_saw():
    assert not saw_frames({"data": {}}, "val", None)  # an old card: trained on train
    assert saw_frames({"data": {"train_split": "train+val"}}, "val", None)
    assert saw_frames({"data": {"train_split": "train"}}, "train", None)
    assert not saw_frames({"data": {"train_split": "train", "holdout_sequence": "0006R0"}}, "train", "0006R0")
    assert saw_frames({"data": {"train_split": "train", "holdout_sequence": "0006R0"}}, "train", "0001TP")


@pytest.mark.slow
def test_evaluate_says_when_the_model_trained_on_the_frames_it_scores(camvid_dir, tmp_path):
    torch.manual_seed(0)
    path = save_model(build_model("fcn8s", num_classes=11, width_mult=0.25), tmp_path / "m.safetensors",
                      card=tiny_card(train_split="train+val"))
    result = run_module("seg.cli.evaluate", "--checkpoint", str(path), "--data-dir", str(camvid_dir), "--split", "val",
                        "--limit", "2", "--device", "cpu", "--json", str(tmp_path / "s.json"))
    assert "not a held-out one" in result.stdout
    assert json.loads((tmp_path / "s.json").read_text())["trained_on_these_frames"] is True
    path = save_model(build_model("fcn8s", num_classes=11, width_mult=0.25), tmp_path / "held.safetensors",
                      card=tiny_card(train_split="train"))
    result = run_module("seg.cli.evaluate", "--checkpoint", str(path), "--data-dir", str(camvid_dir), "--split", "val",
                        "--limit", "2", "--device", "cpu", "--json", str(tmp_path / "t.json"))
    assert "held-out" not in result.stdout
    assert json.loads((tmp_path / "t.json").read_text())["trained_on_these_frames"] is False


def ship(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "recipes" / "ship.py"), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_fine_tuned_run_replaces_its_start_and_keeps_its_record(tmp_path):
    model = build_model("fcn8s", num_classes=11, width_mult=0.25)
    target = save_model(model, tmp_path / "weights" / "camvid" / "fcn8s.safetensors", card=tiny_card())
    tuned = tiny_card(train_split="train+val")
    tuned["training"].update(command="python -m seg.cli.train --fine-tune",
                             init_from="weights/camvid/fcn8s.safetensors",
                             averaged_epochs=4, epochs=8, epoch=8, hardware="2 cores")
    save_model(model, tmp_path / "runs" / "ft-fcn8s" / "model.safetensors", card=tuned)
    (tmp_path / "runs" / "ft-fcn8s" / "history.json").write_text(json.dumps([{"epoch": 8}]))

    result = ship("--fine-tuned", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    card = json.loads(target.with_suffix(".json").read_text())
    assert card["training"]["command"] == "python -m seg.cli.train --fine-tune"
    assert card["fine_tuned_from"]["training"]["command"] == "python -m seg.cli.train --base"
    assert card["fine_tuned_from"]["val_metrics"] == {"miou": 0.6}  # measured before it saw val
    again = ship("--fine-tuned", cwd=tmp_path)  # shipping twice must not nest the record in itself
    assert "already" in again.stdout and json.loads(target.with_suffix(".json").read_text()) == card

    summary = build.training_summary(card["training"], card["fine_tuned_from"])
    assert summary.startswith("average of the last 4 of 8 epochs, 1 min on 2 cores; fine-tuned from: best at epoch 5")

    shutil.copyfile(target, tmp_path / "other.safetensors")  # a run fine-tuned from elsewhere is refused
    tuned["training"].update(init_from="other.safetensors", command="python -m seg.cli.train --elsewhere")
    save_model(model, tmp_path / "runs" / "ft-fcn8s" / "model.safetensors", card=tuned)
    refused = ship("--fine-tuned", cwd=tmp_path)
    assert refused.returncode != 0 and "not weights/camvid/fcn8s.safetensors" in refused.stderr


@pytest.mark.slow
def test_a_student_ships_over_the_model_it_started_from_and_names_its_teacher(tmp_path):
    """recipes/camvid_distill.sh ship writes runs/d-<model>; `ship.py --fine-tuned d` puts it in place of the
    weights it started from, and the leaderboard's training column names its teacher."""
    model = build_model("fcn8s", num_classes=11, width_mult=0.25)
    target = save_model(model, tmp_path / "weights" / "camvid" / "fcn8s.safetensors", card=tiny_card())
    student = tiny_card(train_split="train+val")
    student["training"].update(command="python -m seg.cli.train --teacher weights/camvid/ensemble.json",
                               init_from="weights/camvid/fcn8s.safetensors", averaged_epochs=4, epochs=8, epoch=8,
                               distillation={"teacher": "weights/camvid/ensemble.json", "weight": 0.5,
                                             "temperature": 1.0})
    save_model(model, tmp_path / "runs" / "d-fcn8s" / "model.safetensors", card=student)
    assert ship("--fine-tuned", cwd=tmp_path).returncode == 0  # no ft- run: nothing changes
    base = json.loads(target.with_suffix(".json").read_text())
    assert base["training"]["command"] == "python -m seg.cli.train --base"
    result = ship("--fine-tuned", "d", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    card = json.loads(target.with_suffix(".json").read_text())
    assert card["training"]["distillation"]["teacher"] == "weights/camvid/ensemble.json"
    assert card["fine_tuned_from"]["training"]["command"] == "python -m seg.cli.train --base"
    summary = build.training_summary(card["training"], card["fine_tuned_from"])
    assert summary.startswith("average of the last 4 of 8 epochs, 1 min on a GPU, taught by ensemble.json (share 0.5)")


@pytest.mark.slow
def test_a_run_ships_as_a_model_of_its_own_with_the_record_of_the_run_it_was_tuned_from(tmp_path):
    """`ship.py --run q-unet --as unet_quarter`: the tuned run becomes weights/camvid/unet_quarter.safetensors,
    its card keeping its base run's record; the app offers it under its own title, beside the U-Net."""
    from seg.explorer.zoo import Zoo

    model = build_model("unet", num_classes=11, width_mult=0.25)
    quarter = {"architecture": {"name": "unet", "arguments": {"width_mult": 0.25}}}
    base = {**tiny_card(train_split="train+val"), **quarter}
    base["training"]["averaged_epochs"] = 1  # its last epoch kept: val is in its data
    save_model(model, tmp_path / "runs" / "q-unet-base" / "model.safetensors", card=base)
    (tmp_path / "runs" / "q-unet-base" / "history.json").write_text(json.dumps([{"epoch": 5}]))
    tuned = {**tiny_card(train_split="train+val"), **quarter}
    tuned["training"].update(command="python -m seg.cli.train --tune", averaged_epochs=4, epochs=8, epoch=8,
                             init_from="runs/q-unet-base/model.safetensors")
    save_model(model, tmp_path / "runs" / "q-unet" / "model.safetensors", card=tuned)
    assert "--run and --as go together" in ship("--run", "q-unet", cwd=tmp_path).stderr
    assert "the app offers fcn32s" in ship("--run", "q-unet", "--as", "quarter", cwd=tmp_path).stderr
    zoo = Zoo(tmp_path / "weights", pretrained=())
    assert "recipes/camvid_quarter.sh ship" in dict(zoo.missing())["U-Net, quarter width (from scratch)"]

    result = ship("--run", "q-unet", "--as", "unet_quarter", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    card = json.loads((tmp_path / "weights" / "camvid" / "unet_quarter.json").read_text())
    assert card["training"]["command"] == "python -m seg.cli.train --tune"
    assert card["fine_tuned_from"]["training"]["command"] == "python -m seg.cli.train --base"
    assert card["fine_tuned_from"]["training"]["epochs_completed"] == 5  # the base run's history, read
    summary = build.training_summary(card["training"], card["fine_tuned_from"])
    assert summary.endswith("fine-tuned from: the last of 5 epochs, 1 min on a GPU")
    save_model(model, tmp_path / "weights" / "camvid" / "unet.safetensors", card={**tiny_card(), **quarter})
    names = Zoo(tmp_path / "weights", pretrained=()).semantic_names()
    assert names["unet_quarter"] == "U-Net, quarter width (from scratch)" and names["unet"] == "U-Net (from scratch)"

    shutil.rmtree(tmp_path / "runs" / "q-unet-base")  # a base whose card is gone: its record would be lost
    refused = ship("--run", "q-unet", "--as", "unet_quarter", cwd=tmp_path)
    assert refused.returncode != 0 and "whose card is not there" in refused.stderr


@pytest.mark.slow
def test_a_segformer_tuned_from_the_shipped_folder_replaces_it_and_keeps_its_record(weights_dir, tmp_path):
    """`ship.py --run l-segformer_b0 --as segformer_b0`: the run, tuned from the shipped folder itself, is
    written over it as a float32 transformers folder whose card keeps the replaced model's record; shipping
    it again leaves the folder as it is, with no record of itself."""
    from seg.checkpoint import load_model

    folder = tmp_path / "weights" / "camvid" / "segformer_b0"
    shutil.copytree(weights_dir / "camvid" / "segformer_b0", folder)
    shipped = {**tiny_card(), "architecture": {"name": "segformer_b0", "arguments": {}}}  # as ship.py writes it
    (folder / "model.json").write_text(json.dumps(shipped))
    start, _ = load_model(folder)
    with torch.no_grad():  # the tune's weights: the start's, moved
        for parameter in start.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    tuned = {**shipped, "data": {"dataset": "camvid", "train_split": "train+val"}}
    tuned["training"] = {**tiny_card()["training"], "command": "python -m seg.cli.train --tune",
                         "init_from": "weights/camvid/segformer_b0"}
    save_model(start, tmp_path / "runs" / "l-segformer_b0" / "model.safetensors", card=tuned)

    result = ship("--run", "l-segformer_b0", "--as", "segformer_b0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    loaded, card = load_model(folder)
    assert not loaded.training and card["weights_dtype"] == "float32"
    assert card["training"]["command"] == "python -m seg.cli.train --tune"
    assert card["fine_tuned_from"]["training"]["command"] == shipped["training"]["command"]
    x = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), start.eval()(x))
    again = ship("--run", "l-segformer_b0", "--as", "segformer_b0", cwd=tmp_path)
    assert "already" in again.stdout and json.loads((folder / "model.json").read_text()) == card


def board_row(key: str, command: str, sha: str, **figures) -> dict:
    row = {"key": key, "title": key.upper(), "sha256": sha, "command": command, "trained_on_val": False,
           "miou": 0.62, "miou_no_prior": None, "prior_tau": None, "mean_dice": 0.7, "pixel_accuracy": 0.9,
           "boundary_f": 0.3, "per_class_iou": {c: 0.5 for c in CLASSES}, "parameters": 850_000,
           "weights_mb": 1.7, "input_size": [360, 480], "cpu_ms": 50.0, "training": "best at epoch 81 of 100"}
    return {**row, **figures}


def test_the_leaderboard_keeps_what_it_replaced_and_scores_no_model_on_frames_it_saw(tmp_path):
    tests = {"old-digest": {"miou": 0.499}}
    previous = {"models": [board_row("fcn8s", "train fcn8s", "old-digest"), board_row("unet", "train unet", "u")]}
    tuned = board_row("fcn8s", "fine-tune fcn8s", "new-digest", trained_on_val=True, miou=None, mean_dice=None,
                      pixel_accuracy=None, boundary_f=None, per_class_iou=None, test=None)
    unet = board_row("unet", "train unet", "u", miou=0.66, miou_no_prior=0.62, prior_tau=0.5, test=None)
    previous.update(date="2026-11-24", machine="another machine")
    gone = build.replaced(previous, [tuned, unet], "2026-12-02", tests)
    assert [(r["key"], r["replaced_on"], r["test"]) for r in gone] == [("fcn8s", "2026-12-02", {"miou": 0.499})]
    later = build.replaced({"models": [tuned, unet], "replaced": gone}, [tuned, unet], "2026-12-09", tests)
    assert later == gone  # kept once, with the date it left

    board = {"split": "CamVid val", "machine": "2 cores", "date": "2026-12-02", "test_source": "the maintainers",
             "reference": build.REFERENCE, "models": [tuned, unet], "replaced": gone}
    (tmp_path / "leaderboard.json").write_text(json.dumps(board))
    build.write_markdown(board, tmp_path / "README.md")
    markdown = (tmp_path / "README.md").read_text()
    # model | test mIoU | test, flip | test, no prior | val mIoU | val, no prior
    assert "| FCN8S | - | - | (no prior) | trained on val | (no prior) |" in markdown
    assert "| UNET | - | - | - | 66.0 | 62.0 |" in markdown
    assert "| FCN8S (replaced 2026-12-02) | 49.9 | - | (no prior) | 62.0 | (no prior) |" in markdown
    assert "| ESPNet (published; test split) | 57.2 |" in markdown
    caption, table = leaderboard(tmp_path)
    assert list(table["model"]) == ["FCN8S", "UNET", build.REFERENCE["title"], "FCN8S (replaced 2026-12-02)"]
    assert "last measurement (2026-11-24 on another machine)" in caption
    assert "last measured (2026-11-24 on another machine)" in markdown
    assert list(table["val mIoU"]) == ["fine-tuned on val", "66.0", "-", "62.0"]
    assert list(table["no prior"]) == ["-", "-", "-", "-"] and list(table["test mIoU"]) == ["-", "-", "57.2", "49.9"]
    assert "fine-tuned on val frames has none" in caption


def test_the_leaderboard_takes_the_test_splits_figures_for_the_weights_shipped(tmp_path, monkeypatch):
    """`build.py --tests-only` attaches test_split.json's figures by weights digest, measuring nothing:
    a row whose weights were not scored keeps none."""
    split = {"source": "the maintainers", "models": {"d1": {"miou": 0.584, "miou_flip": 0.594,
                                                            "reported": "2026-12-06"},
                                                     "d2": {"miou": 0.526, "miou_no_prior": 0.49,
                                                            "reported": "2026-12-06"}}}
    (tmp_path / "test_split.json").write_text(json.dumps(split))
    monkeypatch.setattr(build, "TEST_SPLIT", tmp_path / "test_split.json")
    board = {"split": "CamVid val", "machine": "2 cores", "date": "2026-12-02", "test_source": None,
             "reference": build.REFERENCE, "replaced": [],
             "models": [board_row("unet", "u", "d1", trained_on_val=True, test=None),
                        board_row("deeplabv3", "d", "d2", prior_tau=0.5, miou_no_prior=0.6, test=None),
                        board_row("fcn32s", "f", "d3", test=None)]}
    (tmp_path / "leaderboard.json").write_text(json.dumps(board))
    assert build.attach_tests(tmp_path) == 0
    caption, table = leaderboard(tmp_path)
    assert list(table["test mIoU"]) == ["58.4", "52.6", "-", "57.2"]
    assert list(table["flip"]) == ["59.4", "-", "-", "-"] and list(table["no prior"]) == ["-", "49.0", "-", "-"]
    assert "reported 2026-12-06" in caption
    assert "| DEEPLABV3 | 52.6 | - | 49.0 | 62.0 | 60.0 |" in (tmp_path / "README.md").read_text()


@pytest.mark.slow
def test_a_segformer_folder_takes_a_tau_like_a_file(weights_dir, tmp_path):
    from seg.checkpoint import load_model
    from seg.explorer.semantic import ScratchModel

    folder = tmp_path / "segformer_b0"
    shutil.copytree(weights_dir / "camvid" / "segformer_b0", folder)
    card = {"architecture": {"name": "segformer_b0", "arguments": {}}, "classes": CLASSES, "input_size": [90, 120],
            "training": {"class_weights": "median", "class_weight_values": [1.0] * 10 + [4.0]}}  # as ship.py writes
    (folder / "model.json").write_text(json.dumps(card))
    run_module("seg.cli.tau", "set", "--checkpoint", str(folder), "--tau", "0.5", "--chosen-on", "a test")
    model = ScratchModel(*load_model(folder))
    expected = torch.zeros(11)
    expected[-1] = 0.5 * math.log(4.0)
    torch.testing.assert_close(model.logit_offsets, expected)  # the app applies the folder's tau


def test_the_shipped_cards_say_what_they_are_and_the_leaderboard_measured_these_files():
    """Every shipped CamVid model: one trained on val keeps the record of the model it replaced; one
    trained with median weights undoes their prior; and the leaderboard's rows are these very files."""
    board = json.loads((ROOT / "leaderboard" / "leaderboard.json").read_text())
    rows = {r["key"]: r for r in board["models"]}
    folder = ROOT / "weights" / "camvid"
    shipped = sorted(p.stem for p in folder.glob("*.safetensors")) + ["segformer_b0"]
    ensembles = [key for key in ENSEMBLES if (folder / f"{key}.json").is_file()]
    assert sorted(rows) == sorted(shipped + ensembles)
    for key in ensembles:  # members are shipped files, chosen on a sequence none of the protocol models saw
        card = json.loads((folder / f"{key}.json").read_text())
        assert {Path(m["weights"]).name.removesuffix(".safetensors") for m in card["members"]} <= set(shipped)
        assert card["chosen_on"]["sequence"] == "0006R0"
        assert rows[key]["sha256"] == build.digest(folder / f"{key}.json"), f"{key}: rebuild the leaderboard"
    fast = json.loads((folder / "fast.json").read_text())["chosen_on"]["budget"]
    assert fast["measured"] <= fast["times_lr_aspp"] == 1.5  # the budget, measured when chosen
    for key in shipped:
        source = folder / key if key == "segformer_b0" else folder / f"{key}.safetensors"
        card = json.loads((source / "model.json" if source.is_dir() else source.with_suffix(".json")).read_text())
        assert rows[key]["sha256"] == build.digest(source), f"{key}: rebuild the leaderboard after shipping"
        if saw_frames(card, "val", None):
            assert rows[key]["trained_on_val"] and rows[key]["miou"] is None
            start = card["fine_tuned_from"]  # the record of the model it replaced, or of the run it was tuned from
            if not saw_frames(start, "val", None):
                assert start["val_metrics"]["miou"] > 0.5  # the replaced model's, measured before it saw val
        if card["training"]["class_weights"] == "median":
            prior = card["logit_adjustment"]
            assert prior["tau"] == 0.5 and len(prior["class_weights"]) == len(card["classes"]) == 11


def test_the_app_says_which_models_trained_on_the_val_frames_it_offers(weights_dir, tmp_path):
    from seg.explorer.zoo import Zoo

    assert Zoo(weights_dir, pretrained=()).trained_on("val") == []  # cards without a train split: train only
    shutil.copytree(weights_dir, tmp_path / "weights")
    card_file = tmp_path / "weights" / "camvid" / "unet.json"
    card = json.loads(card_file.read_text())
    card_file.write_text(json.dumps({**card, "data": {"train_split": "train+val"}}))
    assert Zoo(tmp_path / "weights", pretrained=()).trained_on("val") == ["U-Net"]


def test_the_leaderboard_build_without_camvid_says_what_it_needs(tmp_path):
    """leaderboard/build.py with no CamVid folder, or one that is not CamVid: an error that says where the
    folder comes from (seg.cli.common.run, as every command line), not a traceback, and nothing written."""
    env = {k: v for k, v in os.environ.items() if k != "SEG_CAMVID_DIR"}
    for extra in ([], ["--data-dir", str(tmp_path / "nowhere")]):
        result = subprocess.run([sys.executable, str(ROOT / "leaderboard" / "build.py"), "--out", str(tmp_path / "b"),
                                 *extra], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert "seg.cli.download" in result.stderr and not (tmp_path / "b").exists()
