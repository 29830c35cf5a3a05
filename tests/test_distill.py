"""Knowledge distillation (seg.distill, seg.cli.train --teacher): the soft loss, the mix with the labels,
the teacher as loaded from a card, and a student trained from a teacher alone."""

import json
import math

import pytest
import torch

from conftest import run_module
from seg.checkpoint import load_model, save_model
from seg.data import build_dataset
from seg.data.transforms import eval_transform
from seg.distill import Distillation, load_teacher, soft_divergence
from seg.losses import cross_entropy
from seg.models import build_model
from seg.prior import CARD_KEY, adjust, card_offsets

CLASSES = ["background", "disc", "square"]


def random_logits(seed: int, shape=(2, 3, 4, 5)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 2


def test_the_soft_term_is_zero_for_the_teachers_own_distribution_and_positive_otherwise():
    teacher = random_logits(0).log_softmax(1)
    assert soft_divergence(teacher + 3.0, teacher).abs() < 1e-6  # logits differ by a constant: same softmax
    assert soft_divergence(random_logits(1), teacher) > 0.1


def test_the_soft_term_is_t_squared_times_the_kl_of_the_softened_distributions():
    student, teacher = random_logits(1), random_logits(0).log_softmax(1)
    p = (teacher / 3).softmax(1)
    q = (student / 3).softmax(1)
    expected = 9 * (p * (p.log() - q.log())).sum(1).mean()
    assert torch.allclose(soft_divergence(student, teacher, temperature=3.0), expected, atol=1e-5)


def test_the_weight_mixes_the_labels_and_the_teacher():
    student, teacher = random_logits(1), random_logits(0).log_softmax(1)
    labels = torch.randint(0, 3, (2, 4, 5), generator=torch.Generator().manual_seed(2))
    hard, soft = cross_entropy(student, labels), soft_divergence(student, teacher)
    assert torch.allclose(Distillation(cross_entropy, weight=0.0)(student, labels, teacher), hard)
    assert torch.allclose(Distillation(cross_entropy, weight=1.0)(student, labels, teacher), soft)
    assert torch.allclose(Distillation(cross_entropy, weight=0.25)(student, labels, teacher), 0.75 * hard + 0.25 * soft)
    for bad in ({"weight": 1.5}, {"weight": -0.1}, {"temperature": 0.0}):
        with pytest.raises(ValueError, match="between 0 and 1|above 0"):
            Distillation(cross_entropy, **bad)
    with pytest.raises(ValueError, match="same batch at the same size"):
        soft_divergence(student[:, :, :2], teacher)


def test_descending_the_soft_term_brings_the_students_probabilities_to_the_teachers():
    teacher = random_logits(0).log_softmax(1)
    student = torch.zeros_like(teacher, requires_grad=True)
    optimizer = torch.optim.Adam([student], lr=0.1)
    for _ in range(400):
        optimizer.zero_grad()
        soft_divergence(student, teacher).backward()
        optimizer.step()
    assert torch.allclose(student.softmax(1), teacher.exp(), atol=2e-3)


def save_small_model(path, *, classes=CLASSES, adjustment=None):
    torch.manual_seed(0)
    model = build_model("fcn8s", num_classes=len(classes), width_mult=0.125)
    card = {"architecture": {"name": "fcn8s", "arguments": {"width_mult": 0.125}}, "classes": classes,
            "input_size": [32, 32]}
    if adjustment:
        card[CARD_KEY] = adjustment
    return save_model(model, path, card=card), model.eval()


def test_a_single_model_teacher_gives_log_probabilities_after_its_cards_prior(tmp_path):
    adjustment = {"tau": 0.5, "class_weights": [0.5, 2.0, 4.0]}
    path, model = save_small_model(tmp_path / "t.safetensors", adjustment=adjustment)
    teacher, card = load_teacher(path, classes=CLASSES)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = adjust(model(x), card_offsets(card)).log_softmax(1)
        got = teacher(x)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert card_offsets(card) is not None and torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(got.exp().sum(1), torch.ones(2, 32, 32), atol=1e-5)


def test_a_teacher_of_other_classes_is_refused(tmp_path):
    path, _ = save_small_model(tmp_path / "t.safetensors")
    with pytest.raises(ValueError, match="the student's classes in the same order"):
        load_teacher(path, classes=["background", "square", "disc"])


def agreement(a, b, loader) -> float:
    """The share of pixels where two models' argmax agree."""
    same = total = 0
    with torch.no_grad():
        for images, _ in loader:
            x, y = a(images).argmax(1), b(images).argmax(1)
            same, total = same + (x == y).sum().item(), total + x.numel()
    return same / total


@pytest.mark.slow
def test_a_student_taught_by_the_teacher_alone_learns_its_answers(trained_checkpoint, tmp_path):
    """--teacher with weight 1: no label reaches the loss, yet the student, from random weights, comes to
    answer as the teacher does on scenes it never trained on; its card names the teacher."""
    out = tmp_path / "student"
    run_module("seg.cli.train", "--model", "fcn8s", "--width-mult", "0.25", "--synthetic-images", "128",
               "--image-size", "64", "64", "--batch-size", "16", "--lr", "3e-3", "--warmup-steps", "10", "--workers",
               "0", "--no-progress", "--epochs", "3", "--teacher", str(trained_checkpoint), "--distill-weight", "1",
               "--distill-temperature", "2", "--out", str(out))
    card = json.loads((out / "model.json").read_text())
    assert card["training"]["distillation"] == {"teacher": str(trained_checkpoint), "weight": 1.0,
                                                 "temperature": 2.0}
    student, _ = load_model(out / "model.safetensors")
    teacher, _ = load_model(trained_checkpoint)
    torch.manual_seed(1)
    untrained = build_model("fcn8s", num_classes=len(card["classes"]), width_mult=0.25).eval()
    scenes = build_dataset("synthetic", "val", synthetic_images=128, image_size=(64, 64),
                           transform=eval_transform())
    loader = torch.utils.data.DataLoader(scenes, batch_size=16)
    taught, chance = agreement(student, teacher, loader), agreement(untrained, teacher, loader)
    assert not student.training
    assert taught > 0.6 and taught > chance + 0.4, (taught, chance)
    assert math.isfinite(card["val_metrics"]["miou"])


@pytest.mark.slow
def test_a_teacher_that_is_missing_or_of_other_classes_is_said_plainly(trained_checkpoint, tmp_path):
    missing = run_module("seg.cli.train", "--synthetic-images", "16", "--epochs", "1", "--workers", "0",
                         "--no-progress", "--teacher", str(tmp_path / "none.safetensors"), "--out", str(tmp_path / "a"),
                         check=False)
    assert missing.returncode == 1 and "none.safetensors" in missing.stderr and "Traceback" not in missing.stderr
    bad = run_module("seg.cli.train", "--synthetic-images", "16", "--epochs", "1", "--workers", "0",
                     "--no-progress", "--teacher", str(trained_checkpoint), "--distill-weight", "2",
                     "--out", str(tmp_path / "b"), check=False)
    assert bad.returncode == 2 and "--distill-weight must be between 0 and 1" in bad.stderr
