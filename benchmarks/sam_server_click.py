"""The server's work per SAM click after the embedding, in process, stage by stage.

    python benchmarks/sam_server_click.py [--rounds 3] [--clicks 10] [--markdown FILE]

Imports app.py (shipped weights, a random-weight MobileSAM made here, its decoder exported to ONNX)
and times, per click, p50 over --clicks clicks in each of --rounds rounds:
- the tab: SAM's decode, then the picture: the canvas (every object, the prompts) and the three
  mask choices drawn at the size they are shown (CHOICE_SIDE), and both encoded as the tab's
  components encode them (JPEG);
- the API (/sam_prompt without HTTP): the uploaded file found by its content in app.ctx.photos,
  then SAM's decode, on a 360x480 PNG and on a 12 MP JPEG from a phone.
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

from seg.data.photos import Photo, image_digest  # noqa: E402
from seg.sam.prompts import Objects, draw_objects  # noqa: E402
from ui.tabs.sam.tab import choice_tiles  # noqa: E402

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


def tab_click(app, parts, photo: Photo, x, y) -> dict[str, float]:
    """One click as the tab handles it: decode, draw, encode. Times in ms per stage."""
    canvas_out, gallery_out = parts
    image = photo.pixels
    objects = Objects().click(x, y, "positive")
    times = {}
    started = time.perf_counter()
    result = app.sam.mask_choices(photo, objects.current)
    kept = {objects.current.id: result.chosen_mask()}
    times["decode"] = time.perf_counter() - started
    started = time.perf_counter()
    canvas = draw_objects(image, objects, {k: v.mask for k, v in kept.items()})
    choices = choice_tiles(image, objects.current.prompts, result)
    times["draw"] = time.perf_counter() - started
    started = time.perf_counter()
    canvas_out.postprocess(canvas)
    gallery_out.postprocess(choices)
    times["encode"] = time.perf_counter() - started
    return {k: v * 1000 for k, v in times.items()}


def api_click(app, path: str, x, y) -> float:
    """One /sam_prompt's work without HTTP and without writing the mask file, in ms."""
    started = time.perf_counter()
    photo = app.ctx.photo(path)
    app.ctx.zoo.sam().predict(photo.pixels, points=[[x, y]], labels=[1], original_size=photo.size,
                              digest=photo.digest)
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

    parts = (gr.Image(format="jpeg"), gr.Gallery(format="jpeg"))  # as the tab's canvas and choices
    images = {size: Photo(pixels, size, 1.0, digest=image_digest(pixels))  # as the tab holds a photo
              for size, pixels in ((size, street(size)) for size in TAB_SIZES)}
    files = {}
    for name, (size, kind) in API_PHOTOS.items():
        files[name] = str(folder / f"photo.{kind.lower()}")
        Image.fromarray(street(size)).save(files[name], kind, quality=90)
    for image in images.values():
        app.ctx.zoo.sam().embed(image.pixels, digest=image.digest)  # the embedding is not what this measures
    for path in files.values():
        photo = app.ctx.photo(path)  # kept, as a second click would find it
        app.ctx.zoo.sam().embed(photo.pixels, digest=photo.digest)

    tab = {size: {"decode": [], "draw": [], "encode": []} for size in TAB_SIZES}
    api = {name: [] for name in files}
    for _ in range(args.rounds):
        for size, image in images.items():
            stages = [tab_click(app, parts, image, x, y) for x, y in clicks_on(size, args.clicks)]
            for stage in tab[size]:
                tab[size][stage].append(statistics.median(s[stage] for s in stages))
        for name, path in files.items():
            api[name].append(statistics.median(api_click(app, path, x, y) for x, y in clicks_on(API_PHOTOS[name][0],
                                                                                                  args.clicks)))

    rows = ["| where | photo | decode ms | draw ms | encode ms | total ms |", "|---|---|---|---|---|---|"]
    for size, stages in tab.items():
        p50 = {k: statistics.median(v) for k, v in stages.items()}
        rows.append(f"| tab click | {size[0]}x{size[1]} | {p50['decode']:.1f} | {p50['draw']:.1f} | "
                    f"{p50['encode']:.1f} | {sum(p50.values()):.1f} |")
    for name, times in api.items():
        rows.append(f"| API click | {name} | | | | {statistics.median(times):.1f} |")
    decoder = "ONNX Runtime" if app.ctx.zoo.sam().onnx is not None else "PyTorch"
    publish("SAM's work per click on the server, in process",
            f"`benchmarks/sam_server_click.py`: random-weight vit_t, prompts decoded by {decoder} with the "
            f"threads the app gives a job; p50 of {args.rounds} rounds' medians of {args.clicks} clicks. Tab: "
            "SAM's decode, drawing the canvas and the three mask choices at the size shown, and Gradio's "
            "JPEG encoding of both. API: /sam_prompt's work without HTTP, the photo found by its content.",
            rows, args.markdown)
    app.close()


if __name__ == "__main__":
    main()
