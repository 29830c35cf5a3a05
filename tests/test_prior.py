"""Logit adjustment (seg.prior, seg.cli.tau), flip test-time augmentation, and fine-tuning options of
seg.cli.train: --init-from, --train-split train+val, --average-last, square-root class weights."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import run_module
from seg.checkpoint import load_model, save_model
from seg.data import build_dataset
from seg.engine import evaluate, tau_sweep
from seg.explorer.semantic import ScratchModel
from seg.inference import segment
from seg.losses import ClassPixelStats, class_weights
from seg.prior import CARD_KEY, adjust, card_offsets, prior_offsets


class FixedLogits(nn.Module):
    """Returns the same per-class logits at every pixel: a model whose prior is all there is."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits, dtype=torch.float32))

    def forward(self, x):
        b, _, h, w = x.shape
        return self.logits.view(1, -1, 1, 1).expand(b, -1, h, w)


def test_offsets_are_tau_times_log_weights_and_zero_for_unlearnt_classes():
    offsets = prior_offsets([1.0, math.e, 4.0, 0.0], 0.5)
    np.testing.assert_allclose(offsets, [0.0, 0.5, 0.5 * math.log(4.0), 0.0], rtol=1e-6)
    logits = torch.zeros(2, 4, 3, 5)
    assert adjust(logits, None) is logits
    adjusted = adjust(logits, offsets)
    assert adjusted.shape == logits.shape and torch.equal(adjusted[1, :, 2, 4], -offsets)


def test_adjustment_moves_pixels_from_an_upweighted_class_back():
    """Class 1 trained at weight 8 wins by log 8 - 1 = 1.08 nats; tau = 1 hands the pixel back to class 0."""
    model = FixedLogits([1.0, 1.0 + math.log(8.0) - 1.0])
    image = np.zeros((6, 8, 3), np.uint8)
    assert (segment(model, image) == 1).all()
    assert (segment(model, image, logit_offsets=prior_offsets([1.0, 8.0], 1.0)) == 0).all()
    assert (segment(model, image, logit_offsets=prior_offsets([1.0, 8.0], 0.4)) == 1).all()  # 0.4 log 8 = 0.83 < 1.08


def test_the_card_carries_tau_and_the_app_applies_it(tmp_path):
    model = FixedLogits([1.0, 2.0])
    card = {"architecture": {"name": "x", "arguments": {}}, "classes": ["a", "b"], "input_size": None}
    assert card_offsets(card) is None
    card[CARD_KEY] = {"tau": 1.0, "class_weights": [1.0, 8.0], "chosen_on": "test"}
    np.testing.assert_allclose(card_offsets(card), [0.0, math.log(8.0)], rtol=1e-6)
    image = np.zeros((4, 4, 3), np.uint8)
    assert (ScratchModel(model, card).probabilities(image).argmax(0) == 0).all()  # 2 - 2.08 < 1
    assert (ScratchModel(model, {**card, CARD_KEY: None}).probabilities(image).argmax(0) == 1).all()
    with pytest.raises(ValueError, match="3 class weights for 2 classes"):
        card_offsets({**card, CARD_KEY: {"tau": 1.0, "class_weights": [1, 2, 3]}})


def loader_of(images, masks):
    return DataLoader(TensorDataset(images, masks), batch_size=2)


def test_evaluate_applies_offsets_and_the_sweep_agrees():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 3, 3, padding=1).eval()
    images, masks = torch.randn(4, 3, 8, 10), torch.randint(0, 3, (4, 8, 10))
    weights = [0.5, 1.0, 6.0]
    loader = loader_of(images, masks)
    by_tau = tau_sweep(model, loader, weights=weights, taus=(0.0, 0.7, 1.5), num_classes=3, progress=False)
    for tau, miou in by_tau.items():
        scores = evaluate(model, loader, num_classes=3, boundary_tolerance=None, progress=False,
                          logit_offsets=prior_offsets(weights, tau))
        assert scores.miou == pytest.approx(miou)
    assert len(set(by_tau.values())) > 1  # the offsets changed some pixels


def test_flip_averages_the_mirror_images_logits():
    """An asymmetric kernel sees a mirrored image differently; flip TTA is the mean of both views."""
    torch.manual_seed(1)
    model = nn.Conv2d(3, 4, (1, 5), padding=(0, 2)).eval()
    images, masks = torch.randn(2, 3, 6, 9), torch.randint(0, 4, (2, 6, 9))
    with torch.no_grad():
        mean = (model(images) + model(images.flip(-1)).flip(-1)) / 2
    expected = evaluate(FixedOutput(mean), loader_of(images, masks), num_classes=4, progress=False)
    flipped = evaluate(model, loader_of(images, masks), num_classes=4, progress=False, flip=True)
    plain = evaluate(model, loader_of(images, masks), num_classes=4, progress=False)
    assert flipped.miou == pytest.approx(expected.miou) and flipped.miou != pytest.approx(plain.miou)


