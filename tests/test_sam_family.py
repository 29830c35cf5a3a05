"""The SAM family through transformers' real classes (small random configurations saved with
save_pretrained): loading, eval mode, where a prompt lands, and what a prompt gives."""

import numpy as np
import pytest
import torch

from conftest import save_segformer
from seg.sam.concepts import ConceptSam
from seg.sam.family import GENERATIONS, FamilySam, how_to_get

CLICKERS = ("sam", "sam_hq", "sam2", "edgetam", "sam3_tracker", "sam3")  # "sam3": the released layout


def photo(seed: int = 0, size=(90, 120)) -> np.ndarray:
    """A photo that is not square, so a model that squeezes it and one that pads it frame it differently."""
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", CLICKERS)
def test_each_generation_loads_in_eval_mode_and_a_fresh_load_gives_the_same_masks(tiny_sams, kind):
    first, second = FamilySam.load(tiny_sams[kind]), FamilySam.load(tiny_sams[kind])
    for sam in (first, second):
        assert sum(m.training for m in sam.model.modules()) == 0
        assert sam.title.startswith(GENERATIONS[kind].title + " (tiny-")
    image = photo()
    a = first.predict(image, points=[[70, 30]], labels=[1])
    b = second.predict(image, points=[[70, 30]], labels=[1])
    assert a.masks.shape == (3, 90, 120) and a.masks.dtype == bool
    assert np.array_equal(a.masks, b.masks) and np.allclose(a.scores, b.scores)


@pytest.mark.parametrize("kind", CLICKERS)
def test_a_prompt_lands_where_the_models_own_processor_puts_it(tiny_sams, kind):
    """Our mapping of a click and a box into the model's input frame against the processor's own, on a
    photo that is wider than tall (SAM pads it, SAM 2 and SAM 3 stretch it)."""
    sam = FamilySam.load(tiny_sams[kind])
    image = photo()
    expected = sam.processor(images=image, input_points=[[[[70.0, 30.0]]]], input_labels=[[[1]]],
                             input_boxes=[[[10.0, 20.0, 100.0, 80.0]]], return_tensors="pt")
    to_frame = sam.frame(sam.embed(image))
    assert np.allclose(np.array([70.0, 30.0]) * to_frame, expected["input_points"].flatten().numpy(), atol=1e-3)
    assert np.allclose(np.array([10.0, 20.0, 100.0, 80.0]) * np.tile(to_frame, 2),
                       expected["input_boxes"].flatten().numpy(), atol=1e-3)


def test_prompts_reuse_one_embedding_and_every_part_of_a_prompt_reaches_the_decoder(tiny_sams):
    sam = FamilySam.load(tiny_sams["sam2"])
    image = photo(1)
    positive = sam.predict(image, points=[[40, 40]], labels=[1])
    negative = sam.predict(image, points=[[40, 40]], labels=[0])
    boxed = sam.predict(image, points=[[40, 40]], labels=[1], box=[10, 10, 80, 70])
    assert sam.encoder_runs == 1 and sam.embeddings_kept == 1 and sam.encode_seconds > 0
    assert list(positive.scores) == sorted(positive.scores, reverse=True)  # best first
    assert not np.allclose(positive.scores, negative.scores)  # the label is read
    assert not np.allclose(positive.scores, boxed.scores)  # and so is the box
    again = sam.predict(sam.embed(image), points=[[40, 40]], labels=[1])  # from the embedding, as the click curve
    assert np.array_equal(again.masks, positive.masks)
    best = sam.predict(image, points=[[40, 40]], labels=[1], best_only=True)
    assert best.masks.shape == (1, 90, 120) and np.array_equal(best.masks[0], positive.masks[0])


def test_a_shrunk_photo_answers_at_the_original_size(tiny_sams):
    sam = FamilySam.load(tiny_sams["sam"])
    small = photo(2, (45, 60))
    result = sam.predict(small, points=[[100, 60]], labels=[1], original_size=(90, 120))
    assert result.masks.shape == (3, 90, 120)
    with pytest.raises(ValueError, match="outside"):
        sam.predict(small, points=[[130, 95]], labels=[1], original_size=(90, 120))


