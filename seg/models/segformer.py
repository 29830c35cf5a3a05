"""SegFormer-B0 (a Mix Transformer encoder and an all-MLP decoder), built from a config with random weights.

It is the from-scratch counterpart of the pretrained SegFormer: the same architecture as
`nvidia/segformer-b0-*`, trained on our data only, to show what a transformer does without
pretraining on 367 images. transformers is imported when this model is built, never by
`import seg`.

`forward` returns logits at the input size (like every model in the registry): SegFormer's own
logits are at 1/4 resolution and are resized bilinearly, as its post-processing does.
Shipped weights use transformers' own layout, so one copy serves both worlds:
`save_pretrained_folder` writes the `save_pretrained` folder that `seg.pretrained.SegFormer`
loads, and `load_pretrained_folder` (used by `seg.checkpoint.load_model` for a folder) reads it
back into this class.
"""

import os
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn

from ..data.transforms import MEAN, STD

# MiT-B0: four stages, 2 blocks each; sequence reduction shrinks keys/values so attention stays cheap.
B0 = dict(hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2], num_attention_heads=[1, 2, 5, 8],
          sr_ratios=[8, 4, 2, 1], decoder_hidden_size=256)


class SegFormer(nn.Module):
    """`(B, 3, H, W)` normalised images -> `(B, num_classes, H, W)` logits."""

    def __init__(self, *, num_classes: int, drop_path_rate: float = 0.1):
        super().__init__()
        from transformers import SegformerConfig, SegformerForSemanticSegmentation

        config = SegformerConfig(num_labels=num_classes, drop_path_rate=drop_path_rate, **B0)
        net = SegformerForSemanticSegmentation(config)
        self.config = config
        self.segformer, self.decode_head = net.segformer, net.decode_head  # transformers' parameter names

    def forward(self, x: Tensor) -> Tensor:
        features = self.segformer(x, output_hidden_states=True).hidden_states  # 4 scales, 1/4 to 1/32
        logits = self.decode_head(features)  # (B, C, H/4, W/4)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def save_pretrained_folder(model: SegFormer, folder: str | os.PathLike, *, classes: list[str],
                           input_size: tuple[int, int]) -> Path:
    """Write `model` as a transformers folder (config with class names, weights, image processor).

    input_size: (h, w) the model was trained at; the processor resizes every image to it and
    normalises with the statistics our training used.
    """
    from transformers import SegformerForSemanticSegmentation, SegformerImageProcessor

    folder = Path(folder)
    config = model.config
    config.id2label = dict(enumerate(classes))
    config.label2id = {name: i for i, name in enumerate(classes)}
    net = SegformerForSemanticSegmentation(config)
    net.load_state_dict(model.state_dict())
    net.save_pretrained(folder)
    processor = SegformerImageProcessor(size={"height": input_size[0], "width": input_size[1]},
                                        image_mean=list(MEAN), image_std=list(STD), do_reduce_labels=False)
    processor.save_pretrained(folder)
    return folder


def load_pretrained_folder(folder: str | os.PathLike) -> SegFormer:
    """A `save_pretrained` folder (as written by `save_pretrained_folder`) as a SegFormer module."""
    from transformers import SegformerForSemanticSegmentation

    net = SegformerForSemanticSegmentation.from_pretrained(folder, local_files_only=True)
    model = SegFormer(num_classes=net.config.num_labels)
    model.load_state_dict(net.state_dict())  # the same module names in memory
    return model
