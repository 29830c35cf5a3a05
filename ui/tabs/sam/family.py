"""The Prompt SAM tab's SAM family panel: the selected object's clicks and box sent to every SAM the
server offers (their masks side by side, each with its score, time and agreement), and SAM 3's
concept prompts (a phrase, or the selected object's box as an example), whose instances join the
objects."""

import gradio as gr
import numpy as np
import pandas as pd
from PIL import Image

from seg.data.camvid import CLASSES
from seg.data.io import fit_image, resize_labels
from seg.data.photos import Photo
from seg.deadline import check
from seg.sam.compare import agreement, ask_every_sam
from seg.sam.concepts import camvid_class_of, phrase
from seg.sam.objects import add_instances, object_point
from seg.sam.prompts import Objects, draw_prompts
from seg.sam.relate import region_at

from ...jobs import handler
from ..events import LIGHT, PAGE

TILE_SIDE = 360  # each SAM's mask is drawn this large: a row of them beside each other
COMPARE_COLUMNS = ["model", "predicted IoU", "seconds", "photo read now", "IoU with the ground truth"]


class SamFamily:
    def __init__(self, tab):
        self.tab, self.ctx = tab, tab.ctx

    def costs(self, photo: Photo | None) -> str:
        """What asking every SAM will cost on this photo, before it is spent: for each SAM, whether it
        has read the photo, else its last reading's time on this server."""
        sams, unavailable = self.offered()
        if not sams:
            return "No SAM of the family is offered here: list them in SEG_SAM_MODELS (see the header's list)."
        lines = []
        for title, sam in sams.items():
            if sam is None:
                lines.append(f"- {title}: not loaded yet (loading is part of its first answer)")
            elif photo is not None and sam.has_embedding(photo.pixels, digest=photo.digest):
                lines.append(f"- {title}: has read this photo; a prompt costs its decoder alone")
            elif getattr(sam, "encode_seconds", None):
                lines.append(f"- {title}: reads a new photo in about {sam.encode_seconds:.1f} s here (its last)")
            else:
                lines.append(f"- {title}: not timed here yet (its reading of the photo comes first)")
        lines += [f"- {title}: unavailable ({why})" for title, why in unavailable.items()]
        return "Each SAM reads the photo once, then answers from memory:\n\n" + "\n".join(lines)

    def offered(self) -> tuple[dict, dict]:
        """({title: the SAM if loaded, else None}, {title: why not}) without loading anything."""
        zoo, loaded = self.ctx.zoo, self.ctx.zoo.loaded()
        sams = {zoo.sam_title(): zoo.sam() if "sam" in loaded else None} if zoo.sam_available() else {}
        for key, title in zoo.family_names().items():
            sams[title] = zoo.family_sam(key) if f"sam:{key}" in loaded else None
        return sams, ({} if zoo.sam_available() else {zoo.sam_title(): zoo.sam_missing()})

    @handler("segment_seconds", "reading the SAMs' costs", models=False)
    def refresh_costs(self, photo: Photo | None) -> str:
        return self.costs(photo)

    @handler("sam_seconds", "asking every SAM", models=True)
    def compare(self, photo: Photo | None, objects: Objects, truth_path,
                progress=gr.Progress(track_tqdm=True)):  # a first use's download shows its progress
        """The selected object's prompts answered by every SAM; with this tab's ground truth, each mask's
        IoU with the true region under the object's point."""
        if photo is None:
            raise ValueError("no image: upload one first")
        item = objects.current
        if not item.prompts.ready():
            raise ValueError(f"{item.name} has no prompt yet: click the object (or draw its box) first")
        progress(0, desc="Each SAM reads the photo (once), then answers the prompt")
        sams, unavailable = self.ctx.zoo.every_sam()
        truth = self.true_region(photo, item, truth_path)
        answers = ask_every_sam(sams, photo.pixels, item.prompts.to_sam(), digest=photo.digest, truth=truth,
                                check=check)
        table = agreement([a.mask for a in answers])
        small, scale = fit_image(photo.pixels, TILE_SIDE, resample=Image.Resampling.BOX)
        tiles = [(draw_prompts(small, item.prompts, resize_labels(a.mask, small.shape[:2]), scale=scale),
                  f"{a.title} · IoU {a.score:.2f} · {a.seconds:.2f} s") for a in answers]
        rows = pd.DataFrame([[a.title, round(a.score, 3), round(a.seconds, 3), "yes" if a.encoded else "no",
                              "-" if a.truth_iou is None else round(a.truth_iou, 3)] for a in answers],
                            columns=COMPARE_COLUMNS)
        pairs = pd.DataFrame(np.round(table, 3), columns=[a.title for a in answers]).fillna("-")
        pairs.insert(0, "IoU with", [a.title for a in answers])
        missing = "".join(f"\n\n{title} could not answer: {why}" for title, why in unavailable.items())
        return tiles, rows, pairs, self.costs(photo) + missing

    def true_region(self, photo: Photo, item, truth_path) -> np.ndarray | None:
        """The ground truth's connected region of one class under the object's point, or None."""
        if not truth_path:
            return None
        truth = self.ctx.truth(truth_path, photo.pixels)
        x, y = object_point(item.prompts)
        return region_at(truth.labels, x, y)

    @handler("sam_seconds", "SAM 3's text prompt", models=True)
    def find_text(self, photo: Photo | None, objects: Objects, masks, text, threshold,
                  progress=gr.Progress(track_tqdm=True)):
        """Every instance of a phrase, as new objects after the others."""
        return self.find(photo, objects, masks, phrase(text), threshold, progress)

    @handler("sam_seconds", "SAM 3's example prompt", models=True)
    def find_like(self, photo: Photo | None, objects: Objects, masks, text, threshold,
                  progress=gr.Progress(track_tqdm=True)):
        """Every instance like the one in the selected object's box (and matching the phrase, if given)."""
        if photo is not None and objects.current.prompts.box is None:
            raise ValueError("the selected object has no box: draw one (Next click: box) around an example first")
        return self.find(photo, objects, masks, phrase(text) if (text or "").strip() else None, threshold,
                         progress, like=objects.current)

    def find(self, photo: Photo | None, objects: Objects, masks, text: str | None, threshold, progress, like=None):
        """SAM 3's instances of `text` and/or like `like`'s box as objects after the others, each of the
        CamVid class the phrase names (else the example's class, else none)."""
        if photo is None:
            raise ValueError("no image: upload one first")
        most = self.ctx.limits.objects_per_request
        room = most - sum(1 for item in objects.items if item.prompts.clicks)
        if room <= 0:
            raise ValueError(f"one image takes at most {most} objects: delete some first")
        sam3 = self.ctx.zoo.first_concept_sam()
        progress(0, desc="SAM 3 reads the photo (once), then looks for every instance")
        found = sam3.find(photo.pixels, text, boxes=None if like is None else [like.prompts.box],
                          threshold=float(threshold), limit=room, digest=photo.digest)
        name = text or f"like {like.name}"
        if not found:
            return self.tab.view(photo, objects, None, masks, f"SAM 3 found no instance of \"{name}\" scoring "
                                 f"{threshold:.2f} or more: lower the threshold or try another phrase.")
        named = camvid_class_of(text) if text else None
        category = CLASSES[named] if named is not None else (like.category if like is not None else None)
        objects, new = add_instances(objects, found, name, category)
        masks = {**{k: v for k, v in masks.items() if k in {item.id for item in objects.items}}, **new}
        kind = f", class {category}" if category else ""
        return self.tab.view(photo, objects, None, masks,
                             f"SAM 3 found {len(found)} instance(s) of \"{name}\"{kind}; each is an object now.")

    def layout(self, sam_photo, objects, masks, view, note, sam_truth) -> None:
        """The panel's components and events; `view`: the tab's outputs; `sam_truth`: this tab's ground truth."""
        zoo = self.ctx.zoo
        with gr.Accordion("Every SAM on this object: SAM, SAM 2, SAM-HQ, EdgeTAM, SAM 3 side by side",
                          open=False, elem_id="sam-family") as panel:
            costs = gr.Markdown(self.costs(None), elem_id="sam-family-costs")
            go = gr.Button("Ask every SAM with this object's clicks and box", elem_id="sam-family-go")
            tiles = gr.Gallery(label="Each SAM's best mask", columns=4, height="auto", object_fit="contain",
                               elem_id="sam-family-masks", format="jpeg")
            rows = gr.Dataframe(pd.DataFrame(columns=COMPARE_COLUMNS), interactive=False,
                                label="Each SAM's answer", elem_id="sam-family-table")
            pairs = gr.Dataframe(interactive=False, label="How much the SAMs agree (IoU of each pair of masks)",
                                 elem_id="sam-family-agreement")
        panel.expand(self.refresh_costs, sam_photo, costs, **LIGHT)
        go.click(self.compare, [sam_photo, objects, sam_truth], [tiles, rows, pairs, costs],
                 show_progress_on=[costs], **PAGE)
        concept = zoo.concept_names()
        label = "Find by name with SAM 3 (text and example prompts)" + ("" if concept else ": not available here")
        with gr.Accordion(label, open=False, elem_id="sam-concepts"):
            if not concept:
                gr.Markdown(self.unavailable_concepts())
                return
            gr.Markdown("A short noun phrase finds **every** matching instance, not one object per click: "
                        "each becomes an object (of the CamVid class the phrase names, if it names one). SAM 3 "
                        "reads a new photo slowly on a CPU (its time shows above once measured).")
            with gr.Row():
                text = gr.Textbox(label="Phrase", placeholder="car, traffic light, pedestrian", max_length=60,
                                  elem_id="sam-text", scale=3)
                threshold = gr.Slider(0.05, 0.95, value=0.5, step=0.05, label="Least score kept",
                                      elem_id="sam-text-threshold", scale=2)
            with gr.Row():
                find = gr.Button("Find every instance", elem_id="sam-text-go")
                like = gr.Button("More like the selected object's box", elem_id="sam-like-go")
        find.click(self.find_text, [sam_photo, objects, masks, text, threshold], view, show_progress_on=note, **PAGE)
        like.click(self.find_like, [sam_photo, objects, masks, text, threshold], view, show_progress_on=note, **PAGE)

    def unavailable_concepts(self) -> str:
        try:
            self.ctx.zoo.first_concept_sam()
        except ValueError as error:
            return str(error) + "."
        return ""
