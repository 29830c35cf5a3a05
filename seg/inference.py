"""From an image to a label map: normalise, run the model, resize the logits, then take the argmax."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.transforms import image_to_tensor, normalize, resize_image
from .prior import adjust


def upsample_logits(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """`(B, C, h, w)` logits -> `(B, C, H, W)`, bilinear.

    Resizing the logits and then taking the argmax keeps boundaries smooth and sub-pixel
    accurate; taking the argmax first and resizing labels would make them blocky.
    """
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def working_size(image_size: tuple[int, int], input_size: tuple[int, int] | None) -> tuple[int, int]:
    """The (h, w) to run a model at: as many pixels as `input_size` (a card's training size), in the
    image's own shape, so a portrait photo or a panorama is scaled, never stretched. An image of the
    card's shape runs at exactly `input_size` (CamVid's 4:3 photos at 360x480); None keeps the image's size.
    """
    if input_size is None:
        return tuple(image_size)
    (h, w), area = image_size, input_size[0] * input_size[1]
    return max(1, round(math.sqrt(area * h / w))), max(1, round(math.sqrt(area * w / h)))


@torch.inference_mode()
def predict_logits(model: nn.Module, image: np.ndarray, *, input_size: tuple[int, int] | None = None,
                   logit_offsets: Tensor | None = None) -> Tensor:
    """Logits `(1, C, H, W)` float32 at the image's own size, on the model's device.

    image: `(H, W, 3) uint8 RGB`. input_size: (h, w) the model runs at, e.g. the resolution it
    was trained at (a model card's `input_size`); None runs at the image's size. logit_offsets:
    `(C,)` subtracted from the logits (a card's logit adjustment, `seg.prior.card_offsets`) or None.
    The model must already be in eval mode.
    """
    device = next(model.parameters()).device
    x = image_to_tensor(image)  # (3, H, W)
    if input_size is not None and tuple(input_size) != image.shape[:2]:
        x = resize_image(x, input_size)  # the resize evaluation uses (seg.data.transforms.eval_transform)
    logits = model(normalize(x)[None].to(device))
    return adjust(upsample_logits(logits.float(), image.shape[:2]), logit_offsets)


def segment(model: nn.Module, image: np.ndarray, *, input_size: tuple[int, int] | None = None,
            logit_offsets: Tensor | None = None) -> np.ndarray:
    """Label map `(H, W) uint8` for an `(H, W, 3) uint8 RGB` image (see `predict_logits`)."""
    logits = predict_logits(model, image, input_size=input_size, logit_offsets=logit_offsets)
    return logits[0].argmax(0).byte().cpu().numpy()
