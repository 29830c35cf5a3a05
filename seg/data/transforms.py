"""Paired augmentations: every geometric change applied to the image is applied to its mask.

A pipeline starts from `ToTensors` (numpy uint8 image and mask -> tensors) and ends with
`Normalize`. In between, images are `(3, H, W) float` in [0, 1] and masks `(H, W) int64`.
Images are resampled bilinearly, masks with nearest neighbour (a blend of two class ids is no
class at all); regions uncovered by padding get the ignore label, so they are not trained on.
"""

import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..labels import IGNORE_INDEX
from .io import check_image

# Per-channel statistics of ordinary photos (ImageNet's), used to centre the inputs. Any fixed
# values work for from-scratch training; what matters is that training and inference agree,
# which is why `image_to_tensor` is the one place both go through.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

Pair = tuple[Tensor, Tensor]


def image_to_tensor(image: np.ndarray) -> Tensor:
    """`(H, W, 3) uint8 RGB` -> `(3, H, W) float32` in [0, 1]."""
    check_image(image)
    return torch.from_numpy(np.array(image, copy=not image.flags.writeable)).permute(2, 0, 1).float().div_(255)


def normalize(image: Tensor) -> Tensor:
    """`(3, H, W)` or `(B, 3, H, W)` float in [0, 1] -> the model's input scale."""
    mean = image.new_tensor(MEAN).view(-1, 1, 1)
    std = image.new_tensor(STD).view(-1, 1, 1)
    return (image - mean) / std


def resize_image(image: Tensor, size: tuple[int, int]) -> Tensor:
    """`(3, H, W)` float in [0, 1] -> `(3, *size)`, bilinear with antialiasing (no aliasing when shrinking)."""
    image = F.interpolate(image[None], size=tuple(size), mode="bilinear", align_corners=False, antialias=True)[0]
    return image.clamp_(0, 1)


def resize_pair(image: Tensor, mask: Tensor, size: tuple[int, int]) -> Pair:
    """Resize to `size` (H, W): bilinear for the image, nearest for the mask."""
    mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()
    return resize_image(image, size), mask


class Compose:
    def __init__(self, transforms: list):
        self.transforms = transforms

    def __call__(self, image, mask):
        for transform in self.transforms:
            image, mask = transform(image, mask)
        return image, mask


class ToTensors:
    """`(H, W, 3) uint8` image and `(H, W)` integer mask -> `(3, H, W) float` in [0, 1] and `(H, W) int64`."""

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> Pair:
        if image.shape[:2] != mask.shape:
            raise ValueError(f"image is {image.shape[:2]} but mask is {mask.shape}: they must be the same size")
        return image_to_tensor(image), torch.from_numpy(np.asarray(mask, dtype=np.int64))


class Resize:
    """Resize both to a fixed (H, W): reduced-resolution training and evaluation."""

    def __init__(self, size: tuple[int, int]):
        self.size = tuple(size)

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        return resize_pair(image, mask, self.size)


class ResizeImage:
    """Resize the image only, keeping the mask at full size: evaluation scores the prediction,
    upsampled back, against the original labels."""

    def __init__(self, size: tuple[int, int]):
        self.size = tuple(size)

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        return resize_image(image, self.size), mask


class RandomScale:
    """Rescale both by a factor drawn uniformly from [min_scale, max_scale]."""

    def __init__(self, min_scale: float = 0.5, max_scale: float = 2.0):
        if not 0 < min_scale <= max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {min_scale}, {max_scale}")
        self.min_scale, self.max_scale = min_scale, max_scale

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        scale = random.uniform(self.min_scale, self.max_scale)
        h, w = mask.shape
        return resize_pair(image, mask, (max(1, round(h * scale)), max(1, round(w * scale))))


class RandomCrop:
    """Crop both at one random (H, W) window; pad first where the image is smaller (mask with ignore).

    Class-uniform crops: with `focus` (class ids), a `focus_share` of the windows is placed around one
    pixel of one focus class present in the mask, the class drawn uniformly among those present, so a
    class of thin or rare objects (a pole: 1% of CamVid's pixels) is in view as often as a common one.
    The rest, and every window of a mask with no focus class, fall anywhere."""

    def __init__(self, size: tuple[int, int], *, focus: tuple[int, ...] = (), focus_share: float = 0.0):
        if not 0 <= focus_share <= 1:
            raise ValueError(f"focus_share is a share of the crops, 0 to 1, not {focus_share}")
        self.size, self.focus, self.focus_share = tuple(size), tuple(focus), focus_share

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        ch, cw = self.size
        h, w = mask.shape
        pad_h, pad_w = max(0, ch - h), max(0, cw - w)
        if pad_h or pad_w:
            image = F.pad(image, (0, pad_w, 0, pad_h), value=0.0)
            mask = F.pad(mask, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
            h, w = mask.shape
        top, left = self.corner(mask)
        return image[:, top:top + ch, left:left + cw], mask[top:top + ch, left:left + cw]

    def corner(self, mask: Tensor) -> tuple[int, int]:
        """The window's top-left corner in `mask` (at least the window's size)."""
        (ch, cw), (h, w) = self.size, mask.shape
        if self.focus and random.random() < self.focus_share:
            present = [c for c in self.focus if bool((mask == c).any())]
            if present:
                ys, xs = torch.nonzero(mask == random.choice(present), as_tuple=True)
                i = random.randrange(len(ys))
                y, x = int(ys[i]), int(xs[i])  # any window that holds this pixel
                return random.randint(max(0, y - ch + 1), min(h - ch, y)), random.randint(max(0, x - cw + 1),
                                                                                          min(w - cw, x))
        return random.randint(0, h - ch), random.randint(0, w - cw)


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        if random.random() < self.p:
            return image.flip(-1), mask.flip(-1)
        return image, mask


class ColorJitter:
    """Random brightness, contrast and saturation factors in [1 - x, 1 + x]; the mask is untouched."""

    def __init__(self, brightness: float = 0.3, contrast: float = 0.3, saturation: float = 0.3):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        image = image * random.uniform(1 - self.brightness, 1 + self.brightness)
        mean = image.mean()
        image = (image - mean) * random.uniform(1 - self.contrast, 1 + self.contrast) + mean
        gray = (image * image.new_tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
        image = (image - gray) * random.uniform(1 - self.saturation, 1 + self.saturation) + gray
        return image.clamp(0, 1), mask


class Normalize:
    def __call__(self, image: Tensor, mask: Tensor) -> Pair:
        return normalize(image), mask


def train_transform(*, crop_size: tuple[int, int], scale_range: tuple[float, float] = (0.5, 2.0),
                    resize: tuple[int, int] | None = None, jitter: float = 0.3, focus: tuple[int, ...] = (),
                    focus_share: float = 0.0) -> Compose:
    """The training pipeline: [resize], random scale, crop (`focus_share` of them around a `focus` class:
    `RandomCrop`), flip, colour jitter, normalise."""
    steps = [ToTensors()] + ([Resize(resize)] if resize else [])
    steps += [RandomScale(*scale_range), RandomCrop(crop_size, focus=focus, focus_share=focus_share),
              RandomHorizontalFlip()]
    steps += [ColorJitter(jitter, jitter, jitter)] if jitter > 0 else []
    return Compose(steps + [Normalize()])


def eval_transform(*, resize: tuple[int, int] | None = None) -> Compose:
    """The evaluation pipeline: [resize the image, not the mask], normalise. No randomness."""
    return Compose([ToTensors()] + ([ResizeImage(resize)] if resize else []) + [Normalize()])

