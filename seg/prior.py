"""Undo the class prior that a class-weighted loss bakes into a model: logit adjustment.

A model trained with cross-entropy weighted by w_c learns, at best, p(c | x) scaled by w_c: it scores
class c about log w_c too high, so with median-frequency weights a pole (w = 4.8) wins pixels it
should not. Subtracting `tau * log w_c` from its logits undoes that with no training (Menon et al.,
"Long-tail learning via logit adjustment", 2021); tau = 1 undoes it exactly in theory, and the best
tau in practice is chosen on frames the model never saw (`python -m seg.cli.tau`).

    offsets = card_offsets(card)                         # (C,) or None: what the card says to subtract
    labels = adjust(logits, offsets).argmax(1)           # (B, H, W)

The card keeps {"tau", "class_weights", "chosen_on"} under "logit_adjustment"; `seg.cli.evaluate`,
`seg.cli.predict` and the app apply it unless told not to.
"""

import torch
from torch import Tensor

CARD_KEY = "logit_adjustment"


def prior_offsets(weights, tau: float) -> Tensor:
    """`(C,)` float32: tau * log w_c, the amount class c's logit is too high. A class with weight 0
    (no training pixels) gets offset 0: it was never learnt, so there is no prior to undo."""
    w = torch.as_tensor(weights, dtype=torch.float64)
    offsets = torch.where(w > 0, torch.log(w.clamp_min(1e-12)), torch.zeros_like(w))
    return (tau * offsets).float()


def adjust(logits: Tensor, offsets: Tensor | None) -> Tensor:
    """`(B, C, H, W)` logits minus `(C,)` offsets (None: unchanged)."""
    if offsets is None:
        return logits
    return logits - offsets.to(logits.device, logits.dtype).view(1, -1, 1, 1)


def card_offsets(card: dict, *, tau: float | None = None) -> Tensor | None:
    """The offsets a model card asks for (with `tau` instead of the card's, if given), or None when it
    has no logit adjustment."""
    entry = card.get(CARD_KEY)
    if not entry:
        if tau is not None:
            raise ValueError(f"a tau needs the training class weights in the card's {CARD_KEY}: "
                             "run python -m seg.cli.tau set first")
        return None
    weights = entry["class_weights"]
    if len(weights) != len(card["classes"]):
        raise ValueError(f"the card's {CARD_KEY} has {len(weights)} class weights for {len(card['classes'])} "
                         "classes: set it again with python -m seg.cli.tau set")
    return prior_offsets(weights, float(entry["tau"] if tau is None else tau))
