"""The models an application offers: which are present, each loaded once on first use, and how to
get the ones that are missing.

    zoo = Zoo(weights_dir="weights")
    zoo.semantic_names()        # {"fcn8s": "FCN-8s (from scratch)", ...}, only what can load offline
    zoo.missing()               # [("SAM vit_t", "how to enable it"), ...]
    model = zoo.semantic("fcn8s")
    model.probabilities(image)  # (C, H, W) at the image's size, in the model's own classes
    model.to_camvid(labels)     # its labels in CamVid's 11 classes (+ 11 "other")

Weights folder layout (what `recipes/camvid_gpu.sh` and `recipes/camvid_cpu.sh` train, and `weights/` ships):
    camvid/<name>.safetensors + <name>.json      from-scratch CamVid models (seg.checkpoint format)
    camvid/segformer-b0/                         SegFormer-B0 from scratch (save_pretrained folder)
    synthetic/<name>.safetensors + <name>.json   the small models of the teaching demos

Nothing here downloads unless `allow_download` is set: offline, missing models are listed with
the command or environment variable that enables them.
"""

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_model, read_card
from .deadline import watch
from .inference import predict_logits, working_size
from .pretrained.sam import CHECKPOINT_ENV_VAR, VARIANTS, Sam, find_checkpoint
from .pretrained.segformer import KNOWN_MODELS, SegFormer, SemanticResult, is_cached

WEIGHTS_ENV_VAR = "SEG_WEIGHTS_DIR"
SEGFORMER_ENV_VAR = "SEG_SEGFORMER_MODELS"  # comma-separated Hub ids or save_pretrained folders
TITLES = {"fcn32s": "FCN-32s", "fcn8s": "FCN-8s", "unet": "U-Net", "deeplabv3": "DeepLabv3 (ASPP)",
          "segformer_b0": "SegFormer-B0"}
SCRATCH_ORDER = ("fcn32s", "fcn8s", "unet", "deeplabv3", "segformer-b0")


