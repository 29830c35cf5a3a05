"""Where SAM's weights come from, and how a checkpoint becomes a model: the variants with their URLs,
published digests and Hugging Face copies; the lookup (a given file, the Hugging Face cache, our
verified cache, a download); and the build, which reads tensors only and names what does not fit.
"""

import importlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..fetch import DEFAULT_CACHE, cached_download, hub_download_command, verify


@dataclass(frozen=True)
class HubFile:
    """The same checkpoint in a Hugging Face Hub repository: what a Space preloads at build time
    (`preload_from_hub` in the README's front matter) and finds in the Hugging Face cache."""

    repo: str
    filename: str
    sha256: str  # checked at every load: the Hub's cache keeps no digest of its own files


@dataclass(frozen=True)
class Variant:
    package: str  # the module that builds it
    url: str
    digests: dict  # published digests of the file at `url`
    hub: HubFile | None = None


# The md5 digests are the ones the SAM release names its files after and that many projects
# verify against; no sha256 is published. The sha256 of a verified download is recorded beside
# it in the cache and checked at every load (see seg.fetch).
DEFAULT_VARIANT = "vit_t"  # MobileSAM: the one that answers a click in well under a second on a CPU
VARIANTS = {
    # MobileSAM's release file, also on the Hub in dhkim2810/MobileSAM (the account of the demo Space
    # that MobileSAM's README links); the sha256 is the one that projects verifying this file record
    # for both copies (we could not download it from here to compute it ourselves).
    "vit_t": Variant("mobile_sam", "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt", {},
                     HubFile("dhkim2810/MobileSAM", "mobile_sam.pt",
                             "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f")),
    "vit_b": Variant("segment_anything", "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
                     {"md5": "01ec64d29a2fca3f0661936605ae66f8"}),
    "vit_l": Variant("segment_anything", "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
                     {"md5": "0b3195507c641ddb6910d2bb5adee89c"}),
    "vit_h": Variant("segment_anything", "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
                     {"md5": "4b8939a88964f0f4ff5f5b2642c598a6"}),
}


def variant_spec(variant: str) -> Variant:
    """The description of SAM variant `variant`; ValueError naming the variants for an unknown one."""
    if variant not in VARIANTS:
        shown = repr(variant[:40]) if isinstance(variant, str) else type(variant).__name__
        raise ValueError(f"unknown SAM variant {shown}: choose one of {', '.join(VARIANTS)}")
    return VARIANTS[variant]


def sam_package(package: str):
    """The module `package` (`mobile_sam` or `segment_anything`) that builds SAM's variants; ImportError
    says which pip package to install."""
    with warnings.catch_warnings():  # mobile_sam's timm imports are noisy and harmless
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(package)
        except ImportError as error:
            pip_name = {"mobile_sam": "mobilesam-mirror", "segment_anything": "segment-anything"}[package]
            raise ImportError(f"SAM needs the {package} package: pip install {pip_name}") from error


def sam_architecture(variant: str) -> nn.Module:
    """SAM's `variant` with its random initial weights, in eval mode: what `build_sam` loads a
    checkpoint into, and a stand-in for tests and benchmarks where no weights can be downloaded."""
    module = sam_package(variant_spec(variant).package)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return module.sam_model_registry[variant](checkpoint=None).eval()


def build_sam(variant: str, checkpoint: str | os.PathLike) -> nn.Module:
    """Build `variant` without weights, then load `checkpoint` (a state-dict .pth) into it.

    The file is read with `weights_only=True`: tensors only, never arbitrary pickled objects.
    Raises ValueError for an unknown variant, an unreadable file, or weights of another variant.
    """
    model = sam_architecture(variant)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 -- torch raises many types for a bad file; all mean the same
        raise ValueError(f"{checkpoint} is not a readable SAM checkpoint ({type(error).__name__}: {error}); "
                         "download it again") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{checkpoint} does not hold a state dict of tensors")
    expected = model.state_dict()
    missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
    wrong_shape = [k for k in expected.keys() & state.keys() if expected[k].shape != state[k].shape]
    if missing or unexpected or wrong_shape:
        raise ValueError(f"{checkpoint} is not a {variant} checkpoint: {len(missing)} weights missing, "
                         f"{len(unexpected)} unexpected, {len(wrong_shape)} of another shape "
                         f"(e.g. {sorted(missing or unexpected or wrong_shape)[0]}); pick the variant it was made for")
    model.load_state_dict(state)
    return model.eval()


def find_checkpoint(variant: str, checkpoint: str | os.PathLike | None = None, *, download: bool = True,
                    cache_dir: str | os.PathLike = DEFAULT_CACHE) -> Path:
    """The checkpoint file for `variant`, the first of:

    1. `checkpoint`, a local file, taken as given;
    2. the Hugging Face cache, when the variant has a Hub copy (a Space preloads it there), checked
       against its recorded sha256;
    3. `cache_dir`, where an earlier download was verified;
    4. a download, only if `download`: from the Hub when the variant has a Hub copy (checked as in 2),
       else from its URL (checked against the published digests), with a progress bar.

    FileNotFoundError says how to get it; ValueError means a file was found but is not the right one.
    """
    variant_spec(variant)
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"no SAM checkpoint at {path}")
        return path
    spec = VARIANTS[variant]
    if spec.hub is not None:
        found = _from_hub(spec.hub, download=False)
        if found is not None:
            return found
    try:
        return cached_download(spec.url, f"sam_{variant}{Path(spec.url).suffix}", cache_dir=cache_dir,
                               digests=spec.digests, download=download and spec.hub is None)
    except OSError as error:
        if download and spec.hub is not None:
            found = _from_hub(spec.hub, download=True)
            if found is not None:
                return found
        where = f" or `{hub_download_command(spec.hub.repo, spec.hub.filename)}`" if spec.hub else ""
        raise FileNotFoundError(f"SAM {variant} weights are not available ({error}). Download {spec.url}{where} "
                                f"on a connected machine and pass the file (the app: SEG_SAM_CHECKPOINT=/path/to/file "
                                f"SEG_SAM_VARIANT={variant})") from None


def _from_hub(hub: HubFile, *, download: bool) -> Path | None:
    """The Hub copy from the Hugging Face cache (downloading it first if `download`), verified; None
    when it is not cached (or cannot be downloaded)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    try:
        if download:
            path = hf_hub_download(hub.repo, hub.filename)  # shows its own progress bar
        else:
            path = try_to_load_from_cache(hub.repo, hub.filename)
    except (OSError, ValueError, HfHubHTTPError):  # offline, unknown repository, no such file
        return None
    if not isinstance(path, str):  # None, or the marker of a file known not to exist
        return None
    return verify(path, hub.sha256, source=f"{hub.repo}/{hub.filename}")
