"""The Mask2Former adapter through the real save_pretrained/from_pretrained path: a small model
with random weights, built from a real Mask2Former config (a Swin backbone, fewer and narrower layers)."""

import numpy as np
import pytest
import torch

from conftest import save_mask2former
from seg.data.camvid import CLASSES, OTHER
from seg.explorer.semantic import PretrainedModel
from seg.explorer.zoo import Zoo, family_of
from seg.pretrained import hub_segmenter
from seg.pretrained.label_mapping import CITYSCAPES_TO_CAMVID
from seg.pretrained.mask2former import Mask2FormerSegmenter

CITYSCAPES = list(CITYSCAPES_TO_CAMVID)


@pytest.fixture(scope="module")
def cityscapes_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mask2former_cityscapes")
    save_mask2former(folder, CITYSCAPES)
    return folder


def image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(120, 160), (97, 301), (200, 90)])
def test_labels_are_the_processors_own_semantic_post_processing(cityscapes_folder, size):
    m2f = Mask2FormerSegmenter.load(cityscapes_folder, local_files_only=True)
    assert m2f.label_space == "cityscapes" and m2f.class_names == CITYSCAPES
    img = image(*size)
    result = m2f.segment(img)
    assert result.labels.shape == size
    with torch.no_grad():  # independently: the processor and the model called by hand
        outputs = m2f.model(**m2f.processor(images=img, return_tensors="pt"))
    expected = m2f.processor.post_process_semantic_segmentation(outputs, target_sizes=[size])[0].numpy()
    np.testing.assert_array_equal(result.labels, expected)
    probs = m2f.probabilities(img)
    assert probs.shape == (len(CITYSCAPES), *size)
    torch.testing.assert_close(probs.sum(0), torch.ones(size))
    # the same scores: the argmax differs only where two classes tie to float rounding
    assert (probs.argmax(0).numpy() == expected).mean() > 0.9999


def test_large_inputs_are_post_processed_at_a_bounded_size(cityscapes_folder, monkeypatch):
    monkeypatch.setattr(hub_segmenter, "MAX_SIDE", 100)
    m2f = Mask2FormerSegmenter.load(cityscapes_folder, local_files_only=True)
    img = image(100, 200, seed=1)
    with torch.no_grad():
        outputs = m2f.model(**m2f.processor(images=img, return_tensors="pt"))
    bounded = m2f.processor.post_process_semantic_segmentation(outputs, target_sizes=[(50, 100)])[0].numpy()
    labels = m2f.segment(img).labels
    assert labels.shape == (100, 200)
    np.testing.assert_array_equal(labels[::2, ::2], bounded)  # each label of the bounded map repeated 2x2
    assert m2f.probabilities(img).shape == (len(CITYSCAPES), 100, 200)


def test_known_answer_through_the_camvid_mapping(tmp_path):
    """Every query classified as "car" with certainty: every pixel is Cityscapes' car, CamVid's Car."""
    model = save_mask2former(tmp_path, CITYSCAPES)
    with torch.no_grad():
        model.class_predictor.weight.zero_()
        model.class_predictor.bias.fill_(-10.0)
        model.class_predictor.bias[CITYSCAPES.index("car")] = 10.0
    model.save_pretrained(tmp_path)
    result = Mask2FormerSegmenter.load(tmp_path).segment(image(90, 120))
    assert (result.labels == CITYSCAPES.index("car")).all()
    assert (result.to_camvid() == CLASSES.index("Car")).all()


def test_ade20k_names_map_with_the_segformer_table(tmp_path):
    names = [f"thing{i}" for i in range(150)]
    names[2], names[6], names[12] = "sky", "road, route", "person, individual, someone"
    save_mask2former(tmp_path, names)
    m2f = Mask2FormerSegmenter.load(tmp_path)
    assert m2f.label_space == "ade20k"
    camvid = m2f.segment(image(64, 80)).to_camvid()
    assert camvid.shape == (64, 80) and camvid.max() <= OTHER


def test_the_zoo_offers_it_beside_the_others(cityscapes_folder, weights_dir):
    zoo = Zoo(weights_dir, pretrained=(str(cityscapes_folder),))
    assert family_of(str(cityscapes_folder)) == "mask2former"  # from its config's model_type
    key = str(cityscapes_folder)
    assert zoo.semantic_names()[key] == f"Mask2Former pretrained ({cityscapes_folder.name})"
    model = zoo.semantic(key)
    assert isinstance(model, PretrainedModel) and isinstance(model.segmenter, Mask2FormerSegmenter)
    probs = model.probabilities(image(90, 120))
    camvid = model.class_map[probs.argmax(0).numpy()]
    assert camvid.shape == (90, 120) and camvid.max() <= OTHER


def test_offline_without_the_weights_says_how_to_get_them(tmp_path, weights_dir):
    name = "facebook/mask2former-swin-tiny-cityscapes-semantic"
    with pytest.raises(FileNotFoundError, match=f"hf download {name}"):
        Mask2FormerSegmenter.load(name, cache_dir=str(tmp_path), local_files_only=True)
    zoo = Zoo(weights_dir, pretrained=(name,))
    assert name not in zoo.semantic_names()
    [(title, how)] = [m for m in zoo.missing() if "Mask2Former" in m[0]]
    assert title == "Mask2Former pretrained (mask2former-swin-tiny-cityscapes-semantic)"
    assert f"hf download {name}" in how
