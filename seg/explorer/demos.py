"""The teaching demos, as functions an app (or a notebook) calls.

- `scene_comparison`: FCN-32s vs FCN-8s vs U-Net on one synthetic scene, with boundary F-scores;
  `average_scores`: the same over many scenes.
- `LossRace`: cross-entropy and Dice training side by side on a small foreground.
- `receptive_field`: where a stack of dilated 3x3 convolutions looks, gridding included.
"""

import copy

import numpy as np
import torch

from ..data.synthetic import CLASSES, SyntheticScenes, make_scene
from ..data.transforms import image_to_tensor, normalize
from ..inference import segment
from ..losses import build_loss
from ..metrics import SegmentationMetrics
from ..models import build_model


def new_scene(seed: int, *, size: tuple[int, int] = (128, 128), object_size: float = 0.2):
    """A synthetic `(image, labels)` pair; the seed space is disjoint from the training scenes'."""
    return make_scene(np.random.default_rng([7, seed]), size=size, object_size=object_size)


def scene_comparison(models: dict, image: np.ndarray, labels: np.ndarray, *,
                     boundary_tolerance: int = 1) -> dict[str, dict]:
    """Each model's prediction and scores on one scene: name -> {"labels", "miou", "boundary_f"}.

    models: name -> `seg.explorer.semantic.ScratchModel` (or anything with `.model` and `.input_size`).
    A 1-pixel tolerance makes the boundary F-score sensitive to the blockiness it teaches about.
    """
    results = {}
    for name, entry in models.items():
        pred = segment(entry.model, image, input_size=entry.input_size)
        metrics = SegmentationMetrics(len(CLASSES), boundary_tolerance=boundary_tolerance)
        metrics.update(pred=pred, target=labels)
        scores = metrics.compute()
        results[name] = {"labels": pred, "miou": float(scores.miou), "boundary_f": float(scores.mean_boundary_f)}
    return results


def average_scores(models: dict, seeds, *, boundary_tolerance: int = 1) -> dict[str, dict]:
    """Each model's scores accumulated over the scenes `new_scene(seed)` for `seeds`: name ->
    {"miou", "boundary_f"}. One scene can go against the trend; this is the trend."""
    metrics = {name: SegmentationMetrics(len(CLASSES), boundary_tolerance=boundary_tolerance) for name in models}
    for seed in seeds:
        image, labels = new_scene(seed)
        for name, entry in models.items():
            metrics[name].update(pred=segment(entry.model, image, input_size=entry.input_size), target=labels)
    return {name: {"miou": float(s.miou), "boundary_f": float(s.mean_boundary_f)}
            for name, s in ((name, m.compute()) for name, m in metrics.items())}


