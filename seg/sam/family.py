"""The SAM family through transformers: SAM, SAM-HQ, SAM 2.1, EdgeTAM and SAM 3's tracker answer the
same clicks and boxes as `seg.sam.model.Sam` (MobileSAM), behind the same two steps:

    sam2 = FamilySam.load("facebook/sam2.1-hiera-tiny")     # a Hub id (cached) or a save_pretrained folder
    result = sam2.predict(image, points=[[120, 80]], labels=[1])   # a SamResult, masks best first

The image is encoded once per photo and model (a bounded cache keyed by the model and the photo's
digest); a prompt then costs only the decoder. Every coordinate is in the image's pixels, x then y.
Each generation frames its input its own way (SAM resizes the longer side and pads, SAM 2 stretches
to a square): `frame` maps a prompt into it, as the model's own processor does.
"""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..cache import BoundedCache
from ..data.io import check_image, resize_labels
from ..data.photos import image_digest
from ..fetch import hub_download_command
from .rules import as_box, as_points


@dataclass(frozen=True)
class Generation:
    """How transformers names one generation's classes, and what people call it."""

    title: str
    model_class: str
    processor_class: str
    stretches: bool  # SAM 2 and later stretch the photo to a square; SAM and SAM-HQ keep its shape and pad


# by the checkpoint config's model_type
GENERATIONS = {
    "sam": Generation("SAM", "SamModel", "SamProcessor", stretches=False),
    "sam_hq": Generation("SAM-HQ", "SamHQModel", "SamHQProcessor", stretches=False),
    "sam2": Generation("SAM 2", "Sam2Model", "Sam2Processor", stretches=True),
    "edgetam": Generation("EdgeTAM", "EdgeTamModel", "Sam2Processor", stretches=True),
    "sam3_tracker": Generation("SAM 3", "Sam3TrackerModel", "Sam3TrackerProcessor", stretches=True),
    "sam3": Generation("SAM 3", "Sam3TrackerModel", "Sam3TrackerProcessor", stretches=True),  # its tracker
    # facebook/sam3 as released: one Sam3VideoModel checkpoint holding the tracker and the detector
    "sam3_video": Generation("SAM 3", "Sam3TrackerModel", "Sam3TrackerProcessor", stretches=True),
}
# the checkpoints that hold SAM 3's detector, which answers text and exemplar prompts (seg.sam.concepts)
CONCEPT_TYPES = ("sam3_video", "sam3")
# checkpoints whose terms must be accepted on the Hub before a token may download them
GATED = ("facebook/sam3",)


def short_name(source: str) -> str:
    """"sam2.1-hiera-tiny" for "facebook/sam2.1-hiera-tiny" or a folder of that name."""
    return os.path.basename(os.path.normpath(str(source))) or str(source)


def how_to_get(source: str) -> str:
    """What a person runs to make `source` loadable offline."""
    command = f"`{hub_download_command(source)}`"
    if source in GATED:
        return (f"gated on the Hub: accept its terms on https://huggingface.co/{source} while logged in, then "
                f"`hf auth login` (or set HF_TOKEN) and run {command}")
    return f"run {command} on a connected machine, or list a save_pretrained folder in SEG_SAM_MODELS"


@dataclass(frozen=True)
class FamilyEmbedding:
    """One photo encoded by one model: the forward's image arguments, the photo's (H, W), and the
    (h, w) frame the model's prompts live in."""

    inputs: dict
    original_size: tuple[int, int]
    frame: tuple[int, int]
    seconds: float  # what the encoder took


def load_all_weights(model_class, name: str, options: dict, whose: str, to: str):
    """`model_class.from_pretrained(name)`, refused (ValueError) when weights are missing from the
    checkpoint: initialised at random, the model would answer, and mean nothing."""
    model, loading = model_class.from_pretrained(name, output_loading_info=True, **options)
    if loading["missing_keys"]:
        missing = sorted(loading["missing_keys"])
        raise ValueError(f"{name}: {len(missing)} of {whose} weights are not in the checkpoint (such as "
                         f"{missing[0]}), so it cannot {to}; give the full checkpoint")
    return model


def share_backbone(tracker: "FamilySam", detector) -> bool:
    """Let SAM 3's tracker use its detector's vision backbone when both were loaded from one checkpoint
    (facebook/sam3 stores it once, and both loaders read the same weights): one copy in memory instead of
    two, about 1.7 GB at SAM 3's size. Done only when every weight is equal; True when shared."""
    mine, theirs = tracker.model.vision_encoder.backbone, detector.model.vision_encoder.backbone
    if mine is theirs:
        return True
    ours, other = mine.state_dict(), theirs.state_dict()
    if ours.keys() != other.keys() or any(ours[k].shape != other[k].shape or not torch.equal(ours[k], other[k])
                                          for k in ours):
        return False
    tracker.model.vision_encoder.backbone = theirs
    return True


