"""The model registry: every from-scratch architecture, built by name.

>>> model = build_model("unet", num_classes=11, width_mult=0.5)

Variants that differ only in a few arguments (FCN-32s and FCN-8s) share one class and differ
here. Every model maps `(B, 3, H, W)` normalised images to `(B, num_classes, H, W)` logits.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

from torch import nn

from .deeplabv3 import DeepLabV3
from .fcn import FCN
from .segformer import SegFormer
from .unet import UNet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "fcn32s": partial(FCN, skips=()),
    "fcn8s": partial(FCN, skips=("layer3", "layer2")),
    "unet": UNet,
    "deeplabv3": DeepLabV3,
    "segformer_b0": SegFormer,  # builds with transformers (imported only then)
}


def build_model(name: str, *, num_classes: int, **kwargs: Any) -> nn.Module:
    """Build the architecture `name` with random weights; `kwargs` go to its constructor.

    Raises ValueError for an unknown name or an argument the architecture does not take.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    try:
        return MODELS[name](num_classes=num_classes, **kwargs)
    except TypeError as error:  # an unexpected keyword: say which model refused it
        raise ValueError(f"model {name!r} does not accept these arguments {kwargs}: {error}") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
