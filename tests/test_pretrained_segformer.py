"""The SegFormer adapter through the real save_pretrained/from_pretrained path (random weights),
and the CamVid label mapping."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import save_segformer
from seg.data.camvid import CLASSES, CLASSES_WITH_OTHER, OTHER
from seg.metrics import SegmentationMetrics, mean_present
from seg.pretrained import hub_segmenter
from seg.pretrained.label_mapping import (
    ADE20K_TO_CAMVID,
    CITYSCAPES_TO_CAMVID,
    lookup_table,
    map_labels,
)
from seg.pretrained.segformer import SegFormerSegmenter

CITYSCAPES = list(CITYSCAPES_TO_CAMVID)
# 150 ADE20K-style labels: a few real ones (with ADE's synonyms) among placeholders
ADE = [f"thing{i}" for i in range(150)]
ADE[2], ADE[12], ADE[20] = "sky", "person;individual;someone", "car;auto;automobile"
ADE[6], ADE[4] = "road;route", "tree"


@pytest.fixture(scope="module")
def cityscapes_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segformer_cityscapes")
    save_segformer(folder, CITYSCAPES)
    return folder


def image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(360, 480), (512, 512), (97, 301)])
def test_labels_at_the_image_size_with_the_models_own_post_processing(cityscapes_folder, size):
    segformer = SegFormerSegmenter.load(cityscapes_folder)
    assert segformer.label_space == "cityscapes" and segformer.class_names == CITYSCAPES
    img = image(*size)
    result = segformer.segment(img)
    assert result.labels.shape == size
    # independent check: logits resized bilinearly to the image, then argmax
    pixels = segformer.processor(images=img, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        logits = segformer.model(pixel_values=pixels).logits
    expected = F.interpolate(logits, size=size, mode="bilinear", align_corners=False).argmax(1)[0].numpy()
    np.testing.assert_array_equal(result.labels, expected)
    probs = segformer.probabilities(img)  # the same single path: its argmax is the label map
    torch.testing.assert_close(probs.sum(0), torch.ones(size))
    # the same scores: the argmax differs only where two classes tie to float rounding
    assert (probs.argmax(0).numpy() == expected).mean() > 0.9999


def test_large_inputs_are_post_processed_at_a_bounded_size(cityscapes_folder, monkeypatch):
    monkeypatch.setattr(hub_segmenter, "MAX_SIDE", 256)
    segformer = SegFormerSegmenter.load(cityscapes_folder)
    img = image(256, 512, seed=1)
    result = segformer.segment(img)
    assert result.labels.shape == (256, 512)
    bounded = segformer.processor.post_process_semantic_segmentation(
        segformer.model(**segformer.processor(images=img, return_tensors="pt")), target_sizes=[(128, 256)])[0]
    # the full-size map is the bounded one, each label repeated 2x2
    np.testing.assert_array_equal(result.labels[::2, ::2], bounded.numpy())
    np.testing.assert_array_equal(result.labels[1::2, 1::2], bounded.numpy())


def test_known_answer_through_the_camvid_mapping(tmp_path):
    """A stand-in head that prefers "car" everywhere: every pixel must come out as CamVid's Car."""
    model = save_segformer(tmp_path, CITYSCAPES)
    classifier = model.decode_head.classifier
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.zero_()
        classifier.bias[CITYSCAPES.index("car")] = 5.0
    model.save_pretrained(tmp_path)
    result = SegFormerSegmenter.load(tmp_path).segment(image(120, 160))
    assert (result.labels == CITYSCAPES.index("car")).all()
    assert (result.to_camvid() == CLASSES.index("Car")).all()


def test_ade20k_models_map_by_name(tmp_path):
    save_segformer(tmp_path, ADE)
    segformer = SegFormerSegmenter.load(tmp_path)
    assert segformer.label_space == "ade20k"
    table = lookup_table(ADE, ADE20K_TO_CAMVID)
    assert [CLASSES_WITH_OTHER[table[i]] for i in (2, 12, 20, 6, 4, 0)] == ["Sky", "Pedestrian", "Car", "Road",
                                                                           "Tree", "other"]
    camvid = segformer.segment(image(64, 80)).to_camvid()
    assert camvid.shape == (64, 80) and camvid.max() <= OTHER


