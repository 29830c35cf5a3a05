"""The Prompt SAM tab's labelling panel: each object's class (CamVid's 11, in the display palette),
the order the objects are painted in, the objects handed to Compare as its ground truth, and a
semantic model's regions as SAM's prompts (each object then arrives with its class)."""


import gradio as gr
import numpy as np

from seg.data.camvid import CLASSES, DISPLAY_PALETTE, PALETTE
from seg.data.photos import Photo
from seg.explorer.compare import run_model
from seg.labels import IGNORE_INDEX
from seg.sam.clicks import MIN_OBJECT_PIXELS
from seg.sam.objects import add_regions
from seg.sam.prompts import Objects
from seg.sam.refine import MAX_REGIONS, refine
from seg.sam.regions import SamRegions
from seg.sam.truth import left_out, save_truth, truth_from_objects

from ...files import named_after
from ...jobs import handler
from ..compare import TAB_ID as COMPARE_TAB
from ..events import PAGE

# the page turned to Compare keeps its scroll: bring Compare's photo and ground truth into view
SHOW_COMPARE = (f"() => setTimeout(() => document.getElementById('{COMPARE_TAB}')?.scrollIntoView({{block: 'start'}}), "
                "50)")  # once the tab is shown

COLOURS = dict(zip(CLASSES, DISPLAY_PALETTE))  # an object with a class is drawn in its class's colour
GRID = "grid"  # "Find every object" from SAM's own grid of points, not a model's regions
# each class's choice with a swatch of its colour (the radio's own <label> and <input>, no internal class)
CSS = "\n".join(f'#sam-class label:has(input[value="{name}"])::before {{content:""; display:inline-block; '
                f"width:0.9em; height:0.9em; margin-right:0.3em; border-radius:2px; background:rgb{colour}}}"
                for name, colour in COLOURS.items())


