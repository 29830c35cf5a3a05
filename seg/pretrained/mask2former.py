"""Mask2Former (transformers' Mask2FormerForUniversalSegmentation), the "universal" model: a set of
mask queries, each with a class, instead of a class per pixel. Semantic checkpoints by Hub id or
local folder, behind the same interface as SegFormer:

    m2f = Mask2FormerSegmenter.load("facebook/mask2former-swin-tiny-cityscapes-semantic")
    result = m2f.segment(image)                # labels (H, W) at the image's size + class names
    camvid = result.to_camvid()                # CamVid's 11 classes (+ "other"), SegFormer's tables

Semantic post-processing is the image processor's own: each query's class probabilities (without
the "no object" class) weight its mask's sigmoid, summed over the queries, then resized to the
target and the argmax taken. The per-class sums are not probabilities; `probabilities` divides
them by their total per pixel, which keeps the argmax.

Large inputs: the processor resizes the image so its shorter side is the checkpoint's
`shortest_edge` (its longer side capped at `longest_edge`), so the network's cost does not grow
with the upload; the post-processing is bounded at `hub_segmenter.MAX_SIDE`, like SegFormer's.
"""

import torch

from .hub_segmenter import HubSegmenter

KNOWN_MODELS = {  # hub id -> label space of its classes (the swin-tiny semantic checkpoints: the small ones)
    "facebook/mask2former-swin-tiny-cityscapes-semantic": "cityscapes",
    "facebook/mask2former-swin-tiny-ade-semantic": "ade20k",
}


class Mask2FormerSegmenter(HubSegmenter):
    model_class = "Mask2FormerForUniversalSegmentation"
    family = "Mask2Former"

    known_models = KNOWN_MODELS

    @staticmethod
    def normalise(scores: torch.Tensor) -> torch.Tensor:
        return scores / scores.sum(0, keepdim=True).clamp_min(1e-12)
