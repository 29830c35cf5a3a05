"""SegFormer (transformers' SegformerForSemanticSegmentation) by Hub id or local folder.

    segformer = SegFormerSegmenter.load("nvidia/segformer-b0-finetuned-cityscapes-1024-1024")
    result = segformer.segment(image)          # labels (H, W) at the image's size + class names
    camvid = result.to_camvid()                # the same map in CamVid's 11 classes (+ "other")

The model's own post-processing is used (see `hub_segmenter`): logits (1/4 of the processed size)
are resized bilinearly to the target size, then the argmax is taken. Large inputs: the processor
resizes every image to the model's training size (512x512 or 1024x1024); the post-processing is
bounded at `hub_segmenter.MAX_SIDE`.
"""

import torch

from .hub_segmenter import HubSegmenter

KNOWN_MODELS = {  # hub id -> label space of its classes
    "nvidia/segformer-b0-finetuned-ade-512-512": "ade20k",
    "nvidia/segformer-b0-finetuned-cityscapes-1024-1024": "cityscapes",
}


class SegFormerSegmenter(HubSegmenter):
    model_class = "SegformerForSemanticSegmentation"
    family = "SegFormer"

    known_models = KNOWN_MODELS

    @staticmethod
    def normalise(scores: torch.Tensor) -> torch.Tensor:
        return scores.softmax(0)  # the scores are the resized logits
