"""The models an application offers: which are present, each loaded once on first use, and how to
get the ones that are missing.

    zoo = Zoo(weights_dir="weights")
    zoo.semantic_names()        # {"fcn8s": "FCN-8s (from scratch)", ...}, only what can load offline
    zoo.missing()               # [("SAM vit_t", "how to enable it"), ...]
    model = zoo.semantic("fcn8s")   # a seg.explorer.semantic.SemanticModel, loaded once
    model.probabilities(image)      # (C, H, W) at the image's size, in the model's own classes
    model.class_map                 # (C,): each of its classes in CamVid's 11 (+ 11 "other")

Weights folder layout (what `recipes/camvid_gpu.sh` and `recipes/camvid_cpu.sh` train, and `weights/` ships):
    camvid/<name>.safetensors + <name>.json      from-scratch CamVid models (seg.checkpoint format)
    camvid/segformer_b0/                         SegFormer-B0 from scratch (save_pretrained folder)
    camvid/ensemble.json, fast.json              ensembles of the models beside it (seg.ensemble), if present
    synthetic/<name>.safetensors + <name>.json   the small models of the teaching demos

The SAM family (`seg.sam.family`: SAM 2.1, SAM-HQ, EdgeTAM, SAM 3) beside the default SAM (MobileSAM)
and SAM 3's concept prompts (`seg.sam.concepts`) come the same way as the pretrained models:

    zoo.family_names()          # {"facebook/sam2.1-hiera-tiny": "SAM 2 (sam2.1-hiera-tiny)", ...}
    zoo.family_sam(key)         # a FamilySam, loaded once; zoo.concept_sam(key) for SAM 3's text prompts

Pretrained models (SegFormer, Mask2Former) are Hub ids, found in the Hugging Face cache (where a
Space's `preload_from_hub` puts them at build time), or `save_pretrained` folders. Nothing here
downloads unless `allow_download` is set: offline, missing models are listed with the command or
setting that enables them.
"""

import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import load_model, read_card, saw_frames
from ..deadline import watch
from ..ensemble import member_paths
from ..fetch import DEFAULT_CACHE, hub_download_command
from ..pretrained import mask2former, segformer
from ..pretrained.hub_segmenter import read_config
from ..sam.concepts import CAMVID_PHRASES, ConceptSam
from ..sam.family import CONCEPT_TYPES, GATED, GENERATIONS, FamilySam, how_to_get, share_backbone, short_name
from ..sam.model import Sam
from ..sam.weights import DEFAULT_VARIANT, VARIANTS, find_checkpoint, variant_spec
from .semantic import PretrainedModel, ScratchModel, SemanticModel, ZeroShotModel

# the adapters, by their config's model_type
FAMILIES = {"segformer": segformer.SegFormerSegmenter, "mask2former": mask2former.Mask2FormerSegmenter}
KNOWN_PRETRAINED = {**{k: "segformer" for k in segformer.KNOWN_MODELS},
                    **{k: "mask2former" for k in mask2former.KNOWN_MODELS}}
# Our models, in the order they are offered, by the weights' file name, which is also the model's name
# in the app and its API; the architecture is its card's. The first five are named after their
# architecture; the quarter-width U-Net is a fast model (docs/training.md, "A quarter-width U-Net").
TITLES = {"fcn32s": "FCN-32s", "fcn8s": "FCN-8s", "unet": "U-Net", "deeplabv3": "DeepLabv3 (ASPP)",
          "segformer_b0": "SegFormer-B0", "unet_quarter": "U-Net, quarter width"}
# how a model that is not in the weights folder is made, where it is not the main recipes
RECIPES = {"unet_quarter": "`recipes/camvid_quarter.sh ship` (it trains and ships it)"}
# weights/camvid/<key>.json: ensembles of the models above (seg.ensemble), each titled "<word> of <members>":
# the most accurate, and the best within the fast model's time (1.5 times LR-ASPP MobileNetV3's)
ENSEMBLES = {"ensemble": "Ensemble", "fast": "Fast ensemble"}
# The SAM family offered beside the default SAM, by Hub id: the open checkpoints, then SAM 3 (gated)
KNOWN_SAMS = {"facebook/sam2.1-hiera-tiny": "sam2", "syscv-community/sam-hq-vit-base": "sam_hq",
              "yonigozlan/EdgeTAM-hf": "edgetam", "facebook/sam3": "sam3_video"}