def load_cache_first(name: str, attempt: Callable[[bool], tuple], *, download: bool) -> tuple:
    """`attempt(offline)` -> (model, processor): the Hugging Face cache first (instant when present, no
    network retries when offline), the Hub only with `download`; FileNotFoundError says how to get it."""
    try:
        try:
            return attempt(True)
        except OSError:
            if not download:
                raise
            return attempt(False)
    except OSError as error:
        raise FileNotFoundError(f"{name} could not be loaded ({str(error).splitlines()[0]}): "
                                f"{how_to_get(name)}") from None


class PhotoReader:
    """A transformers model that reads a photo once and answers prompts from its reading: the readings
    kept per photo in a bounded, thread-safe cache, with how many were made and the last one's time.
    A subclass makes a reading in `_read(image)` and reports its time with `_timed(seconds)`."""

    def __init__(self, model, processor, *, name: str, cache_size: int):
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.model, self.processor, self.name = model.eval(), processor, name
        self._cache = BoundedCache(capacity=cache_size)
        self._lock = threading.Lock()
        self.encoder_runs = 0
        self.encode_seconds: float | None = None  # the last encoding's time on this machine, once measured

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def embeddings_kept(self) -> int:
        return len(self._cache)

    def has_embedding(self, image: np.ndarray, *, digest: str | None = None) -> bool:
        """Whether `image` is read already (a prompt then costs only the decoder)."""
        return self._key(image, digest) in self._cache

    def _key(self, image: np.ndarray, digest: str | None) -> str:
        return f"{self.name}:{image.shape}:{digest or image_digest(image)}"

    def _reading(self, image: np.ndarray, digest: str | None):
        """The reading of `(H, W, 3) uint8 RGB` image, from the cache or made once."""
        check_image(image)
        return self._cache.get_or_make(self._key(image, digest), lambda: self._read(image))

    def _read(self, image: np.ndarray):
        raise NotImplementedError

    def _timed(self, seconds: float) -> None:
        with self._lock:
            self.encoder_runs += 1
            self.encode_seconds = seconds


