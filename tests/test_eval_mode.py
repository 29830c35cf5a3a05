"""Every model the app can load ends its load in eval mode, and a first start gives what a later
start gives: SAM with its decoder exported now or found in the cache, our scratch models (the
tests' and the shipped ones), and the pretrained adapters as the tests build them.

A model left in training mode normalises each image with its own batch statistics and updates the
running ones, so its outputs depend on what ran before: the comparison across starts catches that
even where the mode flags were not checked."""

import numpy as np
import pytest
import torch

from conftest import ROOT, save_mask2former, save_segformer
from seg.explorer.zoo import Zoo
from seg.pretrained.label_mapping import CITYSCAPES_TO_CAMVID
from seg.sam.model import Sam

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)


def training_modules(model: torch.nn.Module) -> list[str]:
    return [name or "(the model)" for name, module in model.named_modules() if module.training]


def photo(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def pretrained_folders(tmp_path_factory) -> tuple[str, str]:
    segformer, mask2former = tmp_path_factory.mktemp("segformer"), tmp_path_factory.mktemp("mask2former")
    save_segformer(segformer, list(CITYSCAPES_TO_CAMVID), size=128)
    save_mask2former(mask2former, list(CITYSCAPES_TO_CAMVID))
    return str(segformer), str(mask2former)


def start(weights_dir, pretrained, checkpoint, onnx_dir) -> Zoo:
    """What the app does at start: a zoo over the weights, SAM's decoder exported into `onnx_dir`."""
    return Zoo(weights_dir, pretrained=pretrained, sam_checkpoint=checkpoint, sam_onnx_dir=onnx_dir)


def outputs(zoo: Zoo) -> dict[str, np.ndarray]:
    """Every model's output on the same photos, run twice each: a model in training mode changes
    its own running statistics on the first run and answers differently on the second."""
    found = {}
    for key in zoo.semantic_names():
        model = zoo.semantic(key)
        assert training_modules(model.model) == [], f"{key} loaded in training mode"
        for run in range(2):
            found[f"{key} run {run}"] = model.probabilities(photo(seed=run)).numpy()
    for name, model in zoo.synthetic().items():
        assert training_modules(model.model) == [], f"synthetic {name} loaded in training mode"
        found[f"synthetic {name}"] = model.probabilities(photo(64, 64)).numpy()
    sam = zoo.sam()
    assert training_modules(sam.model) == [], "SAM loaded in training mode"
    for run in range(2):
        image = photo(seed=10 + run)
        found[f"sam embedding {run}"] = sam.embed(image).features.numpy()
        result = sam.predict(image, points=[[40, 60]], labels=[1])
        found[f"sam masks {run}"], found[f"sam scores {run}"] = result.masks, result.scores
    return found


def test_sam_load_ends_in_eval_mode_with_a_fresh_and_a_cached_export(vit_t_checkpoint, tmp_path):
    fresh = Sam.load("vit_t", vit_t_checkpoint, download=False, onnx_dir=tmp_path)  # exports now
    assert fresh.onnx is not None and fresh.onnx.float32.is_file()
    later = Sam.load("vit_t", vit_t_checkpoint, download=False, onnx_dir=tmp_path)  # finds the export
    plain = Sam.load("vit_t", vit_t_checkpoint, download=False)  # no ONNX at all
    for sam in (fresh, later, plain):
        assert training_modules(sam.model) == []
    image = photo(360, 480)
    masks = [sam.predict(image, points=[[200, 150]], labels=[1]).masks for sam in (fresh, later, plain)]
    assert np.array_equal(masks[0], masks[1]) and np.array_equal(masks[0], masks[2])


@pytest.mark.parametrize("weights", ["test weights", "shipped weights"])
def test_a_first_start_gives_what_a_later_start_gives(weights, weights_dir, pretrained_folders, vit_t_checkpoint,
                                                     tmp_path):
    folder = weights_dir if weights == "test weights" else ROOT / "weights"
    pretrained = pretrained_folders if weights == "test weights" else ()
    first = outputs(start(folder, pretrained, vit_t_checkpoint, tmp_path))  # an empty export cache
    assert any(tmp_path.rglob("decoder.onnx"))
    later = outputs(start(folder, pretrained, vit_t_checkpoint, tmp_path))  # the cache found
    assert first.keys() == later.keys() and len(first) >= 8
    for key in first:
        assert np.array_equal(first[key], later[key]), f"{key} differs between a first and a later start"


def test_the_real_automatic_masks_run_on_a_fresh_start(vit_t_checkpoint, tmp_path):
    """The app tests give the page's generator a stand-in; this runs ours (the batch decoder exported
    just now) and segment-anything's own on the same model right after the export, where training
    mode made segment-anything's fail on an inference tensor, and compares both with a later start."""
    import warnings

    from seg.sam.everything import Everything
    from seg.sam.weights import sam_package

    sam = start(tmp_path / "no weights", (), vit_t_checkpoint, tmp_path / "onnx").sam()
    image = photo(96, 128)
    sam.embed(image)  # the app reads the photo first, under inference mode
    settings = Everything(points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0, max_masks=8)
    ours = sam.everything(image, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sam_package("mobile_sam").SamAutomaticMaskGenerator(
            sam.model, points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0).generate(image)
    later = start(tmp_path / "no weights", (), vit_t_checkpoint, tmp_path / "onnx").sam().everything(image, settings)
    assert ours and len(ours) == len(theirs) == len(later)
    assert all(np.array_equal(a["segmentation"], b["segmentation"]) for a, b in zip(ours, later))
    assert training_modules(sam.model) == []
