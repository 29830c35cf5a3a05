"""The server's work per SAM click after the embedding, in process: what the fast path saves.

    python benchmarks/sam_server_click.py [--rounds 3] [--clicks 10] [--markdown FILE]

Imports app.py (shipped weights, a random-weight MobileSAM made here, its decoder exported to ONNX)
and times, per click, p50 over --clicks clicks in each of --rounds rounds, the variants interleaved
round by round so that a drift of this shared machine falls on all of them:
- the tab: SAM's decode, then the picture: the canvas (every object, the prompts) and the three
  mask choices drawn and encoded as Gradio sends them. "Before": the choices drawn at the photo's
  size and both encoded as WebP (Gradio's default); "now": the choices drawn at the size they are
  shown (CHOICE_SIDE) and both encoded as JPEG;
- the API (/sam_prompt without HTTP): the uploaded file decoded and shrunk for every click
  ("before") against found by its content in app.ctx.photos ("now"), on a 360x480 PNG and on a 12 MP
  JPEG from a phone.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from app_speed import random_sam_checkpoint, street  # noqa: E402
from report import publish  # noqa: E402

from seg.data.io import fit_image  # noqa: E402
from seg.data.photos import Photo, image_digest  # noqa: E402
from seg.explorer.prompts import Objects, draw_objects, draw_prompts  # noqa: E402
from ui.context import MAX_SIDE  # noqa: E402
from ui.tabs.sam import choice_tiles  # noqa: E402

TAB_SIZES = ((360, 480), (720, 960))  # CamVid's size, and a photo near the working size
API_PHOTOS = {"360x480 PNG": ((360, 480), "PNG"), "3000x4000 JPEG": ((3000, 4000), "JPEG")}


def load_app(folder: Path):
    os.environ.update({"SEG_SAM_CHECKPOINT": str(random_sam_checkpoint(folder)), "SEG_SAM_VARIANT": "vit_t",
                       "SEG_PRETRAINED_MODELS": "", "SEG_CACHE_DIR": str(folder / "cache")})
    from ui.app import build
    from ui.settings import Settings

    return build(Settings.from_environ(os.environ))


def clicks_on(size: tuple[int, int], count: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(1)
    h, w = size
    return [(int(rng.integers(w // 8, w - w // 8)), int(rng.integers(h // 8, h - h // 8))) for _ in range(count)]


def tab_click(app, gr_parts, photo: Photo, x, y, variant: str) -> dict[str, float]:
    """One click as the tab handles it: decode, draw, encode. Times in ms per stage."""
    canvas_out, gallery_out = gr_parts[variant]
    image = photo.pixels
    objects = Objects().click(x, y, "positive")
    times = {}
    started = time.perf_counter()
    result = app.sam.mask_choices(photo, objects.current)
    kept = {objects.current.id: result.chosen_mask()}
    times["decode"] = time.perf_counter() - started
    started = time.perf_counter()
    canvas = draw_objects(image, objects, {k: v.mask for k, v in kept.items()})
    if variant == "before":
        choices = [(draw_prompts(image, objects.current.prompts, m), "") for m in result.masks]
    else:
        choices = choice_tiles(image, objects.current.prompts, result)
    times["draw"] = time.perf_counter() - started
    started = time.perf_counter()
    canvas_out.postprocess(canvas)
    gallery_out.postprocess(choices)
    times["encode"] = time.perf_counter() - started
    return {k: v * 1000 for k, v in times.items()}


def api_click(app, path: str, x, y, variant: str) -> float:
    """One /sam_prompt's work without HTTP and without writing the mask file, in ms."""
    started = time.perf_counter()
    if variant == "before":
        original = app.ctx.read_photo(path)  # decoded and shrunk at every click, as before the photo cache
        small, _ = fit_image(original, MAX_SIDE)
        app.ctx.zoo.sam().predict(small, points=[[x, y]], labels=[1], original_size=original.shape[:2])
    else:
        photo = app.ctx.photo(path)
        app.ctx.zoo.sam().predict(photo.pixels, points=[[x, y]], labels=[1], original_size=photo.size)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sam-server-click-"))
    app = load_app(folder)
    import gradio as gr

    gr_parts = {"before": (gr.Image(format="webp"), gr.Gallery(format="webp")),
                "now": (gr.Image(format="jpeg"), gr.Gallery(format="jpeg"))}
    images = {size: Photo(pixels, size, 1.0, digest=image_digest(pixels))  # as the tab holds a photo
              for size, pixels in ((size, street(size)) for size in TAB_SIZES)}
    files = {}
    for name, (size, kind) in API_PHOTOS.items():
        files[name] = str(folder / f"photo.{kind.lower()}")
        Image.fromarray(street(size)).save(files[name], kind, quality=90)
    for image in images.values():
        app.ctx.zoo.sam().embed(image.pixels, digest=image.digest)  # the embedding is not what this measures
    for path in files.values():
        app.ctx.zoo.sam().embed(app.ctx.photo(path).pixels)  # the photo kept, as a second click would find it

    tab = {(size, v): {"decode": [], "draw": [], "encode": []} for size in TAB_SIZES for v in gr_parts}
    api = {(name, v): [] for name in files for v in gr_parts}
    for _ in range(args.rounds):
        for size, image in images.items():
            for variant in gr_parts:
                stages = [tab_click(app, gr_parts, image, x, y, variant) for x, y in clicks_on(size, args.clicks)]
                for stage in tab[size, variant]:
                    tab[size, variant][stage].append(statistics.median(s[stage] for s in stages))
        for name, path in files.items():
            for variant in gr_parts:
                h, w = API_PHOTOS[name][0]
                api[name, variant].append(statistics.median(
                    api_click(app, path, x, y, variant) for x, y in clicks_on((h, w), args.clicks)))

    rows = ["| where | photo | variant | decode ms | draw ms | encode ms | total ms |", "|---|---|---|---|---|---|---|"]
    for (size, variant), stages in tab.items():
        p50 = {k: statistics.median(v) for k, v in stages.items()}
        rows.append(f"| tab click | {size[0]}x{size[1]} | {variant} | {p50['decode']:.1f} | {p50['draw']:.1f} | "
                    f"{p50['encode']:.1f} | {sum(p50.values()):.1f} |")
    for (name, variant), times in api.items():
        rows.append(f"| API click | {name} | {variant} | | | | {statistics.median(times):.1f} |")
    decoder = "ONNX Runtime" if app.ctx.zoo.sam().onnx is not None else "PyTorch"
    publish("SAM's work per click on the server, in process",
            f"`benchmarks/sam_server_click.py`: random-weight vit_t, prompts decoded by {decoder} with the "
            f"threads the app gives a job; p50 of {args.rounds} rounds' medians of {args.clicks} clicks, the "
            f"variants interleaved. Tab: SAM's decode, drawing the canvas and the three mask choices, and "
            f"Gradio's encoding of both (before: choices at the photo's size, WebP; now: at the size shown, "
            f"JPEG). API: /sam_prompt's work without HTTP (before: the file decoded and shrunk per click; "
            f"now: found by its content).", rows, args.markdown)


if __name__ == "__main__":
    main()
