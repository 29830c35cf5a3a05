"""Knowledge distillation: a small, fast network (the student) learns from the class probabilities of a
larger or combined one (the teacher) as well as from the labels (Hinton et al., 2015).

A label says "this pixel is Pole"; the teacher says "90% Pole, 8% Building, 2% Tree", and where a label
is void it still says something. The student is trained on both:

    loss = (1 - weight) * hard(logits, labels) + weight * T^2 * KL(teacher_T || student_T)

averaged over every pixel of the batch (void ones included: the teacher has an opinion there, and
they are the unlabelled data a student learns most from). `student_T` and `teacher_T` are the
distributions softened by the temperature T (softmax of log-probabilities / T); T^2 keeps the soft
term's gradients at the scale of the hard one's whatever T is.

The teacher runs on the same augmented batch as the student (the same crop, scale, flip and colours),
so the two always see the same picture:

    teacher = load_teacher("weights/camvid/ensemble.json")     # log-probabilities, after its card's prior
    loss_fn = Distillation(build_loss("ce", class_weights=w), weight=0.5, temperature=1.0)
    loss = loss_fn(student(images), masks, teacher(images))

`python -m seg.cli.train --teacher CARD` does this every step (`seg.engine.train_one_epoch`).
"""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpoint import load_model
from .ensemble import ARCHITECTURE, Ensemble
from .prior import card_offsets


def soft_divergence(logits: Tensor, teacher_log_probs: Tensor, *, temperature: float = 1.0) -> Tensor:
    """T^2 * KL(teacher_T || student_T), summed over classes and averaged over pixels.

    logits: the student's `(B, C, H, W)`; teacher_log_probs: the teacher's log-probabilities, the same
    shape. Zero exactly when the student's softened distribution equals the teacher's.
    """
    if logits.shape != teacher_log_probs.shape:
        raise ValueError(f"the student's logits are {tuple(logits.shape)} but the teacher's are "
                         f"{tuple(teacher_log_probs.shape)}: they must see the same batch at the same size")
    teacher = (teacher_log_probs.float() / temperature).log_softmax(1)
    student = (logits / temperature).log_softmax(1)
    return (teacher.exp() * (teacher - student)).sum(1).mean() * temperature ** 2


class Distillation:
    """The loss `(logits, labels, teacher_log_probs) -> scalar`: the hard loss and the teacher's, mixed.

    Args:
        hard: the label loss `(logits, labels) -> scalar` (`seg.losses.build_loss`).
        weight: the teacher's share, in [0, 1] (0: the labels alone; 1: the teacher alone).
        temperature: softens both distributions, above 0 (1: as they are).
    """

    def __init__(self, hard: Callable[[Tensor, Tensor], Tensor], *, weight: float = 0.5, temperature: float = 1.0):
        if not 0 <= weight <= 1:
            raise ValueError(f"the teacher's weight is a share between 0 and 1, got {weight}")
        if temperature <= 0:
            raise ValueError(f"the temperature must be above 0, got {temperature}")
        self.hard, self.weight, self.temperature = hard, weight, temperature

    def __call__(self, logits: Tensor, labels: Tensor, teacher_log_probs: Tensor) -> Tensor:
        soft = soft_divergence(logits, teacher_log_probs, temperature=self.temperature)
        return (1 - self.weight) * self.hard(logits, labels) + self.weight * soft


def load_teacher(path: str | Path, *, classes: list[str], device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """(teacher, card): a model from images to log-probabilities after its card's logit adjustment, in
    eval mode and frozen. `path` is a model's weights or an ensemble's card (`seg.ensemble`); its classes
    must be the student's, in the same order."""
    model, card = load_model(path, device=device)
    if card["classes"] != list(classes):
        raise ValueError(f"the teacher {path} predicts {card['classes']}, but the student learns {list(classes)}: "
                         "a teacher must have the student's classes in the same order")
    if card["architecture"]["name"] != ARCHITECTURE:  # one model: its probabilities, after its own prior
        model = Ensemble([model], weights=[1.0], offsets=[card_offsets(card)]).to(device)
    model.eval().requires_grad_(False)
    return model, card