class LossRace:
    """Two copies of one small U-Net, trained on the same batches, one with cross-entropy and one
    with Dice, on scenes whose objects are `object_size` of the shorter side (small = a tiny
    foreground). Its state is per user: build one per session; `step` advances both."""

    LOSSES = ("ce", "dice")
    HELD_OUT = 16  # scenes the foreground IoU is measured on, never trained on

    def __init__(self, *, object_size: float = 0.08, size: tuple[int, int] = (48, 48), batch_size: int = 4,
                 lr: float = 3e-3, max_objects: int = 2, seed: int = 0):
        torch.manual_seed(seed)
        first = build_model("unet", num_classes=len(CLASSES), width_mult=0.125)
        self.models = {name: copy.deepcopy(first) for name in self.LOSSES}  # the same start for both
        self.optimizers = {n: torch.optim.Adam(m.parameters(), lr=lr) for n, m in self.models.items()}
        self.loss_fns = {n: build_loss(n) for n in self.LOSSES}
        # few, small objects: the background is ~97% of the pixels, where plain cross-entropy struggles
        self.data = SyntheticScenes(4096, size=size, object_size=object_size, max_objects=max_objects, seed=seed)
        self.val = SyntheticScenes(self.HELD_OUT, size=size, object_size=object_size, max_objects=max_objects,
                                   seed=seed + 1000)
        self.object_size, self.batch_size, self.steps = object_size, batch_size, 0
        self.history: dict[str, list[float]] = {n: [] for n in self.LOSSES}  # training loss per step
        self.iou_history: list[tuple[int, dict[str, float]]] = []  # (step, foreground_iou()) per record_iou

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        start = self.steps * self.batch_size % len(self.data)
        pairs = [self.data.read(i % len(self.data)) for i in range(start, start + self.batch_size)]
        images = torch.stack([normalize(image_to_tensor(image)) for image, _ in pairs])  # (B, 3, H, W)
        masks = torch.stack([torch.from_numpy(mask).long() for _, mask in pairs])  # (B, H, W)
        return images, masks

    def step(self) -> dict[str, float]:
        """One optimisation step of both models on the same batch; returns each loss."""
        images, masks = self._batch()
        losses = {}
        for name, model in self.models.items():
            model.train()
            loss = self.loss_fns[name](model(images), masks)
            self.optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            self.optimizers[name].step()
            losses[name] = loss.item()
            self.history[name].append(loss.item())
        self.steps += 1
        return losses

    def foreground_iou(self) -> dict[str, float]:
        """Each model's mean IoU over the object classes on held-out scenes (background left out,
        since that is the class plain cross-entropy is content to get right)."""
        results = {}
        for name, model in self.models.items():
            model.eval()
            metrics = SegmentationMetrics(len(CLASSES), boundary_tolerance=None)
            for i in range(len(self.val)):
                image, mask = self.val.read(i)
                metrics.update(pred=segment(model, image), target=mask)
            iou = metrics.compute().iou[1:]
            results[name] = float(np.nanmean(iou)) if not np.isnan(iou).all() else 0.0
        return results

    def record_iou(self) -> dict[str, float]:
        """`foreground_iou` now, kept in `iou_history` against the step count (once per step at most)."""
        if self.iou_history and self.iou_history[-1][0] == self.steps:
            return self.iou_history[-1][1]
        iou = self.foreground_iou()
        self.iou_history.append((self.steps, iou))
        return iou

    def predict(self, image: np.ndarray) -> dict[str, np.ndarray]:
        for model in self.models.values():
            model.eval()
        return {name: segment(model, image) for name, model in self.models.items()}


def receptive_field(rates: tuple[int, ...], *, size: int = 41) -> np.ndarray:
    """How many paths lead from each input pixel to the centre output pixel through a stack of
    3x3 convolutions with these dilation rates: `(size, size)` float64 counts, 0 = never seen.

    A single rate-r kernel sees 9 pixels spaced r apart; stacking equal rates (2, 2, 2) leaves a
    regular grid of holes ("gridding"), while rates with no common factor (1, 2, 3) fill them.
    """
    if not rates or min(rates) < 1:
        raise ValueError(f"rates must be positive integers, got {rates}")
    span = sum(2 * r for r in rates) + 1
    if span > size:
        raise ValueError(f"rates {rates} span {span} pixels, more than size={size}")
    field = torch.zeros(1, 1, size, size, dtype=torch.float64)
    field[0, 0, size // 2, size // 2] = 1
    kernel = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    for rate in rates:  # back-propagate the centre through each layer: a transposed dilated conv
        field = torch.nn.functional.conv2d(field, kernel, padding=rate, dilation=rate)
    return field[0, 0].numpy()


def receptive_heatmap(field: np.ndarray) -> np.ndarray:
    """A `receptive_field` as an `(size, size, 3) uint8` picture: pixels the centre sees in green,
    brighter where more paths lead from them; pixels it never sees black."""
    seen = (255 * (field > 0)).astype(np.uint8)
    return np.stack([seen, (255 * field / field.max()).astype(np.uint8), seen // 3], axis=-1)
