"""One training epoch and one evaluation pass, for any model, loss and loader; and the logit
adjustment's tau swept in one pass (`python -m seg.cli.tau`)."""

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .inference import upsample_logits
from .metrics import BOUNDARY_TOLERANCE, SegmentationMetrics, SegmentationScores
from .prior import adjust, prior_offsets


def train_one_epoch(model: nn.Module, loader: DataLoader, *, loss_fn: Callable[[Tensor, Tensor], Tensor],
                    optimizer: torch.optim.Optimizer, lr_at: Callable[[int], float], step: int,
                    scaler: torch.amp.GradScaler | None = None, amp_dtype: torch.dtype | None = None,
                    progress: bool = True, desc: str = "train",
                    teacher: nn.Module | None = None) -> tuple[float, int]:
    """Train over `loader` once; returns (mean loss, global step after the epoch).

    lr_at: learning rate for a global step (set before every step). amp_dtype: autocast dtype
    (CUDA mixed precision) or None; scaler: a GradScaler when that dtype is float16.
    teacher: a frozen model whose log-probabilities on the same batch are the loss's third argument
    (`seg.distill`); None: the loss takes (logits, masks).
    Loader items: images `(B, 3, H, W)` float, masks `(B, H, W)` int64.
    """
    device = next(model.parameters()).device
    model.train()
    total, batches = 0.0, 0
    bar = tqdm(loader, desc=desc, disable=not progress, leave=False)
    for images, masks in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images)  # (B, C, H, W)
            if teacher is not None:
                with torch.no_grad():  # not inference_mode: the loss keeps the teacher's output for backward
                    taught = upsample_logits(teacher(images).float(), logits.shape[-2:])
        # losses in float32: softmax sums are fragile in half
        loss = loss_fn(logits.float(), masks) if teacher is None else loss_fn(logits.float(), masks, taught)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"the loss became {loss.item()} at step {step}: lower --lr")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        step += 1
        total, batches = total + loss.item(), batches + 1
        bar.set_postfix(loss=f"{total / batches:.4f}")
    return total / max(batches, 1), step


@torch.inference_mode()
def evaluate(model: nn.Module, loader: DataLoader, *, num_classes: int,
             boundary_tolerance: int | None = BOUNDARY_TOLERANCE,
             amp_dtype: torch.dtype | None = None, progress: bool = True, desc: str = "eval",
             logit_offsets: Tensor | None = None, flip: bool = False) -> SegmentationScores:
    """Score the model over `loader`, whose masks may be larger than its images: logits are
    upsampled to each mask's size before the argmax, so scores are always at label resolution.

    logit_offsets: `(C,)` subtracted from every pixel's logits first (see `seg.prior`), or None.
    flip: test-time augmentation: average the logits of each image and of its mirror image.
    """
    device = next(model.parameters()).device
    model.eval()
    metrics = SegmentationMetrics(num_classes, boundary_tolerance=boundary_tolerance)
    for images, masks in tqdm(loader, desc=desc, disable=not progress, leave=False):
        images = images.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(images).float()
            if flip:
                logits = (logits + model(images.flip(-1)).float().flip(-1)) / 2
        masks = masks.to(device, non_blocking=True)
        logits = adjust(upsample_logits(logits, masks.shape[-2:]), logit_offsets)
        metrics.update(pred=logits.argmax(1), target=masks)
    return metrics.compute()


@torch.inference_mode()
def tau_sweep(model: nn.Module, loader: DataLoader, *, weights, taus, num_classes: int,
          progress: bool = True) -> dict[float, float]:
    """mIoU for each tau, from one pass of the model over `loader` (logits computed once per batch)."""
    device = next(model.parameters()).device
    model.eval()
    metrics = {tau: SegmentationMetrics(num_classes, boundary_tolerance=None) for tau in taus}
    offsets = {tau: prior_offsets(weights, tau) for tau in taus}
    for images, masks in tqdm(loader, desc="sweep", disable=not progress, leave=False):
        logits = upsample_logits(model(images.to(device)).float(), masks.shape[-2:])
        masks = masks.to(device)
        for tau in taus:
            metrics[tau].update(pred=adjust(logits, offsets[tau]).argmax(1), target=masks)
    return {tau: metrics[tau].compute().miou for tau in taus}