def test_cityscapes_table_covers_every_class_and_names_the_gaps():
    table = lookup_table(CITYSCAPES, CITYSCAPES_TO_CAMVID)
    mapped = {name: CLASSES_WITH_OTHER[i] for name, i in zip(CITYSCAPES, table)}
    assert mapped["sidewalk"] == "Pavement" and mapped["rider"] == "Bicyclist" and mapped["bus"] == "Car"
    assert mapped["traffic light"] == "SignSymbol" and mapped["wall"] == "Building"
    assert mapped["terrain"] == "other"
    assert set(mapped.values()) == set(CLASSES_WITH_OTHER)  # every CamVid class is reachable


def test_other_counts_as_wrong_when_scored():
    truth = np.full((4, 4), CLASSES.index("Road"))
    pred = truth.copy()
    pred[:, :2] = OTHER  # half the road became "other"
    metrics = SegmentationMetrics(len(CLASSES_WITH_OTHER))
    metrics.update(pred=pred, target=truth)
    scores = metrics.compute()
    assert scores.iou[CLASSES.index("Road")] == 0.5
    assert mean_present(scores.iou[:OTHER]) == 0.5  # "other" is not a CamVid class to average in
    assert scores.pixel_accuracy == 0.5
    with pytest.raises(ValueError, match="table covers 19"):
        map_labels(np.array([[25]]), lookup_table(CITYSCAPES, CITYSCAPES_TO_CAMVID))


def test_offline_without_the_weights_says_how_to_get_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="hf download nvidia/segformer-b0-finetuned-ade-512-512"):
        SegFormerSegmenter.load("nvidia/segformer-b0-finetuned-ade-512-512", cache_dir=str(tmp_path),
                                local_files_only=True)
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        SegFormerSegmenter.load(tmp_path / "no-such-folder", local_files_only=True)


def test_the_command_it_gives_is_installed(tmp_path):
    """The command in the message runs from this environment's own bin folder (the pinned
    huggingface_hub installs `hf`; an earlier message named `huggingface-cli`, which it no longer has)."""
    with pytest.raises(FileNotFoundError) as missing:
        SegFormerSegmenter.load("nvidia/segformer-b0-finetuned-ade-512-512", cache_dir=str(tmp_path),
                                local_files_only=True)
    command = re.search(r"`([^`]+)`", str(missing.value)).group(1).split()
    tool = Path(sys.executable).parent / command[0]
    ran = subprocess.run([str(tool), *command[1:], "--help"], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and "Download files from the Hub" in ran.stdout, ran.stdout + ran.stderr


def test_bad_image(cityscapes_folder):
    with pytest.raises(ValueError, match="uint8 RGB"):
        SegFormerSegmenter.load(cityscapes_folder).segment(np.zeros((10, 10), np.uint8))


def test_a_segformer_trained_on_camvid_loads_from_its_folder_and_needs_no_mapping(tmp_path):
    save_segformer(tmp_path, list(CLASSES), size=256)
    segformer = SegFormerSegmenter.load(tmp_path, local_files_only=True)
    assert segformer.label_space == "camvid"
    result = segformer.segment(image(90, 120))
    np.testing.assert_array_equal(result.to_camvid(), result.labels)
    assert result.labels.max() < len(CLASSES)


def test_a_model_whose_classes_map_to_nothing_is_refused_with_a_reason():
    from types import SimpleNamespace

    from seg.explorer.semantic import PretrainedModel

    unknown = SimpleNamespace(name="someone/unknown", class_names=["a", "b", "c"], class_map=None, model=None)
    with pytest.raises(ValueError, match="cannot be mapped to CamVid"):
        PretrainedModel(unknown)
