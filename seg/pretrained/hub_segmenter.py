"""A transformers semantic-segmentation model with its image processor, loaded by Hub id or from a
`save_pretrained` folder; what SegFormer and Mask2Former share.

One inference path: the processor prepares the image, the model runs once, and the processor's
own semantic post-processing resizes the per-class scores to the target size and takes the argmax.
`segment` keeps the label map, `probabilities` the scores (normalised per pixel).

Large inputs: the processor resizes every image to the model's working size anyway, so only the
post-processing grows with the image. It runs at most MAX_SIDE pixels on the longer side (150
classes x 2048 x 1536 float32 is 1.9 GB at most); the label map is then enlarged to the full image
with nearest neighbour, and the probabilities bilinearly. Below MAX_SIDE the result is exactly the
model's own.
"""

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.io import check_image
from ..fetch import hub_download_command
from .label_mapping import CAMVID_CLASSES, camvid_class_map, map_labels

MAX_SIDE = 2048


@dataclass(frozen=True)
class SemanticResult:
    """labels: (H, W) int64 class ids in `class_names`; label_space: "cityscapes", "ade20k", "camvid"
    or None; class_map: the model's `HubSegmenter.class_map`."""

    labels: np.ndarray
    class_names: list[str]
    label_space: str | None
    class_map: np.ndarray | None

    def to_camvid(self) -> np.ndarray:
        """The label map in CamVid ids (OTHER = 11 where a class has no counterpart)."""
        if self.class_map is None:
            raise ValueError(f"no mapping from this model's classes to CamVid (label space {self.label_space!r})")
        return map_labels(self.labels, self.class_map)


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


def read_config(name_or_path: str | os.PathLike) -> dict | None:
    """The model's config.json as a dict, from a folder or the Hugging Face cache; None when neither has it."""
    import json

    path = os.path.join(name_or_path, "config.json")
    if not os.path.isfile(path):
        from huggingface_hub import try_to_load_from_cache

        try:
            path = try_to_load_from_cache(str(name_or_path), "config.json")
        except ValueError:  # not a valid repository id
            return None
        if not isinstance(path, str):
            return None
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


class HubSegmenter:
    """Stateless per call, so safe to share. Subclasses name their transformers class (`model_class`)
    and turn the post-processing's per-class scores into probabilities (`normalise`)."""

    model_class = "AutoModelForSemanticSegmentation"
    family = "model"  # for people: "SegFormer", "Mask2Former"
    known_models: dict[str, str] = {}  # Hub id -> label space of its classes

    def __init__(self, model, processor, *, name: str):
        self.model, self.processor, self.name = model.eval(), processor, name
        config = model.config
        self.class_names = [config.id2label[i] for i in range(config.num_labels)]
        self.label_space = self.known_models.get(name) or guess_label_space(self.class_names)
        self.class_map = camvid_class_map(self.class_names, self.label_space)  # once, not per image

    @classmethod
    def load(cls, name_or_path: str | os.PathLike, *, device: str | torch.device = "cpu",
             cache_dir: str | None = None, local_files_only: bool = False):
        """Load a Hub id (downloaded once into the Hugging Face cache) or a `save_pretrained` folder.

        The local cache is tried first; the Hub only when the model is not cached and
        `local_files_only` is not True. When neither has it, FileNotFoundError says how to get it.
        """
        import transformers

        name = str(name_or_path)
        model_class = getattr(transformers, cls.model_class)

        def attempt(offline: bool):
            options = {"cache_dir": cache_dir, "local_files_only": offline}
            return (model_class.from_pretrained(name, **options),
                    transformers.AutoImageProcessor.from_pretrained(name, **options))

        try:
            try:  # the cache first: instant when present, and no network retries when offline
                model, processor = attempt(offline=True)
            except OSError:
                if local_files_only:
                    raise
                model, processor = attempt(offline=False)
        except OSError as error:
            raise FileNotFoundError(
                f"{cls.family} {name!r} could not be loaded ({str(error).splitlines()[0]}). On a connected machine "
                f"run `{hub_download_command(name)}` (it fills the cache used offline), or save the model and "
                "its processor with save_pretrained and pass that folder") from None
        return cls(model.to(device), processor, name=name)

    @staticmethod
    def normalise(scores: torch.Tensor) -> torch.Tensor:
        """(C, H, W) post-processing scores -> (C, H, W) probabilities summing to 1 per pixel."""
        raise NotImplementedError

    @torch.inference_mode()
    def _run(self, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """(labels (h, w) int64, scores (C, h, w) float32, (H, W)): the processor's post-processing at
        the image's size, or at most MAX_SIDE on its longer side."""
        h, w = check_image(image).shape[:2]
        scale = min(1.0, MAX_SIDE / max(h, w))
        target = (max(1, round(h * scale)), max(1, round(w * scale)))
        device = next(self.model.parameters()).device
        # a writable copy: the processor wraps the array as a tensor, and torch warns on a read-only one
        inputs = self.processor(images=np.array(image), return_tensors="pt").to(device)
        outputs = self.model(**inputs)
        result = self.processor.post_process_semantic_segmentation(outputs, target_sizes=[target],
                                                                   return_segmentation_scores=True)[0]
        return result.segmentation, result.segmentation_scores.float(), (h, w)

    def segment(self, image: np.ndarray) -> SemanticResult:
        """Label map for an `(H, W, 3) uint8 RGB` image, at the image's size."""
        labels, _, size = self._run(image)
        if tuple(labels.shape) != size:
            labels = F.interpolate(labels[None, None].float(), size=size, mode="nearest-exact")[0, 0].long()
        return SemanticResult(labels=labels.cpu().numpy().astype(np.int64), class_names=self.class_names,
                              label_space=self.label_space, class_map=self.class_map)

    def probabilities(self, image: np.ndarray) -> torch.Tensor:
        """`(C, H, W)` float32 class probabilities at the image's size, in this model's classes. Their
        argmax is `segment`'s labels below MAX_SIDE, but where two classes tie to float rounding.
        Used by the comparison, test-time augmentation and the CRF."""
        _, scores, size = self._run(image)
        probs = self.normalise(scores)
        if tuple(probs.shape[1:]) != size:
            probs = F.interpolate(probs[None], size=size, mode="bilinear", align_corners=False)[0]
        return probs.cpu()
