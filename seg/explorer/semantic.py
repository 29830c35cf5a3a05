"""The semantic models the app compares, behind one interface: class probabilities at the image's
size, and the map from the model's own classes to CamVid's 11 (+ "other"), computed once.

    probs = model.probabilities(image)                 # (C, H, W) in the model's C classes
    labels = model.class_map[probs.argmax(0).numpy()]  # (H, W) CamVid ids, OTHER where none fits
"""

from typing import Protocol

import numpy as np
import torch

from ..inference import predict_logits, working_size
from ..pretrained.hub_segmenter import HubSegmenter
from ..prior import card_offsets


class SemanticModel(Protocol):
    """model: the network (its device, and the deadline hooks of `seg.deadline.watch`);
    class_map: `(C,) uint8`, the CamVid id of each of the model's C classes."""

    model: torch.nn.Module
    class_map: np.ndarray

    def probabilities(self, image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
        """`(C, H, W)` float32 for an `(H, W, 3) uint8 RGB` image; `scale` multiplies the input size
        where the model has one of its own (test-time augmentation)."""
        ...


class ScratchModel:
    """A model from `seg.models` with its card, run at the card's input size (its pixel count, in the
    image's own shape: see `seg.inference.working_size`), with the card's logit adjustment if it has
    one (`seg.prior`). Its classes are the ones it was trained on (CamVid's, in CamVid's order), so its
    class map is the identity."""

    def __init__(self, model: torch.nn.Module, card: dict):
        self.model, self.card = model.eval(), card
        self.input_size = tuple(card["input_size"]) if card.get("input_size") else None
        self.class_map = np.arange(len(card["classes"]), dtype=np.uint8)
        self.logit_offsets = card_offsets(card)

    def probabilities(self, image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
        size = working_size(image.shape[:2], self.input_size)  # the training size's pixels, the image's shape
        size = (max(32, round(size[0] * scale)), max(32, round(size[1] * scale)))
        logits = predict_logits(self.model, image, input_size=size, logit_offsets=self.logit_offsets)
        return logits[0].softmax(0).cpu()


class PretrainedModel:
    """A transformers model (SegFormer or Mask2Former; pretrained from the Hub, or ours from a
    folder) and its processor. Its class map comes from the Cityscapes or ADE20K table."""

    def __init__(self, segmenter: HubSegmenter):
        if segmenter.class_map is None:
            raise ValueError(f"{segmenter.name}: its {len(segmenter.class_names)} classes match neither CamVid, "
                             "Cityscapes nor ADE20K, so they cannot be mapped to CamVid's; use a model trained on "
                             "one of those")
        self.segmenter, self.model, self.class_map = segmenter, segmenter.model, segmenter.class_map

    def probabilities(self, image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
        # The processor resizes every input to the model's own size, so `scale` has no effect here.
        return self.segmenter.probabilities(image)


class ZeroShotModel:
    """SAM 3 prompted with a noun phrase per class (`seg.sam.concepts.CAMVID_PHRASES`), trained on none
    of CamVid: each pixel goes to the phrase whose best instance covering it scores highest, and to
    "other" where no instance scoring `threshold` or more covers it. Its classes are the phrases' and
    "other"; the scores are normalised per pixel, so their argmax is that rule (not calibrated
    probabilities). The photo is encoded once for every phrase."""

    def __init__(self, concepts, phrases: tuple[str, ...], *, threshold: float = 0.3):
        self.concepts, self.model, self.phrases, self.threshold = concepts, concepts.model, phrases, threshold
        self.class_map = np.arange(len(phrases) + 1, dtype=np.uint8)  # CamVid's order, then "other"

    def probabilities(self, image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
        """`scale` is not used: SAM 3 reads every photo at its own input size."""
        scores = self.concepts.concept_scores(image, list(self.phrases), threshold=self.threshold)
        other = torch.full((1, *scores.shape[1:]), self.threshold)  # below every instance that passed
        scores = torch.cat([scores, other])
        return scores / scores.sum(0, keepdim=True)
