"""The Compare tab: the ticked semantic models on one photo, side by side, scored against its ground
truth; then one model up close (errors, boundaries, confusion) and where two models disagree."""

import shutil
from pathlib import Path
from typing import NamedTuple

import gradio as gr
import numpy as np
import pandas as pd

from seg.charts import confusion_chart, per_class_chart
from seg.data.camvid import CLASSES, CLASSES_WITH_OTHER, DISPLAY_PALETTE, PALETTE_WITH_OTHER, CamVid
from seg.explorer.compare import Comparison, compare, disagreement, with_refined
from seg.explorer.export import save_json, save_prediction
from seg.metrics import BOUNDARY_TOLERANCE
from seg.sam.refine import refine
from seg.sam.regions import SamRegions
from seg.visualize import BOUNDARY_COLORS, IGNORED_COLOR, enlarge, overlay

from ..context import ROOT, Context
from ..files import named_after
from ..jobs import handler
from .events import LIGHT, PAGE

TIMING_COLUMNS = ["model", "time (ms)"]
METRIC_COLUMNS = ["model", "mIoU", "Dice", "pixel acc.", "boundary F", "other"]  # compare's rows, before a run
TAB_ID = "compare"  # the Compare tab's id: where "Use as ground truth" takes the page
VIEWS = ("errors", "boundaries", "overlay", "ground truth")  # the large view's choices
LARGE_SIDE = 960  # the large view's longer side at least (smaller photos are enlarged by a whole factor)
FIRST_RUN = "Run a comparison first, then pick a model here."
STALE = "The photo or its ground truth changed: press **Segment** to compare them."


def examples() -> list[list[str]]:
    """The examples with their ground truths: CamVid photos first (real streets, see
    examples/README.md), then the scenes we drew."""
    return [[str(p), str(p.with_name(p.stem + "_labels.png"))]
            for pattern in ("camvid_*.png", "street_*.jpg") for p in sorted((ROOT / "examples").glob(pattern))
            if not p.stem.endswith(("_labels", "_colour"))]


def example_label(photo: str) -> str:
    """An example's name for people: "CamVid 0016E5_08085" or "drawn street 1"."""
    stem = Path(photo).stem
    return f"CamVid {stem.removeprefix('camvid_')}" if stem.startswith("camvid_") else f"drawn {stem.replace('_', ' ')}"


def legend_html(names, palette) -> str:
    chips = "".join(f'<span class="chip"><i style="background:rgb{tuple(c)}"></i>{n}</span>'
                    for n, c in zip(names, palette))
    return f'<div class="legend">{chips}</div>'


def view_legend(view: str) -> str:
    """The large view's legend: what its colours mean."""
    if view == "boundaries":
        return legend_html([f"boundary found (within {BOUNDARY_TOLERANCE} px)", "boundary where the truth has none",
                            "true boundary missed"], list(BOUNDARY_COLORS.values()))
    chips = legend_html(CLASSES_WITH_OTHER, DISPLAY_PALETTE)
    if view == "errors":
        return legend_html(["correct (pale photo)", "void: not scored (stripes)"], [(215, 215, 215), IGNORED_COLOR]) \
            + "<p class='legend-note'>Wrong pixels take the colour of the class the model predicted:</p>" + chips
    return chips


def gallery_tiles(result: Comparison) -> list:
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


class CloseLook(NamedTuple):
    """One model large, in the order of the closer look's outputs."""

    picture: np.ndarray | None
    legend: str
    text: str
    chart: np.ndarray | None
    counts: pd.DataFrame | None


