"""What every tab and the API share, made once per app by `ui.app.build`: the settings and limits,
the model zoo, the photos decoded so far, the folders for what the app hands out, and the browser
decoder. Nothing here runs at import; `Context.close` removes the temporary folders.

    ctx = Context.create(settings)
    photo = ctx.photo(path)          # decoded once per content (in a child process the deadline
                                     # can end), at most MAX_SIDE on its longer side
    ctx.close()
"""

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from seg.data.decoder import Decoder
from seg.data.ground_truth import GroundTruth, parse_ground_truth
from seg.data.photos import Photo, PhotoCache
from seg.explorer.zoo import Zoo

from .files import Outputs
from .guard import upload_folder
from .limits import LIMITS, Limits
from .settings import Settings
from .tabs.sam.browser import BrowserSam

ROOT = Path(__file__).resolve().parents[1]
MAX_SIDE = 1024  # uploads are shrunk to this longer side first: bounded time and memory for everyone
CONCURRENCY = 2  # CPU-heavy jobs at once, across every event: the 2 cores of a free Space
# A photo asked for again (a SAM click) within this long is kept however many photos sent once arrive
# (up to 256 MiB of such photos): a visitor reading a mask for a few minutes keeps their photo's handle
PHOTO_HOLD_SECONDS = 900
# One decoding child's address space: room for a 50 MP photo (its RGB array, Pillow's image, the shrink's
# copies; the peak is in docs/deploy.md's memory section); a file needing more is refused, not served
DECODER_MEMORY = 3 << 30
NO_IMAGE = "no image: upload a photo or pick an example first"


def make_zoo(settings: Settings, *, cores: int | None = None) -> Zoo:
    """The models the settings name, each found where the settings say (nothing loads yet). SAM's
    decoder is exported to ONNX beside the downloads: the server decodes clicks with ONNX Runtime, one
    thread per job, and browsers fetch the same graph."""
    cores = cores or os.cpu_count() or 1
    return Zoo(settings.weights_dir, pretrained=settings.pretrained, sam_variant=settings.sam_variant,
               sam_checkpoint=settings.sam_checkpoint, sam_cache_dir=settings.cache_dir,
               allow_download=settings.allow_download, sam_onnx_dir=settings.cache_dir / "sam_onnx",
               sam_threads=max(1, cores // CONCURRENCY), device="cuda" if settings.zero_gpu else "cpu",
               sam_everything_threads=cores,  # a rarer, longer job: every core it can get
               sam_models=settings.sam_models, hub_token=settings.hub_token)


@dataclass
class Context:
    settings: Settings
    limits: Limits
    zoo: Zoo
    outputs: Outputs  # what we hand out and the uploads: deleted after limits.keep_files_seconds, held to a budget
    photos: PhotoCache
    decoder: Decoder  # every uploaded file is decoded in its child processes, ended at the job's deadline
    browser: BrowserSam | None  # SAM's decoder in the browser, or None where it is off
    folders: list[str] = field(default_factory=list)  # temporary folders this app made
    closing: threading.Event = field(default_factory=threading.Event)  # set when the server stops: jobs stop

    @classmethod
    def create(cls, settings: Settings, *, zoo: Zoo | None = None) -> "Context":
        limits = replace(LIMITS, keep_files_seconds=settings.keep_files_seconds)
        folders = []

        def temporary(prefix: str) -> str:
            folders.append(tempfile.mkdtemp(prefix=prefix))
            return folders[-1]

        browser = BrowserSam(temporary("seg-sam-embeddings-"), runtime_dir=settings.ort_web_dir,
                             clicks_per_object=limits.points_per_object) if settings.browser_decoder else None
        outputs = Outputs(limits.keep_files_seconds, settings.outputs_dir or temporary("seg-outputs-"),
                          kept=(upload_folder(),), budget=(limits.storage_bytes, limits.storage_files))
        decoder = Decoder(workers=CONCURRENCY, memory_bytes=DECODER_MEMORY)
        photos = PhotoCache(lambda path: decoder.photo(path, max_side=MAX_SIDE, max_pixels=limits.image_pixels),
                            hold_seconds=PHOTO_HOLD_SECONDS, max_held_bytes=256 << 20)  # 85 photos at 1024x1024
        return cls(settings, limits, zoo or make_zoo(settings), outputs, photos, decoder, browser, folders)

    def close(self) -> None:
        """Stop the running jobs (at their next check), end the decoding children and remove the
        temporary folders this app made (its outputs, the browser's embeddings)."""
        self.closing.set()
        self.decoder.close()
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
        self.folders.clear()

    def photo(self, path: str | None) -> Photo:
        """The uploaded photo, decoded once per content: upright RGB pixels at most MAX_SIDE on the
        longer side (the working size, read-only), the file's own size, and its digest."""
        if not path:
            raise ValueError(NO_IMAGE)
        try:
            return self.photos.get(path)
        except OSError as error:  # gone from the upload folder (deleted after an hour), or unreadable
            raise ValueError(f"{Path(path).name} could not be read ({type(error).__name__}): upload it again") from None

    def truth(self, path: str | None, image: np.ndarray) -> GroundTruth | None:
        """The ground truth file for `image` (or None), resized with nearest neighbour if the photo was."""
        if not path:
            return None
        raw = self.decoder.labels(path, max_pixels=self.limits.image_pixels, fit=image.shape[:2], max_side=MAX_SIDE)
        return parse_ground_truth(raw, image_shape=image.shape, max_values=self.limits.class_ids)

    def default_models(self) -> list[str]:
        """The models ticked on first visit: the three that tell the upsampling story."""
        names = self.zoo.semantic_names()
        return [k for k in ("fcn32s", "fcn8s", "unet") if k in names] or list(names)[:1]

    def status_markdown(self) -> str:
        """Which models are ready, and how to enable the others."""
        zoo = self.zoo
        sams = ([f"SAM {zoo.sam_variant}"] if zoo.sam_available() else []) + list(zoo.family_names().values())
        lines = [f"**Ready:** {', '.join(zoo.semantic_names().values()) or 'no semantic model'}"
                 f"{' · ' + ', '.join(sams) if sams else ''}."]
        if zoo.sam_onnx_problem:
            lines.append(f"**Note:** {zoo.sam_onnx_problem}.")
        missing = zoo.missing()
        if missing:
            lines.append("<details><summary>Unavailable models and how to enable them "
                         f"({len(missing)})</summary>\n\n" + "\n".join(f"- **{m}**: {how}" for m, how in missing)
                         + "\n\n</details>")
        return "\n\n".join(lines)

    def sam_notice(self) -> str:
        """Empty when SAM can load; otherwise what is missing and how to enable it, for the tab's top."""
        how = self.zoo.sam_missing()
        return f"**SAM is not available on this server**: {how}. The semantic models work without it." if how else ""
