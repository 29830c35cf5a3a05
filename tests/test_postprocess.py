"""Test-time augmentation and the dense CRF, on cases with known answers."""

import numpy as np
import pytest
import torch

from seg.postprocess import dense_crf, tta_probabilities


def test_tta_averages_the_views_and_mirrors_back():
    image = np.zeros((4, 6, 3), np.uint8)
    image[:, :3] = 255  # bright left half
    calls = []

    def predict(view, scale):
        calls.append(scale)
        bright = torch.from_numpy(view[..., 0] > 0).float()  # (H, W): class 1 where bright
        return torch.stack([1 - bright, bright]) * (0.5 if scale != 1 else 1.0)

    probs = tta_probabilities(predict, image, flips=True, scales=(0.5, 1.0))
    assert calls == [0.5, 0.5, 1.0, 1.0]
    # mirrored back, every view agrees: class 1 exactly on the left half, mean of 0.5 and 1.0 weights
    assert torch.allclose(probs[1, :, :3], torch.full((4, 3), 0.75)) and (probs[1, :, 3:] == 0).all()
    with pytest.raises(ValueError, match="positive"):
        tta_probabilities(predict, image, scales=(0,))


def test_the_crf_snaps_noisy_labels_to_the_image_edge():
    rng = np.random.default_rng(0)
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, 40:] = (200, 180, 160)  # a sharp vertical edge at x = 40
    image.setflags(write=False)  # as the app's photos are (kept once, shared by every request)
    truth = np.zeros((60, 80), np.int64)
    truth[:, 40:] = 1
    # a blurry, noisy classifier: the boundary is smeared over 16 px and 20% of pixels are flipped
    ramp = np.clip((np.arange(80) - 32) / 16, 0, 1)[None].repeat(60, 0)
    p1 = np.where(rng.random((60, 80)) < 0.2, 1 - ramp, ramp) * 0.6 + 0.2
    probs = np.stack([1 - p1, p1]).astype(np.float32)
    before = (probs.argmax(0) == truth).mean()
    refined = dense_crf(image, probs)
    after = (refined.argmax(0) == truth).mean()
    assert refined.shape == probs.shape and np.allclose(refined.sum(0), 1, atol=1e-3)
    assert before < 0.85 and after > 0.97


def test_the_crf_refuses_mismatched_sizes():
    with pytest.raises(ValueError, match="same size"):
        dense_crf(np.zeros((10, 10, 3), np.uint8), np.full((2, 10, 12), 0.5, np.float32))
