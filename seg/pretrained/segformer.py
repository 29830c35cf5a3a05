"""SegFormer (transformers' SegformerForSemanticSegmentation) by Hub id or local folder.

    segformer = SegFormer.load("nvidia/segformer-b0-finetuned-cityscapes-1024-1024")
    result = segformer.segment(image)          # labels (H, W) at the image's size + class names
    camvid = result.to_camvid()                # the same map in CamVid's 11 classes (+ "other")

The model's own post-processing is used: logits (1/4 of the processed size) are resized
bilinearly to the target size, then the argmax is taken.

Large inputs: the processor resizes every image to the model's training size (512x512 or
1024x1024) anyway, so only the post-processing grows with the image. Logits are resized to at
most MAX_SIDE pixels on the longer side (150 classes x 2048 x 1536 float32 is 1.9 GB at most),
and the label map is then resized to the full image with nearest neighbour. Memory stays
bounded whatever the upload; below MAX_SIDE the result is exactly the model's own.
"""

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.io import check_image
from .label_mapping import CAMVID_CLASSES, TABLES, lookup_table, map_labels

MAX_SIDE = 2048
KNOWN_MODELS = {  # hub id -> label space of its classes
    "nvidia/segformer-b0-finetuned-ade-512-512": "ade20k",
    "nvidia/segformer-b0-finetuned-cityscapes-1024-1024": "cityscapes",
}


@dataclass(frozen=True)
class SemanticResult:
    """labels: (H, W) int64 class ids in `class_names`; label_space: "cityscapes", "ade20k", "camvid" or None."""

    labels: np.ndarray
    class_names: list[str]
    label_space: str | None

    def to_camvid(self) -> np.ndarray:
        """The label map in CamVid ids (OTHER = 11 where a class has no counterpart)."""
        if self.label_space == "camvid":
            return self.labels.astype(np.uint8)
        if self.label_space not in TABLES:
            raise ValueError(f"no mapping from this model's classes to CamVid (label space {self.label_space!r})")
        return map_labels(self.labels, lookup_table(self.class_names, TABLES[self.label_space]))


def guess_label_space(class_names: list[str]) -> str | None:
    """"camvid", "cityscapes" or "ade20k" from the class names, or None."""
    names = [n.lower() for n in class_names]
    if names == [c.lower() for c in CAMVID_CLASSES]:
        return "camvid"
    if len(names) == 19 and names[:3] == ["road", "sidewalk", "building"]:
        return "cityscapes"
    if len(names) == 150:
        return "ade20k"
    return None


def is_cached(name_or_path: str | os.PathLike) -> bool:
    """Whether `SegFormer.load(name_or_path)` can work offline: a `save_pretrained` folder, or a
    Hub id whose config is in the Hugging Face cache. Cheap: transformers is not imported."""
    if os.path.isfile(os.path.join(name_or_path, "config.json")):
        return True
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(str(name_or_path), "config.json"), str)
    except ValueError:  # not a valid repository id
        return False


class SegFormer:
    """A SegFormer model with its image processor; stateless per call, so safe to share."""

    def __init__(self, model, processor, *, name: str):
        self.model, self.processor, self.name = model.eval(), processor, name
        config = model.config
        self.class_names = [config.id2label[i] for i in range(config.num_labels)]
        self.label_space = KNOWN_MODELS.get(name) or guess_label_space(self.class_names)

    @classmethod
    def load(cls, name_or_path: str | os.PathLike, *, device: str | torch.device = "cpu",
             cache_dir: str | None = None, local_files_only: bool = False) -> "SegFormer":
        """Load a Hub id (downloaded once into the Hugging Face cache) or a `save_pretrained` folder.

        The local cache is tried first; the Hub only when the model is not cached and
        `local_files_only` is not True. When neither has it, FileNotFoundError says how to get it.
        """
        from transformers import AutoImageProcessor, SegformerForSemanticSegmentation

        name = str(name_or_path)

        def attempt(offline: bool):
            options = {"cache_dir": cache_dir, "local_files_only": offline}
            return (SegformerForSemanticSegmentation.from_pretrained(name, **options),
                    AutoImageProcessor.from_pretrained(name, **options))

        try:
            try:  # the cache first: instant when present, and no network retries when offline
                model, processor = attempt(offline=True)
            except OSError:
                if local_files_only:
                    raise
                model, processor = attempt(offline=False)
        except OSError as error:
            raise FileNotFoundError(
                f"SegFormer {name!r} could not be loaded ({str(error).splitlines()[0]}). On a connected machine run "
                f"`huggingface-cli download {name}` (it fills the cache used offline), or save the model and "
                "its processor with save_pretrained and pass that folder") from None
        return cls(model.to(device), processor, name=name)

    @torch.inference_mode()
    def probabilities(self, image: np.ndarray) -> torch.Tensor:
        """`(C, H, W)` float32 class probabilities at the image's size, in this model's classes.

        The same resize as `segment` (logits bilinearly to the image, then softmax), so their
        argmax equals `segment`'s labels below MAX_SIDE; used by test-time augmentation and the CRF.
        """
        h, w = check_image(image).shape[:2]
        device = next(self.model.parameters()).device
        inputs = self.processor(images=image, return_tensors="pt").to(device)
        logits = self.model(**inputs).logits  # (1, C, h/4, w/4) of the processed size
        logits = F.interpolate(logits.float(), size=(h, w), mode="bilinear", align_corners=False)
        return logits[0].softmax(0).cpu()

    @torch.inference_mode()
    def segment(self, image: np.ndarray) -> SemanticResult:
        """Label map for an `(H, W, 3) uint8 RGB` image, at the image's size."""
        h, w = check_image(image).shape[:2]
        scale = min(1.0, MAX_SIDE / max(h, w))
        target = (max(1, round(h * scale)), max(1, round(w * scale)))
        device = next(self.model.parameters()).device
        inputs = self.processor(images=image, return_tensors="pt").to(device)
        outputs = self.model(**inputs)
        labels = self.processor.post_process_semantic_segmentation(outputs, target_sizes=[target])[0]
        if target != (h, w):
            labels = F.interpolate(labels[None, None].float(), size=(h, w), mode="nearest-exact")[0, 0].long()
        return SemanticResult(labels=labels.cpu().numpy().astype(np.int64), class_names=self.class_names,
                              label_space=self.label_space)
