"""The Prompt SAM tab's comparison with the semantic models: what they (and the ground truth) say
about the selected object, and SAM's click curve on an object of the ground truth."""

import gradio as gr
import pandas as pd

from seg.charts import click_chart
from seg.data.camvid import CLASSES, CLASSES_WITH_OTHER
from seg.data.photos import Photo
from seg.deadline import check
from seg.explorer.compare import run_model
from seg.labels import IGNORE_INDEX
from seg.sam.clicks import MIN_OBJECT_PIXELS, THRESHOLDS, click_curve, objects_in, sam_decoder, semantic_iou
from seg.sam.objects import PhotoLabels, object_point
from seg.sam.prompts import Objects, Prompts, draw_prompts
from seg.sam.relate import relate
from seg.visualize import draw_contours

from ...jobs import handler
from ..events import PAGE

RELATE_COLUMNS = ["model", "class", "IoU with SAM's mask", "IoU with the true region"]  # prompts.relate's rows
CURVE_CLICKS = 10  # the simulation's length: NoC@85 and NoC@90 are counted within it
CURVE_MIN_PIXELS = MIN_OBJECT_PIXELS  # the picker leaves out specks of annotation, as `python -m seg.cli.clicks` does
CURVE_OBJECTS = 40  # the picker lists the largest objects only


