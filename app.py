"""Segmentation explorer: compare networks trained from scratch with SegFormer, prompt SAM, learn
how the architectures differ, and read the leaderboard. UI only: every computation is in `seg/`.

    python app.py          # http://127.0.0.1:7860, offline, on the weights in weights/

Settings come from the environment, read once by `ui.settings.Settings.from_environ` (the README's
"Settings" table lists them); GRADIO_SERVER_NAME/PORT are Gradio's own.
"""

import atexit
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import replace
from functools import cache
from typing import NamedTuple
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image
from starlette.middleware import Middleware

from seg.charts import click_chart, confusion_chart, per_class_chart
from seg.clicks import THRESHOLDS, click_curve, objects_in, sam_decoder, semantic_iou
from seg.data.camvid import CLASSES, CLASSES_WITH_OTHER, DISPLAY_PALETTE, PALETTE_WITH_OTHER, CamVid
from seg.data.ground_truth import parse_ground_truth, read_ground_truth
from seg.data.io import fit_image, read_image, read_raw, resize_labels, stored_size
from seg.data.photos import Photo, PhotoCache
from seg.data.synthetic import PALETTE as SYNTHETIC_PALETTE
from seg.deadline import check
from seg.explorer import demos
from seg.explorer.compare import Comparison, compare, disagreement, run_model, score
from seg.explorer.export import (coco_annotation, coco_document, coco_objects, instance_ids, objects_from_coco,
                                 rle_encode, save_json, save_png, save_prediction)
from seg.explorer.prompts import (MODES, MaskChoices, ObjectMask, Objects, Prompts, draw_objects,
                                  draw_prompts, parse_objects, parse_prompt, relate)
from seg.explorer.zoo import TITLES, Zoo
from seg.labels import IGNORE_INDEX
from seg.limits import LIMITS as DEFAULT_LIMITS, check_output
from seg.pretrained.sam import check_prompts, image_digest
from seg.pretrained.sam_everything import Everything
from seg.visualize import BOUNDARY_COLORS, IGNORED_COLOR, colorize, draw_contours, enlarge, overlay
from ui.browser_sam import SCRIPT as LIVE_SCRIPT, BrowserSam
from ui.files import Outputs
from ui.guard import RequestGuard, guard_components, inside, upload_folder
from ui.isolation import CrossOriginIsolation
from ui.jobs import job, scrub
from ui.memory import trim_every
from ui.settings import Settings

ROOT = Path(__file__).resolve().parent
MAX_SIDE = 1024  # uploads are shrunk to this longer side first: bounded time and memory for everyone
CONCURRENCY = 2  # CPU-heavy jobs at once, across every event: the 2 cores of a free Space
SETTINGS = Settings.from_environ(os.environ)  # the one place the environment is read
LIMITS = replace(DEFAULT_LIMITS, keep_files_seconds=SETTINGS.keep_files_seconds)
# CamVid photos first (real streets, see examples/README.md), then the scenes we drew
EXAMPLES = [[str(p), str(p.with_name(p.stem + "_labels.png"))]
            for pattern in ("camvid_*.png", "street_*.jpg") for p in sorted((ROOT / "examples").glob(pattern))
            if not p.stem.endswith(("_labels", "_colour"))]
LEADERBOARD = ROOT / "leaderboard"


