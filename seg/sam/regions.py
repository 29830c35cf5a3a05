"""SAM as the decoder that refines a semantic model's regions (`seg.sam.refine.RegionDecoder`):
each prompt a box and a positive point inside it, decoded in batches by the batched decoder of
"find every object" (ONNX Runtime's where the decoder was exported, else PyTorch's), compared on
SAM's 256x256 low-resolution logits; only the masks chosen are enlarged to the photo's size.

    decoder = SamRegions(sam, image)            # the photo's embedding: from the cache, or made now
    logits = decoder.candidates(boxes, points)  # (R, 3, h, w), SAM's order
    masks = decoder.full_size(logits[:, 0])     # (R, H, W) bool
"""

import numpy as np

from ..deadline import check
from .everything import enlarge, stability
from .rules import BOX_CORNER_LABELS, POINT_LABELS

BATCH = 16  # prompts per decoder run, as "find every object" sends them
STABILITY_OFFSET = 1.0  # SAM's: a mask's stability is its IoU cut at logit -1 and +1


class SamRegions:
    """SAM's answers to box-and-point prompts on one `(H, W, 3) uint8` image. `scores` and
    `stability` hold the predicted IoU and the stability score `(R, 3)` of the last `candidates`'
    masks. digest: `image_digest(image)` where known."""

    def __init__(self, sam, image: np.ndarray, *, digest: str | None = None, batch: int = BATCH):
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.sam, self.batch = sam, batch
        self.embedding = sam.embed(image, digest=digest)
        self.scores = self.stability = np.zeros((0, 3), np.float32)

    def candidates(self, boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
        scale, valid = self.embedding.to_input, self.embedding.low_res_size
        boxes, points = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(points, np.float64).reshape(-1, 2)
        coords = np.stack([points, boxes[:, :2], boxes[:, 2:]], axis=1) * scale  # (R, 3, 2): point, two corners
        labels = np.tile(np.array([POINT_LABELS["positive"], *BOX_CORNER_LABELS], np.float32), (len(points), 1))
        decode, features = self.sam.batch_decoder(), self.embedding.features.cpu().numpy()
        threshold = self.sam.model.mask_threshold
        scores, logits = [], []
        for start in range(0, len(points), self.batch):
            check()  # ONNX Runtime runs no torch module, so the job's deadline is checked here
            iou, low = decode(features, coords[start:start + self.batch].astype(np.float32),
                              labels[start:start + self.batch])
            scores.append(iou)
            logits.append(low[:, :, :valid[0], :valid[1]] - threshold)
        if not scores:
            self.scores = self.stability = np.zeros((0, 3), np.float32)
            return np.zeros((0, 3, *valid), np.float32)
        self.scores, logits = np.concatenate(scores), np.concatenate(logits)
        self.stability = stability(logits.reshape(-1, *valid), 0.0, STABILITY_OFFSET).reshape(-1, 3)
        return logits

    def full_size(self, logits: np.ndarray) -> np.ndarray:
        """`candidates` are shifted by SAM's mask threshold (a mask is logits > 0): shifted back here."""
        shifted = np.asarray(logits, np.float32) + self.sam.model.mask_threshold
        masks = enlarge(self.sam.model, shifted, self.embedding.input_size,
                        self.embedding.original_size)
        return np.stack(masks) if masks else np.zeros((0, *self.embedding.original_size), bool)

    def ranks(self) -> np.ndarray:
        """`(R, 3)`: each candidate's place among its prompt's three by predicted IoU (0: the best),
        the `choice` that `Sam.predict`'s order gives it."""
        return (-self.scores).argsort(1, kind="stable").argsort(1)
