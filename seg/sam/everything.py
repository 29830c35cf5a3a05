"""SAM's automatic masks ("everything"): a grid of point prompts, decoded in batches, filtered and
de-duplicated on the decoder's low-resolution logits, and only the masks kept are enlarged.

The steps and settings are those of segment-anything's `SamAutomaticMaskGenerator` with one crop
and no small-region clean-up: three masks per point, kept when their predicted IoU passes
`pred_iou_thresh` and their stability (the IoU of the mask thresholded at logit -1 and +1) passes
`stability_score_thresh`, then non-maximum suppression on their boxes at `box_nms_thresh`. The
generator measures stability and boxes on masks enlarged to the image's size, for every prompt;
here they are measured on the 256x256 logits, where a pixel is 4 of the encoder's input pixels,
and the enlarging (most of its time) is left to the few masks that survive.

    masks = everything(sam, image, Everything(points_per_side=8))   # SAM masks as dicts, best first
    masks = everything(sam, image, Everything(points_per_side=8, coarse=4))  # 4x4, then where nothing was found

The decoder's work is per prompt (its two-way attention runs over the 4,096 image tokens for each
one), so a batch saves little of it; what it saves is the Python and session overhead per prompt.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data.io import coco_box, mask_box
from ..deadline import check
from .onnx_decoder import BatchGraph


@dataclass(frozen=True)
class Everything:
    """Settings, with segment-anything's defaults where it has them (its grid is 32 per side)."""

    points_per_side: int = 8
    pred_iou_thresh: float = 0.88  # keep a mask whose predicted IoU is above this (0: keep all)
    stability_score_thresh: float = 0.95  # keep a mask at least this stable (0: keep all)
    stability_score_offset: float = 1.0  # the logit offset stability is measured at
    box_nms_thresh: float = 0.7  # of two masks whose boxes overlap more than this, keep the better
    max_masks: int = 64
    batch: int = 16  # prompts per decoder run
    coarse: int | None = None  # first a grid this many per side, then only the fine grid's uncovered points

    def __post_init__(self):
        if self.points_per_side < 1 or self.max_masks < 1 or self.batch < 1:
            raise ValueError("points_per_side, max_masks and batch must be at least 1")
        if self.coarse is not None and not 1 <= self.coarse < self.points_per_side:
            raise ValueError(f"coarse must be between 1 and points_per_side - 1, got {self.coarse}")


def point_grid(points_per_side: int, size: tuple[int, int]) -> np.ndarray:
    """(n*n, 2) x, y at the centres of an n x n grid of cells over an image of `size` (H, W), in its pixels."""
    n = points_per_side
    centres = (np.arange(n) + 0.5) / n
    xs, ys = np.meshgrid(centres * size[1], centres * size[0])
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def stability(logits: np.ndarray, threshold: float, offset: float) -> np.ndarray:
    """(M,) the IoU of each (M, h, w) mask cut at `threshold + offset` and at `threshold - offset`."""
    inner = (logits > threshold + offset).sum((1, 2))
    outer = (logits > threshold - offset).sum((1, 2))
    return inner / np.maximum(outer, 1)


