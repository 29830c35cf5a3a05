"""The Prompt SAM tab: objects outlined by clicks and boxes, SAM's three masks to choose from, every
object found at once, kept in the browser across reloads. Its other panels: `files` (export and
import), `models` (what the semantic models say, the click curve) and `family` (every SAM on one
prompt; SAM 3's text prompts)."""

import os
from dataclasses import replace
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from PIL import Image

from seg.data.camvid import CLASSES
from seg.data.io import fit_image, resize_labels
from seg.data.photos import Photo
from seg.sam.everything import Everything
from seg.sam.objects import add_automatic
from seg.sam.prompts import MODES, MaskChoices, ObjectMask, Objects, Prompts, draw_objects, draw_prompts

from ...context import Context
from ...guard import inside, upload_folder
from ...jobs import handler, refusal
from ..events import LIGHT, PAGE
from .browser import page_script
from .family import SamFamily
from .files import SamFiles
from .labels import COLOURS, GRID, SamLabels
from .models import SamModels

# The mask choices are drawn at the size they are shown (thumbnails in a 420 px high gallery, its
# preview at most this): a third of the pixels of a 1024 px photo to draw and encode, three times a click.
CHOICE_SIDE = 480
# The automatic masks' grid, points per side (SAM's own default is 32): 8 is 64 prompts, a wait of seconds
# on a 2-core Space, not a minute (its time: benchmarks/RESULTS.md, "Find every object").
EVERYTHING_GRID = 8
UPLOAD_FIRST = "no image: upload one first"


KEYS_HELP = ("<p class='legend-note'>Without a mouse: Tab to the photo; the arrow keys move a cross-hair (with "
             "Shift, further); Enter clicks there in the chosen mode; P, N and B click a positive point, a "
             "negative point or a box corner.</p>")


class SamView(NamedTuple):
    """What every edit of the objects shows, in the order of its outputs (`SamTab.layout`'s `view`)."""

    objects: Objects
    canvas: np.ndarray | None
    choices: list  # SAM's masks for the selected object, as gallery tiles
    result: MaskChoices | None
    masks: dict[int, ObjectMask]  # each object's chosen mask, by object id
    note: str
    picker: dict
    live: dict | None  # the browser decoder's value
    category: dict  # the selected object's class, in the class picker

    @staticmethod
    def unchanged() -> tuple:
        return (gr.skip(),) * len(SamView._fields)


class Opened(NamedTuple):
    """A photo opened in the tab: the photo (with its digest), its upload as the browser keeps it, then the view."""

    photo: Photo | None
    upload: dict | None  # {"path", "digest"}
    view: SamView

    def outputs(self) -> tuple:
        return (self.photo, self.upload, *self.view)

    @staticmethod
    def unchanged() -> tuple:
        return (gr.skip(), gr.skip(), *SamView.unchanged())


def everything_settings(max_masks: int, grid: int = EVERYTHING_GRID) -> Everything:
    return Everything(points_per_side=grid, max_masks=max_masks)


def choice_tiles(image: np.ndarray, prompts: Prompts, result: MaskChoices) -> list[tuple[np.ndarray, str]]:
    """SAM's masks for the selected object as the gallery shows them: each drawn with the prompts,
    on the photo shrunk to CHOICE_SIDE, with its predicted IoU."""
    small, scale = fit_image(image, CHOICE_SIDE, resample=Image.Resampling.BOX)
    return [(draw_prompts(small, prompts, resize_labels(m, small.shape[:2]), scale=scale),
             f"mask {i + 1} · IoU {s:.2f}") for i, (m, s) in enumerate(zip(result.masks, result.scores))]


