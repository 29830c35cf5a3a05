"""SAM 3's concept prompts: a short noun phrase ("car", "traffic light") or a box around one example
("more like this") finds every matching instance in the photo, not one object per prompt.

    sam3 = ConceptSam.load("facebook/sam3")                 # gated on the Hub: see `family.how_to_get`
    found = sam3.find(image, "car", threshold=0.5)          # [Instance(mask, score, box), ...], best first
    found = sam3.find(image, boxes=[[40, 60, 120, 140]])    # instances like the one in the box
    scores = sam3.concept_scores(image, ["road", "car"])    # (2, H, W): each pixel's best instance score

The photo is encoded once (a bounded cache keyed by the model and the photo's digest); each prompt
then runs the text encoder and the detector's decoder. Coordinates are the photo's pixels, x then y.
"""

import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..data.io import check_image
from .family import CONCEPT_TYPES, PhotoReader, load_all_weights, load_cache_first, short_name
from .rules import as_box

MAX_TEXT = 60  # characters of one phrase: a noun phrase, not a paragraph (the text encoder reads 32 tokens)
# CamVid's 11 classes as the noun phrases SAM 3 is prompted with (its zero-shot semantic model), in
# CamVid's order; "SignSymbol" covers signs and traffic lights, "Pavement" is the sidewalk
CAMVID_PHRASES = ("sky", "building", "pole", "road", "sidewalk", "tree", "traffic sign", "fence", "car",
                  "pedestrian", "bicyclist")
# other phrases a person types, by the CamVid class they name (a phrase of CAMVID_PHRASES names its own)
SYNONYMS = {"house": 1, "wall": 1, "lamp post": 2, "street light": 2, "post": 2, "street": 3, "pavement": 4,
            "vegetation": 5, "sign": 6, "traffic light": 6, "signal": 6, "car": 8, "vehicle": 8, "truck": 8, "bus": 8,
            "van": 8, "person": 9, "people": 9, "man": 9, "woman": 9, "child": 9, "cyclist": 10, "bicycle": 10,
            "bike": 10, "motorcycle": 10}


@dataclass(frozen=True)
class Instance:
    """One instance found: mask (H, W) bool, its score (0..1), its box (x0, y0, x1, y1) in pixels."""

    mask: np.ndarray
    score: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class Encoded:
    """One photo read by SAM 3's vision encoder."""

    vision: object  # Sam3VisionEncoderOutput, the forward's `vision_embeds`
    size: tuple[int, int]
    seconds: float


