"""The Prompt SAM tab's files: every object exported (instance PNG, COCO JSON, one PNG each) and a
COCO JSON of this app imported to continue from it."""

import json
from pathlib import Path

import gradio as gr

from seg.data.camvid import CLASSES
from seg.data.photos import Photo
from seg.explorer.export import objects_from_coco, save_json
from seg.sam.objects import mask_files, write_objects
from seg.sam.prompts import Objects
from seg.sam.truth import left_out

from ...files import named_after
from ...jobs import handler
from ..events import PAGE


class SamFiles:
    def __init__(self, tab):
        self.tab, self.ctx = tab, tab.ctx  # the SAM tab: its view and its masks

    @handler("segment_seconds", "the export", models=False)
    def export(self, photo: Photo | None, objects: Objects, masks, upload) -> tuple[list[str], str]:
        """Every object with a mask: one instance-id PNG, a COCO JSON (with the prompts, to import
        again) and one PNG per object, each named after the photo; and a note naming what was left out."""
        if photo is None or not any(o.id in masks for o in objects.items):
            raise ValueError("no mask yet: click on an object first")
        out = self.ctx.outputs.new("sam")
        stem = named_after(upload["path"]) if upload else "image"
        name = f"{stem}{Path(upload['path']).suffix if upload else '.png'}"
        instances, coco = write_objects(out, objects, masks, file_name=name, size=photo.pixels.shape[:2],
                                        classes=CLASSES)
        files = [instances.rename(out / f"{stem}_instances.png"), save_json(out / f"{stem}_objects_coco.json", coco),
                 *mask_files(out, stem, objects, masks)]
        note = " ".join(x for x in (f"{sum(o.id in masks for o in objects.items)} object(s) exported: the files are "
                                    "below.", left_out(objects, masks)) if x)
        return [str(f) for f in files], note

    @handler("sam_seconds", "the import", models=True)
    def import_coco(self, photo: Photo | None, objects: Objects, masks, upload, path, answering: str = ""):
        """Objects from a COCO JSON this app exported, added after the open photo's own objects with
        their masks from the SAM answering the clicks (`answering`, as the tab's picker). A file made on
        a photo of another size is refused; one whose photo had another name is added, and the note
        says so."""
        if photo is None:
            raise ValueError("open the photo the objects were made on first, then import its COCO JSON")
        if not path:  # the file was removed from the box: nothing changes
            return self.tab.view_unchanged()
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ValueError("the import must be the COCO JSON this app exported (objects_coco.json)") from None
        most = self.ctx.limits.objects_per_request
        imported = objects_from_coco(document, size=photo.pixels.shape[:2], limits=self.ctx.limits, classes=CLASSES)
        merged = objects.append(imported)
        if len(merged.items) > most:
            raise ValueError(f"{len(imported.items)} imported objects and the {len(merged.items) - len(imported.items)}"
                             f" here make {len(merged.items)}; one image takes at most {most}: delete some first")
        by = f", their masks by {self.tab.answering_sam(answering).title}" if answering else ""
        note = f"{len(imported.items)} object(s) added from the file{by}."
        images = document.get("images")
        made_for = images[0].get("file_name") if isinstance(images, list) and images and \
            isinstance(images[0], dict) else None
        here = Path(upload["path"]).name if upload else None
        if made_for and here and made_for != here:
            note += (f" The file was made on **{str(made_for)[:80]}**, this photo is **{here}** (the same size): "
                     "check them.")
        return self.tab.view(photo, merged, None, self.tab.object_masks(photo, merged, masks, answering), note)

    def layout(self, sam_photo, objects, masks, upload, view, note, answering) -> None:
        """The panel's components (under "Find every object") and events; `view`: the tab's outputs,
        `note`: where an import's progress shows, as every edit's; `answering`: the SAM picker."""
        export = gr.Button("Export all objects (instance PNG, COCO JSON, one PNG each)", elem_id="sam-export")
        files = gr.File(label="Mask files", file_count="multiple", elem_id="sam-files", height=110)
        coco_in = gr.File(label="Continue from an exported COCO JSON", file_types=[".json"], type="filepath",
                          height=110, elem_id="sam-import")
        export.click(self.export, [sam_photo, objects, masks, upload], [files, note], **PAGE)
        coco_in.upload(self.import_coco, [sam_photo, objects, masks, upload, coco_in, answering], view,
                       show_progress_on=note, **PAGE)
