"""Every setting the app takes from its environment, read once, in one place: `app.py` builds its
objects from a `Settings` and passes explicit values down; no module of `seg/` reads the environment.

    settings = Settings.from_environ(os.environ)

Each variable is documented in the README's table "Settings"; a test sets each and sees its effect.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from seg.explorer.zoo import KNOWN_PRETRAINED, KNOWN_SAMS
from seg.fetch import DEFAULT_CACHE
from seg.sam.weights import DEFAULT_VARIANT, VARIANTS

from .limits import LIMITS

ROOT = Path(__file__).resolve().parents[1]


def hub_token_set(env: Mapping[str, str]) -> bool:
    """Whether a Hugging Face token is set: HF_TOKEN (a Space's secret), or one `hf auth login` saved."""
    from huggingface_hub import get_token

    return bool((env.get("HF_TOKEN") or "").strip()) or get_token() is not None


class SettingError(SystemExit):
    """A setting the app cannot start with: its message says which and what is expected."""


@dataclass(frozen=True)
class Settings:
    weights_dir: Path = ROOT / "weights"  # SEG_WEIGHTS_DIR: our from-scratch weights (layout in seg/explorer/zoo.py)
    pretrained: tuple[str, ...] = tuple(KNOWN_PRETRAINED)  # SEG_PRETRAINED_MODELS: Hub ids or folders, comma-separated
    sam_variant: str = DEFAULT_VARIANT  # SEG_SAM_VARIANT
    sam_checkpoint: Path | None = None  # SEG_SAM_CHECKPOINT: a local file for that variant
    sam_models: tuple[str, ...] = tuple(KNOWN_SAMS)  # SEG_SAM_MODELS: the SAM family, Hub ids or folders
    hub_token: bool = False  # a Hugging Face token is set (HF_TOKEN, or `hf auth login`): gated models can download
    cache_dir: Path = DEFAULT_CACHE  # SEG_CACHE_DIR: verified downloads that are not from the Hub
    allow_download: bool = False  # SEG_ALLOW_DOWNLOAD=1/0; on a Space (SPACE_ID set) it defaults to 1
    camvid_dir: Path | None = None  # SEG_CAMVID_DIR: adds the CamVid val picker
    keep_files_seconds: int = LIMITS.keep_files_seconds  # SEG_KEEP_FILES_SECONDS
    outputs_dir: Path | None = None  # SEG_OUTPUTS_DIR: results handed out (default: a temporary folder)
    browser_decoder: bool = True  # SEG_BROWSER_DECODER=1/0: SAM's decoder also runs in the browser (hover previews)
    ort_web_dir: Path | None = None  # SEG_ORT_WEB_DIR: onnxruntime-web's dist folder (default: its pinned CDN copy)
    cross_origin_isolation: bool = False  # SEG_CROSS_ORIGIN_ISOLATION=1/0: the page isolated, the decoder threaded
    on_space: bool = False  # SPACE_ID is set: behind the Space's proxy, whose client-address header is true
    zero_gpu: bool = False  # SPACES_ZERO_GPU is set (a ZeroGPU Space): model jobs run on its GPU (ui/gpu.py)
    notes: tuple[str, ...] = field(default=(), compare=False)  # what was chosen for the user, for the log

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> "Settings":
        """Settings from `env` (os.environ); SettingError names a value that cannot work."""
        get = lambda name: (env.get(name) or "").strip() or None  # noqa: E731 -- unset and empty mean the same
        on_space = get("SPACE_ID") is not None
        variant = get("SEG_SAM_VARIANT") or DEFAULT_VARIANT
        if variant not in VARIANTS:
            raise SettingError(f"SEG_SAM_VARIANT={variant!r} is not a SAM variant: choose one of {', '.join(VARIANTS)}")
        download = get("SEG_ALLOW_DOWNLOAD")
        if download not in (None, "0", "1"):
            raise SettingError(f"SEG_ALLOW_DOWNLOAD={download!r}: use 1 (fetch missing models on first use) or 0")
        keep = get("SEG_KEEP_FILES_SECONDS")
        if keep is not None and not (keep.isdigit() and int(keep) >= 60):
            raise SettingError(f"SEG_KEEP_FILES_SECONDS={keep!r}: give a whole number of seconds, 60 or more")
        browser = get("SEG_BROWSER_DECODER")
        if browser not in (None, "0", "1"):
            raise SettingError(f"SEG_BROWSER_DECODER={browser!r}: use 1 (decode SAM's prompts in the browser too) or 0")
        isolation = get("SEG_CROSS_ORIGIN_ISOLATION")
        if isolation not in (None, "0", "1"):
            raise SettingError(f"SEG_CROSS_ORIGIN_ISOLATION={isolation!r}: use 1 (isolate the page, so the browser "
                               "decoder runs several threads) or 0")
        ort_web = Path(get("SEG_ORT_WEB_DIR")).expanduser() if get("SEG_ORT_WEB_DIR") else None
        if ort_web is not None and not (ort_web / "ort.wasm.min.js").is_file():
            raise SettingError(f"SEG_ORT_WEB_DIR={str(ort_web)!r} has no ort.wasm.min.js: point it at the dist folder "
                               "of the onnxruntime-web npm package (npm install onnxruntime-web, then "
                               "node_modules/onnxruntime-web/dist)")
        pretrained = env.get("SEG_PRETRAINED_MODELS")  # set but empty: no pretrained semantic model
        sams = env.get("SEG_SAM_MODELS")  # set but empty: MobileSAM alone
        notes = ("on a Space: missing pretrained models download on first use (SEG_ALLOW_DOWNLOAD=0 to stop it)",) \
            if on_space and download is None else ()
        return cls(
            weights_dir=Path(get("SEG_WEIGHTS_DIR") or cls.weights_dir).expanduser(),
            pretrained=cls.pretrained if pretrained is None else tuple(p.strip() for p in pretrained.split(",")
                                                                           if p.strip()),
            sam_variant=variant,
            sam_models=cls.sam_models if sams is None else tuple(p.strip() for p in sams.split(",") if p.strip()),
            sam_checkpoint=Path(get("SEG_SAM_CHECKPOINT")).expanduser() if get("SEG_SAM_CHECKPOINT") else None,
            cache_dir=Path(get("SEG_CACHE_DIR") or DEFAULT_CACHE).expanduser(),
            allow_download=download == "1" if download is not None else on_space,
            camvid_dir=Path(get("SEG_CAMVID_DIR")).expanduser() if get("SEG_CAMVID_DIR") else None,
            keep_files_seconds=int(keep) if keep else cls.keep_files_seconds,
            outputs_dir=Path(get("SEG_OUTPUTS_DIR")).expanduser() if get("SEG_OUTPUTS_DIR") else None,
            browser_decoder=browser != "0", ort_web_dir=ort_web, cross_origin_isolation=isolation == "1",
            hub_token=hub_token_set(env), on_space=on_space,
            zero_gpu=(get("SPACES_ZERO_GPU") or "").lower() in ("1", "true"), notes=notes)