class CompareTab:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    @handler("compare_seconds", "the comparison", models=True)
    def run(self, image_path, truth_path, keys, tta, crf, refine_key=None,
            progress=gr.Progress(track_tqdm=True)) -> CompareView:
        """The ticked models compared; with `refine_key`, that model also refined by SAM, as a row of its own."""
        photo = self.ctx.photo(image_path)
        image, zoo = photo.pixels, self.ctx.zoo
        if refine_key and not zoo.sam_available():
            raise ValueError(f"refining needs SAM, which is not available on this server: {zoo.sam_missing()}")
        keys = list(keys or []) + ([refine_key] if refine_key and refine_key not in (keys or []) else [])
        models = zoo.semantic_models(keys)
        truth = self.ctx.truth(truth_path, image)
        result = compare(models, image, truth.labels if truth else None, tta=tta, crf=crf,
                         progress=lambda f, d: progress(f, desc=d))
        if refine_key:
            progress(0.9, desc="SAM refines the regions")
            refined = refine(result.predictions[refine_key].labels, SamRegions(zoo.sam(), image, digest=photo.digest))
            result = with_refined(result, refine_key, refined.labels, refined.seconds)
        out, stem = self.ctx.outputs.new("compare"), named_after(image_path)  # every download names its photo
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
        pick = lambda i: gr.update(choices=choices, value=choices[i][1])  # noqa: E731 -- one update each
        return CompareView(gallery_tiles(result), timing, metrics, chart, files, note, result,
                           model_a=pick(0), model_b=pick(-1), closer=pick(0))

    @staticmethod
    def cleared() -> tuple:
        """Every result of the last comparison taken off the page (its outputs, then the closer look's and
        the disagreement's), since they no longer match the photo or the ground truth on it."""
        unpicked = gr.update(choices=[], value=None)
        view = CompareView([], pd.DataFrame(columns=TIMING_COLUMNS), pd.DataFrame(columns=METRIC_COLUMNS), None,
                           None, STALE, None, unpicked, unpicked, unpicked)
        return (*view, *CloseLook(None, "", FIRST_RUN, None, None), None, "")

    @handler("compare_seconds", "the closer look", models=False)
    def look_closely(self, result: Comparison | None, key, view) -> CloseLook:
        """One model large, in the chosen view, with its legend and its confusion matrix."""
        if result is None or key not in result.predictions:
            return CloseLook(None, "", FIRST_RUN, None, None)
        title = result.predictions[key].title
        if result.ground_truth is None:
            return CloseLook(enlarge(overlay(result.image, result.predictions[key].labels, DISPLAY_PALETTE),
                                     LARGE_SIDE), view_legend("overlay"),
                             f"**{title}**. Add a ground truth to see its errors, boundaries and confusion matrix.",
                             None, None)
        views = result.errors(key, DISPLAY_PALETTE)
        picture = result.truth(DISPLAY_PALETTE)["overlay"] if view == "ground truth" else \
            views.get(view, views["errors"])
        picture = enlarge(picture, LARGE_SIDE)  # a CamVid photo is 480 px wide: pixels made visible, not smoothed
        s = result.scores[key]
        text = (f"**{title}**: mIoU {s['miou'] or 0:.3f}, boundary F {s['boundary_f'] or 0:.3f}; "
                f"{views['shares']['correct']:.1%} of the pixels right, {views['shares']['wrong']:.1%} wrong, "
                f"{views['shares']['ignored']:.1%} void (not scored).")
        counts = np.asarray(s["confusion"])
        chart = confusion_chart(counts, CLASSES, CLASSES_WITH_OTHER, title=f"{title}: where each class's pixels went")
        table = pd.DataFrame(counts, columns=list(CLASSES_WITH_OTHER)).assign(**{"pixels": counts.sum(axis=1)})
        table.insert(0, "true class", list(CLASSES))
        return CloseLook(picture, view_legend(view), text, chart, table)

    @handler("compare_seconds", "the disagreement view", models=False)
    def show_disagreement(self, result: Comparison | None, a, b):
        if result is None or a not in result.predictions or b not in result.predictions:
            raise ValueError("run a comparison with at least two models first, then pick two of them")
        truth = result.ground_truth
        picture, stats = disagreement(result.image, result.predictions[a].labels, result.predictions[b].labels,
                                      truth)
        text = f"They differ on **{stats['differ']:.1%}** of the pixels."
        if truth is not None:
            text += (f" There, the ground truth sides with **A** on {stats['a_right']:.1%} of the image (blue), "
                     f"with **B** on {stats['b_right']:.1%} (orange); both are wrong on "
                     f"{stats['both_wrong']:.1%} (crimson).")
        return picture, text

    @handler("segment_seconds", "loading the sample", models=False)
    def pick_sample(self, name):
        """A CamVid val image and its ground truth, copied to a temporary folder (Gradio serves only
        uploads, temporary files and the project's own folder, never the dataset's)."""
        root = self.ctx.settings.camvid_dir
        if not name or not root:
            return gr.update(), gr.update()
        data = CamVid(root, "val")
        names = [p.name for p in data.images]
        if name not in names:
            raise gr.Error(f"{name!r} is not a CamVid val image", print_exception=False)
        out = self.ctx.outputs.new("sample")
        index = names.index(name)
        image, truth = out / name, out / f"{Path(name).stem}_labels.png"
        shutil.copyfile(data.images[index], image)
        shutil.copyfile(data.labels[index], truth)
        return str(image), str(truth)

    def layout(self) -> tuple[gr.Image, gr.File]:
        """The tab's components and events; returns its photo and ground truth (the SAM tab takes them)."""
        names, camvid = self.ctx.zoo.semantic_names(), self.ctx.settings.camvid_dir
        samples = [p.name for p in CamVid(camvid, "val").images] if camvid else []
        shown = examples()
        trained = self.ctx.zoo.trained_on("val")  # the CamVid examples and samples are val frames
        seen = (f". {' and '.join(trained)} trained on CamVid's val frames: on them they are scored on "
                "memory" if trained else "")
        compared = gr.State(None)  # the last comparison, whole: later views reuse it, nothing runs twice
        with gr.Row():
            with gr.Column(scale=1):
                # our reader decodes it, after the size check
                image_in = gr.Image(type="filepath", label="Photo", height=300, elem_id="photo", image_mode=None,
                                    alt_text="The photo the models segment")
                truth_in = gr.File(label="Ground truth (optional): label-id or CamVid-colour PNG",
                                   file_types=[".png"], type="filepath", elem_id="truth")
                if shown:  # named, not a table of thumbnails: a narrow column cut the file names
                    gr.Examples(shown, inputs=[image_in, truth_in], api_visibility="private",
                                example_labels=[example_label(photo) for photo, _ in shown], elem_id="examples",
                                label="Examples with ground truth: three CamVid photos (CC BY-NC 4.0), then "
                                      "two drawn scenes, outside the models' domain (expect low scores)" + seen)
                if samples:
                    sample = gr.Dropdown(samples, value=None, label="CamVid val sample (image + ground truth)" + seen)
                    sample.change(self.pick_sample, sample, [image_in, truth_in], **PAGE)
                models = gr.CheckboxGroup([(t, k) for k, t in names.items()], value=self.ctx.default_models(),
                                          label="Models")
                with gr.Row():
                    tta = gr.Checkbox(label="Test-time augmentation (flips x 3 scales)")
                    crf = gr.Checkbox(label="Dense CRF refinement")
                refine_with = gr.Dropdown([("no", "")] + [(t, k) for k, t in names.items()], value="",
                                          label="Refine with SAM: each region of this model prompts SAM "
                                                "(a row of its own, beside the model's)" if self.ctx.zoo.sam_available()
                                          else "Refine with SAM (SAM is not available on this server)",
                                          elem_id="refine-with",
                                          interactive=self.ctx.zoo.sam_available())
                go = gr.Button("Segment", variant="primary", elem_id="segment")
            with gr.Column(scale=2):
                # the title above, not Gradio's label over the first row (a phone's two-line label hid it)
                gr.Markdown("**Predictions** (with a ground truth: overlay, errors, boundaries)",
                            elem_id="predictions-title")
                gallery = gr.Gallery(show_label=False, columns=3, height="auto", object_fit="contain",
                                     elem_id="predictions")  # every tile in view, none scrolled away
                gr.HTML(legend_html(CLASSES_WITH_OTHER, DISPLAY_PALETTE) + "<p class='legend-note'>Boundaries "
                        "(the third picture of each row):</p>" + view_legend("boundaries"), elem_id="gallery-legend")
                truth_note = gr.Markdown(elem_id="truth-note")
                # full width, one above the other: every metric visible without scrolling sideways
                metrics = gr.Dataframe(pd.DataFrame(columns=METRIC_COLUMNS), interactive=False,
                                       label="Metrics against the ground truth", elem_id="metrics", wrap=True)
                timing = gr.Dataframe(pd.DataFrame(columns=TIMING_COLUMNS), interactive=False, elem_id="timing",
                                      label="Time per model on this server: the network on the photo, with TTA "
                                            "and the CRF when ticked (SAM's refinement: a row of its own)")
                with gr.Column(elem_classes="sideways"):  # a phone scrolls it at its drawn size
                    chart = gr.Image(show_label=False, type="numpy", interactive=False, elem_classes="chart",
                                     alt_text="IoU per class of each model against the ground truth (a bar chart)")
                downloads = gr.File(label="Downloads: label PNGs, colour PNGs, metrics JSON", file_count="multiple",
                                    elem_id="downloads")
        gr.Markdown("### Look closely at one model", elem_id="look-title")
        with gr.Row():
            look_model = gr.Radio([], label="Model", elem_id="look-model")
            look_view = gr.Radio(list(VIEWS), value="errors", label="View", elem_id="look-view")
        with gr.Row():
            with gr.Column(scale=3):
                look_image = gr.Image(show_label=False, interactive=False, height=560, elem_id="look-image",
                                      alt_text="The chosen model's prediction, large, in the chosen view")
                look_legend = gr.HTML(view_legend("errors"))
                look_text = gr.Markdown(FIRST_RUN, elem_id="look-text")
            with gr.Column(scale=2):
                look_chart = gr.Image(show_label=False, interactive=False, elem_id="confusion",  # titled inside
                                      elem_classes="chart", alt_text="Where each true class's pixels went (a heat map)")
        # full width: its 14 columns were cut in the chart's column
        with gr.Accordion("Pixel counts (rows: true class; columns: predicted)", open=False, elem_id="counts"):
            look_counts = gr.Dataframe(interactive=False, elem_id="confusion-counts")
        look = [look_image, look_legend, look_text, look_chart, look_counts]  # CloseLook's order
        with gr.Accordion("Where do two models disagree?", open=False):
            with gr.Row():
                model_a = gr.Dropdown(label="Model A")
                model_b = gr.Dropdown(label="Model B")
                diff_go = gr.Button("Show disagreement")
            diff_image = gr.Image(label="Disagreement", interactive=False)
            diff_text = gr.Markdown(elem_id="diff-text")
        view = [gallery, timing, metrics, chart, downloads, truth_note, compared, model_a, model_b, look_model]
        closer, differ = [compared, look_model, look_view], [compared, model_a, model_b]
        go.click(self.run, [image_in, truth_in, models, tta, crf, refine_with], view, **PAGE).success(
            self.look_closely, closer, look, **PAGE).success(  # never a stale photo
            self.show_disagreement, differ, [diff_image, diff_text], **PAGE)
        look_model.input(self.look_closely, closer, look, **PAGE)
        look_view.input(self.look_closely, closer, look, **PAGE)
        diff_go.click(self.show_disagreement, differ, [diff_image, diff_text], **PAGE)
        for changed in (image_in, truth_in):  # results of another photo, or another truth, are not left showing
            changed.change(self.cleared, None, [*view, *look, diff_image, diff_text], **LIGHT)
        return image_in, truth_in
