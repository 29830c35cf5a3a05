"""The SAM family in the app: the catalogue, every SAM on one prompt, SAM 3's text prompts as objects,
SAM 3 zero-shot among the semantic models, and their endpoints, on the tests' app (its family: the
small SAM 2 and SAM 3 of tests/tiny_sams.py, the SAM 3 laid out as the released checkpoint)."""

import json

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from seg.data.camvid import CLASSES
from seg.explorer.export import rle_decode
from seg.explorer.zoo import Zoo
from seg.sam.prompts import Objects
from ui.tabs.sam.tab import Opened, SamView


def test_the_catalogue_offers_the_family_and_says_how_to_get_a_gated_sam3(app, weights_dir, tmp_path):
    zoo = app.ctx.zoo
    titles = list(zoo.family_names().values())
    assert titles == ["SAM 2 (tiny-sam2)", "SAM 3 (tiny-sam3)"]
    assert list(zoo.concept_names().values()) == ["SAM 3 (tiny-sam3)"]
    assert zoo.semantic_names()["sam3"] == "SAM 3 zero-shot (a phrase per CamVid class as its prompt)"
    assert "SAM 2 (tiny-sam2)" in app.ctx.status_markdown()
    offline = Zoo(weights_dir, pretrained=(), sam_models=("facebook/sam3", "nobody/no-sam"))
    missing = dict(offline.missing())
    assert "accept its terms" in missing["SAM 3 (sam3)"] and "hf download facebook/sam3" in missing["SAM 3 (sam3)"]
    assert "hf download nobody/no-sam" in missing["SAM (no-sam)"]
    assert offline.family_names() == {} and "sam3" not in offline.semantic_names()
    with pytest.raises(ValueError, match="text prompts need SAM 3.*accept its terms"):
        offline.first_concept_sam()


def test_every_sam_answers_one_prompt_through_the_endpoint(server, sample):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    answer = client.predict(handle_file(str(sample[0])), "[[240, 270]]", "[1]", "", api_name="/sam_compare")
    models = [a["model"] for a in answer["answers"]]
    assert models == ["MobileSAM (vit_t)", "SAM 2 (tiny-sam2)", "SAM 3 (tiny-sam3)"] and answer["unavailable"] == {}
    for a in answer["answers"]:
        assert rle_decode(a["rle"]).shape == (360, 480) and 0 <= a["seconds"] and isinstance(a["encoded"], bool)
        assert set(a["agreement"]) == set(models) - {a["model"]}
    again = client.predict(handle_file(str(sample[0])), "[[240, 270]]", "[1]", "", api_name="/sam_compare")
    assert not any(a["encoded"] for a in again["answers"])  # each SAM read the photo once
    assert [a["rle"] for a in again["answers"]] == [a["rle"] for a in answer["answers"]]


def test_sam3_finds_every_instance_of_a_phrase_through_the_endpoint(server, sample):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    png, coco = client.predict(handle_file(str(sample[0])), "cars", 0.0, api_name="/sam_text")
    ids = np.array(Image.open(png))
    assert ids.shape == (360, 480) and len(coco["annotations"]) == 8  # the small detector's 8 queries
    car = next(c["id"] for c in coco["categories"] if c["name"] == "Car")
    assert {a["category_id"] for a in coco["annotations"]} == {car}  # "cars" names CamVid's Car
    assert all(a["stability_score"] is None for a in coco["annotations"])  # SAM 3 gives none
    assert json.loads(json.dumps(coco)) == coco  # plain JSON (no NaN)
    _, none = client.predict(handle_file(str(sample[0])), "cars", 1.0, api_name="/sam_text")
    assert none["annotations"] == []
    with pytest.raises(AppError, match="short noun phrase"):
        client.predict(handle_file(str(sample[0])), "   ", 0.5, api_name="/sam_text")


def test_sam3_zero_shot_segments_like_a_trained_model(server, sample):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    png, info = client.predict(handle_file(str(sample[0])), "sam3", api_name="/segment")
    labels = np.array(Image.open(png))
    assert labels.shape == (360, 480) and info["model"] == "sam3" and labels.max() <= len(CLASSES)


def test_the_tab_compares_the_sams_and_turns_a_phrase_into_objects(app, sample):
    tab = app.sam
    photo = Opened(*tab.open(str(sample[0]), None)[:2], view=None).photo  # the photo, as the tab keeps it
    objects = Objects().click(240, 270, "positive")
    with pytest.raises(gr.Error, match="has no prompt yet"):
        tab.family.compare(photo, Objects(), None)
    tiles, rows, pairs, costs = tab.family.compare(photo, objects, str(sample[1]))
    assert len(tiles) == 3 and list(rows["model"])[0] == "MobileSAM (vit_t)"
    assert all(0 <= v <= 1 for v in rows["IoU with the ground truth"])  # the true region under the click
    assert "has read this photo" in costs
    view = SamView(*tab.family.find_text(photo, objects, {}, "pedestrian", 0.0))
    found = [item for item in view.objects.items if item.name.startswith("pedestrian")]
    assert len(found) == 8 and {item.category for item in found} == {"Pedestrian"}
    assert all(item.prompts.box is not None and item.id in view.masks for item in found)
    assert "found 8 instance(s)" in view.note
    with pytest.raises(gr.Error, match="has no box"):
        tab.family.find_like(photo, objects, {}, "", 0.5)
    # SAM 3 has answered clicks and a phrase: its tracker and its detector hold one backbone between them
    [key] = app.ctx.zoo.concept_names()
    assert app.ctx.zoo.family_sam(key).model.vision_encoder.backbone is \
        app.ctx.zoo.concept_sam(key).model.vision_encoder.backbone