class SamLabels:
    def __init__(self, tab):
        self.tab, self.ctx = tab, tab.ctx  # the SAM tab: its view and its masks

    @staticmethod
    def class_picker() -> gr.Radio:
        """The selected object's class, part of the tab's view (it follows the selected object)."""
        return gr.Radio(list(CLASSES), value=None, label="Class of this object (for a ground truth)",
                        elem_id="sam-class")

    def default_sam(self) -> str:
        """The SAM that finds every object, whichever answers the clicks: "MobileSAM", "SAM"."""
        return self.ctx.zoo.sam_title().split(" (")[0]

    def sources(self) -> list[tuple[str, str]]:
        """What "Find every object" can prompt SAM with: its grid, or a model's regions."""
        return [(f"a grid of points ({self.default_sam()}'s automatic masks)", GRID)] + [
            (f"{title}'s regions (each object with its class)",
             key) for key, title in self.ctx.zoo.semantic_names().items()]

    def everything_button(self, source: str) -> dict:
        """"Find every object"'s button relabelled for the source just chosen."""
        return gr.update(value=self.everything_label(source))

    def everything_label(self, source: str) -> str:
        """"Find every object"'s button as it will run with `source`."""
        if source == GRID:  # the time measured by benchmarks/sam_everything.py (8x8 grid, 2 cores)
            return f"Find every object ({self.default_sam()}'s automatic masks; about 3 s on 2 CPU cores)"
        title = self.ctx.zoo.semantic_names().get(source, "the model")
        return f"Find every object: {self.default_sam()} prompted with {title}'s regions, each with its class"

    @handler("segment_seconds", "setting the class", models=False)
    def classify(self, photo: Photo | None, objects: Objects, masks, category, result=None):
        """The selected object's class set; SAM's masks for it (`result`) stay shown, the class changes none."""
        if category is not None and category not in CLASSES:
            raise ValueError(f"unknown class {str(category)[:40]!r}: choose one of {', '.join(CLASSES)}")
        objects = objects.classify(category)
        return self.tab.view(photo, objects, result, masks, f"{objects.current.name}: {category or 'no class'}.")

    @handler("segment_seconds", "reordering", models=False)
    def move(self, photo: Photo | None, objects: Objects, masks, step: int):
        moved = objects.move(step)
        where = f"painted {moved.selected + 1} of {len(moved.items)}: later objects cover earlier ones"
        return self.tab.view(photo, moved, None, masks, f"{moved.current.name} {where}.")

    @handler("segment_seconds", "the ground truth", models=False)
    def to_truth(self, photo: Photo | None, objects: Objects, masks, upload) -> tuple:
        """The objects as a ground truth at the photo's own size: its label-id and colour PNGs to
        download, and the photo with its ground truth handed to Compare, which the page then shows."""
        if photo is None or not upload:
            raise ValueError("no image: upload one first, then outline objects and pick their classes")
        labels = truth_from_objects(objects, {k: v.mask for k, v in masks.items()}, CLASSES, size=photo.size)
        stem = named_after(upload["path"])
        ids, colour = save_truth(self.ctx.outputs.new("truth"), f"{stem}_sam", labels, PALETTE)
        covered = float((labels != IGNORE_INDEX).mean())
        classes = int((np.unique(labels) != IGNORE_INDEX).sum())
        note = " ".join(x for x in (
            f"Ground truth of {classes} class(es) covering {covered:.0%} of the photo (the rest is void, not scored) "
            "is in **Compare**: press Segment there. Its label-id and colour PNGs are below.",
            left_out(objects, masks)) if x)
        return upload["path"], str(ids), [str(ids), str(colour)], note, gr.Tabs(selected=COMPARE_TAB)

    def from_regions(self, photo: Photo, objects: Objects, masks, key: str, room: int, progress):
        """SAM prompted with model `key`'s regions (box and interior point each, largest first, at most
        `room`), each kept mask an object of the region's class, after the others."""
        [(title, model)] = self.ctx.zoo.semantic_models([key]).values()  # an unknown key: refused here
        progress(0, desc=f"{title} segments the photo")
        labels = run_model(model, photo.pixels).labels
        progress(0.3, desc=f"SAM is prompted with {title}'s regions")
        decoder = SamRegions(self.ctx.zoo.sam(), photo.pixels, digest=photo.digest)
        refined = refine(labels, decoder, min_pixels=MIN_OBJECT_PIXELS, max_regions=min(room, MAX_REGIONS))
        objects, new = add_regions(objects, refined, decoder, CLASSES)
        if not new:
            return self.tab.view(photo, objects, None, masks,
                                 f"None of {title}'s {len(refined.regions)} region(s) matched one of SAM's masks.")
        masks = {**{k: v for k, v in masks.items() if k in {item.id for item in objects.items}}, **new}
        return self.tab.view(photo, objects, None, masks,
                             f"{len(new)} object(s) from {title}'s {len(refined.regions)} region(s), each with its "
                             f"class, in {refined.seconds:.1f} s; each can be edited like a clicked one.")

    def layout(self, sam_photo, objects, masks, upload, view, note, class_picker, compare, sam_result) -> None:
        """The panel's components (under the class picker) and events; `view`: the tab's outputs,
        `class_picker`: the view's class radio, `sam_result`: SAM's masks for the selected object;
        `compare`: Compare's photo and truth, and the app's tabs (the ground truth is handed to the first
        two, and the third turns to Compare)."""
        with gr.Row():
            earlier = gr.Button("Paint earlier", elem_id="sam-earlier", size="sm")
            later = gr.Button("Paint later (over the others)", elem_id="sam-later", size="sm")
        use = gr.Button("Use as ground truth (in Compare)", elem_id="sam-truth-go")
        files = gr.File(label="Ground truth: label ids and CamVid colours (PNG)", file_count="multiple", height=110,
                        elem_id="sam-truth-files")
        edit = {"show_progress_on": note, **PAGE}
        class_picker.input(self.classify, [sam_photo, objects, masks, class_picker, sam_result], view, **edit)
        earlier.click(lambda p, o, m: self.move(p, o, m, -1), [sam_photo, objects, masks], view, **edit)
        later.click(lambda p, o, m: self.move(p, o, m, 1), [sam_photo, objects, masks], view, **edit)
        image_in, truth_in, tabs = compare
        use.click(self.to_truth, [sam_photo, objects, masks, upload], [image_in, truth_in, files, note, tabs],
                  **edit).success(None, js=SHOW_COMPARE)
