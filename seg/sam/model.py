"""SAM (segment_anything: vit_b, vit_l, vit_h) and MobileSAM (mobile_sam: vit_t) behind one interface.

The expensive step, the image embedding, is split from the cheap one, the prompt:

    sam = Sam.load("vit_t")                       # CPU default: MobileSAM
    result = sam.predict(image, points=[[120, 80]], labels=[1])
    result = sam.predict(image, points=[[120, 80], [40, 40]], labels=[1, 0], mask_input=result.best_logits)

`predict` embeds the image through a cache keyed by the image's content and the model, bounded
(least recently used dropped first) and shared safely by concurrent users: no per-image state
lives in the model object, so two users prompting different images cannot see each other's.
Every coordinate is in original-image pixels, x then y.
"""

import math
import os
import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cache import BoundedCache
from ..data.io import check_image, resize_labels
from ..data.photos import image_digest
from ..fetch import DEFAULT_CACHE
from .everything import Everything, torch_decoder
from .everything import everything as automatic_masks
from .onnx_decoder import LOW_RES_SIDE, BatchDecoder, DecoderFiles, OnnxDecoder, export_decoder, prompt_arrays
from .rules import as_box, as_points
from .weights import DEFAULT_VARIANT, build_sam, find_checkpoint


@dataclass(frozen=True)
class ImageEmbedding:
    """An image encoded once. features: (1, 256, 64, 64); sizes are (H, W)."""

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]  # the image's size after resizing its longer side to the encoder's

    @property
    def to_input(self) -> np.ndarray:
        """(2,) x, y: the encoder's input frame over the image's pixels (prompts are multiplied by it)."""
        return np.array([self.input_size[1] / self.original_size[1], self.input_size[0] / self.original_size[0]])

    @property
    def low_res_size(self) -> tuple[int, int]:
        """(h, w) of the low-resolution logits (a pixel is 4x4 input pixels) that cover the image."""
        return math.ceil(self.input_size[0] / 4), math.ceil(self.input_size[1] / 4)


@dataclass(frozen=True)
class SamResult:
    """masks: (M, H, W) bool at the original size; scores: (M,) predicted IoU of each mask;
    low_res_logits: (M, 256, 256), feed one back as `mask_input` to refine. M is 3 with
    `multimask=True`, else 1; masks are sorted by score, best first."""

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray
    stability: np.ndarray | None = None  # (M,) IoU of each mask thresholded at logit -1 and +1 (SAM's score)

    @property
    def best_logits(self) -> np.ndarray:
        return self.low_res_logits[0]


