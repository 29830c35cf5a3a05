"""Losses and class weights on cases small enough to compute by hand."""

import math

import numpy as np
import pytest
import torch

from seg.labels import IGNORE_INDEX
from seg.losses import build_loss, class_pixel_stats, class_weights, cross_entropy, dice_loss


def logits_for(probs) -> torch.Tensor:
    """(B, C, H, W) logits whose softmax is `probs` (log of probabilities)."""
    return torch.tensor(probs, dtype=torch.float64).log()


def test_cross_entropy_by_hand_skips_ignored_pixels():
    # three pixels, two classes; the third pixel is ignored
    logits = logits_for([[[[0.25, 0.75, 0.5]], [[0.75, 0.25, 0.5]]]])
    target = torch.tensor([[[1, 1, IGNORE_INDEX]]])
    expected = -(math.log(0.75) + math.log(0.25)) / 2
    assert cross_entropy(logits, target).item() == pytest.approx(expected)
    weight = torch.tensor([1.0, 3.0], dtype=torch.float64)
    # weighted mean: both counted pixels are class 1, so the weight cancels
    assert cross_entropy(logits, target, weight=weight).item() == pytest.approx(expected)
    target = torch.tensor([[[0, 1, IGNORE_INDEX]]])
    weighted = (1 * -math.log(0.25) + 3 * -math.log(0.25)) / 4
    assert cross_entropy(logits, target, weight=weight).item() == pytest.approx(weighted)


def test_dice_by_hand():
    # uniform predictions over two classes on four pixels, one of them class 1 (smooth = 1):
    # class 0: (2*1.5 + 1) / (2 + 3 + 1) = 2/3; class 1: (2*0.5 + 1) / (2 + 1 + 1) = 1/2
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[0, 0], [0, 1]]])
    assert dice_loss(logits, target).item() == pytest.approx(1 - (2 / 3 + 1 / 2) / 2)


def test_dice_is_zero_for_a_perfect_confident_prediction_and_high_for_the_opposite():
    target = torch.tensor([[[0, 1], [1, 2]]])
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert dice_loss(perfect, target).item() == pytest.approx(0, abs=1e-6)
    wrong = torch.nn.functional.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).float() * 50
    assert dice_loss(wrong, target).item() > 0.7


@pytest.mark.parametrize("name", ["ce", "dice", "ce+dice"])
def test_ignored_pixels_change_nothing_and_get_no_gradient(name):
    torch.manual_seed(0)
    loss_fn = build_loss(name)
    target = torch.randint(0, 4, (2, 6, 7))
    target[:, :2] = IGNORE_INDEX
    logits = torch.randn(2, 4, 6, 7, requires_grad=True)
    loss = loss_fn(logits, target)
    loss.backward()
    assert logits.grad[:, :, :2].abs().max() == 0
    assert logits.grad[:, :, 2:].abs().max() > 0
    changed = logits.detach().clone()
    changed[:, :, :2] = torch.randn(2, 4, 2, 7) * 10
    assert loss_fn(changed, target).item() == pytest.approx(loss.item())


def test_ce_plus_dice_is_the_sum():
    torch.manual_seed(1)
    logits, target = torch.randn(2, 3, 5, 5), torch.randint(0, 3, (2, 5, 5))
    total = build_loss("ce+dice")(logits, target)
    assert total.item() == pytest.approx((cross_entropy(logits, target) + dice_loss(logits, target)).item())


def test_class_weights_by_hand():
    masks = [np.array([[0, 0, 0, 1]]), np.array([[0, 0, 2, 2]]), np.array([[IGNORE_INDEX, 0]])]
    stats = class_pixel_stats(masks, 4)  # class 3 never appears
    np.testing.assert_array_equal(stats.pixels, [6, 1, 2, 0])
    np.testing.assert_array_equal(stats.pixels_of_images_with, [9, 4, 4, 0])
    # inverse: N / (present classes * n_c) with N = 9 labelled pixels and 3 present classes
    np.testing.assert_allclose(class_weights(stats, "inverse"), [9 / 18, 9 / 3, 9 / 6, 0], rtol=1e-6)
    # median frequency: f = [6/9, 1/4, 2/4], median 1/2
    np.testing.assert_allclose(class_weights(stats, "median"), [0.75, 2.0, 1.0, 0], rtol=1e-6)
    expected = [1 / math.log(1.02 + p) for p in (6 / 9, 1 / 9, 2 / 9)] + [0]
    np.testing.assert_allclose(class_weights(stats, "enet"), expected, rtol=1e-6)


def test_rare_classes_get_larger_weights():
    stats = class_pixel_stats([np.array([[0] * 97 + [1] * 3])], 2)
    for method in ("inverse", "median", "enet"):
        w = class_weights(stats, method)
        assert w[1] > w[0] > 0


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="choose one of ce, dice, ce\\+dice"):
        build_loss("focal")
    with pytest.raises(ValueError, match="choose one of inverse, median, sqrt, enet"):
        class_weights(class_pixel_stats([np.zeros((2, 2), int)], 2), "log")  # not a weighting we have
    with pytest.raises(ValueError, match="outside"):
        class_pixel_stats([np.array([[0, 7]])], 3)
    with pytest.raises(ValueError, match="Dice already weighs"):
        build_loss("dice", class_weights=torch.ones(3))