class SamTab:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.files, self.models, self.labels = SamFiles(self), SamModels(ctx), SamLabels(self)
        self.family = SamFamily(self)

    # ------------------------------------------------------------ shared by the panels
    @staticmethod
    def view_unchanged() -> tuple:
        return SamView.unchanged()

    def answering_sam(self, key: str = ""):
        """The SAM that answers the clicks: the default SAM (key ""), or the SAM family's `key`."""
        return self.ctx.zoo.family_sam(key) if key else self.ctx.zoo.sam()

    def mask_choices(self, photo: Photo, item, answering: str = "") -> MaskChoices:
        """SAM's three masks for one object's prompts, its own choice among them marked; `answering`:
        which SAM answers (see `answering_sam`)."""
        result = self.answering_sam(answering).predict(photo.pixels, **item.prompts.to_sam(), multimask=True,
                                                       digest=photo.digest)
        return MaskChoices(item.id, result.masks, tuple(map(float, result.scores)),
                           tuple(map(float, result.stability)), chosen=item.choice)

    def object_masks(self, photo: Photo, objects: Objects, masks: dict | None = None,
                     answering: str = "") -> dict[int, ObjectMask]:
        """{object id: its mask}: `masks` for the objects it has, SAM's chosen mask for the others that
        have a prompt (the embedding is computed once, then each costs a decode); `answering`: which SAM."""
        masks = dict(masks or {})
        for item in objects.items:
            if item.id not in masks and item.prompts.ready():
                masks[item.id] = self.mask_choices(photo, item, answering).chosen_mask()
        return {k: v for k, v in masks.items() if k in {item.id for item in objects.items}}

    def browser_value(self, photo: Photo | None, objects: Objects, *, compute: bool = False) -> dict | None:
        """What the browser decoder needs (ui/tabs/sam/browser.py): the photo's embedding once written (now,
        if `compute`) and the selected object's clicks; None where it is off or SAM missing."""
        browser, zoo = self.ctx.browser, self.ctx.zoo
        if browser is None or photo is None or not zoo.sam_available():
            return None
        value = browser.value(zoo.sam(), photo.pixels, objects.current.prompts.clicks, compute=compute,
                              digest=photo.digest)
        # the page decodes the default SAM only: while the picker names another, it previews nothing
        return value and {**value, "sam": zoo.sam_title(), "answering": "#sam-answering input"}

    def view(self, photo: Photo | None, objects: Objects, result: MaskChoices | None, masks: dict[int, ObjectMask],
             note: str) -> SamView:
        image = photo.pixels if photo is not None else None
        canvas = draw_objects(image, objects, {k: v.mask for k, v in masks.items()}, COLOURS) \
            if image is not None else None
        choices = [] if result is None else choice_tiles(image, objects.current.prompts, result)
        names = [f"{o.name} ({o.category})" if o.category and o.category.lower() not in o.name else o.name
                 for o in objects.items]
        picker = gr.update(choices=[(name, i) for i, name in enumerate(names)], value=objects.selected)
        return SamView(objects, canvas, choices, result, masks, note, picker, self.browser_value(photo, objects),
                       gr.update(value=objects.current.category))

    def run_sam(self, photo: Photo | None, objects: Objects, masks: dict, answering: str = "") -> SamView:
        """SAM (`answering`: which one) for the selected object's prompts; its best mask replaces the one
        kept for it. The mask depends on the prompts alone (no previous mask fed back), so saved prompts
        re-create it."""
        if photo is None:
            raise ValueError(UPLOAD_FIRST)
        objects = objects.choose(0)  # new prompts: the best scored of SAM's new masks
        item = objects.current
        masks = {k: v for k, v in masks.items() if k != item.id}
        if not item.prompts.ready():
            note = "Box: click the opposite corner." if item.prompts.corners else f"{item.name}: click the object."
            return self.view(photo, objects, None, masks, note)
        result = self.mask_choices(photo, item, answering)
        masks[item.id] = result.chosen_mask()
        given = len(item.prompts.points) + (item.prompts.box is not None)
        pending = " Box: click the opposite corner." if len(item.prompts.corners) == 1 else ""
        by = f" (answered by {self.ctx.zoo.family_names()[answering]})" if answering else ""
        note = f"{item.name}: {given} prompt(s); the best of {len(result.masks)} masks is shown{by}.{pending}"
        return self.view(photo, objects, result, masks, note)

    def restore_objects(self, photo: Photo, saved) -> tuple[Objects, dict, str]:
        """The objects saved in the browser for this photo (matched by content), with their masks."""
        if isinstance(saved, dict) and saved.get("digest") == photo.digest and saved.get("objects"):
            try:
                objects = Objects.from_json(saved["objects"], size=photo.pixels.shape[:2], limits=self.ctx.limits,
                                            classes=CLASSES)
            except ValueError:
                return Objects(), {}, "The objects saved for this photo could not be read; starting afresh."
            masks = self.object_masks(photo, objects)
            return objects, masks, f"{len(objects.items)} object(s) from your last visit are back."
        return Objects(), {}, "Click the object: each click updates the mask. Add an object to outline another."

    # ------------------------------------------------------------ handlers
    @handler("sam_seconds", "opening the image", models=True)
    def open(self, path, saved, progress=gr.Progress(track_tqdm=True)) -> tuple:
        """A new image for SAM: the objects saved for it in this browser, or a fresh first object. SAM
        loads here, not at the first click (a download, where allowed, shows its progress)."""
        if not path:
            return Opened(None, None, self.view(None, Objects(), None, {},
                                                "Upload an image or send the one from Compare.")).outputs()
        photo = self.ctx.photo(path)
        if self.ctx.zoo.sam_available():
            self.ctx.zoo.sam()
        objects, masks, note = self.restore_objects(photo, saved)
        return Opened(photo, {"path": path, "digest": photo.digest},
                      self.view(photo, objects, None, masks, note)).outputs()

    def from_compare(self, path, saved, progress=gr.Progress(track_tqdm=True)) -> tuple:
        """Compare's photo opened here; refused, with the photo here kept, when Compare has none."""
        if not path:
            raise refusal("Compare has no photo yet: open one there first, or upload one here")
        return self.open(path, saved, progress)

    @handler("sam_seconds", "SAM's reading of the photo", models=True)
    def embed(self, photo: Photo | None, objects: Objects, progress=gr.Progress()):
        """SAM's image embedding of the photo just opened, computed now, so the first click costs only
        a decode; then sent to the browser decoder. A click that comes sooner waits for this same
        computation (`Sam.embed` computes each photo once, whoever asks first)."""
        if photo is None or not self.ctx.zoo.sam_available():
            return gr.skip()
        progress(0, desc="SAM is reading the photo (its image embedding)")
        self.ctx.zoo.sam().embed(photo.pixels, digest=photo.digest)
        return self.browser_value(photo, objects, compute=True) if self.ctx.browser is not None else gr.skip()

    @handler("sam_seconds", "restoring your objects", models=True)
    def restore(self, saved, photo: Photo | None = None) -> tuple:
        """When the tab opens with no photo: the photo and objects of the last visit, if the photo is
        still on the server (else a note to upload it again). With a photo open, nothing changes."""
        if photo is not None:
            return Opened.unchanged()
        path = saved.get("path") if isinstance(saved, dict) else None
        if not isinstance(path, str) or not inside(path, upload_folder()) or not os.path.isfile(path):
            waiting = isinstance(saved, dict) and saved.get("objects")
            note = "Upload the same photo to get the objects of your last visit back." if waiting else \
                "Upload an image or send the one from Compare."
            # the note alone: a photo uploaded while this ran must not be cleared by it
            return Opened(gr.skip(), gr.skip(), SamView(*SamView.unchanged())._replace(note=note)).outputs()
        return self.open(path, saved)

    def save(self, upload, objects: Objects):
        """What the browser keeps (its local storage) so a reload brings the objects back."""
        if not upload:
            return gr.skip()
        return {**upload, "objects": objects.to_json()}

    @handler("sam_seconds", "SAM", models=True)
    def canvas_click(self, photo: Photo | None, objects: Objects, mode, masks, evt: gr.SelectData,
                     answering: str = "") -> SamView:
        if photo is None:
            raise ValueError(UPLOAD_FIRST)
        most = self.ctx.limits.points_per_object
        if len(objects.current.prompts.clicks) >= most:
            raise ValueError(f"one object takes at most {most} clicks: undo or clear some")
        x, y = evt.index
        return self.run_sam(photo, objects.click(x, y, mode), masks, answering)

    @handler("sam_seconds", "SAM", models=True)
    def undo(self, photo: Photo | None, objects: Objects, masks, answering: str = "") -> SamView:
        return self.run_sam(photo, objects.undo(), masks, answering)

    @handler("sam_seconds", "SAM", models=True)
    def answer_again(self, photo: Photo | None, objects: Objects, masks, answering: str = "") -> SamView:
        """Another SAM chosen to answer the clicks: the selected object answered by it at once."""
        if photo is None or not objects.current.prompts.ready():
            return SamView(*SamView.unchanged())
        return self.run_sam(photo, objects, masks, answering)

    @handler("segment_seconds", "clearing", models=False)
    def clear(self, photo: Photo | None, objects: Objects, masks) -> SamView:
        objects = objects.clear()
        return self.view(photo, objects, None, {k: v for k, v in masks.items() if k != objects.current.id},
                         "Prompts of this object cleared.")

    @handler("segment_seconds", "adding an object", models=False)
    def add(self, photo: Photo | None, objects: Objects, masks) -> SamView:
        if photo is None:
            raise ValueError(UPLOAD_FIRST)
        most = self.ctx.limits.objects_per_request
        if len(objects.items) >= most:
            raise ValueError(f"one image takes at most {most} objects: delete one first")
        objects = objects.add()
        return self.view(photo, objects, None, masks, f"{objects.current.name}: click the object.")

    @handler("sam_seconds", "finding every object", models=True)
    def every_object(self, photo: Photo | None, objects: Objects, masks, source=GRID,
                     progress=gr.Progress()) -> SamView:
        """SAM's automatic masks as objects after the others (up to the objects limit), each editable,
        saved and exported like a clicked object (`seg.sam.objects.add_automatic`); or, with
        a model's key as `source`, SAM prompted with that model's regions (`SamLabels.from_regions`)."""
        if photo is None:
            raise ValueError(UPLOAD_FIRST)
        most = self.ctx.limits.objects_per_request
        room = most - sum(1 for item in objects.items if item.prompts.clicks)
        if room <= 0:
            raise ValueError(f"one image takes at most {most} objects: delete some first")
        if source and source != GRID:
            return self.labels.from_regions(photo, objects, masks, source, room, progress)
        progress(0, desc=f"SAM is prompting a grid of {EVERYTHING_GRID}x{EVERYTHING_GRID} points")
        found = self.ctx.zoo.sam().everything(photo.pixels, everything_settings(room), digest=photo.digest)
        if not found:
            return self.view(photo, objects, None, masks, "SAM found no object it is sure of: click them instead.")
        objects, new = add_automatic(objects, found)
        masks = {**{k: v for k, v in masks.items() if k in {item.id for item in objects.items}}, **new}
        return self.view(photo, objects, None, masks,
                         f"SAM found {len(found)} object(s); each can be edited like a clicked one.")

    @handler("segment_seconds", "selecting an object", models=False)
    def pick(self, photo: Photo | None, objects: Objects, masks, index) -> SamView:
        if photo is None or not isinstance(index, int) or index == objects.selected:
            return self.view(photo, objects, None, masks, "")
        objects = objects.select(index)
        return self.view(photo, objects, None, masks, f"{objects.current.name} selected: clicks now edit it.")

    @handler("segment_seconds", "deleting an object", models=False)
    def delete(self, photo: Photo | None, objects: Objects, masks) -> SamView:
        gone = objects.current
        objects = objects.delete()
        return self.view(photo, objects, None, {k: v for k, v in masks.items() if k != gone.id},
                         f"{gone.name} deleted.")

    @handler("segment_seconds", "choosing the mask", models=False)
    def choose(self, photo: Photo | None, objects: Objects, result, masks, evt: gr.SelectData) -> SamView:
        if not isinstance(result, MaskChoices) or result.object != objects.current.id:
            return self.view(photo, objects, result, masks, "")
        i = evt.index
        result, objects = replace(result, chosen=i), objects.choose(i)
        masks = {**masks, objects.current.id: result.chosen_mask()}
        return self.view(photo, objects, result, masks, f"Mask {i + 1} chosen for {objects.current.name}.")

    # ------------------------------------------------------------ layout
    def layout(self, tab: gr.Tab, image_in: gr.Image, truth_in: gr.File, tabs: gr.Tabs) -> None:
        """The tab's components and events; `image_in`, `truth_in`: the Compare tab's photo and truth;
        `tabs`: the app's tabs, which "Use as ground truth" turns to Compare."""
        notice = self.ctx.sam_notice()
        gr.Markdown(notice, visible=bool(notice), elem_id="sam-unavailable")
        sam_photo, objects, sam_result = gr.State(None), gr.State(Objects()), gr.State(None)
        masks, upload = gr.State({}), gr.State(None)  # each object's chosen mask; the photo's upload and digest
        # The browser's local storage keeps the objects across reloads; a fixed key (not a secret: the
        # value is clicks and an upload's path) so they also survive a server restart.
        saved = gr.BrowserState(None, storage_key="seg-sam-objects", secret="seg-sam-objects")
        # the click mode and every action on the objects in one compact bar above the photo
        with gr.Row(elem_id="sam-bar"):
            mode = gr.Radio(list(MODES), value="positive", label="Next click", elem_id="sam-mode", scale=3,
                            info="box: two clicks on opposite corners", min_width=260)
            undo = gr.Button("Undo", elem_id="sam-undo", size="sm", scale=1, min_width=70)
            clear = gr.Button("Clear this object's clicks", elem_id="sam-clear", size="sm", scale=1, min_width=110)
            add = gr.Button("Add an object", elem_id="sam-add", size="sm", scale=1, min_width=90)
            delete = gr.Button("Delete this object", elem_id="sam-delete", size="sm", scale=1, min_width=90)
            from_compare = gr.Button("Use the Compare photo", elem_id="from-compare", size="sm", scale=1, min_width=110)
            family = self.ctx.zoo.family_names()
            # which SAM answers the clicks: the default (its decoder also in the page), or one of the family
            answering = gr.Dropdown([(self.ctx.zoo.sam_title(), ""), *((t, k) for k, t in family.items())], value="",
                                    label="SAM answering the clicks", elem_id="sam-answering", visible=bool(family),
                                    scale=2, min_width=200)
        with gr.Row():
            with gr.Column(scale=4, min_width=320):  # the photo takes most of the width
                # JPEG for what the server draws here: WebP, the default, took most of a click's time to
                # encode (an upload stays the file that came: type filepath, image_mode None)
                canvas = gr.Image(type="filepath", label="Click on the image", height=560, format="jpeg",
                                  sources=["upload", "clipboard"], elem_id="sam-canvas", image_mode=None)
                sam_note = gr.Markdown(elem_id="sam-note")
                # the decoder in this browser: hover previews, instant click masks (ui/tabs/sam/live.js)
                live = gr.HTML(None, html_template='<div class="sam-live-status"></div>', elem_id="sam-live",
                               js_on_load=page_script("live.js"),
                               css_template=".sam-live-status {font-size:0.85rem; opacity:0.8}")
                # prompts without a mouse: a cross-hair the arrow keys move (ui/tabs/sam/keys.js)
                gr.HTML(KEYS_HELP, js_on_load=page_script("keys.js"), elem_id="sam-keys")
            with gr.Column(scale=1, min_width=200):  # SAM's three masks beside it (under it on a phone)
                choices = gr.Gallery(label="SAM's masks: pick one", columns=1, height="auto",
                                     object_fit="contain", elem_id="sam-masks", format="jpeg")
        with gr.Row():
            with gr.Column(scale=1, min_width=300):  # the objects and their classes, together
                picker = gr.Radio([("object 1", 0)], value=0, label="Objects (clicks edit the selected one)",
                                  elem_id="sam-objects")
                category = self.labels.class_picker()
                view = list(SamView(objects=objects, canvas=canvas, choices=choices, result=sam_result, masks=masks,
                                    note=sam_note, picker=picker, live=live, category=category))  # by name
                self.labels.layout(sam_photo, objects, masks, upload, view, sam_note, category,
                                   (image_in, truth_in, tabs), sam_result)
            with gr.Column(scale=1, min_width=300):
                # the source first, and the button saying what it will do; its progress right under it
                source = gr.Dropdown(self.labels.sources(), value=GRID, label="Find every object from",
                                     elem_id="sam-everything-from")
                everything = gr.Button(self.labels.everything_label(GRID), elem_id="sam-everything")
                everything_status = gr.Markdown(elem_id="sam-everything-status")
                self.files.layout(sam_photo, objects, masks, upload, view, sam_note, answering)
        opened = list(Opened(photo=sam_photo, upload=upload, view=SamView(*view)).outputs())
        # SAM reads each photo as it arrives, not at the first click. Its progress shows over the decoder's
        # line, not the note: the note's progress is the page's sign that a click is being answered and a
        # new one would be dropped (Gradio drops a trigger of the same event only), while a click made as
        # the photo is read waits for it and counts
        embed = {"fn": self.embed, "inputs": [sam_photo, objects], "outputs": live, "show_progress_on": live,
                 **PAGE}
        sam_truth = self.models.layout(sam_photo, objects, masks)
        self.family.layout(sam_photo, objects, masks, view, sam_note, sam_truth)
        # a new photo brings its own ground truth (Compare's, with Compare's photo) or none
        canvas.upload(self.open, [canvas, saved], opened, **PAGE).success(
            lambda: None, None, sam_truth, **PAGE).then(**embed)
        # its progress, or its refusal, over the note: an "Error" over the photo hid the photo it kept
        from_compare.click(self.from_compare, [image_in, saved], opened, show_progress_on=sam_note, **PAGE).success(
            lambda path: path, truth_in, sam_truth, **PAGE).then(**embed)
        # on opening the tab, not on page load: by then the browser has read its storage into `saved`
        tab.select(self.restore, [saved, sam_photo], opened, **PAGE).then(**embed)
        # an edit's progress shows over the note, not over the photo: the browser decoder's mask is on the
        # photo already, and a click, hover or box corner must not land on an overlay
        edit: dict[str, Any] = {"show_progress_on": sam_note, **PAGE}
        canvas.select(self.canvas_click, [sam_photo, objects, mode, masks, answering], view, **edit)
        undo.click(self.undo, [sam_photo, objects, masks, answering], view, **edit)
        answering.change(self.answer_again, [sam_photo, objects, masks, answering], view, **edit)
        clear.click(self.clear, [sam_photo, objects, masks], view, **edit)
        add.click(self.add, [sam_photo, objects, masks], view, **edit)
        everything.click(self.every_object, [sam_photo, objects, masks, source], view,
                         **{**edit, "show_progress_on": [sam_note, everything_status]})
        source.change(self.labels.everything_button, source, everything, **LIGHT)
        picker.input(self.pick, [sam_photo, objects, masks, picker], view, **edit)
        delete.click(self.delete, [sam_photo, objects, masks], view, **edit)
        choices.select(self.choose, [sam_photo, objects, sam_result, masks], view, **edit)
        objects.change(self.save, [upload, objects], saved, **PAGE)