def test_bad_prompts_and_sources_are_refused_with_what_was_expected(tiny_sams, tmp_path):
    sam = FamilySam.load(tiny_sams["sam"])
    with pytest.raises(ValueError, match="needs a prompt"):
        sam.predict(photo(), points=None, labels=None)
    with pytest.raises(ValueError, match="weights are not in the checkpoint"):
        FamilySam.load(tiny_sams["sam3_detector"])  # SAM 3's detector alone: no tracker to answer clicks
    with pytest.raises(ValueError, match="'sam3_tracker' checkpoint: text prompts need SAM 3's"):
        ConceptSam.load(tiny_sams["sam3_tracker"])  # and its tracker alone no detector for text
    save_segformer(tmp_path / "segformer", ["a", "b"], size=64)
    with pytest.raises(ValueError, match="not a SAM"):
        FamilySam.load(tmp_path / "segformer")
    with pytest.raises(FileNotFoundError, match="hf download nobody/no-such-sam"):
        FamilySam.load("nobody/no-such-sam", cache_dir=str(tmp_path))
    assert "accept its terms" in how_to_get("facebook/sam3") and "HF_TOKEN" in how_to_get("facebook/sam3")


def test_sam3_finds_every_instance_of_a_phrase_or_an_example(tiny_sams):
    sam3 = ConceptSam.load(tiny_sams["sam3"])
    assert sum(m.training for m in sam3.model.modules()) == 0
    image = photo(3)
    found = sam3.find(image, "car", threshold=0.0)
    assert len(found) == 8  # every query of the small detector passes a threshold of 0
    assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)
    assert all(f.mask.shape == (90, 120) and f.mask.dtype == bool for f in found)
    assert sam3.find(image, "car", threshold=1.0) == []
    best = sam3.find(image, "car", threshold=0.0, limit=3)  # only the best are enlarged to the photo
    assert [f.score for f in best] == [f.score for f in found[:3]]
    like = sam3.find(image, boxes=[[10, 10, 60, 50]], threshold=0.0)
    assert len(like) == 8 and [f.score for f in like] != [f.score for f in found]  # the box is read
    assert sam3.encoder_runs == 1  # one encoding for every prompt on the photo
    scores = sam3.concept_scores(image, ["road", "car"], threshold=0.0)
    assert scores.shape == (2, 90, 120) and torch.all(scores >= 0) and scores.max() <= 1
    for bad, message in (("", "short noun phrase"), ("x" * 61, "at most 60"), (None, "needs a concept")):
        with pytest.raises(ValueError, match=message):
            sam3.find(image, bad)
    with pytest.raises(ValueError, match="positive example"):
        sam3.find(image, negative=[[10, 10, 60, 50]])


def test_the_released_sam3_answers_clicks_and_text_from_one_backbone(tiny_sams, tmp_path):
    """facebook/sam3 holds the tracker and the detector; the backbone both read is kept once, and the
    tracker answers through the detector's as it did through its own."""
    from seg.sam.family import share_backbone

    tracker, detector = FamilySam.load(tiny_sams["sam3"]), ConceptSam.load(tiny_sams["sam3"])
    image = photo(4)
    before = tracker.predict(image, points=[[70, 30]], labels=[1])
    assert share_backbone(tracker, detector)
    assert tracker.model.vision_encoder.backbone is detector.model.vision_encoder.backbone
    after = FamilySam(tracker.model, tracker.processor, name=tracker.name).predict(image, points=[[70, 30]],
                                                                                  labels=[1])
    assert np.array_equal(before.masks, after.masks) and np.allclose(before.scores, after.scores)
    assert len(detector.find(image, "car", threshold=0.0)) == 8
    # another checkpoint's tracker keeps its own: its weights differ
    from tiny_sams import save_tiny

    other = FamilySam.load(save_tiny("sam3", tmp_path / "other", seed=1))
    assert not share_backbone(other, detector)
    assert other.model.vision_encoder.backbone is not detector.model.vision_encoder.backbone


def test_the_commands_it_gives_for_a_gated_sam3_are_installed():
    """Each command in SAM 3's message (log in, then download) runs from this environment's bin folder."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    commands = re.findall(r"`([^`]+)`", how_to_get("facebook/sam3"))
    assert [c.split()[:2] for c in commands] == [["hf", "auth"], ["hf", "download"]]
    for command in commands:
        tool, *words = command.split()
        words = [w for w in words if w != "facebook/sam3"]  # --help with the repository would still print help
        ran = subprocess.run([str(Path(sys.executable).parent / tool), *words, "--help"], capture_output=True,
                             text=True, timeout=120)
        assert ran.returncode == 0 and "Usage: hf" in ran.stdout, ran.stdout + ran.stderr