class FixedOutput(nn.Module):
    """Answers a precomputed batch of logits, in loader order, two images at a time."""

    def __init__(self, logits):
        super().__init__()
        self.logits, self.at = logits, 0
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        out = self.logits[self.at:self.at + len(x)]
        self.at += len(x)
        return out


def test_square_root_weights_halve_the_log_spread():
    stats = ClassPixelStats(pixels=np.array([6, 1, 2, 0]), pixels_of_images_with=np.array([9, 4, 4, 0]))
    median, sqrt = class_weights(stats, "median"), class_weights(stats, "sqrt")
    np.testing.assert_allclose(sqrt.numpy(), np.sqrt(median.numpy()), rtol=1e-6)
    assert sqrt[3] == 0


def test_train_plus_val_holds_both_splits(camvid_dir):
    both = build_dataset("camvid", "train+val", root=camvid_dir)
    assert len(both) == 367 + 101
    assert len(build_dataset("camvid", "train+val", root=camvid_dir, exclude=("0006R0",))) == 367 + 101 - 101
    with pytest.raises(ValueError, match="or several joined by"):
        build_dataset("camvid", "train+train", root=camvid_dir)


@pytest.mark.slow
def test_fine_tuning_starts_from_the_weights_and_saves_their_average(trained_checkpoint, tmp_path):
    """--init-from continues from a checkpoint (epoch 1 already scores like it); --average-last saves the
    mean of the last epochs' weights, which equals neither epoch's."""
    out = tmp_path / "ft"
    card = json.loads(trained_checkpoint.with_suffix(".json").read_text())
    run_module("seg.cli.train", "--model", "unet", "--width-mult", "0.25", "--synthetic-images", "64", "--image-size",
               "64", "64", "--batch-size", "16", "--lr", "1e-4", "--warmup-steps", "0", "--workers", "0",
               "--no-progress", "--epochs", "2", "--average-last", "2", "--init-from", str(trained_checkpoint),
               "--out", str(out))
    tuned = json.loads((out / "model.json").read_text())
    assert tuned["training"]["averaged_epochs"] == 2 and tuned["training"]["init_from"] == str(trained_checkpoint)
    history = json.loads((out / "history.json").read_text())
    assert history[0]["val_miou"] > card["val_metrics"]["miou"] - 0.1  # not from scratch (that scores ~0.2)
    last = torch.load(out / "last.pt", weights_only=True)["model"]
    saved = load_file(out / "model.safetensors")
    name = next(k for k in saved if k.endswith("weight") and saved[k].ndim == 4)
    assert not torch.equal(saved[name], last[name])
    model, _ = load_model(out / "model.safetensors")
    assert not model.training


@pytest.mark.slow
def test_init_from_another_architecture_says_so(trained_checkpoint, tmp_path):
    result = run_module("seg.cli.train", "--model", "fcn8s", "--synthetic-images", "16", "--epochs", "1", "--workers",
                        "0",
                        "--no-progress", "--init-from", str(trained_checkpoint), "--out", str(tmp_path / "x"),
                        check=False)
    assert result.returncode != 0 and "holds unet" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_tau_sweep_and_set_on_a_holdout_model(camvid_dir, tmp_path):
    """The command lines end to end on real frames: a median-weighted model's tau table, then the card."""
    torch.manual_seed(0)
    from seg.models import build_model

    model = build_model("fcn8s", num_classes=11, width_mult=0.25)
    card = {"architecture": {"name": "fcn8s", "arguments": {"width_mult": 0.25}}, "classes": list(range(11)),
            "input_size": [90, 120], "data": {"holdout_sequence": "0006R0"},
            "training": {"class_weights": "median"}}
    card["classes"] = [str(c) for c in card["classes"]]
    path = save_model(model, tmp_path / "m.safetensors", card=card)
    result = run_module("seg.cli.tau", "sweep", "--checkpoint", str(path), "--data-dir", str(camvid_dir), "--split",
                        "val", "--taus", "0", "1", "--json", str(tmp_path / "tau.json"))
    table = json.loads((tmp_path / "tau.json").read_text())
    assert set(table["mean"]) == {"0.0", "1.0"} and "best tau" in result.stdout
    run_module("seg.cli.tau", "set", "--checkpoint", str(path), "--tau", "0.5", "--class-weights-from", str(camvid_dir),
               "--chosen-on", "a test")
    written = json.loads(path.with_suffix(".json").read_text())[CARD_KEY]
    assert written["tau"] == 0.5 and len(written["class_weights"]) == 11
    median = class_weights_of_train(camvid_dir)
    np.testing.assert_allclose(written["class_weights"], median, rtol=1e-5)
    evaluated = run_module("seg.cli.evaluate", "--checkpoint", str(path), "--data-dir", str(camvid_dir), "--limit", "2")
    assert "logit adjustment tau 0.5" in evaluated.stdout


def class_weights_of_train(camvid_dir):
    from seg.losses import class_pixel_stats

    masks = build_dataset("camvid", "train", root=camvid_dir).masks()
    return class_weights(class_pixel_stats(masks, 11), "median").tolist()