class FamilySam(PhotoReader):
    """A transformers SAM with a bounded, thread-safe cache of image embeddings; stateless per call.

    Args:
        model: the loaded model (eval mode), processor: its processor, name: its Hub id or folder.
        cache_size: photos whose embeddings are kept (a SAM 2 embedding with its high-resolution
            features is about 9 MiB, SAM 3's about 12 MiB).
    """

    def __init__(self, model, processor, *, name: str, cache_size: int = 4):
        super().__init__(model, processor, name=name, cache_size=cache_size)
        # by the class loaded: SAM 3's tracker from the released checkpoint has the tracker's config
        self.generation = next(g for g in GENERATIONS.values() if g.model_class == type(model).__name__)
        self.title = f"{self.generation.title} ({short_name(name)})"

    @classmethod
    def load(cls, source: str | os.PathLike, *, device: str | torch.device = "cpu", cache_dir: str | None = None,
             download: bool = False, cache_size: int = 4) -> "FamilySam":
        """A Hub id (the Hugging Face cache first; the Hub only with `download`) or a save_pretrained
        folder; FileNotFoundError says how to get it, ValueError names a checkpoint of another kind."""
        import transformers

        name = str(source)

        def attempt(offline: bool):
            options = {"cache_dir": cache_dir, "local_files_only": offline}
            config = transformers.AutoConfig.from_pretrained(name, **options)
            if config.model_type not in GENERATIONS:
                raise ValueError(f"{name} is a {config.model_type!r} checkpoint, not a SAM: SEG_SAM_MODELS takes "
                                 f"checkpoints of {', '.join(sorted(GENERATIONS))}")
            generation = GENERATIONS[config.model_type]
            model = load_all_weights(getattr(transformers, generation.model_class), name, options,
                                     f"{generation.title}'s", "answer clicks")
            processor = getattr(transformers, generation.processor_class).from_pretrained(name, **options)
            return model, processor

        model, processor = load_cache_first(name, attempt, download=download)
        return cls(model.to(device), processor, name=name, cache_size=cache_size)

    def embed(self, image: np.ndarray, *, digest: str | None = None) -> FamilyEmbedding:
        """The embedding of `(H, W, 3) uint8 RGB` image, from the cache or computed once."""
        return self._reading(image, digest)

    @torch.inference_mode()
    def _read(self, image: np.ndarray) -> FamilyEmbedding:
        started = time.perf_counter()
        # a writable copy: the processor wraps the array as a tensor, and torch warns on a read-only one
        pixels = self.processor(images=np.array(image), return_tensors="pt")["pixel_values"].to(self.device)
        encoded = self.model.get_image_embeddings(pixels)
        if self.generation.model_class == "SamHQModel":  # the encoder's intermediate layers feed its HQ token
            inputs = {"image_embeddings": encoded[0], "intermediate_embeddings": encoded[1]}
        else:
            inputs = {"image_embeddings": encoded}
        h, w = image.shape[:2]
        side = pixels.shape[-1]
        scale = side / max(h, w)  # SAM's longer side to `side`, rounded half up as its processor does
        frame = (side, side) if self.generation.stretches else (int(h * scale + 0.5), int(w * scale + 0.5))
        seconds = time.perf_counter() - started
        self._timed(seconds)
        return FamilyEmbedding(inputs=inputs, original_size=(h, w), frame=frame, seconds=seconds)

    def frame(self, embedding: FamilyEmbedding) -> np.ndarray:
        """(2,) x, y: the factors that take the photo's pixels into the model's input frame."""
        (h, w), (fh, fw) = embedding.original_size, embedding.frame
        return np.array([fw / w, fh / h])

    @torch.inference_mode()
    def predict(self, image: np.ndarray | FamilyEmbedding, *, points=None, labels=None, box=None,
                multimask: bool = True, best_only: bool = False, original_size: tuple[int, int] | None = None,
                digest: str | None = None):
        """Masks for a prompt, as `Sam.predict` gives them (a `SamResult`, best first); its arguments
        but `mask_input`. original_size: the photo's (H, W) when `image` is its shrunk copy."""
        from .model import Sam, SamResult

        if isinstance(image, FamilyEmbedding) and original_size is not None:
            raise ValueError("original_size is for a shrunk image, not an embedding (it knows its own size)")
        shrunk = None if isinstance(image, FamilyEmbedding) else Sam._shrunk(image, original_size)
        size = shrunk[1] if shrunk else (image.original_size if isinstance(image, FamilyEmbedding)
                                         else image.shape[:2])
        point_prompt, box_prompt = as_points(points, labels, size), as_box(box, size)
        if point_prompt is None and box_prompt is None:
            raise ValueError("SAM needs a prompt: at least one point (with its label) or a box")
        if shrunk:
            (small, scale), size = shrunk
            result = self.predict(small, points=None if point_prompt is None else point_prompt[0] * scale,
                                  labels=None if point_prompt is None else point_prompt[1],
                                  box=None if box_prompt is None else box_prompt * scale, multimask=multimask,
                                  best_only=best_only, digest=digest)
            return SamResult(masks=np.stack([resize_labels(m, size) for m in result.masks]), scores=result.scores,
                             low_res_logits=result.low_res_logits, stability=result.stability)
        embedding = image if isinstance(image, FamilyEmbedding) else self.embed(image, digest=digest)
        to_frame = self.frame(embedding)
        prompt = {}
        if point_prompt is not None:
            coords, point_labels = point_prompt
            prompt["input_points"] = torch.as_tensor(coords * to_frame, dtype=torch.float32)[None, None]
            prompt["input_labels"] = torch.as_tensor(point_labels, dtype=torch.int64)[None, None]
        if box_prompt is not None:
            prompt["input_boxes"] = torch.as_tensor(box_prompt * np.tile(to_frame, 2), dtype=torch.float32)[None, None]
        prompt = {k: v.to(self.device) for k, v in prompt.items()}
        out = self.model(**embedding.inputs, **prompt, multimask_output=multimask)
        logits = self._to_photo(out.pred_masks.float(), embedding)
        low_res, scores = out.pred_masks[0, 0].float(), out.iou_scores[0, 0].float()  # (M, h, w), (M,)
        order = scores.argsort(descending=True)[:1 if best_only else None]
        logits, low_res = logits[order], low_res[order]
        inner, outer = (logits > 1).flatten(1).sum(1), (logits > -1).flatten(1).sum(1)
        return SamResult(masks=(logits > 0).cpu().numpy(), scores=scores[order].cpu().numpy(),
                         low_res_logits=low_res.cpu().numpy(),
                         stability=(inner / outer.clamp(min=1)).float().cpu().numpy())

    def _to_photo(self, low_res: torch.Tensor, embedding: FamilyEmbedding) -> torch.Tensor:
        """(1, 1, M, h, w) low-resolution logits -> (M, H, W) at the photo's size, by the processor's own
        post-processing (SAM crops its padding first; SAM 2 resizes the square back)."""
        sizes = [list(embedding.original_size)]
        extra = {} if self.generation.stretches else {"reshaped_input_sizes": [list(embedding.frame)]}
        masks = self.processor.post_process_masks(low_res, sizes, binarize=False, **extra)[0]
        return masks.reshape(-1, *embedding.original_size)