class SamModels:
    def __init__(self, ctx):
        self.ctx = ctx

    def semantic_labels(self, photo: Photo, keys, store) -> tuple[dict, PhotoLabels]:
        """{title: (H, W) CamVid ids} of the ticked models on this photo, and the per-user store they
        came from (`PhotoLabels`: each model runs once per photo)."""
        store = store if isinstance(store, PhotoLabels) else PhotoLabels()
        return store.of(photo.digest, self.ctx.zoo.semantic_models(keys),
                        lambda model: run_model(model, photo.pixels).labels)

    @handler("compare_seconds", "relating SAM's mask to the semantic models", models=True)
    def relate(self, photo: Photo | None, objects: Objects, masks, keys, truth_path, store=None):
        """The selected object against the ticked semantic models and the ground truth uploaded in this
        tab for this photo (never another tab's: it may belong to another image)."""
        if objects.current.id not in masks:
            raise ValueError("no mask yet: click on the image first")
        point = object_point(objects.current.prompts)
        predictions, store = self.semantic_labels(photo, keys, store) if keys else ({}, store)
        truth = self.ctx.truth(truth_path, photo.pixels) if truth_path else None
        rows = relate(masks[objects.current.id].mask, point, predictions, CLASSES_WITH_OTHER,
                      truth.labels if truth is not None else None)
        note = f"Ground truth read as: {truth.format}." if truth is not None else \
            "No ground truth for this photo: upload its label PNG above to see the true class and region."
        return pd.DataFrame(rows).round(3).set_axis(RELATE_COLUMNS, axis=1), note, store

    @handler("segment_seconds", "reading the objects of the ground truth", models=False)
    def curve_objects(self, photo: Photo | None, truth_path):
        """The objects (connected regions of one class) of this photo's ground truth, largest first,
        for the click curve's picker; kept with the labels for the simulation."""
        if photo is None or not truth_path:
            return gr.update(choices=[], value=None), None
        truth = self.ctx.truth(truth_path, photo.pixels)
        found = objects_in(truth.labels, min_pixels=CURVE_MIN_PIXELS,
                           classes=set(range(len(CLASSES))))[:CURVE_OBJECTS]
        choices = [(f"{CLASSES[o['class']]} · {o['pixels']:,} px · around ({o['point'][0]}, {o['point'][1]})", i)
                   for i, o in enumerate(found)]
        return gr.update(choices=choices, value=0 if choices else None), {
            "labels": truth.labels, "objects": found, "digest": photo.digest}

    @handler("sam_seconds", "the click curve", models=True)
    def click_curve(self, photo: Photo | None, truth, index, keys, store=None, every_sam: bool = False):
        """SAM's IoU with the chosen true object after 1 to CURVE_CLICKS simulated clicks (seg.sam.clicks),
        beside each ticked semantic model's IoU on the same object; with `every_sam`, one curve per SAM
        the server offers (the picture shows the default SAM's clicks)."""
        if photo is None:
            raise ValueError("no image: upload one first")
        if not truth or not isinstance(index, int) or not 0 <= index < len(truth["objects"]):
            raise ValueError("upload this photo's ground truth above, then pick one of its objects")
        if truth.get("digest") != photo.digest:
            raise ValueError("the ground truth above was read for another photo: upload this photo's again")
        zoo = self.ctx.zoo
        item, valid = truth["objects"][index], truth["labels"] != IGNORE_INDEX
        sams = zoo.every_sam()[0] if every_sam else {zoo.sam_title(): zoo.sam()}
        curves = {}
        for title, sam in sams.items():  # each its own clicks: the next goes where its own mask errs most
            check()
            curves[title] = click_curve(sam_decoder(sam, photo.pixels, digest=photo.digest), item["mask"],
                                        max_clicks=CURVE_CLICKS, valid=valid)
        curve = next(iter(curves.values()))
        predictions, store = self.semantic_labels(photo, keys, store) if keys else ({}, store)
        levels = {title: semantic_iou(labels, item["mask"], item["class"], valid)
                  for title, labels in predictions.items()}
        name = CLASSES[item["class"]]
        chart = click_chart({title: list(c.ious) for title, c in curves.items()}, levels=levels,
                            title=f"{name}, {item['pixels']:,} px: IoU with the true object after each click")
        prompts = Prompts(tuple((x, y, "positive" if positive else "negative") for x, y, positive in curve.clicks))
        picture = draw_contours(draw_prompts(photo.pixels, prompts, curve.mask), item["mask"], color=(255, 255, 255))
        lines = []
        for title, c in curves.items():
            noc = ", ".join(f"NoC@{round(t * 100)} **{c.noc(t) or f'not reached in {CURVE_CLICKS}'}**"
                            for t in THRESHOLDS)
            lines.append(f"{title}: IoU **{c.ious[0]:.2f}** after 1 click, **{c.ious[-1]:.2f}** after "
                         f"{len(c.ious)}; {noc}.")
        best = max(levels.items(), key=lambda kv: kv[1]) if levels else None
        text = "\n\n".join(lines) + (f"\n\nBest semantic model on this object: {best[0]}, **{best[1]:.2f}** "
                                      "(no clicks)." if best else "")
        return chart, picture, text, store

    def layout(self, sam_photo, objects, masks) -> gr.File:
        """The panel's components (below the tab's photo) and events; returns its ground-truth input."""
        names = self.ctx.zoo.semantic_names()
        with gr.Row():
            sam_truth = gr.File(label="Ground truth for this photo (optional): label-id or CamVid-colour PNG",
                                file_types=[".png"], type="filepath", elem_id="sam-truth")
            sam_models = gr.CheckboxGroup([(t, k) for k, t in names.items()], value=self.ctx.default_models(),
                                          label="Semantic models to ask")
        relate_go = gr.Button("What do the semantic models (and the ground truth) say about this object?",
                              elem_id="sam-relate")
        relate_note = gr.Markdown(elem_id="sam-relate-note")
        relate_table = gr.Dataframe(pd.DataFrame(columns=RELATE_COLUMNS), interactive=False,
                                    label="Class at the click, and overlap with SAM's mask")
        store = gr.State(None)  # the semantic models' labels on this photo: each runs once per photo
        relate_go.click(self.relate, [sam_photo, objects, masks, sam_models, sam_truth, store],
                        [relate_table, relate_note, store], **PAGE)
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
                curve_every = gr.Checkbox(label="Every SAM of the server, a curve each (each reads the photo once)",
                                          visible=bool(self.ctx.zoo.family_names()), elem_id="curve-every")
            with gr.Row():
                curve_chart = gr.Image(show_label=False, interactive=False, elem_id="curve-chart",  # titled inside
                                       elem_classes="chart", alt_text="SAM's IoU after each click (a line chart)")
                curve_image = gr.Image(label="True outline (white), the clicks, SAM's mask after the last",
                                       interactive=False, elem_id="curve-image")
            curve_text = gr.Markdown(elem_id="curve-text")
        sam_truth.change(self.curve_objects, [sam_photo, sam_truth], [curve_pick, curve_truth], **PAGE)
        curve_go.click(self.click_curve, [sam_photo, curve_truth, curve_pick, sam_models, store, curve_every],
                       [curve_chart, curve_image, curve_text, store], **PAGE)
        return sam_truth