ZERO_SHOT = "sam3"  # the key of SAM 3 as a zero-shot semantic model (CamVid's class names as its prompts)


def family_of(name: str) -> str:
    """"segformer" or "mask2former" for a Hub id or folder: known ids, else the config's model_type
    (cached or in the folder), else the name itself."""
    if name in KNOWN_PRETRAINED:
        return KNOWN_PRETRAINED[name]
    model_type = (read_config(name) or {}).get("model_type")
    if model_type in FAMILIES:
        return model_type
    return "mask2former" if "mask2former" in name.lower() else "segformer"


@dataclass(frozen=True)
class Entry:
    """A model that can load: key, title for people, kind ("scratch", "segformer", "mask2former",
    "zero-shot"; a SAM's generation in the SAM family), where it is."""

    key: str
    title: str
    kind: str
    source: str


def unwritable(folder: str | os.PathLike) -> str:
    """Empty when files can be written in `folder` (made if missing); otherwise what stopped it."""
    try:
        Path(folder).expanduser().mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=Path(folder).expanduser()):
            pass
    except OSError as error:
        return (f"SAM's decoder cache {folder} cannot be written ({error.strerror or type(error).__name__}): "
                "clicks are decoded by PyTorch on the server and the in-browser decoder is off; point "
                "SEG_CACHE_DIR at a writable folder and restart")
    return ""