def phrase(text) -> str:
    """A concept's phrase, checked: a non-empty string of at most MAX_TEXT characters, its spaces
    collapsed; ValueError says what was expected."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a text prompt is a short noun phrase such as \"car\" or \"traffic light\"")
    text = " ".join(text.split())
    if len(text) > MAX_TEXT:
        raise ValueError(f"a text prompt is a short noun phrase (at most {MAX_TEXT} characters), got {len(text)}")
    return text


def best_queries(out, limit: int):
    """SAM 3's output with only its `limit` best-scoring queries (scored as its post-processing scores
    them: the query's probability times the concept's presence)."""
    from types import SimpleNamespace

    scores = out.pred_logits.sigmoid()
    if out.presence_logits is not None:
        scores = scores * out.presence_logits.sigmoid()
    keep = scores[0].argsort(descending=True)[:max(0, limit)]
    return SimpleNamespace(pred_logits=out.pred_logits[:, keep], pred_boxes=out.pred_boxes[:, keep],
                           pred_masks=out.pred_masks[:, keep], presence_logits=out.presence_logits)


def camvid_class_of(text: str) -> int | None:
    """The CamVid class id (0..10) a phrase names ("cars", "a traffic light", "Pedestrian"), else None."""
    words = " ".join(text.lower().split()).removeprefix("a ").removeprefix("an ").removeprefix("the ")
    for candidate in (words, words.removesuffix("s"), words.removesuffix("es")):
        if candidate in CAMVID_PHRASES:
            return CAMVID_PHRASES.index(candidate)
        if candidate in SYNONYMS:
            return SYNONYMS[candidate]
    return None


class ConceptSam(PhotoReader):
    """SAM 3 (`Sam3Model` and `Sam3Processor`) for text and exemplar prompts; stateless per call."""

    def __init__(self, model, processor, *, name: str, cache_size: int = 2):
        super().__init__(model, processor, name=name, cache_size=cache_size)
        self.title = f"SAM 3 ({short_name(name)})"

    @classmethod
    def load(cls, source: str | os.PathLike, *, device: str | torch.device = "cpu", cache_dir: str | None = None,
             download: bool = False, cache_size: int = 2) -> "ConceptSam":
        """A Hub id (the cache first; the Hub only with `download`) or a save_pretrained folder of a SAM 3
        checkpoint; FileNotFoundError says how to get it."""
        import transformers

        name = str(source)

        def attempt(offline: bool):
            options = {"cache_dir": cache_dir, "local_files_only": offline}
            config = transformers.AutoConfig.from_pretrained(name, **options)
            if config.model_type not in CONCEPT_TYPES:
                raise ValueError(f"{name} is a {config.model_type!r} checkpoint: text prompts need SAM 3's "
                                 f"({' or '.join(CONCEPT_TYPES)})")
            return (load_all_weights(transformers.Sam3Model, name, options, "SAM 3's detector", "answer text prompts"),
                    transformers.Sam3Processor.from_pretrained(name, **options))

        model, processor = load_cache_first(name, attempt, download=download)
        return cls(model.to(device), processor, name=name, cache_size=cache_size)

    def encode(self, image: np.ndarray, *, digest: str | None = None) -> Encoded:
        """The photo's vision features, from the cache or computed once."""
        return self._reading(image, digest)

    @torch.inference_mode()
    def _read(self, image: np.ndarray) -> Encoded:
        started = time.perf_counter()
        pixels = self.processor(images=np.array(image), return_tensors="pt")["pixel_values"].to(self.device)
        vision = self.model.get_vision_features(pixels)
        seconds = time.perf_counter() - started
        self._timed(seconds)
        return Encoded(vision=vision, size=tuple(image.shape[:2]), seconds=seconds)

    @torch.inference_mode()
    def find(self, image: np.ndarray, text: str | None = None, *, boxes=None, negative=None,
             threshold: float = 0.5, mask_threshold: float = 0.5, limit: int | None = None,
             digest: str | None = None) -> list[Instance]:
        """Every instance of a concept: `text` (a short noun phrase), exemplar `boxes` ([[x0, y0, x1, y1],
        ...] in pixels, around instances to find more of), or both; `negative` boxes mark what is not
        wanted. Instances scoring more than `threshold`, best first, at most `limit` of them: only those
        are enlarged to the photo's size (SAM 3 proposes 200, each a photo-sized mask once enlarged)."""
        if not 0 <= threshold <= 1 or not 0 <= mask_threshold <= 1:
            raise ValueError("threshold and mask_threshold are between 0 and 1")
        check_image(image)
        size = tuple(image.shape[:2])
        exemplars = [as_box(b, size) for b in boxes or ()] + [as_box(b, size) for b in negative or ()]
        labels = [1] * len(boxes or ()) + [0] * len(negative or ())
        if text is None and not labels:
            raise ValueError("SAM 3 needs a concept: a text prompt, an example box, or both")
        if labels and not any(labels):
            raise ValueError("give at least one positive example box (negative boxes only say what is not wanted)")
        prompt = {"original_sizes": [list(size)], "return_tensors": "pt"}
        if text is not None:
            prompt["text"] = phrase(text)
        if exemplars:
            prompt["input_boxes"] = [[[float(v) for v in b] for b in exemplars]]
            prompt["input_boxes_labels"] = [labels]
        inputs = self.processor(**prompt)
        encoded = self.encode(image, digest=digest)
        arguments = {k: v.to(self.device) for k, v in inputs.items() if k != "original_sizes"}
        out = self.model(vision_embeds=encoded.vision, **arguments)
        if limit is not None:
            out = best_queries(out, limit)
        result = self.processor.post_process_instance_segmentation(
            out, threshold=threshold, mask_threshold=mask_threshold, target_sizes=[list(size)])[0]
        order = result["scores"].argsort(descending=True)
        return [Instance(mask=result["masks"][i].bool().cpu().numpy(), score=float(result["scores"][i]),
                         box=tuple(float(v) for v in result["boxes"][i])) for i in order.tolist()]

    def concept_scores(self, image: np.ndarray, concepts: list[str], *, threshold: float = 0.3, limit: int = 32,
                       digest: str | None = None) -> torch.Tensor:
        """(C, H, W) float32: at each pixel, the best score among the instances of each concept that cover
        it (0 where none does), from each concept's `limit` best instances; the photo is encoded once
        for all C concepts."""
        size = tuple(check_image(image).shape[:2])
        scores = torch.zeros(len(concepts), *size)
        for c, concept in enumerate(concepts):
            for instance in self.find(image, concept, threshold=threshold, limit=limit, digest=digest):
                covered = torch.from_numpy(instance.mask)
                scores[c][covered] = torch.clamp(scores[c][covered], min=instance.score)
        return scores