def boxes_of(masks: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """(M, 4) x0, y0, x1, y1 (inclusive) of (M, h, w) low-resolution masks in an image's pixels, where
    `scale` is (sx, sy), the image over the encoder's input frame (a low-resolution pixel covers 4x4
    input pixels); (0, 0, 0, 0) for an empty mask."""
    sx, sy = 4 * scale[0], 4 * scale[1]
    boxes = np.zeros((len(masks), 4))
    for i, mask in enumerate(masks):
        box = mask_box(mask)
        if box is not None:
            boxes[i] = box[0] * sx, box[1] * sy, (box[2] + 1) * sx - 1, (box[3] + 1) * sy - 1
    return boxes


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the boxes kept, best score first: each box is dropped when it overlaps a better
    kept one by more than `threshold` (IoU of xyxy boxes, as torchvision's `nms` measures them)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if kept:
            k = np.array(kept)
            w = np.clip(np.minimum(boxes[k, 2], boxes[i, 2]) - np.maximum(boxes[k, 0], boxes[i, 0]), 0, None)
            h = np.clip(np.minimum(boxes[k, 3], boxes[i, 3]) - np.maximum(boxes[k, 1], boxes[i, 1]), 0, None)
            union = area[k] + area[i] - w * h
            if (w * h / np.where(union > 0, union, 1) > threshold).any():
                continue
        kept.append(i)
    return np.array(kept, dtype=int)


def everything(sam, image: np.ndarray, settings: Everything = Everything(), *, decode=None,
               digest: str | None = None) -> list[dict]:
    """SAM's automatic masks on `(H, W, 3) uint8` image, best predicted IoU first, at most
    `settings.max_masks`: dicts with "segmentation" ((H, W) bool), "area", "bbox" (x, y, w, h),
    "predicted_iou", "stability_score", "point_coords" ([[x, y]], the prompt) and "choice" (which of
    the three masks at that point it is, best predicted IoU first, as `Sam.predict` orders them).

    sam: a `seg.sam.model.Sam` (its embedding cache is used); decode: a callable like
    `BatchGraph.forward` on numpy arrays (ONNX Runtime's `BatchDecoder`), else the model's own in PyTorch;
    digest: `image_digest(image)` where the caller has it.
    """
    embedding = sam.embed(image, digest=digest)
    h, w = embedding.original_size
    to_input, valid = embedding.to_input, embedding.low_res_size
    threshold = sam.model.mask_threshold
    decode = decode or torch_decoder(sam.model)
    features = embedding.features.cpu().numpy()

    def run(points: np.ndarray) -> dict[str, np.ndarray]:
        """Decode `points` (P, 2) in batches; the masks that pass both filters, with what they need."""
        kept = {"logits": [], "iou": [], "stability": [], "point": [], "choice": []}
        for start in range(0, len(points), settings.batch):
            batch = points[start:start + settings.batch]
            coords = np.zeros((len(batch), 2, 2), np.float32)  # each point, then SAM's padding point
            coords[:, 0] = batch * to_input
            labels = np.tile(np.array([1, -1], np.float32), (len(batch), 1))
            check()  # ONNX Runtime runs no torch module, so the job's deadline is checked here
            iou, low = decode(features, coords, labels)  # (B, 3), (B, 3, 256, 256)
            choice = (-iou).argsort(1, kind="stable").argsort(1).reshape(-1)  # each mask's rank at its point
            iou, low = iou.reshape(-1), low[:, :, :valid[0], :valid[1]].reshape(-1, *valid)
            keep = iou > settings.pred_iou_thresh if settings.pred_iou_thresh > 0 else np.ones(len(iou), bool)
            score = stability(low[keep], threshold, settings.stability_score_offset)
            steady = score >= settings.stability_score_thresh if settings.stability_score_thresh > 0 \
                else np.ones(len(score), bool)
            for name, values in (("logits", low[keep]), ("iou", iou[keep]), ("point", np.repeat(batch, 3,
                                                                                                axis=0)[keep]),
                                 ("choice", choice[keep])):
                kept[name].append(values[steady])
            kept["stability"].append(score[steady])
        return {name: np.concatenate(values) if values else np.zeros(0) for name, values in kept.items()}

    if settings.coarse is None:
        found = run(point_grid(settings.points_per_side, (h, w)))
    else:  # a coarse grid, then the fine grid's points that no mask found so far covers
        found = run(point_grid(settings.coarse, (h, w)))
        fine = point_grid(settings.points_per_side, (h, w))
        covered = (found["logits"] > threshold).any(0) if len(found["logits"]) else np.zeros(valid, bool)
        cells = np.minimum((fine * to_input / 4).astype(int), np.array(valid)[::-1] - 1)  # x, y low-res pixel
        more = run(fine[~covered[cells[:, 1], cells[:, 0]]])
        found = {name: np.concatenate([found[name], more[name]]) if len(more[name]) else found[name]
                 for name in found}
    if not len(found["iou"]):
        return []
    logits = found["logits"]
    order = non_max_suppression(boxes_of(logits > threshold, tuple(1 / to_input)), found["iou"],
                                settings.box_nms_thresh)[:settings.max_masks]
    masks = enlarge(sam.model, logits[order], embedding.input_size, (h, w))
    results = []
    for i, mask in zip(order, masks):
        results.append({"segmentation": mask, "area": int(mask.sum()), "bbox": coco_box(mask),
                        "predicted_iou": float(found["iou"][i]), "stability_score": float(found["stability"][i]),
                        "point_coords": [found["point"][i].tolist()], "choice": int(found["choice"][i])})
    return results


def torch_decoder(model: nn.Module):
    """`BatchGraph` run by PyTorch, on numpy arrays: where no ONNX export is at hand."""
    graph = BatchGraph(model).eval()

    def decode(features, coords, labels):
        with torch.inference_mode():
            iou, low = graph(torch.from_numpy(features), torch.from_numpy(coords), torch.from_numpy(labels))
        return iou.numpy(), low.numpy()
    return decode


def enlarge(model: nn.Module, logits: np.ndarray, input_size: tuple[int, int], size: tuple[int, int], *,
            chunk_pixels: int = 1 << 24) -> list[np.ndarray]:
    """(M, h, w) low-resolution logits (cut to the image's part) as (H, W) bool masks at `size`, by
    SAM's own `postprocess_masks` (to the encoder's padded frame, cut to `input_size`, then to `size`),
    as many masks at a time as make `chunk_pixels` float32 pixels at `size` (64 MiB; at least one):
    eight at a time was 1.6 GB of floats for a 50 MP photo, on top of the masks kept."""
    chunk = max(1, min(8, chunk_pixels // (size[0] * size[1])))
    side = model.image_encoder.img_size // 4
    padded = np.zeros((len(logits), 1, side, side), np.float32)
    padded[:, 0, :logits.shape[1], :logits.shape[2]] = logits
    out = []
    with torch.inference_mode():
        for start in range(0, len(padded), chunk):
            x = model.postprocess_masks(torch.from_numpy(padded[start:start + chunk]), input_size, size)
            out += list((x[:, 0] > model.mask_threshold).numpy())
    return out