class Sam:
    """A SAM model with a bounded, thread-safe cache of image embeddings.

    Args:
        model: a loaded `segment_anything` / `mobile_sam` Sam in eval mode.
        variant: its name, part of every cache key.
        cache_size: how many image embeddings to keep (each 1x256x64x64 float32 = 4 MiB).
        onnx: the model's decoder exported by `sam_onnx.export_decoder`: prompts are then decoded by
            ONNX Runtime, the graph a browser also runs, on `onnx_threads` (both decoders' times:
            benchmarks/app_speed.py).
        onnx_threads: ONNX Runtime's threads; one per job when jobs share the cores.
        everything_threads: the threads of the batch decoder that finds every object (`everything`),
            a rarer and longer job that may take the cores the others leave.
    """

    def __init__(self, model: nn.Module, *, variant: str, cache_size: int = 8, onnx: DecoderFiles | None = None,
                 onnx_threads: int = 1, everything_threads: int | None = None):
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.model, self.variant, self.cache_size = model, variant, cache_size
        self.onnx = onnx  # the exported decoder: prompts then run in ONNX Runtime, and a browser can fetch it
        self._decoder = OnnxDecoder(onnx.float32, threads=onnx_threads) if onnx is not None else None
        self._everything_threads = everything_threads or onnx_threads
        self._batch_decoder: BatchDecoder | None = None  # its session opens at the first `everything`
        self._cache: BoundedCache[str, ImageEmbedding] = BoundedCache(capacity=cache_size)
        self._lock = threading.Lock()
        self.encoder_runs = 0  # how many times the image encoder ran (for tests and benchmarks)

    @property
    def embeddings_kept(self) -> int:
        """How many photos' embeddings are kept (at most the cache's size)."""
        return len(self._cache)

    @classmethod
    def load(cls, variant: str = DEFAULT_VARIANT, checkpoint: str | os.PathLike | None = None, *,
             device: str | torch.device = "cpu", download: bool = True, cache_dir: str | os.PathLike = DEFAULT_CACHE,
             cache_size: int = 8, onnx_dir: str | os.PathLike | None = None, onnx_threads: int = 1,
             everything_threads: int | None = None) -> "Sam":
        """Find the checkpoint (see `find_checkpoint`), build, load, move to `device`. With `onnx_dir`,
        the decoder is exported there (once per weights) and prompts are decoded by ONNX Runtime.
        The model ends in eval mode whether the export was made now or found: a first start and a
        later one give the same masks."""
        path = find_checkpoint(variant, checkpoint, download=download, cache_dir=cache_dir)
        model = build_sam(variant, path)
        onnx = export_decoder(model, variant=variant, cache_dir=onnx_dir) if onnx_dir is not None else None
        return cls(model.to(device).eval(), variant=variant, cache_size=cache_size, onnx=onnx,
                   onnx_threads=onnx_threads, everything_threads=everything_threads)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def input_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of an image of `size` (H, W) resized for the encoder: longer side to its input size."""
        h, w = size
        scale = self.model.image_encoder.img_size / max(h, w)
        return int(h * scale + 0.5), int(w * scale + 0.5)

    def embed(self, image: np.ndarray, *, digest: str | None = None) -> ImageEmbedding:
        """The embedding of `(H, W, 3) uint8 RGB` image, from the cache or computed once (a second
        request for the same image waits for the first instead of computing it again).
        digest: `image_digest(image)` where the caller has it (`seg.data.photos.Photo.digest`)."""
        check_image(image)
        return self._cache.get_or_make(self._key(image, digest), lambda: self._encode(image))

    def has_embedding(self, image: np.ndarray, *, digest: str | None = None) -> bool:
        """Whether `image` is encoded already (a prompt then costs only the decoder)."""
        return self._key(image, digest) in self._cache

    def _key(self, image: np.ndarray, digest: str | None) -> str:
        return f"{self.variant}:{image.shape}:{digest or image_digest(image)}"

    @torch.inference_mode()
    def _encode(self, image: np.ndarray) -> ImageEmbedding:
        size = image.shape[:2]
        input_size = self.input_size(size)
        x = torch.tensor(image, device=self.device).permute(2, 0, 1)[None].float()  # (1, 3, H, W) in 0..255
        x = F.interpolate(x, size=input_size, mode="bilinear", align_corners=False, antialias=True)
        features = self.model.image_encoder(self.model.preprocess(x))  # normalise, pad to square
        with self._lock:
            self.encoder_runs += 1
        return ImageEmbedding(features=features, original_size=size, input_size=input_size)

    @torch.inference_mode()
    def predict(self, image: np.ndarray | ImageEmbedding, *, points=None, labels=None, box=None,
                mask_input: np.ndarray | None = None, multimask: bool = True, best_only: bool = False,
                original_size: tuple[int, int] | None = None, digest: str | None = None) -> SamResult:
        """Masks for a prompt on `image` (`(H, W, 3) uint8` or its `ImageEmbedding`).

        points: (N, 2) float (x, y) in original-image pixels; labels: (N,) 1 positive / 0 negative.
        box: (4,) x0, y0, x1, y1 in original-image pixels. Points, a box, or both are required.
        mask_input: (256, 256) low-resolution logits from a previous result, to refine it.
        original_size: (H, W) of the original when `image` is already its shrunk copy (`fit_image`,
        `PhotoCache`): the prompts are in the original's pixels and the masks come back at its size.
        best_only: return the best mask only (M = 1, with its score, stability and logits): what an
        export keeps, and on a large photo a third of the memory and of the resizing.
        digest: `image_digest(image)` where the caller has it (a `Photo`'s), so nothing hashes it again.
        """
        shrunk = self._shrunk(image, original_size)
        if shrunk:
            size = shrunk[1]
        else:
            size = image.original_size if isinstance(image, ImageEmbedding) else image.shape[:2]
        point_prompt, box_prompt = as_points(points, labels, size), as_box(box, size)
        if point_prompt is None and box_prompt is None:
            raise ValueError("SAM needs a prompt: at least one point (with its label) or a box")
        if shrunk:
            return self._predict_shrunk(shrunk[0], size, point_prompt, box_prompt, mask_input=mask_input,
                                        multimask=multimask, best_only=best_only, digest=digest)
        # the prompt is checked before the embedding, so a bad one costs nothing
        embedding = image if isinstance(image, ImageEmbedding) else self.embed(image, digest=digest)
        to_input = embedding.to_input
        if mask_input is not None:
            mask_input = np.asarray(mask_input, dtype=np.float32)
            side = (LOW_RES_SIDE, LOW_RES_SIDE)
            if mask_input.shape not in (side, (1, *side)):
                raise ValueError(f"mask_input must be {side} low-resolution logits, got {mask_input.shape}")
        decode = self._decode_onnx if self._decoder is not None else self._decode_torch
        logits, scores, low_res = decode(embedding, point_prompt, box_prompt, mask_input, to_input=to_input,
                                         multimask=multimask)
        order = scores.argsort(descending=True)[:1 if best_only else None]
        logits = logits[order]
        threshold = self.model.mask_threshold
        inner = (logits > threshold + 1).flatten(1).sum(1)  # stability: how little the mask moves when
        outer = (logits > threshold - 1).flatten(1).sum(1)  # the threshold does (SAM's own offset of 1)
        return SamResult(masks=(logits > threshold).cpu().numpy(),
                         scores=scores[order].float().cpu().numpy(),
                         low_res_logits=low_res[order].float().cpu().numpy(),
                         stability=(inner / outer.clamp(min=1)).float().cpu().numpy())

    def _decode_onnx(self, embedding: ImageEmbedding, point_prompt, box_prompt, mask_input, *,
                     to_input: np.ndarray, multimask: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`_decode_torch` by ONNX Runtime: the same three tensors, from the exported graph."""
        coords, labels = prompt_arrays(*(point_prompt or (None, None)), box_prompt, scale=tuple(to_input))
        masks, scores, low_res = self._decoder(embedding.features.cpu().numpy(), coords, labels,
                                               size=embedding.original_size, mask_input=mask_input)
        keep = slice(1, None) if multimask else slice(0, 1)  # the graph returns all four of SAM's masks
        return torch.from_numpy(masks[keep]), torch.from_numpy(scores[keep]), torch.from_numpy(low_res[keep])

    def _decode_torch(self, embedding: ImageEmbedding, point_prompt, box_prompt, mask_input, *,
                      to_input: np.ndarray, multimask: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """PyTorch's prompt encoder and mask decoder: logits (M, H, W) at the original size, scores
        (M,), low-resolution logits (M, 256, 256), in SAM's order."""
        device = self.device
        sparse_points = None
        if point_prompt is not None:
            coords = torch.as_tensor(point_prompt[0] * to_input, dtype=torch.float32, device=device)[None]
            sparse_points = (coords, torch.as_tensor(point_prompt[1], dtype=torch.int64, device=device)[None])
        boxes = None
        if box_prompt is not None:
            boxes = torch.as_tensor(box_prompt * np.tile(to_input, 2), dtype=torch.float32, device=device)[None]
        masks = None
        if mask_input is not None:
            masks = torch.as_tensor(mask_input, device=device).reshape(1, 1, LOW_RES_SIDE, LOW_RES_SIDE)
        sparse, dense = self.model.prompt_encoder(points=sparse_points, boxes=boxes, masks=masks)
        low_res, scores = self.model.mask_decoder(
            image_embeddings=embedding.features, image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
        logits = self.model.postprocess_masks(low_res, embedding.input_size, embedding.original_size)  # (1, M, H, W)
        return logits[0], scores[0], low_res[0]

    @staticmethod
    def _shrunk(image, original_size) -> tuple[tuple[np.ndarray, float], tuple[int, int]] | None:
        """((the image, its scale), the original's (H, W)) where `image` is a shrunk copy of a photo of
        `original_size`; None where SAM answers at the image's own size (an embedding, or no original)."""
        if isinstance(image, ImageEmbedding):
            if original_size is not None:
                raise ValueError("original_size is for a shrunk image, not an embedding (it knows its own size)")
            return None
        h, w = check_image(image).shape[:2]
        if original_size is not None:
            if not (len(original_size) == 2 and all(int(n) == n and n >= 1 for n in original_size)):
                raise ValueError(f"original_size must be (H, W) in pixels, got {original_size!r}")
            big_h, big_w = map(int, original_size)
            if big_h < h or big_w < w:
                raise ValueError(f"original_size {big_h}x{big_w} is smaller than the image ({h}x{w}): "
                                 f"pass the size of the photo the image was shrunk from")
            return None if (big_h, big_w) == (h, w) else ((image, max(h, w) / max(big_h, big_w)), (big_h, big_w))
        return None

    def _predict_shrunk(self, shrunk: tuple[np.ndarray, float], size: tuple[int, int], point_prompt, box_prompt,
                        *, mask_input, multimask: bool, best_only: bool = False,
                        digest: str | None = None) -> SamResult:
        """`predict` on a shrunk (image, scale) with checked prompts in original pixels; the masks are
        resized back to `size` (H, W)."""
        small, scale = shrunk
        limit = np.array([small.shape[1], small.shape[0]], dtype=np.float64)  # x, y: rounding must not step out
        result = self.predict(
            small, points=None if point_prompt is None else np.minimum(point_prompt[0] * scale, limit),
            labels=None if point_prompt is None else point_prompt[1],
            box=None if box_prompt is None else np.minimum(box_prompt * scale, np.tile(limit, 2)),
            mask_input=mask_input, multimask=multimask, best_only=best_only, digest=digest)
        masks = np.stack([resize_labels(m, size) for m in result.masks])
        return SamResult(masks=masks, scores=result.scores, low_res_logits=result.low_res_logits,
                         stability=result.stability)

    def everything(self, image: np.ndarray, settings: Everything = Everything(), *,
                   digest: str | None = None) -> list[dict]:
        """Automatic masks from a grid of point prompts on `(H, W, 3) uint8` image, best predicted IoU
        first (see `seg.sam.everything`): decoded in batches by ONNX Runtime where the
        decoder was exported, else by PyTorch; the image's embedding comes from the cache (found by
        `digest` where given)."""
        check_image(image)
        return automatic_masks(self, image, settings, decode=self.batch_decoder(), digest=digest)

    def batch_decoder(self):
        """The decoder of prompt batches, `BatchGraph`'s signature on numpy arrays: ONNX Runtime's
        session where the decoder was exported (opened at the first call, once), else PyTorch's."""
        if self.onnx is None:
            return torch_decoder(self.model)
        with self._lock:  # a rarer job: its session is not opened at start
            if self._batch_decoder is None:
                self._batch_decoder = BatchDecoder(self.onnx.batch, threads=self._everything_threads)
        return self._batch_decoder
