"""An ensemble of segmentation models, as one model: each member's class probabilities (after its own
card's logit adjustment, `seg.prior`) averaged with weights, optionally over several input scales and
the mirror image (test-time augmentation). Its output is the log of that average, so everything that
takes a model's logits (argmax, softmax, the evaluation, the app) takes the ensemble unchanged.

    ensemble = Ensemble([unet, fcn8s], weights=[2, 1], offsets=[None, fcn8s_offsets], scales=(0.75, 1, 1.25))
    log_probabilities = ensemble(images)             # (B, C, H, W) at the images' size

A card describes one (`weights/camvid/ensemble.json`, loaded by `seg.checkpoint.load_model`):

    {"architecture": {"name": "ensemble"}, "members": [{"weights": "unet.safetensors", "weight": 2}, ...],
     "test_time": {"scales": [0.75, 1, 1.25], "flip": true}, "classes": [...], "input_size": [360, 480], ...}

Member paths are relative to the card's folder; every member must have the card's classes.
"""

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from .inference import upsample_logits
from .prior import adjust

ARCHITECTURE = "ensemble"


class Ensemble(nn.Module):
    """Args:
        members: models from images `(B, 3, h, w)` (normalised) to logits, in eval mode.
        weights: one per member, at least one above 0; normalised to sum to 1.
        offsets: each member's logit adjustment `(C,)` (its card's, `seg.prior.card_offsets`) or None.
        scales: input scales averaged over (1: the input as given), each image resized bilinearly.
        flip: also average over each scale's mirror image.
    """

    def __init__(self, members: Sequence[nn.Module], *, weights: Sequence[float],
                 offsets: Sequence[Tensor | None] | None = None, scales: Sequence[float] = (1.0,),
                 flip: bool = False):
        super().__init__()
        if not members or len(weights) != len(members):
            raise ValueError(f"an ensemble needs members and one weight each, got {len(members)} and {len(weights)}")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"ensemble weights must be 0 or more, and one above 0: got {list(weights)}")
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"test-time scales must be positive, got {list(scales)}")
        offsets = list(offsets) if offsets is not None else [None] * len(members)
        self.members = nn.ModuleList(members)
        total = float(sum(weights))
        self.weights = [float(w) / total for w in weights]
        for i, offset in enumerate(offsets):  # buffers: they follow the ensemble to its device
            self.register_buffer(f"offset_{i}", offset.float() if offset is not None else None, persistent=False)
        self.scales, self.flip = tuple(float(s) for s in scales), flip

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        views = [(scale, mirrored) for scale in self.scales for mirrored in ((False, True) if self.flip else (False,))]
        total = None
        for scale, mirrored in views:
            seen = x if scale == 1 else F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
            seen = seen.flip(-1) if mirrored else seen
            for i, (member, weight) in enumerate(zip(self.members, self.weights)):
                if weight == 0:
                    continue
                logits = adjust(upsample_logits(member(seen).float(), size), getattr(self, f"offset_{i}"))
                probabilities = logits.softmax(1)
                probabilities = probabilities.flip(-1) if mirrored else probabilities
                total = weight * probabilities if total is None else total + weight * probabilities
        return (total / len(views)).clamp_min(1e-12).log()


def member_paths(card: dict, folder) -> list[tuple[str, float]]:
    """(path, weight) of each member an ensemble card names, its paths under `folder` (the card's)."""
    members = card.get("members")
    if not isinstance(members, list) or not members:
        raise ValueError("an ensemble card lists its members: \"members\": [{\"weights\": FILE, \"weight\": W}, ...]")
    out = []
    for member in members:
        if not isinstance(member, dict) or not isinstance(member.get("weights"), str) \
                or not isinstance(member.get("weight"), (int, float)):
            raise ValueError(f"an ensemble member is {{\"weights\": FILE, \"weight\": W}}, got {str(member)[:80]}")
        out.append((str(folder / member["weights"]), float(member["weight"])))
    return out