class ScratchModel:
    """A model from `seg.models` with its card, run at the card's input size (its pixel count, in the
    image's own shape: see `seg.inference.working_size`)."""

    def __init__(self, model: torch.nn.Module, card: dict):
        self.model, self.card = model.eval(), card
        self.input_size = tuple(card["input_size"]) if card.get("input_size") else None

    def probabilities(self, image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
        """`(C, H, W)` float32 for an `(H, W, 3) uint8` image; `scale` multiplies the input size."""
        size = working_size(image.shape[:2], self.input_size)  # the training size's pixels, the image's shape
        size = (max(32, round(size[0] * scale)), max(32, round(size[1] * scale)))
        return predict_logits(self.model, image, input_size=size)[0].softmax(0).cpu()

    def to_camvid(self, labels: np.ndarray) -> np.ndarray:
        return labels.astype(np.uint8)


class SegFormerModel:
    """A SegFormer (pretrained from the Hub, or ours from a folder) behind the same interface."""

    def __init__(self, segformer: SegFormer):
        self.segformer = segformer

    def probabilities(self, image: np.ndarray, scale: float = 1.0) -> torch.Tensor:
        # The processor resizes every input to the model's own size, so `scale` has no effect here.
        return self.segformer.probabilities(image)

    def to_camvid(self, labels: np.ndarray) -> np.ndarray:
        s = self.segformer
        return SemanticResult(labels=labels, class_names=s.class_names, label_space=s.label_space).to_camvid()


@dataclass(frozen=True)
class Entry:
    """A model that can load: key, title for people, kind ("scratch", "segformer"), where it is."""

    key: str
    title: str
    kind: str
    source: str


class Zoo:
    """The catalogue and the loaded models, shared by every user (loading is locked, models are
    stateless per call)."""

    def __init__(self, weights_dir: str | os.PathLike | None = None, *, segformers: tuple[str, ...] | None = None,
                 sam_variant: str = "vit_t", sam_checkpoint: str | os.PathLike | None = None,
                 device: str | torch.device = "cpu", allow_download: bool = False):
        self.weights_dir = Path(weights_dir or os.environ.get(WEIGHTS_ENV_VAR) or "weights")
        if segformers is None:
            env = os.environ.get(SEGFORMER_ENV_VAR)
            segformers = tuple(s.strip() for s in env.split(",") if s.strip()) if env else tuple(KNOWN_MODELS)
        if sam_variant not in VARIANTS:
            raise ValueError(f"unknown SAM variant {sam_variant!r}: choose one of {', '.join(VARIANTS)}")
        self.segformers, self.sam_variant, self.sam_checkpoint = segformers, sam_variant, sam_checkpoint
        self.device, self.allow_download = torch.device(device), allow_download
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()
        self.entries, self._missing = self._scan()

    def _scan(self) -> tuple[dict[str, Entry], list[tuple[str, str]]]:
        entries, missing = {}, []
        camvid = self.weights_dir / "camvid"
        for name in SCRATCH_ORDER:
            weights, folder = camvid / f"{name}.safetensors", camvid / name
            if weights.is_file():
                try:
                    arch = read_card(weights)["architecture"]["name"]
                except (OSError, ValueError, KeyError, TypeError) as error:  # one broken card must not stop the app
                    missing.append((name, f"{weights}: its model card is unreadable ({error}); train or copy it again"))
                    continue
                entries[name] = Entry(name, f"{TITLES.get(arch, arch)} (from scratch)", "scratch", str(weights))
            elif (folder / "config.json").is_file():
                entries[name] = Entry(name, "SegFormer-B0 (from scratch)", "segformer", str(folder))
            else:
                missing.append((f"{TITLES.get(name.replace('-', '_'), name)} (from scratch)",
                                f"no weights in {camvid}: train them with `recipes/camvid_gpu.sh` (or camvid_cpu.sh), "
                                f"or set {WEIGHTS_ENV_VAR} to a folder that has them"))
        for name in self.segformers:
            short = Path(name).name if os.path.isdir(name) else name.split("/")[-1]
            title = f"SegFormer pretrained ({short})"
            if is_cached(name) or self.allow_download:
                entries[name] = Entry(name, title, "segformer", name)
            else:
                missing.append((title, f"not in the Hugging Face cache: run `huggingface-cli download {name}` on a "
                                       f"connected machine, or list a save_pretrained folder in {SEGFORMER_ENV_VAR}"))
        how = self.sam_missing()
        if how:
            missing.append((f"SAM {self.sam_variant}", how))
        return entries, missing

    def semantic_names(self) -> dict[str, str]:
        """key -> title of every semantic model that can load."""
        return {key: entry.title for key, entry in self.entries.items()}

    def missing(self) -> list[tuple[str, str]]:
        """(model, how to enable it) for each model that is not available."""
        return list(self._missing)

    def _once(self, key: str, load):
        with self._lock:  # loading twice at once would double the memory for nothing
            if key not in self._loaded:
                loaded = load()
                for item in loaded.values() if isinstance(loaded, dict) else (loaded,):
                    holder = getattr(item, "segformer", item)  # SegFormerModel wraps the adapter that has .model
                    watch(holder.model)  # a job past its deadline stops at the next layer (seg.deadline)
                self._loaded[key] = loaded
            return self._loaded[key]

    def semantic(self, key: str) -> ScratchModel | SegFormerModel:
        """The model `key` (see `semantic_names`), loaded on first use."""
        if key not in self.entries:
            choices = ", ".join(self.entries) or "(none)"
            raise ValueError(f"unknown or unavailable model {key!r}: choose one of {choices}")
        entry = self.entries[key]
        if entry.kind == "scratch":
            return self._once(key, lambda: ScratchModel(*load_model(entry.source, device=self.device)))
        return self._once(key, lambda: SegFormerModel(SegFormer.load(
            entry.source, device=self.device, local_files_only=not self.allow_download)))

    def sam_available(self) -> bool:
        try:
            find_checkpoint(self.sam_variant, self.sam_checkpoint, download=False)
            return True
        except (FileNotFoundError, ValueError):
            return self.allow_download

    def sam_missing(self) -> str:
        """Empty when SAM can load; otherwise why not and how to enable it."""
        if self.sam_available():
            return ""
        return (f"no checkpoint: download {VARIANTS[self.sam_variant].url} and set {CHECKPOINT_ENV_VAR}=/path/to/it "
                f"(and SEG_SAM_VARIANT={self.sam_variant})")

    def sam(self) -> Sam:
        """SAM, loaded on first use; FileNotFoundError (saying how to get it) when it is missing."""
        return self._once("sam", lambda: Sam.load(self.sam_variant, self.sam_checkpoint, device=self.device,
                                                  download=self.allow_download))

    def synthetic(self) -> dict[str, ScratchModel]:
        """The teaching demos' models on synthetic scenes, by architecture, loaded once."""
        def load():
            folder = self.weights_dir / "synthetic"
            return {p.stem: ScratchModel(*load_model(p, device=self.device))
                    for p in sorted(folder.glob("*.safetensors"))}
        return self._once("synthetic", load)