class Zoo:
    """The catalogue and the loaded models, shared by every user (loading is locked, models are
    stateless per call)."""

    def __init__(self, weights_dir: str | os.PathLike, *, pretrained: tuple[str, ...] = tuple(KNOWN_PRETRAINED),
                 sam_variant: str = DEFAULT_VARIANT, sam_checkpoint: str | os.PathLike | None = None,
                 sam_cache_dir: str | os.PathLike = DEFAULT_CACHE, device: str | torch.device = "cpu",
                 allow_download: bool = False, sam_onnx_dir: str | os.PathLike | None = None,
                 sam_threads: int = 1, sam_everything_threads: int | None = None,
                 sam_models: tuple[str, ...] = (), hub_token: bool = False):
        """pretrained: Hub ids or save_pretrained folders of SegFormer and Mask2Former models;
        sam_checkpoint: a local SAM file for `sam_variant` (else the Hugging Face cache, then
        `sam_cache_dir`); allow_download: fetch what is missing on first use; sam_onnx_dir: where
        SAM's decoder is exported to ONNX (then prompts run in ONNX Runtime with `sam_threads`, and
        automatic masks with `sam_everything_threads`). A `sam_onnx_dir` that cannot be written is
        not used (SAM decodes in PyTorch) and `sam_onnx_problem` says why and what to do.
        sam_models: Hub ids or save_pretrained folders of the SAM family (`seg.sam.family`, e.g.
        KNOWN_SAMS, the app's default); a SAM 3 checkpoint also answers text prompts and joins the
        semantic models, zero-shot. None by default: a script's zoo holds what it asks for.
        hub_token: a Hugging Face token is set, so a gated checkpoint whose terms its account accepted
        can download; without one, a gated checkpoint that is not cached is listed as missing."""
        self.weights_dir = Path(weights_dir)
        variant_spec(sam_variant)
        self.pretrained, self.sam_variant, self.sam_checkpoint = tuple(pretrained), sam_variant, sam_checkpoint
        self.sam_models, self.hub_token = tuple(sam_models), hub_token
        self.sam_onnx_problem = unwritable(sam_onnx_dir) if sam_onnx_dir is not None else ""
        if self.sam_onnx_problem:
            sam_onnx_dir = None
        self.sam_cache_dir, self.sam_onnx_dir, self.sam_threads = sam_cache_dir, sam_onnx_dir, sam_threads
        self.sam_everything_threads = sam_everything_threads
        self.device, self.allow_download = torch.device(device), allow_download
        self._loaded: dict[str, object] = {}
        self._lock = threading.RLock()  # re-entered: SAM 3's zero-shot model loads SAM 3 itself
        self._backbones_compared: set[str] = set()  # SAM 3s whose tracker and detector were compared (`_share`)
        self.entries, self._missing = self._scan()
        self.family, family_missing = self._scan_family()
        self._missing += family_missing
        concepts = self.concept_names()
        if concepts:  # the first SAM 3 also segments by CamVid's class names, beside the trained models
            self.entries[ZERO_SHOT] = Entry(ZERO_SHOT, "SAM 3 zero-shot (a phrase per CamVid class as its prompt)",
                                            "zero-shot", next(iter(concepts)))

    def _scan(self) -> tuple[dict[str, Entry], list[tuple[str, str]]]:
        entries, missing = {}, []
        camvid = self.weights_dir / "camvid"
        for name in TITLES:
            weights, folder = camvid / f"{name}.safetensors", camvid / name
            if weights.is_file():
                try:
                    arch = read_card(weights)["architecture"]["name"]
                except (OSError, ValueError, KeyError, TypeError) as error:  # one broken card must not stop the app
                    missing.append((name, f"{weights}: its model card is unreadable ({error}); train or copy it again"))
                    continue
                same = arch == name or name.startswith(arch + "_")  # the card's network is the one its name says
                title = TITLES[name] if same else f"{TITLES.get(arch, arch)} in {name}"
                entries[name] = Entry(name, f"{title} (from scratch)", "scratch", str(weights))
            elif (folder / "config.json").is_file():
                entries[name] = Entry(name, f"{TITLES[name]} (from scratch)", "segformer", str(folder))
            else:
                recipe = RECIPES.get(name, "`recipes/camvid_gpu.sh` (or camvid_cpu.sh)")
                missing.append((f"{TITLES[name]} (from scratch)",
                                f"no weights in {camvid}: train them with {recipe}, "
                                "or point the app at a folder that has them (SEG_WEIGHTS_DIR)"))
        for key, word in ENSEMBLES.items():
            ensemble = self._ensemble(camvid / f"{key}.json", key, word)
            if isinstance(ensemble, Entry):
                entries[key] = ensemble
            elif ensemble:
                missing.append((f"{word} (from scratch)", ensemble))
        for name in self.pretrained:
            short = Path(name).name if os.path.isdir(name) else name.split("/")[-1]
            family = family_of(name)
            title = f"{FAMILIES[family].family} pretrained ({short})"
            if read_config(name) is not None:
                entries[name] = Entry(name, title, family, name)
            elif self.allow_download:
                entries[name] = Entry(name, f"{title} · downloads on first use", family, name)
            else:
                missing.append((title, f"not in the Hugging Face cache: run `{hub_download_command(name)}` on a "
                                       "connected machine, or list a save_pretrained folder in SEG_PRETRAINED_MODELS"))
        self._sam_missing = how = self._sam_problem()
        if how:
            missing.append((f"SAM {self.sam_variant}", how))
        return entries, missing

    def _scan_family(self) -> tuple[dict[str, Entry], list[tuple[str, str]]]:
        """The SAM family's entries (kind: the checkpoint's generation) and the missing ones."""
        entries, missing = {}, []
        for name in self.sam_models:
            config = read_config(name)
            kind = (config or {}).get("model_type") or KNOWN_SAMS.get(name)
            generation = GENERATIONS.get(kind)
            title = f"{generation.title if generation else 'SAM'} ({short_name(name)})"
            if config is not None and generation is None:
                missing.append((title, f"a {kind!r} checkpoint, not a SAM: list SAM, SAM-HQ, SAM 2, EdgeTAM or "
                                       "SAM 3 checkpoints in SEG_SAM_MODELS"))
            elif config is not None or (self.allow_download and (name not in GATED or self.hub_token)):
                suffix = "" if config is not None else " · downloads on first use"
                entries[name] = Entry(name, title + suffix, kind or "sam", name)
            else:
                missing.append((title, f"not in the Hugging Face cache: {how_to_get(name)}"))
        return entries, missing

    @staticmethod
    def _ensemble(card_file: Path, key: str, word: str) -> "Entry | str | None":
        """The ensemble card's entry (`seg.ensemble`), titled after its members; what is wrong with it; or
        None when there is no card."""
        if not card_file.is_file():
            return None
        try:
            members = [Path(path) for path, weight in member_paths(read_card(card_file), card_file.parent) if weight]
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"{card_file}: its card is unreadable ({error}); write it again (recipes/camvid_ensemble.sh card)"
        absent = [m.name for m in members if not (m.is_file() or m.is_dir())]
        if absent:
            return f"{card_file} names members that are not there ({', '.join(absent)}): restore them or remove it"
        names = [TITLES.get(m.name.removesuffix(".safetensors"), m.stem) for m in members]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        return Entry(key, f"{word} of {listed} (from scratch)", "scratch", str(card_file))

    def trained_on(self, split: str) -> list[str]:
        """Titles of our models whose card says they trained on `split` (e.g. CamVid's "val", the
        split the examples come from): on its frames they are scored on memory."""
        titles = []
        for entry in self.entries.values():
            if entry.kind not in ("scratch", "segformer"):  # pretrained: no card of ours
                continue
            try:
                card = read_card(entry.source)
            except (OSError, ValueError):
                continue
            if saw_frames(card, split):
                titles.append(entry.title.replace(" (from scratch)", ""))
        return titles

    def semantic_names(self) -> dict[str, str]:
        """key -> title of every semantic model that can load."""
        return {key: entry.title for key, entry in self.entries.items()}

    def loaded(self) -> set[str]:
        """The keys of the models loaded so far ("sam" for SAM). Not behind the loading lock: a load (a
        download) may hold it for minutes, and a question that loads nothing must not wait for it."""
        return set(self._loaded.copy())  # one step for the interpreter: never a dict changing mid-read

    def missing(self) -> list[tuple[str, str]]:
        """(model, how to enable it) for each model that is not available."""
        return list(self._missing)

    def _once(self, key: str, load):
        loaded = self._loaded.get(key)
        if loaded is not None:  # loaded already: no wait behind another model's load
            return loaded
        with self._lock:  # loading twice at once would double the memory for nothing
            if key not in self._loaded:
                loaded = load()
                for item in loaded.values() if isinstance(loaded, dict) else (loaded,):
                    training = sum(module.training for module in item.model.modules())
                    # every loader ends in eval mode; a slip (an export restoring a wrapper's training
                    # mode) would give batch statistics and masks unlike a later start's
                    assert training == 0, f"{key}: {training} modules left in training mode by the loader"
                    watch(item.model)  # a job past its deadline stops at the next layer (seg.deadline)
                self._loaded[key] = loaded
            return self._loaded[key]

    def semantic(self, key: str) -> SemanticModel:
        """The model `key` (see `semantic_names`), loaded on first use."""
        if not isinstance(key, str) or key not in self.entries:
            shown = repr(key[:40]) + ("…" if len(key) > 40 else "") if isinstance(key, str) else type(key).__name__
            choices = ", ".join(self.entries) or "(none)"
            raise ValueError(f"unknown or unavailable model {shown}: choose one of {choices}")
        entry = self.entries[key]
        if entry.kind == "scratch":
            return self._once(key, lambda: ScratchModel(*load_model(entry.source, device=self.device)))
        if entry.kind == "zero-shot":
            return self._once(key, lambda: ZeroShotModel(self.concept_sam(entry.source), CAMVID_PHRASES))
        return self._once(key, lambda: PretrainedModel(FAMILIES[entry.kind].load(
            entry.source, device=self.device, local_files_only=not self.allow_download)))

    def semantic_models(self, keys) -> dict[str, tuple[str, SemanticModel]]:
        """key -> (title, model) for each of `keys`, loaded; ValueError for none or an unknown one."""
        if not keys:
            raise ValueError("no model chosen: tick at least one model")
        models = {}
        for key in keys:
            model = self.semantic(key)  # first: it refuses an unknown key with the choices
            models[key] = (self.entries[key].title, model)
        return models

    def _sam_problem(self) -> str:
        """Empty when SAM can load; otherwise why not and how to enable it (checked once, at the scan:
        finding the file verifies its digest)."""
        spec = VARIANTS[self.sam_variant]
        try:
            find_checkpoint(self.sam_variant, self.sam_checkpoint, download=False, cache_dir=self.sam_cache_dir)
            return ""
        except ValueError as error:  # a file is there but it is not the right one: a download would not help
            return str(error)
        except FileNotFoundError:
            if self.allow_download:
                return ""
        hub = f"`{hub_download_command(spec.hub.repo, spec.hub.filename)}`, or " if spec.hub else ""
        return (f"no checkpoint: {hub}download {spec.url} and set SEG_SAM_CHECKPOINT=/path/to/it "
                f"(and SEG_SAM_VARIANT={self.sam_variant})")

    def sam_available(self) -> bool:
        return not self._sam_missing

    def sam_missing(self) -> str:
        """Empty when SAM can load; otherwise why not and how to enable it."""
        return self._sam_missing

    def sam(self) -> Sam:
        """SAM, loaded on first use; FileNotFoundError (saying how to get it) when it is missing."""
        return self._once("sam", lambda: Sam.load(self.sam_variant, self.sam_checkpoint, device=self.device,
                                                  download=self.allow_download, cache_dir=self.sam_cache_dir,
                                                  onnx_dir=self.sam_onnx_dir, onnx_threads=self.sam_threads,
                                                  everything_threads=self.sam_everything_threads))

    def family_names(self) -> dict[str, str]:
        """key -> title of each SAM of the family that can load (MobileSAM, `sam()`, is not among them)."""
        return {key: entry.title for key, entry in self.family.items()}

    def concept_names(self) -> dict[str, str]:
        """key -> title of each SAM 3 of the family, which also answers text and exemplar prompts."""
        return {key: entry.title for key, entry in self.family.items() if entry.kind in CONCEPT_TYPES}

    def family_sam(self, key: str) -> FamilySam:
        """The SAM `key` of `family_names()`, loaded on first use."""
        entry = self._family_entry(key, self.family)
        sam = self._once(f"sam:{key}", lambda: FamilySam.load(entry.source, device=self.device,
                                                              download=self.allow_download))
        self._share(key)
        return sam

    def concept_sam(self, key: str) -> ConceptSam:
        """SAM 3 `key` of `concept_names()` for text and exemplar prompts, loaded on first use."""
        entry = self._family_entry(key, {k: self.family[k] for k in self.concept_names()})
        sam = self._once(f"concepts:{key}", lambda: ConceptSam.load(entry.source, device=self.device,
                                                                    download=self.allow_download))
        self._share(key)
        return sam

    def _share(self, key: str) -> None:
        """Once SAM 3 `key` answers both clicks (its tracker) and text (its detector), one vision backbone
        serves the two (`share_backbone`). Compared once: a later call, a click's, takes no lock (a load,
        a download, may hold it for minutes) and compares nothing."""
        if key in self._backbones_compared:
            return
        tracker, detector = self._loaded.get(f"sam:{key}"), self._loaded.get(f"concepts:{key}")
        if tracker is not None and detector is not None:
            with self._lock:
                if key not in self._backbones_compared:
                    share_backbone(tracker, detector)
                    self._backbones_compared.add(key)

    def sam_title(self) -> str:
        """The default SAM's name for people: "MobileSAM (vit_t)", "SAM (vit_b)", ..."""
        return f"{'MobileSAM' if self.sam_variant == 'vit_t' else 'SAM'} ({self.sam_variant})"

    def every_sam(self) -> tuple[dict[str, object], dict[str, str]]:
        """({title: SAM} of every SAM offered, the default SAM first, each loaded once; {title: why} of
        those that cannot load), for one prompt sent to all of them (`seg.sam.compare`)."""
        sams, unavailable = {}, {}
        if self.sam_available():
            sams[self.sam_title()] = self.sam()
        else:
            unavailable[self.sam_title()] = self.sam_missing()
        for key, title in self.family_names().items():
            try:
                sams[title] = self.family_sam(key)
            except (ValueError, FileNotFoundError, OSError) as error:
                unavailable[title] = str(error)
        return sams, unavailable

    def first_concept_sam(self) -> ConceptSam:
        """The first SAM 3 of the family, for text and exemplar prompts; ValueError says how to get one."""
        names = self.concept_names()
        if not names:
            absent = [n for n in self.sam_models if KNOWN_SAMS.get(n) in CONCEPT_TYPES]
            how = f" ({how_to_get(absent[0])})" if absent else " (add facebook/sam3 to SEG_SAM_MODELS)"
            raise ValueError("text prompts need SAM 3, which is not available on this server" + how)
        return self.concept_sam(next(iter(names)))

    @staticmethod
    def _family_entry(key, entries: dict[str, Entry]) -> Entry:
        if not isinstance(key, str) or key not in entries:
            choices = ", ".join(entries) or "(none: list them in SEG_SAM_MODELS)"
            raise ValueError(f"unknown or unavailable SAM {str(key)[:60]!r}: choose one of {choices}")
        return entries[key]

    def synthetic(self) -> dict[str, ScratchModel]:
        """The teaching demos' models on synthetic scenes, by architecture, loaded once."""
        def load():
            folder = self.weights_dir / "synthetic"
            return {p.stem: ScratchModel(*load_model(p, device=self.device))
                    for p in sorted(folder.glob("*.safetensors"))}
        return self._once("synthetic", load)
