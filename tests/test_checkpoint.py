"""Weights as safetensors plus a JSON card: round trip, fp16, and the errors a user can hit."""

import json

import numpy as np
import pytest
import torch

from seg.checkpoint import card_path, load_model, save_model
from seg.inference import segment
from seg.models import build_model

CARD = {"architecture": {"name": "fcn8s", "arguments": {"width_mult": 0.25}},
        "classes": ["a", "b", "c"], "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]]}


def trained_like_model():
    torch.manual_seed(0)
    model = build_model("fcn8s", num_classes=3, width_mult=0.25)
    for p in model.parameters():  # non-zero skips and non-trivial BN statistics
        torch.nn.init.normal_(p, std=0.05)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    model = trained_like_model()
    path = save_model(model, tmp_path / "m.safetensors", card=CARD)
    loaded, card = load_model(path)
    assert card["classes"] == CARD["classes"] and card["weights_dtype"] == "float32"
    assert not loaded.training
    x = torch.randn(1, 3, 40, 52)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_fp16_weights_are_half_the_size_and_agree(tmp_path):
    model = trained_like_model()
    full = save_model(model, tmp_path / "full.safetensors", card=CARD)
    half = save_model(model, tmp_path / "half.safetensors", card=CARD, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, card = load_model(half)
    assert card["weights_dtype"] == "float16"
    assert next(loaded.parameters()).dtype == torch.float32  # computed in float32 whatever was stored
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    agree = (segment(model, image) == segment(loaded, image)).mean()
    assert agree > 0.99


def test_errors_a_user_can_hit(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights"):
        load_model(tmp_path / "missing.safetensors")
    path = save_model(trained_like_model(), tmp_path / "m.safetensors", card=CARD)
    card_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="card"):
        load_model(path)
    unet = {"name": "unet", "arguments": {"width_mult": 0.25}}
    card_path(path).write_text(json.dumps({**CARD, "architecture": unet}))
    with pytest.raises(ValueError, match="does not fit"):
        load_model(path)
    card_path(path).write_text(json.dumps(CARD))
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_model(path)
    with pytest.raises(ValueError, match="needs"):
        save_model(trained_like_model(), tmp_path / "x.safetensors", card={"classes": []})
