"""Refining a prediction after the network: test-time augmentation and a fully connected CRF.

Both work on class probabilities `(C, H, W)` at the image's size, so they apply to any model that
can give them (see `seg.explorer.zoo`), and both return probabilities, so they can be chained.
"""

from collections.abc import Callable

import numpy as np
import torch

# predict(image, scale) -> (C, H, W) float32 probabilities at the image's size, for the model run
# at `scale` times its usual input size.
Predictor = Callable[[np.ndarray, float], torch.Tensor]


def tta_probabilities(predict: Predictor, image: np.ndarray, *, flips: bool = True,
                      scales: tuple[float, ...] = (1.0,)) -> torch.Tensor:
    """Mean probabilities over scales x (image, mirrored image); the mirrored prediction is
    mirrored back first. image: `(H, W, 3) uint8`. Returns `(C, H, W)` float32."""
    if not scales or min(scales) <= 0:
        raise ValueError(f"scales must be positive factors such as (0.75, 1.0, 1.25), got {scales}")
    total, runs = None, 0
    for scale in scales:
        views = [(image, False)] + ([(np.ascontiguousarray(image[:, ::-1]), True)] if flips else [])
        for view, mirrored in views:
            probs = predict(view, scale)
            probs = probs.flip(-1) if mirrored else probs
            total = probs if total is None else total + probs
            runs += 1
    return total / runs


def dense_crf(image: np.ndarray, probs: torch.Tensor | np.ndarray, *, iterations: int = 5,
              smoothness: tuple[float, float] = (3.0, 3.0),
              appearance: tuple[float, float, float] = (60.0, 10.0, 6.0)) -> np.ndarray:
    """Refine probabilities with a fully connected CRF (Krähenbühl and Koltun, 2011; `pydensecrf2`).

    image: `(H, W, 3) uint8`; probs: `(C, H, W)`. Returns `(C, H, W)` float32 refined marginals.
    smoothness: (sxy, weight) of the position-only kernel, which removes isolated pixels.
    appearance: (sxy, srgb, weight) of the bilateral kernel: nearby pixels of similar colour take
    the same label, which snaps boundaries to image edges. The defaults suit 360x480 street
    scenes; they are in pixels, so they grow with the image.
    """
    import pydensecrf.densecrf as dcrf  # optional dependency: only this function needs it

    probs = probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else np.asarray(probs)
    classes, height, width = probs.shape
    if image.shape[:2] != (height, width):
        raise ValueError(f"image is {image.shape[:2]} but probabilities are {(height, width)}: same size needed")
    crf = dcrf.DenseCRF2D(width, height, classes)
    unary = -np.log(np.clip(probs, 1e-8, 1.0)).reshape(classes, -1)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=smoothness[0], compat=smoothness[1])
    # a copy: pydensecrf's Cython signature wants a writable buffer, and a cached photo is read-only
    crf.addPairwiseBilateral(sxy=appearance[0], srgb=appearance[1], rgbim=np.array(image, dtype=np.uint8, order="C"),
                             compat=appearance[2])
    marginals = np.array(crf.inference(iterations), dtype=np.float32)
    return marginals.reshape(classes, height, width)