def make_zoo(settings: Settings) -> Zoo:
    """The models the settings name, each found where the settings say (nothing loads yet). SAM's
    decoder is exported to ONNX beside the downloads: the server decodes clicks with ONNX Runtime, one
    thread per job, and browsers fetch the same graph."""
    return Zoo(settings.weights_dir, pretrained=settings.pretrained, sam_variant=settings.sam_variant,
               sam_checkpoint=settings.sam_checkpoint, sam_cache_dir=settings.cache_dir,
               allow_download=settings.allow_download, sam_onnx_dir=settings.cache_dir / "sam_onnx",
               sam_threads=max(1, (os.cpu_count() or 1) // CONCURRENCY),
               sam_everything_threads=os.cpu_count() or 1)  # a rarer, longer job: every core it can get


def temporary_folder(prefix: str) -> str:
    """A new temporary folder, removed when the process exits (normally, by Ctrl-C or by SIGTERM,
    see `main`): each start makes its own, and none outlives it."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


ZOO = make_zoo(SETTINGS)
# the browser's decoder: embeddings written to a folder of their own, which the app serves
BROWSER = BrowserSam(temporary_folder("seg-sam-embeddings-"), runtime_dir=SETTINGS.ort_web_dir) \
    if SETTINGS.browser_decoder else None
OUTPUTS = Outputs(LIMITS.keep_files_seconds, SETTINGS.outputs_dir or temporary_folder("seg-outputs-"),
                  loose_in=(upload_folder(),))  # what we hand out, deleted later


NO_IMAGE = "no image: upload a photo or pick an example first"


def load_original(path: str | None) -> np.ndarray:
    """The uploaded photo, upright, RGB, at its own size (refused from its header when too large)."""
    if not path:
        raise ValueError(NO_IMAGE)
    try:
        return read_image(path, max_pixels=LIMITS.image_pixels)
    except ValueError:
        raise
    except Exception as error:  # Pillow raises many types for broken, truncated or oversized files
        raise ValueError(f"{Path(path).name} is not a readable image ({type(error).__name__}): upload a PNG or "
                         f"JPEG photo of at most {LIMITS.image_pixels / 1e6:.0f} megapixels") from None


# every photo decoded once per content: the API's clients send the same photo with every SAM click
PHOTOS = PhotoCache(load_original, max_side=MAX_SIDE)


def open_photo(path: str | None) -> Photo:
    """The uploaded photo, decoded once per content: upright RGB pixels at most MAX_SIDE on the longer
    side (the working size, read-only), and the file's own size."""
    if not path:
        raise ValueError(NO_IMAGE)
    try:
        return PHOTOS.get(path)
    except OSError as error:  # gone from the upload folder (deleted after an hour), or unreadable
        raise ValueError(f"{Path(path).name} could not be read ({type(error).__name__}): upload it again") from None


def load_photo(path: str | None) -> np.ndarray:
    """The uploaded photo's pixels at the working size (see `open_photo`)."""
    return open_photo(path).pixels


def load_truth(path: str | None, image: np.ndarray):
    """The ground truth for `image` (or None), resized with nearest neighbour if the photo was."""
    if not path:
        return None
    raw = read_raw(path, max_pixels=LIMITS.image_pixels, lossless=True)
    if raw.shape[:2] != image.shape[:2] and max(raw.shape[:2]) > MAX_SIDE:  # the photo was shrunk too
        raw = resize_labels(raw, image.shape[:2])
    return parse_ground_truth(raw, image_shape=image.shape, max_values=LIMITS.class_ids)


def example_label(photo: str) -> str:
    """An example's name for people: "CamVid 0016E5_08085" or "drawn street 1"."""
    stem = Path(photo).stem
    return f"CamVid {stem.removeprefix('camvid_')}" if stem.startswith("camvid_") else f"drawn {stem.replace('_', ' ')}"


def legend_html(names, palette) -> str:
    chips = "".join(f'<span class="chip"><i style="background:rgb{tuple(c)}"></i>{n}</span>'
                    for n, c in zip(names, palette))
    return f'<div class="legend">{chips}</div>'


def status_markdown() -> str:
    lines = [f"**Ready:** {', '.join(ZOO.semantic_names().values()) or 'no semantic model'}"
             f"{' · SAM ' + ZOO.sam_variant if ZOO.sam_available() else ''}."]
    missing = ZOO.missing()
    if missing:
        lines.append("<details><summary>Unavailable models and how to enable them "
                     f"({len(missing)})</summary>\n\n" + "\n".join(f"- **{m}**: {how}" for m, how in missing)
                     + "\n\n</details>")
    return "\n\n".join(lines)


# Page events run CPU work: they share one concurrency limit and are not callable through the API.
PAGE = {"api_visibility": "private", "concurrency_id": "cpu", "concurrency_limit": CONCURRENCY}
API = {"concurrency_id": "cpu", "concurrency_limit": CONCURRENCY}  # the documented endpoints share it too


def default_models(names: dict) -> list[str]:
    """The models ticked on first visit: the three that tell the upsampling story."""
    return [k for k in ("fcn32s", "fcn8s", "unet") if k in names] or list(names)[:1]


# ---------------------------------------------------------------- Compare
TIMING_COLUMNS = ["model", "time (ms)"]
METRIC_COLUMNS = ["model", "mIoU", "Dice", "pixel acc.", "boundary F", "'other'"]  # compare's rows, before a run
VIEWS = ("errors", "boundaries", "overlay", "ground truth")  # the large view's choices
LARGE_SIDE = 960  # the large view's longer side at least (smaller photos are enlarged by a whole factor)


class CompareView(NamedTuple):
    """What one comparison shows, in the order of its outputs."""

    gallery: list
    timing: pd.DataFrame
    metrics: pd.DataFrame
    chart: np.ndarray | None
    files: list[str]
    note: str
    comparison: Comparison
    model_a: dict
    model_b: dict
    closer: dict


def compare_gallery(result: Comparison) -> list:
    """The gallery's tiles, three a row. With a ground truth, one row per model: its overlay, its
    errors and its boundaries, under a first row of the ground truth, the photo and the true
    boundaries. Without one, the overlays alone."""
    short = {k: p.title.replace(" (from scratch)", "") for k, p in result.predictions.items()}
    if result.ground_truth is None:
        return [(overlay(result.image, p.labels, DISPLAY_PALETTE), f"{short[k]} · {p.seconds * 1000:.0f} ms")
                for k, p in result.predictions.items()]
    truth = result.truth(DISPLAY_PALETTE)
    tiles = [(truth["overlay"], "ground truth"), (result.image, "photo"), (truth["boundaries"], "true boundaries")]
    for key, p in result.predictions.items():
        views, s = result.errors(key, DISPLAY_PALETTE), result.scores[key]
        tiles += [(views["overlay"], f"{short[key]} · {p.seconds * 1000:.0f} ms"),
                  (views["errors"], f"{short[key]} · {views['shares']['wrong']:.0%} wrong"),
                  (views["boundaries"], f"{short[key]} · boundary F {s['boundary_f'] or 0:.2f}")]
    return tiles


@job(LIMITS.compare_seconds, "the comparison")
def run_compare(image_path, truth_path, keys, tta, crf, progress=gr.Progress(track_tqdm=True)) -> CompareView:
    image = load_photo(image_path)
    models = ZOO.semantic_models(keys)
    truth = load_truth(truth_path, image)
    result = compare(models, image, truth.labels if truth else None, tta=tta, crf=crf,
                     progress=lambda f, d: progress(f, desc=d))
    out, stem = OUTPUTS.new("compare"), Path(image_path).stem  # every download says which photo it is of
    files = [str(f) for k, p in result.predictions.items()  # colour PNGs in CamVid's own palette
             for f in save_prediction(out, f"{stem}_{k.replace('/', '_')}", p.labels, PALETTE_WITH_OTHER)]
    if truth is not None:
        files.append(str(save_json(out / f"{stem}_metrics.json", {
            "image": Path(image_path).name, "tta": tta, "crf": crf, "ground_truth_format": truth.format,
            "runs": result.rows, "per_class_iou": result.per_class})))
    timing = pd.DataFrame([{"model": p.title, "time (ms)": round(p.seconds * 1000)}
                           for p in result.predictions.values()], columns=TIMING_COLUMNS)
    metrics = pd.DataFrame(result.rows).round(3) if result.rows else pd.DataFrame(columns=METRIC_COLUMNS)
    metrics["model"] = metrics["model"].str.replace(" (from scratch)", "")  # narrow: every column fits a phone
    chart = per_class_chart(result.per_class, CLASSES, title="IoU per class (against your ground truth)") \
        if result.per_class else None
    note = f"Ground truth read as: {truth.format}." if truth else \
        "Add a ground truth (label ids or CamVid colours, PNG) to see metrics and errors."
    choices = [(p.title, k) for k, p in result.predictions.items()]
    pick = lambda i: gr.update(choices=choices, value=choices[i][1])  # one update each: Gradio consumes them
    return CompareView(compare_gallery(result), timing, metrics, chart, files, note, result,
                       model_a=pick(0), model_b=pick(-1), closer=pick(0))


def view_legend(view: str) -> str:
    """The large view's legend: what its colours mean."""
    if view == "boundaries":
        return legend_html(["boundary found (within 2 px)", "boundary where the truth has none",
                            "true boundary missed"], list(BOUNDARY_COLORS.values()))
    chips = legend_html(CLASSES_WITH_OTHER, DISPLAY_PALETTE)
    if view == "errors":
        return legend_html(["correct (pale photo)", "void: not scored (stripes)"], [(215, 215, 215), IGNORED_COLOR]) \
            + "<p class='legend-note'>Wrong pixels take the colour of the class the model predicted:</p>" + chips
    return chips


@job(LIMITS.compare_seconds, "the closer look")
def look_closely(result: Comparison | None, key, view):
    """One model large, in the chosen view, with its legend and its confusion matrix."""
    if result is None or key not in result.predictions:
        return None, "", "Run a comparison first, then pick a model here.", None, None
    title = result.predictions[key].title
    if result.ground_truth is None:
        return (enlarge(overlay(result.image, result.predictions[key].labels, DISPLAY_PALETTE), LARGE_SIDE),
                view_legend("overlay"),
                f"**{title}**. Add a ground truth to see its errors, boundaries and confusion matrix.", None, None)
    views = result.errors(key, DISPLAY_PALETTE)
    picture = result.truth(DISPLAY_PALETTE)["overlay"] if view == "ground truth" else views.get(view, views["errors"])
    picture = enlarge(picture, LARGE_SIDE)  # a CamVid photo is 480 px wide: pixels made visible, not smoothed
    s = result.scores[key]
    text = (f"**{title}**: mIoU {s['miou'] or 0:.3f}, boundary F {s['boundary_f'] or 0:.3f}; "
            f"{views['shares']['correct']:.1%} of the pixels right, {views['shares']['wrong']:.1%} wrong, "
            f"{views['shares']['ignored']:.1%} void (not scored).")
    counts = np.asarray(s["confusion"])
    chart = confusion_chart(counts, CLASSES, CLASSES_WITH_OTHER, title=f"{title}: where each class's pixels went")
    table = pd.DataFrame(counts, columns=list(CLASSES_WITH_OTHER)).assign(**{"pixels": counts.sum(axis=1)})
    table.insert(0, "true class", list(CLASSES))
    return picture, view_legend(view), text, chart, table


@job(LIMITS.compare_seconds, "the disagreement view")
def show_disagreement(result: Comparison | None, a, b):
    if result is None or a not in result.predictions or b not in result.predictions:
        raise ValueError("run a comparison with at least two models first, then pick two of them")
    truth = result.ground_truth
    picture, stats = disagreement(result.image, result.predictions[a].labels, result.predictions[b].labels, truth)
    text = f"They differ on **{stats['differ']:.1%}** of the pixels."
    if truth is not None:
        text += (f" There, the ground truth sides with **A** on {stats['a_right']:.1%} of the image (blue), with "
                 f"**B** on {stats['b_right']:.1%} (orange); both are wrong on {stats['both_wrong']:.1%} (crimson).")
    return picture, text


@job(LIMITS.segment_seconds, "loading the sample")
def pick_sample(name):
    """A CamVid val image and its ground truth, copied to a temporary folder (Gradio serves only
    uploads, temporary files and the project's own folder, never the dataset's)."""
    root = SETTINGS.camvid_dir
    if not name or not root:
        return gr.update(), gr.update()
    data = CamVid(root, "val")
    names = [p.name for p in data.images]
    if name not in names:
        raise gr.Error(f"{name!r} is not a CamVid val image", print_exception=False)
    out = OUTPUTS.new("sample")
    index = names.index(name)
    image, truth = out / name, out / f"{Path(name).stem}_labels.png"
    shutil.copyfile(data.images[index], image)
    shutil.copyfile(data.labels[index], truth)
    return str(image), str(truth)


def compare_tab() -> tuple[gr.Image, gr.File]:
    """The Compare tab's layout and events; returns its photo and ground truth (the SAM tab takes them)."""
    names = ZOO.semantic_names()
    defaults = default_models(names)
    samples = [p.name for p in CamVid(SETTINGS.camvid_dir, "val").images] if SETTINGS.camvid_dir else []
    compared = gr.State(None)  # the last comparison, whole: later views reuse it, nothing runs twice
    with gr.Row():
        with gr.Column(scale=1):
            image_in = gr.Image(type="filepath", label="Photo", height=300, elem_id="photo",
                                image_mode=None)  # our reader decodes it, after the size check
            truth_in = gr.File(label="Ground truth (optional): label-id or CamVid-colour PNG",
                               file_types=[".png"], type="filepath", elem_id="truth")
            if EXAMPLES:  # named, not a table of thumbnails: a narrow column cut the file names
                gr.Examples(EXAMPLES, inputs=[image_in, truth_in], api_visibility="private",
                            example_labels=[example_label(photo) for photo, _ in EXAMPLES], elem_id="examples",
                            label="Examples with ground truth: three CamVid photos (CC BY-NC 4.0), then "
                                  "two drawn scenes, outside the models' domain (expect low scores)")
            if samples:
                sample = gr.Dropdown(samples, value=None, label="CamVid val sample (image + ground truth)")
                sample.change(pick_sample, sample, [image_in, truth_in], **PAGE)
            models = gr.CheckboxGroup([(t, k) for k, t in names.items()], value=defaults, label="Models")
            with gr.Row():
                tta = gr.Checkbox(label="Test-time augmentation (flips x 3 scales)")
                crf = gr.Checkbox(label="Dense CRF refinement")
            go = gr.Button("Segment", variant="primary", elem_id="segment")
        with gr.Column(scale=2):
            # the title above, not Gradio's label over the first row (a phone's two-line label hid it)
            gr.Markdown("**Predictions** (with a ground truth: overlay, errors, boundaries)", elem_id="predictions-title")
            gallery = gr.Gallery(show_label=False, columns=3, height="auto", object_fit="contain",
                                 elem_id="predictions")  # every tile in view, none scrolled away
            gr.HTML(legend_html(CLASSES_WITH_OTHER, DISPLAY_PALETTE))
            truth_note = gr.Markdown()
            # full width, one above the other: every metric visible without scrolling sideways
            metrics = gr.Dataframe(pd.DataFrame(columns=METRIC_COLUMNS), interactive=False,
                                   label="Metrics against the ground truth", elem_id="metrics", wrap=True)
            timing = gr.Dataframe(pd.DataFrame(columns=TIMING_COLUMNS), label="Time per model",
                                  interactive=False)
            chart = gr.Image(show_label=False, type="numpy", interactive=False)  # titled inside
            downloads = gr.File(label="Downloads: label PNGs, colour PNGs, metrics JSON",
                                file_count="multiple")
    gr.Markdown("### Look closely at one model", elem_id="look-title")
    with gr.Row():
        look_model = gr.Radio([], label="Model", elem_id="look-model")
        look_view = gr.Radio(list(VIEWS), value="errors", label="View", elem_id="look-view")
    with gr.Row():
        with gr.Column(scale=3):
            look_image = gr.Image(show_label=False, interactive=False, height=560, elem_id="look-image")
            look_legend = gr.HTML(view_legend("errors"))
            look_text = gr.Markdown("Run a comparison first, then pick a model here.", elem_id="look-text")
        with gr.Column(scale=2):
            look_chart = gr.Image(show_label=False, interactive=False, elem_id="confusion")  # titled inside
    # full width: its 14 columns were cut in the chart's column
    with gr.Accordion("Pixel counts (rows: true class; columns: predicted)", open=False, elem_id="counts"):
        look_counts = gr.Dataframe(interactive=False, elem_id="confusion-counts")
    look = [look_image, look_legend, look_text, look_chart, look_counts]
    with gr.Accordion("Where do two models disagree?", open=False):
        with gr.Row():
            model_a = gr.Dropdown(label="Model A")
            model_b = gr.Dropdown(label="Model B")
            diff_go = gr.Button("Show disagreement")
        diff_image = gr.Image(label="Disagreement", interactive=False)
        diff_text = gr.Markdown(elem_id="diff-text")
    go.click(run_compare, [image_in, truth_in, models, tta, crf],
             [gallery, timing, metrics, chart, downloads, truth_note, compared, model_a, model_b, look_model],
             **PAGE).success(look_closely, [compared, look_model, look_view], look, **PAGE).success(
        show_disagreement, [compared, model_a, model_b], [diff_image, diff_text], **PAGE)  # never a stale photo
    look_model.input(look_closely, [compared, look_model, look_view], look, **PAGE)
    look_view.input(look_closely, [compared, look_model, look_view], look, **PAGE)
    diff_go.click(show_disagreement, [compared, model_a, model_b], [diff_image, diff_text], **PAGE)
    return image_in, truth_in


# ---------------------------------------------------------------- Prompt SAM
def sam_notice() -> str:
    """Empty when SAM can load; otherwise what is missing and how to enable it, for the tab's top."""
    how = ZOO.sam_missing()
    return f"**SAM is not available on this server**: {how}. The semantic models work without it." if how else ""


def sam_choices(image: np.ndarray, item) -> MaskChoices:
    """SAM's three masks for one object's prompts, its own choice among them marked."""
    result = ZOO.sam().predict(image, **item.prompts.to_sam(), multimask=True)
    return MaskChoices(item.id, result.masks, tuple(map(float, result.scores)), tuple(map(float, result.stability)),
                       chosen=item.choice)


def sam_masks(image: np.ndarray, objects: Objects, kept: dict | None = None) -> dict[int, ObjectMask]:
    """{object id: its mask}: `kept` for the objects it has, SAM's chosen mask for the others that
    have a prompt (the embedding is computed once, then each costs a decode)."""
    kept = dict(kept or {})
    for item in objects.items:
        if item.id not in kept and item.prompts.ready():
            kept[item.id] = sam_choices(image, item).kept()
    return {k: v for k, v in kept.items() if k in {item.id for item in objects.items}}


def browser_value(image, objects: Objects, *, compute: bool = False) -> dict | None:
    """What the browser decoder needs (ui/browser_sam.py): the photo's embedding once written (now, if
    `compute`) and the selected object's clicks; None where the browser decoder is off or SAM missing."""
    if BROWSER is None or image is None or not ZOO.sam_available():
        return None
    return BROWSER.value(ZOO.sam(), image, objects.current.prompts.clicks, compute=compute)


# The mask choices are drawn at the size they are shown (thumbnails in a 420 px high gallery, its
# preview at most this): a third of the pixels of a 1024 px photo to draw and encode, three times a click.
CHOICE_SIDE = 480


def mask_choices(image: np.ndarray, prompts: Prompts, result: MaskChoices) -> list[tuple[np.ndarray, str]]:
    """SAM's masks for the selected object as the gallery shows them: each drawn with the prompts,
    on the photo shrunk to CHOICE_SIDE, with its predicted IoU."""
    small, scale = fit_image(image, CHOICE_SIDE, resample=Image.Resampling.BOX)
    return [(draw_prompts(small, prompts, resize_labels(m, small.shape[:2]), scale=scale),
             f"mask {i + 1} · IoU {s:.2f}") for i, (m, s) in enumerate(zip(result.masks, result.scores))]


def sam_view(image, objects: Objects, result: MaskChoices | None, kept: dict[int, ObjectMask], note: str) -> tuple:
    """The outputs of every SAM handler: objects, canvas, mask choices, result, kept masks, note, picker,
    the browser decoder's value."""
    canvas = draw_objects(image, objects, {k: v.mask for k, v in kept.items()}) if image is not None else None
    choices = [] if result is None else mask_choices(image, objects.current.prompts, result)
    picker = gr.update(choices=[(o.name, i) for i, o in enumerate(objects.items)], value=objects.selected)
    return objects, canvas, choices, result, kept, note, picker, browser_value(image, objects)


def sam_run(image, objects: Objects, kept: dict) -> tuple:
    """SAM for the selected object's prompts; its best mask replaces the one kept for it. The mask
    depends on the prompts alone (no previous mask fed back), so saved prompts re-create it."""
    if image is None:
        raise ValueError("no image: upload one first")
    objects = objects.choose(0)  # new prompts: the best scored of SAM's new masks
    item = objects.current
    kept = {k: v for k, v in kept.items() if k != item.id}
    if not item.prompts.ready():
        note = "Box: click the opposite corner." if item.prompts.corners else f"{item.name}: click the object."
        return sam_view(image, objects, None, kept, note)
    result = sam_choices(image, item)
    kept[item.id] = result.kept()
    given = len(item.prompts.points) + (item.prompts.box is not None)
    pending = " Box: click the opposite corner." if len(item.prompts.corners) == 1 else ""
    note = f"{item.name}: {given} prompt(s); the best of {len(result.masks)} masks is shown.{pending}"
    return sam_view(image, objects, result, kept, note)


def restore_objects(image: np.ndarray, saved) -> tuple[Objects, dict, str]:
    """The objects saved in the browser for this photo (matched by content), with their masks."""
    if isinstance(saved, dict) and saved.get("digest") == image_digest(image) and saved.get("objects"):
        try:
            objects = Objects.from_json(saved["objects"], size=image.shape[:2], limits=LIMITS)
        except ValueError:
            return Objects(), {}, "The objects saved for this photo could not be read; starting afresh."
        kept = sam_masks(image, objects)
        return objects, kept, f"{len(objects.items)} object(s) from your last visit are back."
    return Objects(), {}, "Click the object: each click updates the mask. Add an object to outline another."


@job(LIMITS.sam_seconds, "opening the image")
def sam_open(path, saved, progress=gr.Progress(track_tqdm=True)):
    """A new image for SAM: the objects saved for it in this browser, or a fresh first object. SAM
    loads here, not at the first click (a download, where allowed, shows its progress)."""
    if not path:
        return None, None, *sam_view(None, Objects(), None, {}, "Upload an image or send the one from Compare.")
    image = load_photo(path)
    if ZOO.sam_available():
        ZOO.sam()
    objects, kept, note = restore_objects(image, saved)
    return image, {"path": path, "digest": image_digest(image)}, *sam_view(image, objects, None, kept, note)


@job(LIMITS.sam_seconds, "SAM's reading of the photo")
def sam_embed(image, objects: Objects, progress=gr.Progress()):
    """SAM's image embedding of the photo just opened, computed now, so the first click costs only a
    decode; then sent to the browser decoder. A click that comes sooner waits for this same
    computation (`Sam.embed` computes each photo once, whoever asks first)."""
    if image is None or not ZOO.sam_available():
        return gr.skip()
    progress(0, desc="SAM is reading the photo (its image embedding)")
    ZOO.sam().embed(image)
    return browser_value(image, objects, compute=True) if BROWSER is not None else gr.skip()


@job(LIMITS.sam_seconds, "restoring your objects")
def sam_restore(saved, image=None):
    """When the tab opens with no photo: the photo and objects of the last visit, if the photo is
    still on the server (else a note to upload it again). With a photo open, nothing changes."""
    if image is not None:
        return (gr.skip(),) * 10
    path = saved.get("path") if isinstance(saved, dict) else None
    if not isinstance(path, str) or not inside(path, upload_folder()) or not os.path.isfile(path):
        waiting = isinstance(saved, dict) and saved.get("objects")
        note = "Upload the same photo to get the objects of your last visit back." if waiting else \
            "Upload an image or send the one from Compare."
        return None, None, *sam_view(None, Objects(), None, {}, note)
    return sam_open(path, saved)


def sam_save(photo, objects: Objects):
    """What the browser keeps (its local storage) so a reload brings the objects back."""
    if not photo:
        return gr.skip()
    return {**photo, "objects": objects.to_json()}


@job(LIMITS.sam_seconds, "SAM")
def sam_canvas_click(image, objects: Objects, mode, kept, evt: gr.SelectData):
    if image is None:
        raise ValueError("no image: upload one first")
    if len(objects.current.prompts.clicks) >= LIMITS.points_per_object:
        raise ValueError(f"one object takes at most {LIMITS.points_per_object} clicks: undo or clear some")
    x, y = evt.index
    return sam_run(image, objects.click(x, y, mode), kept)


@job(LIMITS.sam_seconds, "SAM")
def sam_undo(image, objects: Objects, kept):
    return sam_run(image, objects.undo(), kept)


@job(LIMITS.segment_seconds, "clearing")
def sam_clear(image, objects: Objects, kept):
    objects = objects.clear()
    return sam_view(image, objects, None, {k: v for k, v in kept.items() if k != objects.current.id},
                    "Prompts of this object cleared.")


@job(LIMITS.segment_seconds, "adding an object")
def sam_add(image, objects: Objects, kept):
    if image is None:
        raise ValueError("no image: upload one first")
    if len(objects.items) >= LIMITS.objects_per_request:
        raise ValueError(f"one image takes at most {LIMITS.objects_per_request} objects: delete one first")
    objects = objects.add()
    return sam_view(image, objects, None, kept, f"{objects.current.name}: click the object.")


# The automatic masks' grid, points per side (SAM's own default is 32): 8 is 64 prompts, 2.9 s on this
# 2-core machine for a 360x480 photo whose embedding is cached (benchmarks/RESULTS.md, "Find every object").
EVERYTHING_GRID = 8


def everything_settings(max_masks: int, grid: int = EVERYTHING_GRID) -> Everything:
    return Everything(points_per_side=grid, max_masks=max_masks)


@job(LIMITS.sam_seconds, "finding every object")
def sam_every_object(image, objects: Objects, kept, progress=gr.Progress()):
    """SAM's automatic masks as objects after the others (up to the objects limit): each one is a
    positive click at the grid point that found it, with the one of SAM's three masks there that it
    is, so it is edited, saved and exported like a clicked object."""
    if image is None:
        raise ValueError("no image: upload one first")
    room = LIMITS.objects_per_request - sum(1 for item in objects.items if item.prompts.clicks)
    if room <= 0:
        raise ValueError(f"one image takes at most {LIMITS.objects_per_request} objects: delete some first")
    progress(0, desc=f"SAM is prompting a grid of {EVERYTHING_GRID}x{EVERYTHING_GRID} points")
    found = ZOO.sam().everything(image, everything_settings(room))
    if not found:
        return sam_view(image, objects, None, kept, "SAM found no object it is sure of: click them instead.")
    objects = objects.extend([(*(float(v) for v in mask["point_coords"][0]), mask["choice"]) for mask in found])
    new = objects.items[-len(found):]
    kept = {**{k: v for k, v in kept.items() if k in {item.id for item in objects.items}},
            **{item.id: ObjectMask(m["segmentation"], m["predicted_iou"], m["stability_score"])
               for item, m in zip(new, found)}}
    return sam_view(image, objects, None, kept, f"SAM found {len(found)} object(s); each can be edited like a "
                                                "clicked one.")


@job(LIMITS.segment_seconds, "selecting an object")
def sam_pick(image, objects: Objects, kept, index):
    if image is None or not isinstance(index, int) or index == objects.selected:
        return sam_view(image, objects, None, kept, "")
    objects = objects.select(index)
    return sam_view(image, objects, None, kept, f"{objects.current.name} selected: clicks now edit it.")


@job(LIMITS.segment_seconds, "deleting an object")
def sam_delete(image, objects: Objects, kept):
    gone = objects.current
    objects = objects.delete()
    return sam_view(image, objects, None, {k: v for k, v in kept.items() if k != gone.id}, f"{gone.name} deleted.")


@job(LIMITS.segment_seconds, "choosing the mask")
def sam_choose(image, objects: Objects, result, kept, evt: gr.SelectData):
    if not isinstance(result, MaskChoices) or result.object != objects.current.id:
        return sam_view(image, objects, result, kept, "")
    i = evt.index
    result, objects = replace(result, chosen=i), objects.choose(i)
    kept = {**kept, objects.current.id: result.kept()}
    return sam_view(image, objects, result, kept, f"Mask {i + 1} chosen for {objects.current.name}.")


def export_objects(out: Path, objects: Objects, kept: dict[int, ObjectMask], *, name: str,
                   size: tuple[int, int]) -> tuple[Path, dict]:
    """The instance-id PNG (in `out`) and the COCO document of the objects that have a mask."""
    done = [o for o in objects.items if o.id in kept]
    instances = save_png(out / "instances.png", instance_ids([kept[o.id].mask for o in done]))
    coco = coco_objects(objects, {k: v.mask for k, v in kept.items()}, file_name=name, size=size,
                        scores={k: v.score for k, v in kept.items()},
                        stability={k: v.stability for k, v in kept.items()})
    return instances, coco


@job(LIMITS.segment_seconds, "the export")
def sam_export(image, objects: Objects, kept, photo):
    """Every object with a mask: one instance-id PNG, a COCO JSON (with the prompts, to import again)
    and one PNG per object."""
    done = [o for o in objects.items if o.id in kept]
    if image is None or not done:
        raise ValueError("no mask yet: click on an object first")
    out = OUTPUTS.new("sam")
    name = Path(photo["path"]).name if photo else "image.png"
    stem = Path(name).stem  # every download says which photo it belongs to
    instances, coco = export_objects(out, objects, kept, name=name, size=image.shape[:2])
    files = [instances.rename(out / f"{stem}_instances.png"), save_json(out / f"{stem}_objects_coco.json", coco)]
    for index, item in enumerate(done, 1):
        files.append(save_png(out / f"{stem}_object_{index}.png", kept[item.id].mask.astype(np.uint8) * 255))
    return [str(f) for f in files]


@job(LIMITS.sam_seconds, "the import")
def sam_import(image, objects: Objects, kept, photo, path):
    """Objects from a COCO JSON this app exported, added after the open photo's own objects with
    their masks. A file made on a photo of another size is refused; one whose photo had another name
    is added, and the note says so."""
    if image is None:
        raise ValueError("open the photo the objects were made on first, then import its COCO JSON")
    if not path:  # the file was removed from the box: nothing changes
        return (gr.skip(),) * 8
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("the import must be the COCO JSON this app exported (objects_coco.json)") from None
    imported = objects_from_coco(document, size=image.shape[:2], limits=LIMITS)
    merged = objects.append(imported)
    if len(merged.items) > LIMITS.objects_per_request:
        raise ValueError(f"{len(imported.items)} imported objects and the {len(merged.items) - len(imported.items)} "
                         f"here make {len(merged.items)}; one image takes at most {LIMITS.objects_per_request}: "
                         "delete some first")
    note = f"{len(imported.items)} object(s) added from the file."
    made_for = document["images"][0].get("file_name") if isinstance(document.get("images"), list) and \
        document["images"] and isinstance(document["images"][0], dict) else None
    here = Path(photo["path"]).name if photo else None
    if made_for and here and made_for != here:
        note += f" The file was made on **{str(made_for)[:80]}**, this photo is **{here}** (the same size): check them."
    return sam_view(image, merged, None, sam_masks(image, merged, kept), note)


RELATE_COLUMNS = ["model", "class", "IoU with SAM's mask", "IoU with the true region"]  # prompts.relate's rows


def semantic_labels(image: np.ndarray, keys, kept: dict | None) -> tuple[dict, dict]:
    """{title: (H, W) CamVid ids} of the ticked models on this photo, and the per-user store they
    came from: each model runs once per photo, however often the SAM tab asks."""
    digest = image_digest(image)
    kept = kept if isinstance(kept, dict) and kept.get("digest") == digest else {"digest": digest, "labels": {}}
    models = ZOO.semantic_models(keys)
    labels = dict(kept["labels"])
    for key, (_, model) in models.items():
        if key not in labels:
            labels[key] = run_model(model, image).labels
    return {title: labels[key] for key, (title, _) in models.items()}, {"digest": digest, "labels": labels}


@job(LIMITS.compare_seconds, "relating SAM's mask to the semantic models")
def sam_relate(image, objects: Objects, kept, keys, truth_path, semantic=None):
    """The selected object against the ticked semantic models and the ground truth uploaded in this
    tab for this photo (never another tab's: it may belong to another image)."""
    if objects.current.id not in kept:
        raise ValueError("no mask yet: click on the image first")
    prompts = objects.current.prompts
    clicks = [p for p in prompts.points if p[2] == 1] or prompts.points
    if clicks:
        point = clicks[-1][:2]
    else:  # a box alone: its centre
        x0, y0, x1, y1 = prompts.box
        point = ((x0 + x1) / 2, (y0 + y1) / 2)
    predictions, semantic = semantic_labels(image, keys, semantic) if keys else ({}, semantic)
    truth = load_truth(truth_path, image) if truth_path else None
    rows = relate(kept[objects.current.id].mask, point, predictions, CLASSES_WITH_OTHER,
                  truth.labels if truth is not None else None)
    note = f"Ground truth read as: {truth.format}." if truth is not None else \
        "No ground truth for this photo: upload its label PNG above to see the true class and region."
    return pd.DataFrame(rows).round(3).set_axis(RELATE_COLUMNS, axis=1), note, semantic


CURVE_CLICKS = 10  # the simulation's length: NoC@85 and NoC@90 are counted within it
CURVE_MIN_PIXELS = 200  # objects smaller than this are left out of the picker (specks of annotation)
CURVE_OBJECTS = 40  # the picker lists the largest objects only


@job(LIMITS.segment_seconds, "reading the objects of the ground truth")
def sam_curve_objects(image, truth_path):
    """The objects (connected regions of one class) of this photo's ground truth, largest first,
    for the click curve's picker; kept with the labels for the simulation."""
    if image is None or not truth_path:
        return gr.update(choices=[], value=None), None
    truth = load_truth(truth_path, image)
    found = objects_in(truth.labels, min_pixels=CURVE_MIN_PIXELS, classes=set(range(len(CLASSES))))[:CURVE_OBJECTS]
    choices = [(f"{CLASSES[o['class']]} · {o['pixels']:,} px · around ({o['point'][0]}, {o['point'][1]})", i)
               for i, o in enumerate(found)]
    return gr.update(choices=choices, value=0 if choices else None), {"labels": truth.labels, "objects": found,
                                                                     "digest": image_digest(image)}


@job(LIMITS.sam_seconds, "the click curve")
def sam_click_curve(image, truth, index, keys, semantic=None):
    """SAM's IoU with the chosen true object after 1 to CURVE_CLICKS simulated clicks (seg.clicks),
    beside each ticked semantic model's IoU on the same object."""
    if image is None:
        raise ValueError("no image: upload one first")
    if not truth or not isinstance(index, int) or not 0 <= index < len(truth["objects"]):
        raise ValueError("upload this photo's ground truth above, then pick one of its objects")
    if truth.get("digest") != image_digest(image):
        raise ValueError("the ground truth above was read for another photo: upload this photo's again")
    item, valid = truth["objects"][index], truth["labels"] != IGNORE_INDEX
    curve = click_curve(sam_decoder(ZOO.sam(), image), item["mask"], max_clicks=CURVE_CLICKS, valid=valid)
    predictions, semantic = semantic_labels(image, keys, semantic) if keys else ({}, semantic)
    levels = {title: semantic_iou(labels, item["mask"], item["class"], valid) for title, labels in predictions.items()}
    name = CLASSES[item["class"]]
    chart = click_chart({f"SAM {ZOO.sam_variant}": list(curve.ious)}, levels=levels,
                        title=f"{name}, {item['pixels']:,} px: IoU with the true object after each click")
    prompts = Prompts(tuple((x, y, "positive" if positive else "negative") for x, y, positive in curve.clicks))
    picture = draw_contours(draw_prompts(image, prompts, curve.mask), item["mask"], color=(255, 255, 255))
    reached = {t: curve.noc(t) for t in THRESHOLDS}
    noc = ", ".join(f"NoC@{round(t * 100)} **{n or f'not reached in {CURVE_CLICKS}'}**" for t, n in reached.items())
    best = max(levels.items(), key=lambda kv: kv[1]) if levels else None
    text = (f"SAM {ZOO.sam_variant}: IoU **{curve.ious[0]:.2f}** after 1 click, **{curve.ious[-1]:.2f}** after "
            f"{len(curve.ious)}; {noc}." + (f" Best semantic model on this object: {best[0]}, **{best[1]:.2f}** "
                                             "(no clicks)." if best else ""))
    return chart, picture, text, semantic


def pass_truth(path):
    """The Compare tab's ground truth, sent along with its photo to the SAM tab."""
    return path


def no_truth():
    """An uploaded photo comes without a ground truth: the one shown before was another photo's."""
    return None


def sam_tab(tab: gr.Tab, image_in: gr.Image, truth_in: gr.File) -> None:
    """The Prompt SAM tab's layout and events; `image_in`, `truth_in`: the Compare tab's photo and truth."""
    names = ZOO.semantic_names()
    defaults = default_models(names)
    notice = sam_notice()
    gr.Markdown(notice, visible=bool(notice), elem_id="sam-unavailable")
    sam_image, objects, sam_result = gr.State(None), gr.State(Objects()), gr.State(None)
    kept, photo = gr.State({}), gr.State(None)  # each object's chosen mask; the photo's upload and digest
    # The browser's local storage keeps the objects across reloads; a fixed key (not a secret: the
    # value is clicks and an upload's path) so they also survive a server restart.
    saved = gr.BrowserState(None, storage_key="seg-sam-objects", secret="seg-sam-objects")
    with gr.Row():
        with gr.Column(scale=2):
            # JPEG for what the server draws here: 4 ms to encode at 720x960 against 84 for WebP, the
            # default (an upload stays the file that came: type filepath, image_mode None)
            canvas = gr.Image(type="filepath", label="Click on the image", height=480, format="jpeg",
                              sources=["upload", "clipboard"], elem_id="sam-canvas", image_mode=None)
            with gr.Row():
                mode = gr.Radio(list(MODES), value="positive", label="Next click",
                                info="box: two clicks on opposite corners", elem_id="sam-mode")
                from_compare = gr.Button("Use the Compare photo", elem_id="from-compare")
                undo = gr.Button("Undo", elem_id="sam-undo")
                clear = gr.Button("Clear this object's clicks", elem_id="sam-clear")
            sam_note = gr.Markdown(elem_id="sam-note")
            # the decoder in this browser: hover previews, instant click masks (ui/sam_live.js)
            live = gr.HTML(None, html_template='<div class="sam-live-status"></div>', elem_id="sam-live",
                           js_on_load=LIVE_SCRIPT.read_text(),
                           css_template=".sam-live-status {font-size:0.85rem; opacity:0.8}")
        with gr.Column(scale=1):
            picker = gr.Radio([("object 1", 0)], value=0, label="Objects (clicks edit the selected one)",
                              elem_id="sam-objects")
            with gr.Row():
                add = gr.Button("Add an object", elem_id="sam-add")
                delete = gr.Button("Delete this object", elem_id="sam-delete")
            # the time measured by benchmarks/sam_everything.py (8x8 grid, 2 cores, the photo already read)
            everything = gr.Button("Find every object (SAM's automatic masks; about 3 s on 2 CPU cores)",
                                   elem_id="sam-everything")
            choices = gr.Gallery(label="SAM's masks (click one to choose)", columns=3,  # one line: above the tiles
                                 height="auto", object_fit="contain", elem_id="sam-masks",
                                 format="jpeg")  # all three side by side, none scrolled away
            export = gr.Button("Export all objects (instance PNG, COCO JSON, one PNG each)",
                               elem_id="sam-export")
            sam_files = gr.File(label="Mask files", file_count="multiple", elem_id="sam-files")
            coco_in = gr.File(label="Continue from an exported COCO JSON", file_types=[".json"],
                              type="filepath", elem_id="sam-import")
    with gr.Row():
        sam_truth = gr.File(label="Ground truth for this photo (optional): label-id or CamVid-colour PNG",
                            file_types=[".png"], type="filepath", elem_id="sam-truth")
        sam_models = gr.CheckboxGroup([(t, k) for k, t in names.items()], value=defaults,
                                      label="Semantic models to ask")
    relate_go = gr.Button("What do the semantic models (and the ground truth) say about this object?",
                          elem_id="sam-relate")
    relate_note = gr.Markdown(elem_id="sam-relate-note")
    relate_table = gr.Dataframe(pd.DataFrame(columns=RELATE_COLUMNS), interactive=False,
                                label="Class at the click, and overlap with SAM's mask")
    view = [objects, canvas, choices, sam_result, kept, sam_note, picker, live]
    opened = [sam_image, photo, *view]
    # a new photo brings its own ground truth (Compare's, with Compare's photo) or none
    # SAM reads each photo as it arrives (its progress over the note), not at the first click
    embed = {"fn": sam_embed, "inputs": [sam_image, objects], "outputs": live, "show_progress_on": sam_note, **PAGE}
    canvas.upload(sam_open, [canvas, saved], opened, **PAGE).success(no_truth, None, sam_truth, **PAGE).then(**embed)
    from_compare.click(sam_open, [image_in, saved], opened, **PAGE).success(
        pass_truth, truth_in, sam_truth, **PAGE).then(**embed)
    # on opening the tab, not on page load: by then the browser has read its storage into `saved`
    tab.select(sam_restore, [saved, sam_image], opened, **PAGE).then(**embed)
    # an edit's progress shows over the note, not over the photo: the browser decoder's mask is on the
    # photo already, and a click, hover or box corner must not land on an overlay
    edit = {"show_progress_on": sam_note, **PAGE}
    canvas.select(sam_canvas_click, [sam_image, objects, mode, kept], view, **edit)
    undo.click(sam_undo, [sam_image, objects, kept], view, **edit)
    clear.click(sam_clear, [sam_image, objects, kept], view, **edit)
    add.click(sam_add, [sam_image, objects, kept], view, **edit)
    everything.click(sam_every_object, [sam_image, objects, kept], view, **edit)
    picker.input(sam_pick, [sam_image, objects, kept, picker], view, **edit)
    delete.click(sam_delete, [sam_image, objects, kept], view, **edit)
    choices.select(sam_choose, [sam_image, objects, sam_result, kept], view, **edit)
    export.click(sam_export, [sam_image, objects, kept, photo], sam_files, **PAGE)
    coco_in.upload(sam_import, [sam_image, objects, kept, photo, coco_in], view, **edit)
    objects.change(sam_save, [photo, objects], saved, **PAGE)
    semantic = gr.State(None)  # the semantic models' labels on this photo: each runs once per photo
    relate_go.click(sam_relate, [sam_image, objects, kept, sam_models, sam_truth, semantic],
                    [relate_table, relate_note, semantic], **PAGE)
    with gr.Accordion("SAM's click curve against the ground truth", open=False, elem_id="curve"):
        gr.Markdown(f"Pick an object of the ground truth above and let the app click for you, as in "
                    f"interactive-segmentation benchmarks: the first click at the object's most interior "
                    f"point, each next one at the centre of the largest error (positive where SAM missed "
                    f"the object, negative where it spilled over). The chart shows SAM's IoU after 1 to "
                    f"{CURVE_CLICKS} clicks beside each ticked semantic model's IoU on the same object; "
                    f"NoC@85 and NoC@90 are the clicks SAM needs to reach 0.85 and 0.90.")
        curve_truth = gr.State(None)  # the ground truth's labels and objects, read once per upload
        with gr.Row():
            curve_pick = gr.Dropdown([], label="Object (a connected region of one class, largest first)",
                                     elem_id="curve-object")
            curve_go = gr.Button(f"Click for me ({CURVE_CLICKS} clicks)", elem_id="curve-go")
        with gr.Row():
            curve_chart = gr.Image(show_label=False, interactive=False, elem_id="curve-chart")  # titled inside
            curve_image = gr.Image(label="True outline (white), the clicks, SAM's mask after the last",
                                   interactive=False, elem_id="curve-image")
        curve_text = gr.Markdown(elem_id="curve-text")
    sam_truth.change(sam_curve_objects, [sam_image, sam_truth], [curve_pick, curve_truth], **PAGE)
    curve_go.click(sam_click_curve, [sam_image, curve_truth, curve_pick, sam_models, semantic],
                   [curve_chart, curve_image, curve_text, semantic], **PAGE)


# ---------------------------------------------------------------- Learn
AVERAGE_SCENES = range(10_001, 10_033)  # 32 scenes, apart from the ones "New scene" shows


@cache
def scene_averages(zoo: Zoo) -> dict[str, dict]:
    """The three models' scores over AVERAGE_SCENES (about 2 s, once per process)."""
    return demos.average_scores(zoo.synthetic(), AVERAGE_SCENES)


LEARN_SIDE = 384  # Learn's tiles at least this wide: a block of FCN-32s' coarse grid is then visible


def learn_tile(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """A synthetic label map in colour, enlarged, with the true borders drawn over it in white."""
    return draw_contours(enlarge(colorize(labels, SYNTHETIC_PALETTE), LEARN_SIDE), enlarge(truth, LEARN_SIDE),
                         color=(255, 255, 255))


@job(LIMITS.learn_seconds, "the scene comparison")
def learn_scene(seed):
    seed = int(seed) + 1
    image, labels = demos.new_scene(seed)
    models = ZOO.synthetic()
    if not models:
        raise gr.Error("the synthetic demo weights are missing from weights/synthetic: run "
                       "`recipes/camvid_cpu.sh synthetic`", print_exception=False)
    results = demos.scene_comparison(models, image, labels)
    gallery = [(learn_tile(labels, labels), "ground truth")] + [
        (learn_tile(r["labels"], labels), f"{TITLES[name]} · BF {r['boundary_f']:.2f}")
        for name, r in results.items()]
    averages = scene_averages(ZOO)  # one scene can go against the trend: show the trend beside it
    table = pd.DataFrame([{"model": TITLES[n], "BF, this scene": r["boundary_f"], "mIoU, this scene": r["miou"],
                           f"BF, {len(AVERAGE_SCENES)} scenes": averages[n]["boundary_f"],
                           f"mIoU, {len(AVERAGE_SCENES)} scenes": averages[n]["miou"]}
                          for n, r in results.items()]).round(3)
    return seed, enlarge(image, LEARN_SIDE // 2), gallery, table


def learn_first_scene(seed):
    """The first scene, when the Learn tab opens: no empty gallery on a first visit."""
    return learn_scene(seed) if seed == 0 else (gr.skip(),) * 4


LOSS_NAMES = {"ce": "cross-entropy", "dice": "Dice"}
LOSS_COLOURS = {"cross-entropy": "#0072B2", "Dice": "#E69F00"}  # Okabe-Ito blue and orange
IOU_EVERY = 5  # steps between two measurements of the held-out IoU (each about 0.3 s)


@job(LIMITS.learn_seconds, "training")
def learn_train(race, object_size, steps: int = 50, progress=gr.Progress()):
    """`steps` more steps of both models (a new pair when the object size changed), the held-out
    IoU measured every IOU_EVERY steps and plotted from the first step on."""
    if race is None or abs(race.object_size - object_size) > 1e-9:
        race = demos.LossRace(object_size=object_size)
        race.record_iou()  # where both start: the same weights, the same IoU
    for _ in progress.tqdm(range(int(steps)), desc="training both models"):
        race.step()
        if race.steps % IOU_EVERY == 0:
            race.record_iou()
    iou = race.record_iou()
    curve = pd.DataFrame([{"step": step, "IoU": value, "trained with": LOSS_NAMES[name]}
                          for step, values in race.iou_history for name, value in values.items()])
    losses = pd.DataFrame([{"step": i + 1, "loss": v, "trained with": LOSS_NAMES[name]}
                           for name, values in race.history.items() for i, v in enumerate(values)])
    image, labels = race.val.read(0)
    preds = race.predict(image)
    gallery = [(draw_contours(enlarge(image, LEARN_SIDE), enlarge(labels, LEARN_SIDE), color=(255, 255, 255)),
                "held-out scene"), (learn_tile(labels, labels), "ground truth")] + [
        (learn_tile(p, labels), f"{LOSS_NAMES[name]} · IoU {iou[name]:.2f}") for name, p in preds.items()]
    text = (f"After {race.steps} steps, mean IoU over the object classes on 16 held-out scenes: cross-entropy "
            f"**{iou['ce']:.2f}**, Dice **{iou['dice']:.2f}**. Objects are {object_size:.0%} of the side. "
            "Press again to train 50 more steps.")
    return race, curve, losses, gallery, text


@job(LIMITS.learn_seconds, "the receptive field")
def learn_receptive(choice):
    if choice not in RECEPTIVE_PRESETS:
        raise ValueError(f"choose one of: {', '.join(RECEPTIVE_PRESETS)}")
    rates = RECEPTIVE_PRESETS[choice]
    field = demos.receptive_field(rates)
    picture = (255 * (field > 0)).astype(np.uint8)
    heat = np.stack([picture, (255 * field / field.max()).astype(np.uint8), picture // 3], axis=-1)
    covered = int((field > 0).sum())
    return enlarge(heat, 369), \
        f"Rates {rates}: the centre output sees **{covered}** input pixels of a {len(field)}x{len(field)} window."


RECEPTIVE_PRESETS = {"one 3x3, rate 1": (1,), "one 3x3, rate 2": (2,), "one 3x3, rate 4": (4,),
                     "three layers, rates 2-2-2 (gridding)": (2, 2, 2),
                     "three layers, rates 1-2-3 (hybrid, no holes)": (1, 2, 3),
                     "four layers, rates 1-2-4-8": (1, 2, 4, 8)}


def learn_tab(demo: gr.Blocks, tab: gr.Tab) -> None:
    """The Learn tab's layout and events."""
    gr.Markdown("### Skip connections: FCN-32s vs FCN-8s vs U-Net\nFCN-32s predicts on a grid 32 times "
                "coarser than the image and upsamples it; FCN-8s adds finer features from two earlier "
                "stages; U-Net decodes back to full resolution with a skip at every scale. Watch the "
                "boundaries: the white lines are the true ones. BF is the boundary F-score with a 1-pixel "
                "tolerance; one scene can go against the trend, so the table also gives each model's "
                "scores over 32 other scenes.")
    seed = gr.State(0)
    with gr.Row(equal_height=True):
        scene = gr.Image(label="Scene", interactive=False, height=220, scale=1)
        with gr.Column(scale=3):
            scene_table = gr.Dataframe(interactive=False, elem_id="scene-table")
            new_scene = gr.Button("New scene", variant="primary", elem_id="new-scene")
    scene_preds = gr.Gallery(label="Ground truth and predictions", columns=4, height="auto",
                             object_fit="contain", elem_id="scene-preds")
    new_scene.click(learn_scene, seed, [seed, scene, scene_preds, scene_table], **PAGE)
    tab.select(learn_first_scene, seed, [seed, scene, scene_preds, scene_table], **PAGE)

    gr.Markdown("### Cross-entropy vs Dice on a small foreground\nTwo copies of one small U-Net see the "
                "same batches. With tiny objects, most pixels are background: cross-entropy can get a "
                "low loss by predicting background everywhere; Dice scores each class's overlap, so the "
                "objects count as much as the background.")
    race = gr.State(None)
    with gr.Row():
        object_size = gr.Slider(0.04, 0.3, value=0.08, step=0.01, label="Object size (fraction of side)",
                                info="changing it starts both models afresh")
        train = gr.Button("Train 50 steps", variant="primary", elem_id="train")
    with gr.Row():
        # the series' colours are fixed and named in the labels: the plot's own legend can be cut off
        curve = gr.LinePlot(x="step", y="IoU", color="trained with", color_map=LOSS_COLOURS, y_lim=[0, 1],
                            label="Mean IoU over the objects, 16 held-out scenes (blue: cross-entropy, "
                                  "orange: Dice)", elem_id="race-iou")
        losses = gr.LinePlot(x="step", y="loss", color="trained with", color_map=LOSS_COLOURS,
                             label="Training loss (blue: cross-entropy, orange: Dice)")
    race_preds = gr.Gallery(label="One held-out scene (true borders drawn)", columns=4, height="auto",
                            object_fit="contain", elem_id="race-preds")
    race_text = gr.Markdown("Press **Train 50 steps**: both models start from the same weights.",
                            elem_id="race-text")
    train.click(learn_train, [race, object_size], [race, curve, losses, race_preds, race_text], **PAGE)

    gr.Markdown("### Dilated convolutions and gridding\nA 3x3 kernel at rate r samples 9 pixels r apart. "
                "Stacking equal rates leaves holes the network never sees; mixing rates fills them.")
    with gr.Row():
        preset = gr.Radio(list(RECEPTIVE_PRESETS), value="three layers, rates 2-2-2 (gridding)",
                          label="Layers")
        field = gr.Image(label="Input pixels that reach the centre output (brighter: more paths)",
                         interactive=False, height=380)
    field_text = gr.Markdown()
    preset.change(learn_receptive, preset, [field, field_text], **PAGE)
    demo.load(learn_receptive, preset, [field, field_text], **PAGE)


# ---------------------------------------------------------------- Leaderboard
def leaderboard() -> tuple[str, pd.DataFrame]:
    """The caption and the table of leaderboard/leaderboard.json (percentages, one decimal)."""
    path = LEADERBOARD / "leaderboard.json"
    if not path.is_file():
        return "No leaderboard yet: run `python leaderboard/build.py`.", pd.DataFrame(columns=["model"])
    board = json.loads(path.read_text())
    ref = board["reference"]
    caption = (f"Our from-scratch models on {board['split']}, measured with `python -m seg.evaluate` on the shipped "
               f"weights (scores in %); CPU ms: one 360x480 image on {board['machine']}, {board['date']}. For scale: "
               f"{ref['title']} scores {100 * ref['miou']:.1f} mIoU at about {ref['cpu_ms']} ms. "
               "How they were trained: `docs/training.md`.")
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}"  # noqa: E731 -- text: "62.0", not the number 62
    table = pd.DataFrame([{"model": m["title"], "val mIoU": pct(m["miou"]),
                           "boundary F": pct(m["boundary_f"]), "pixel acc.": pct(m["pixel_accuracy"]),
                           "params (M)": f"{m['parameters'] / 1e6:.2f}", "CPU ms": f"{m['cpu_ms']:.0f}",
                           "trained": m["training"]}
                          for m in board["models"]])
    return caption, table


def leaderboard_tab() -> None:
    """The Leaderboard tab: the shipped models' figures, read from leaderboard/."""
    caption, table = leaderboard()
    gr.Markdown(caption)
    gr.Dataframe(table, interactive=False, wrap=True, elem_id="leaderboard")
    if (LEADERBOARD / "per_class_iou.png").is_file():  # the chart carries its own title
        gr.Image(str(LEADERBOARD / "per_class_iou.png"), show_label=False, interactive=False)


# ---------------------------------------------------------------- API (scripted use)
@job(LIMITS.segment_seconds, "segmenting")
def api_segment(image_path, model):
    """Segment an image with a named model: the label-id PNG (at the image's own size) and
    {model, seconds, classes, height, width}."""
    [(title, semantic)] = ZOO.semantic_models([model]).values()  # an unknown name: refused before the photo
    photo = open_photo(image_path)
    p = run_model(semantic, photo.pixels, key=model, title=title)
    out = OUTPUTS.new("api")
    labels = save_png(out / "labels.png", resize_labels(p.labels, photo.size))
    return str(labels), {"model": model, "seconds": round(p.seconds, 4), "classes": list(CLASSES_WITH_OTHER),
                         "height": photo.size[0], "width": photo.size[1]}


@job(LIMITS.sam_seconds, "SAM")
def api_sam(image_path, points, labels, box):
    """A SAM prompt. points: JSON [[x, y], ...]; labels: JSON [1, 0, ...] (1 positive); box: JSON
    [x0, y0, x1, y1] or empty. Coordinates and the returned mask are in the image's own pixels;
    SAM sees the image shrunk to MAX_SIDE and the prompts mapped onto it. The JSON's "photo" is the
    photo's handle: later clicks pass it to /sam_click instead of the file."""
    prompt = parse_prompt(points, labels, box, limits=LIMITS)  # before the photo is even decoded
    mask, answer = sam_answer(open_photo(image_path), prompt)
    path = save_png(OUTPUTS.new("api") / "mask.png", mask.astype(np.uint8) * 255)
    return str(path), answer


@job(LIMITS.sam_seconds, "SAM")
def api_sam_click(handle, points, labels, box):
    """A SAM prompt on a photo sent before: `handle` is the "photo" of an earlier /sam_prompt answer.
    Answers the JSON only (the mask as COCO RLE): no upload and no PNG, for scripts that click often."""
    prompt = parse_prompt(points, labels, box, limits=LIMITS)
    photo = PHOTOS.find(handle) if isinstance(handle, str) else None
    if photo is None:
        raise ValueError("no photo is held under this handle: send the photo with /sam_prompt first and pass the "
                         "\"photo\" of its answer (a photo unused for a while may be dropped: send it again)")
    return sam_answer(photo, prompt)[1]


def sam_answer(photo: Photo, prompt: dict) -> tuple[np.ndarray, dict]:
    """SAM's best mask for `prompt` on `photo`, at its own size, and the JSON answer: score, scores of
    the three masks, the mask as COCO RLE, and the photo's handle."""
    result = ZOO.sam().predict(photo.pixels, **prompt, multimask=True, original_size=photo.size)
    mask, scores = result.masks[0], result.scores.tolist()
    del result  # the other two masks, a photo's size each
    check()
    return mask, {"score": scores[0], "scores": scores, "rle": rle_encode(mask), "photo": photo.key}


@job(LIMITS.sam_seconds, "SAM")
def api_sam_objects(image_path, objects):
    """Several objects at once. objects: JSON [{"name", "points", "labels", "box"}, ...] in the image's
    own pixels. Returns the instance-id PNG (0 background, i for the i-th object) at the image's size
    and the COCO document (RLE, bbox, area, predicted IoU, stability score and prompts per object)."""
    parsed = parse_objects(objects, limits=LIMITS)  # before the photo is even decoded
    try:
        check_output(stored_size(image_path), len(parsed.items), LIMITS)  # from the header, before decoding
    except (OSError, TypeError):  # no file, or not an image: open_photo says so
        pass
    photo = open_photo(image_path)
    check_output(photo.size, len(parsed.items), LIMITS)
    prompts = [item.prompts.to_sam() for item in parsed.items]
    check_prompts(prompts, photo.size)  # all of them before any work
    sam = ZOO.sam()

    def masks():  # made one at a time, and nothing here holds one while the next is made
        for prompt in prompts:
            result = sam.predict(photo.pixels, **prompt, best_only=True, original_size=photo.size)
            best = result.masks[0], result.scores[0], result.stability[0]
            del result
            yield best
            del best
    return full_size_export(parsed, masks(), size=photo.size, name=Path(image_path).name)


def full_size_export(objects: Objects, masks, *, size: tuple[int, int], name: str) -> tuple[str, dict]:
    """The instance-id PNG and the COCO document of `objects` at the photo's own `size` (H, W). masks:
    an iterator of (mask at the working or the photo's size, score, stability), one per object, taken
    one at a time: each is enlarged, painted, encoded and dropped before the next is made."""
    ids, annotations = np.zeros(size, np.uint8), []
    for number, (item, (mask, predicted_iou, stability)) in enumerate(zip(objects.items, masks), 1):
        check()  # the deadline counts the resizing and encoding between the network's layers too
        mask = resize_labels(mask, size)
        ids[mask] = number
        annotations.append(coco_annotation(number, item, mask, score=predicted_iou, stability=stability))
        del mask  # before the next is made: one full-size mask alive at a time
    path = save_png(OUTPUTS.new("api") / "instances.png", ids)
    return str(path), coco_document(objects, annotations, file_name=name, size=size)


@job(LIMITS.sam_seconds, "finding every object")
def api_sam_everything(image_path, grid):
    """SAM's automatic masks: a grid of `grid` x `grid` point prompts (default EVERYTHING_GRID, at most
    `LIMITS.everything_grid`), each mask kept an object with its click. Answers as /sam_objects does:
    the instance-id PNG at the image's size and the COCO document (at most objects_per_request masks,
    fewer where output_pixels caps a large photo)."""
    grid = EVERYTHING_GRID if grid is None or grid == "" else grid
    if isinstance(grid, bool) or not isinstance(grid, (int, float)) or not float(grid).is_integer() \
            or not 1 <= grid <= LIMITS.everything_grid:
        raise ValueError(f"grid is the points per side of the prompts' grid, a whole number from 1 to "
                         f"{LIMITS.everything_grid}, got {str(grid)[:20]}")
    photo = open_photo(image_path)
    most = min(LIMITS.objects_per_request, LIMITS.output_pixels // (photo.size[0] * photo.size[1]))
    found = ZOO.sam().everything(photo.pixels, everything_settings(most, int(grid)))
    if not found:
        return full_size_export(Objects(()), iter(()), size=photo.size, name=Path(image_path).name)
    objects = Objects().extend([(x / photo.scale, y / photo.scale, m["choice"])  # in the photo's own pixels
                                for m in found for x, y in m["point_coords"]])
    masks = ((m["segmentation"], m["predicted_iou"], m["stability_score"]) for m in found)
    return full_size_export(objects, masks, size=photo.size, name=Path(image_path).name)


@job(LIMITS.score_seconds, "scoring")
def api_score(prediction_path, truth_path):
    """Score a label-id PNG prediction against a ground truth PNG (ids or CamVid colours): metrics JSON."""
    if not prediction_path or not truth_path:
        raise ValueError("both a prediction (label-id PNG) and a ground truth PNG are needed")
    prediction = read_raw(prediction_path, max_pixels=LIMITS.score_pixels, lossless=True)
    if prediction.ndim != 2:
        raise ValueError(f"the prediction must be a single-channel label-id PNG, got shape {prediction.shape}")
    truth = read_ground_truth(truth_path, image_shape=prediction.shape, max_pixels=LIMITS.score_pixels,
                              max_values=LIMITS.class_ids)
    return {"ground_truth_format": truth.format, **score(prediction, truth.labels)}


def api_endpoints() -> None:
    """The endpoints for scripted use (README, "Use via API"), on hidden components."""
    with gr.Row(visible=False):
        # files, not gr.Image: our reader, not the component's, meets broken uploads and says why
        api_image, api_model = gr.File(type="filepath"), gr.Textbox()
        api_points, api_labels, api_box = gr.Textbox(), gr.Textbox(), gr.Textbox()
        api_pred, api_truth = gr.File(type="filepath"), gr.File(type="filepath")
        api_file, api_json = gr.File(), gr.JSON()
        gr.Button().click(api_segment, [api_image, api_model], [api_file, api_json], api_name="segment", **API)
        gr.Button().click(api_sam, [api_image, api_points, api_labels, api_box], [api_file, api_json],
                          api_name="sam_prompt", **API)
        api_objects = gr.Textbox()
        gr.Button().click(api_sam_objects, [api_image, api_objects], [api_file, api_json], api_name="sam_objects",
                          **API)
        api_handle = gr.Textbox()
        gr.Button().click(api_sam_click, [api_handle, api_points, api_labels, api_box], api_json,
                          api_name="sam_click", **API)
        gr.Button().click(api_score, [api_pred, api_truth], api_json, api_name="score", **API)
        api_grid = gr.Number(value=EVERYTHING_GRID)  # no precision: 2.5 is refused, not rounded
        gr.Button().click(api_sam_everything, [api_image, api_grid], [api_file, api_json], api_name="sam_everything",
                          **API)


# ---------------------------------------------------------------- layout
CSS = """
.legend {display:flex; flex-wrap:wrap; gap:6px 14px; font-size:0.85rem; margin:4px 0}
.chip {display:inline-flex; align-items:center; gap:5px}
.chip i {width:14px; height:14px; border-radius:3px; display:inline-block; border:1px solid #0002}
#title h1 {margin-bottom:0}
/* galleries that grow with their tiles: every tile in view, none scrolled away inside a box */
#predictions .grid-wrap, #scene-preds .grid-wrap, #race-preds .grid-wrap, #sam-masks .grid-wrap
  {max-height:none; min-height:0; height:auto}
#predictions .gallery-container, #scene-preds .gallery-container, #race-preds .gallery-container,
  #sam-masks .gallery-container {height:auto}
/* captions wrap instead of ending in an ellipsis ("DeepLabv3 (ASPP) · 230 ..." was cut) */
#predictions .caption-label {white-space:normal; max-width:96%}
/* SAM's three masks side by side, each in the photo's own shape and as tall as it needs */
#sam-masks .grid-container {grid-template-rows:none !important; grid-auto-rows:auto !important;
  padding-top:2.2rem !important}  /* below the gallery's floating label, not under it */
#sam-masks .thumbnail-item {aspect-ratio:auto !important; height:auto !important; overflow:visible !important}
#sam-masks .thumbnail-item img {aspect-ratio:4/3; height:auto !important}
/* its captions under the tiles, whole: over a 120 px tile they covered the mask and were cut */
#sam-masks .caption-label {position:static !important; max-width:none !important; white-space:normal !important;
  display:block; border:none !important; background:none !important; text-align:center}
/* a phone: one prediction per row at the screen's width; the closer look as tall as its picture */
@media (max-width: 640px) {
  #predictions .grid-container {grid-template-columns:1fr !important}
  #look-image, #look-image * {height:auto !important; min-height:0 !important}
  #metrics th, #metrics td {padding:4px 3px !important; min-width:0 !important; font-size:0.75rem}
}
.legend-note {margin:6px 0 2px; font-size:0.85rem}
/* SAM's photo is never enlarged: Gradio maps a click to pixels as if it were not, so on an enlarged
   photo the click landed away from the cursor (up to 12 px on a 480x360 photo); the browser decoder's
   overlay uses the same arithmetic */
#sam-canvas img {object-fit:scale-down !important}
"""


def warm_up(demo: gr.Blocks) -> threading.Thread:
    """Once the server answers, load the default models and SAM and run each once on a blank photo,
    in the background: the first visitor's comparison then costs what every later one does. Start-up
    itself is not delayed (the thread waits for the server first)."""
    def run():
        while not demo.is_running:
            time.sleep(0.2)
        started = time.perf_counter()
        blank = np.zeros((360, 480, 3), np.uint8)
        try:
            for key in default_models(ZOO.semantic_names()):
                run_model(ZOO.semantic(key), blank)
            if ZOO.sam_available():
                with torch.inference_mode():  # loads and warms SAM's encoder; caches no embedding
                    ZOO.sam().model.image_encoder(torch.zeros(1, 3, 1024, 1024))
        except Exception as error:  # noqa: BLE001 -- a failed warm-up leaves the first request to load the model
            logging.getLogger("seg.app").warning("warm-up stopped: %s", scrub(str(error)))
            return
        logging.getLogger("seg.app").info("warm-up done in %.1f s", time.perf_counter() - started)

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread

def build() -> gr.Blocks:
    keep = (LIMITS.keep_files_seconds, LIMITS.keep_files_seconds)  # uploads and outputs: checked and deleted hourly
    with gr.Blocks(title="Segmentation explorer", delete_cache=keep) as demo:
        gr.Markdown("# Segmentation explorer\nNetworks trained from scratch on CamVid, side by side with "
                    "SegFormer and SAM, measured against your ground truth.", elem_id="title")
        gr.Markdown(status_markdown())
        with gr.Tab("Compare"):
            image_in, truth_in = compare_tab()
        with gr.Tab("Prompt SAM") as tab:
            sam_tab(tab, image_in, truth_in)
        with gr.Tab("Learn") as tab:
            learn_tab(demo, tab)
        with gr.Tab("Leaderboard"):
            leaderboard_tab()
        api_endpoints()
    guard_components(demo, upload_folder())
    return demo


def queue(demo: gr.Blocks) -> gr.Blocks:
    """The queue every launch uses (the tests too): CONCURRENCY jobs at once, no direct REST calls
    that would skip it, and room for every client's few jobs (RequestGuard caps each client)."""
    return demo.queue(default_concurrency_limit=CONCURRENCY, max_size=LIMITS.queue_size, api_open=False)


def launch_options(demo: gr.Blocks) -> dict:
    """Everything `launch` needs besides host and port (the tests launch with the same)."""
    guard = Middleware(RequestGuard, blocks=demo, limits=LIMITS, upload_folder=upload_folder(),
                       trust_proxy=SETTINGS.on_space)  # behind the Space's proxy, its header is true
    served = BROWSER.served(ZOO.sam_onnx_dir) if BROWSER is not None else []  # the browser decoder's files
    isolation = [Middleware(CrossOriginIsolation)] if SETTINGS.cross_origin_isolation else []  # threaded wasm
    return {"max_file_size": LIMITS.upload_bytes, "ssr_mode": False, "css": CSS, "theme": gr.themes.Soft(),
            "show_error": False, "allowed_paths": served, "app_kwargs": {"middleware": [guard, *isolation]}}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # a Space stops the app with SIGTERM: exit normally, so that the temporary folders are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # CONCURRENCY jobs share the cores: each gets its share of threads instead of all fighting for all
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))
    for note in SETTINGS.notes:
        logging.getLogger("seg.app").info(note)
    trim_every(60)  # a big job's freed memory goes back to the OS instead of staying with idle threads
    demo = queue(build())
    warm_up(demo)
    # host and port: Gradio's defaults (127.0.0.1:7860), or GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (Spaces)
    demo.launch(**launch_options(demo))


if __name__ == "__main__":
    main()
