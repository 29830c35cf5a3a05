"""The endpoints for scripted use (docs/api.md), declared with `gr.api`: typed functions,
no components. Files arrive as uploads (gradio_client's `handle_file`) and leave as files the client
downloads.

    /segment(image, model)                   -> label-id PNG, {model, seconds, classes, height, width}
    /sam_prompt(image, points, labels, box)  -> mask PNG, {score, scores, rle, photo}
    /sam_click(handle, points, labels, box)  -> {score, scores, rle, photo}
    /sam_objects(image, objects)             -> instance-id PNG, COCO document
    /sam_everything(image, grid)             -> instance-id PNG, COCO document
    /sam_truth(image, objects)               -> label-id PNG (the objects' classes, void elsewhere)
    /sam_compare(image, points, labels, box) -> {photo, answers: [{model, score, seconds, rle, ...}]}
    /sam_text(image, text, threshold)        -> instance-id PNG, COCO document (SAM 3's instances)
    /refine(image, model)                    -> label-id PNG (the model's regions refined by SAM), JSON
    /score(prediction, truth)                -> metrics
"""

from pathlib import Path

import gradio as gr
import numpy as np
from gradio import FileData

from seg.data.camvid import CLASSES, CLASSES_WITH_OTHER
from seg.data.ground_truth import parse_ground_truth
from seg.data.io import resize_labels, stored_size
from seg.data.photos import Photo
from seg.deadline import check
from seg.explorer.compare import run_model, score
from seg.explorer.export import rle_encode, save_png
from seg.sam.compare import agreement, ask_every_sam
from seg.sam.concepts import camvid_class_of, phrase
from seg.sam.objects import add_automatic, add_instances, write_full_size
from seg.sam.prompt_text import parse_objects, parse_prompt
from seg.sam.prompts import Objects
from seg.sam.refine import MAX_REGIONS, refine
from seg.sam.regions import SamRegions
from seg.sam.truth import label_ids, outlined, paint

from . import gradio_private as private
from .context import Context
from .guard import NOT_UPLOADED, inside, upload_folder
from .jobs import handler
from .limits import check_output
from .tabs.events import API
from .tabs.sam.tab import EVERYTHING_GRID, everything_settings

ENDPOINTS = ("segment", "sam_prompt", "sam_click", "sam_objects", "sam_everything", "sam_truth", "sam_compare",
             "sam_text", "refine", "score")


def uploaded(value, what: str) -> str | None:
    """The path of an uploaded file value (a FileData dict), or None for no file; anything else, a path
    outside the upload folder included, is refused."""
    if value is None:
        return None
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str) or not inside(path, upload_folder()):
        raise ValueError(f"{what}: {NOT_UPLOADED}")
    return path


class Api:
    def __init__(self, ctx: Context):
        self.ctx = ctx

    def sam_answer(self, photo: Photo, prompt: dict) -> tuple[np.ndarray, dict]:
        """SAM's best mask for `prompt` on `photo`, at its own size, and the JSON answer: score, scores
        of the three masks, the mask as COCO RLE, and the photo's handle."""
        result = self.ctx.zoo.sam().predict(photo.pixels, **prompt, multimask=True, original_size=photo.size,
                                            digest=photo.digest)
        mask, scores = result.masks[0], result.scores.tolist()
        del result  # the other two masks, a photo's size each
        check()
        return mask, {"score": scores[0], "scores": scores, "rle": rle_encode(mask), "photo": photo.key}

    @handler("segment_seconds", "segmenting", models=True)
    def segment(self, image: FileData, model: str) -> tuple[FileData, dict]:
        """Segment an image with a named model: the label-id PNG (at the image's own size) and
        {model, seconds, classes, height, width}."""
        [(title, semantic)] = self.ctx.zoo.semantic_models([model]).values()  # an unknown name: refused first
        photo = self.ctx.photo(uploaded(image, "image"))
        p = run_model(semantic, photo.pixels, key=model, title=title)
        labels = save_png(self.ctx.outputs.new("api") / "labels.png", resize_labels(p.labels, photo.size))
        return FileData(path=str(labels)), {"model": model, "seconds": round(p.seconds, 4),
                                            "classes": list(CLASSES_WITH_OTHER), "height": photo.size[0],
                                            "width": photo.size[1]}

    @handler("sam_seconds", "SAM", models=True)
    def sam_prompt(self, image: FileData, points: str, labels: str, box: str) -> tuple[FileData, dict]:
        """A SAM prompt. points: JSON [[x, y], ...]; labels: JSON [1, 0, ...] (1 positive); box: JSON
        [x0, y0, x1, y1] or empty. Coordinates and the returned mask are in the image's own pixels;
        SAM sees the image shrunk to MAX_SIDE and the prompts mapped onto it. The JSON's "photo" is the
        photo's handle: later clicks pass it to /sam_click instead of the file."""
        prompt = parse_prompt(points, labels, box, limits=self.ctx.limits)  # before the photo is decoded
        mask, answer = self.sam_answer(self.ctx.photo(uploaded(image, "image")), prompt)
        path = save_png(self.ctx.outputs.new("api") / "mask.png", mask.astype(np.uint8) * 255)
        return FileData(path=str(path)), answer

    @handler("sam_seconds", "SAM", models=True)
    def sam_click(self, handle: str, points: str, labels: str, box: str) -> dict:
        """A SAM prompt on a photo sent before: `handle` is the "photo" of an earlier /sam_prompt answer.
        Answers the JSON only (the mask as COCO RLE): no upload and no PNG, for scripts that click often."""
        prompt = parse_prompt(points, labels, box, limits=self.ctx.limits)
        photo = self.ctx.photos.find(handle) if isinstance(handle, str) else None
        if photo is None:
            raise ValueError("no photo is held under this handle: send the photo with /sam_prompt first and pass "
                             "the \"photo\" of its answer (a photo unused for a while may be dropped: send it again)")
        return self.sam_answer(photo, prompt)[1]

    @handler("sam_seconds", "SAM", models=True)
    def sam_objects(self, image: FileData, objects: str) -> tuple[FileData, dict]:
        """Several objects at once. objects: JSON [{"name", "points", "labels", "box", "class"}, ...] in the
        image's own pixels ("class", optional: one of CamVid's 11, the annotation's category). Returns the
        instance-id PNG (0 background, i for the i-th object) at the image's size and the COCO document
        (RLE, bbox, area, predicted IoU, stability score and prompts per object)."""
        limits = self.ctx.limits
        parsed = parse_objects(objects, limits=limits, classes=CLASSES)  # before the photo is even decoded
        path = uploaded(image, "image")
        try:
            check_output(stored_size(path), len(parsed.items), limits)  # from the header, before decoding
        except (OSError, TypeError):  # no file, or not an image: ctx.photo says so
            pass
        photo = self.ctx.photo(path)
        check_output(photo.size, len(parsed.items), limits)
        prompts = [item.prompts.check(photo.size).to_sam() for item in parsed.items]  # all before any work
        return self.full_size(parsed, self.best_masks(photo, prompts), photo, Path(path).name)

    def best_masks(self, photo: Photo, prompts: list[dict]):
        """SAM's best (mask, score, stability) for each prompt, at the photo's own size, made one at a
        time: nothing here holds one while the next is made."""
        sam = self.ctx.zoo.sam()
        for prompt in prompts:
            check()
            result = sam.predict(photo.pixels, **prompt, best_only=True, original_size=photo.size,
                                 digest=photo.digest)
            best = result.masks[0], result.scores[0], result.stability[0]
            del result
            yield best
            del best

    def full_size(self, objects: Objects, masks, photo: Photo, name: str) -> tuple[FileData, dict]:
        png, coco = write_full_size(self.ctx.outputs.new("api"), objects, masks, size=photo.size, file_name=name,
                                    check=check, classes=CLASSES)  # the deadline counts the resizing and encoding too
        return FileData(path=str(png)), coco

    @handler("sam_seconds", "finding every object", models=True)
    def sam_everything(self, image: FileData, grid: float | None = EVERYTHING_GRID) -> tuple[FileData, dict]:
        """SAM's automatic masks: a grid of `grid` x `grid` point prompts (default 8, at most the
        server's everything_grid), each mask kept an object with its click. Answers as /sam_objects does:
        the instance-id PNG at the image's size and the COCO document (at most objects_per_request
        masks, fewer where output_pixels caps a large photo)."""
        limits = self.ctx.limits
        grid = EVERYTHING_GRID if grid is None or grid == "" else grid
        if isinstance(grid, bool) or not isinstance(grid, (int, float)) or not float(grid).is_integer() \
                or not 1 <= grid <= limits.everything_grid:
            raise ValueError(f"grid is the points per side of the prompts' grid, a whole number from 1 to "
                             f"{limits.everything_grid}, got {str(grid)[:20]}")
        path = uploaded(image, "image")
        photo = self.ctx.photo(path)
        most = min(limits.objects_per_request, limits.output_pixels // (photo.size[0] * photo.size[1]))
        found = self.ctx.zoo.sam().everything(photo.pixels, everything_settings(most, int(grid)), digest=photo.digest)
        objects, masks = add_automatic(Objects(()), found, scale=photo.scale)  # clicks in the photo's own pixels
        chosen = ((masks[item.id].mask, masks[item.id].score, masks[item.id].stability) for item in objects.items)
        return self.full_size(objects, chosen, photo, Path(path).name)

    @handler("sam_seconds", "comparing the SAMs", models=True)
    def sam_compare(self, image: FileData, points: str, labels: str, box: str) -> dict:
        """One prompt (as for /sam_prompt) answered by every SAM the server offers: MobileSAM and the SAM
        family (SEG_SAM_MODELS). Answers {photo, answers: [{model, score, seconds, encoded, rle,
        agreement}], unavailable: {model: why}}: each SAM's best mask as COCO RLE at the image's own
        size, its predicted IoU, the seconds it took (`encoded`: reading the photo included) and its
        IoU with each other SAM's mask."""
        prompt = parse_prompt(points, labels, box, limits=self.ctx.limits)  # before the photo is decoded
        sams, unavailable = self.ctx.zoo.every_sam()
        if not sams:
            raise ValueError("no SAM is available on this server: " + "; ".join(f"{k}: {v}" for k, v in
                                                                              unavailable.items()))
        photo = self.ctx.photo(uploaded(image, "image"))
        answers = ask_every_sam(sams, photo.pixels, prompt, original_size=photo.size, digest=photo.digest,
                                check=check)
        table = agreement([a.mask for a in answers])
        return {"photo": photo.key, "unavailable": unavailable, "answers": [
            {"model": a.title, "score": round(a.score, 4), "seconds": round(a.seconds, 4), "encoded": a.encoded,
             "rle": rle_encode(a.mask),
             "agreement": {b.title: None if np.isnan(table[i, j]) else round(float(table[i, j]), 4)
                           for j, b in enumerate(answers) if j != i}} for i, a in enumerate(answers)]}

    @handler("sam_seconds", "SAM 3's text prompt", models=True)
    def sam_text(self, image: FileData, text: str, threshold: float | None = 0.5) -> tuple[FileData, dict]:
        """Every instance of a concept, found by SAM 3: `text` a short noun phrase ("car", "traffic
        light"), `threshold` the least score kept (0 to 1, default 0.5). Answers as /sam_everything: the
        instance-id PNG at the image's size and the COCO document (best first, at most
        objects_per_request), each instance of the CamVid class the phrase names, if it names one."""
        text = phrase(text)
        threshold = 0.5 if threshold is None or threshold == "" else threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ValueError(f"threshold is the least score kept, from 0 to 1, got {str(threshold)[:20]}")
        sam3 = self.ctx.zoo.first_concept_sam()  # none on this server: refused before the photo is read
        path = uploaded(image, "image")
        photo = self.ctx.photo(path)
        limits = self.ctx.limits
        most = min(limits.objects_per_request, limits.output_pixels // (photo.size[0] * photo.size[1]))
        found = sam3.find(photo.pixels, text, threshold=float(threshold), limit=most, digest=photo.digest)
        category = camvid_class_of(text)
        objects, masks = add_instances(Objects(()), found, text, None if category is None else CLASSES[category],
                                       scale=photo.scale)
        chosen = ((masks[item.id].mask, masks[item.id].score, masks[item.id].stability) for item in objects.items)
        return self.full_size(objects, chosen, photo, Path(path).name)

    @handler("sam_seconds", "SAM", models=True)
    def sam_truth(self, image: FileData, objects: str) -> FileData:
        """A ground truth from SAM objects. objects: JSON as for /sam_objects, each with a "class" (one
        of CamVid's 11 names). Each object's best mask is painted with its class's id, in order, later
        over earlier; void (11) elsewhere. Answers the label-id PNG at the image's own size."""
        limits = self.ctx.limits
        items = outlined(parse_objects(objects, limits=limits, classes=CLASSES), CLASSES)  # before the photo
        photo = self.ctx.photo(uploaded(image, "image"))
        prompts = [item.prompts.check(photo.size).to_sam() for item in items]  # all before any work
        self.ctx.zoo.sam()  # not available: refused before any work
        masks = (mask for mask, _, _ in self.best_masks(photo, prompts))  # each painted, then dropped
        labels = paint(zip(items, masks), CLASSES, size=photo.size)
        path = save_png(self.ctx.outputs.new("api") / "truth.png", label_ids(labels))
        return FileData(path=str(path))

    @handler("sam_seconds", "refining with SAM", models=True)
    def refine(self, image: FileData, model: str) -> tuple[FileData, dict]:
        """A model's prediction refined by SAM: each of its regions (largest first, at most 30) prompts
        SAM with its box and interior point, and the mask that best overlaps it takes its class. Answers
        the label-id PNG at the image's own size and {model, regions (box and point in the image's
        pixels), seconds (SAM's part), classes, height, width}."""
        [(title, semantic)] = self.ctx.zoo.semantic_models([model]).values()  # an unknown name: refused first
        sam = self.ctx.zoo.sam()  # not available: refused before the photo is read
        photo = self.ctx.photo(uploaded(image, "image"))
        p = run_model(semantic, photo.pixels, key=model, title=title)
        check()
        refined = refine(p.labels, SamRegions(sam, photo.pixels, digest=photo.digest),
                         max_regions=min(MAX_REGIONS, self.ctx.limits.objects_per_request))
        labels = save_png(self.ctx.outputs.new("api") / "refined.png", resize_labels(refined.labels, photo.size))
        own = 1 / photo.scale  # the working size's pixels to the photo's
        regions = [{**r, "class": CLASSES_WITH_OTHER[r["class"]], "box": [round(v * own, 1) for v in r["box"]],
                    "point": [round(v * own, 1) for v in r["point"]]} for r in refined.regions]
        return FileData(path=str(labels)), {"model": model, "regions": regions, "seconds": round(refined.seconds, 4),
                                            "model_seconds": round(p.seconds, 4), "classes": list(CLASSES_WITH_OTHER),
                                            "height": photo.size[0], "width": photo.size[1]}

    @handler("score_seconds", "scoring", models=False)
    def score(self, prediction: FileData, truth: FileData) -> dict:
        """Score a label-id PNG prediction against a ground truth PNG (ids or CamVid colours): metrics JSON."""
        prediction_path, truth_path = uploaded(prediction, "prediction"), uploaded(truth, "truth")
        if not prediction_path or not truth_path:
            raise ValueError("both a prediction (label-id PNG) and a ground truth PNG are needed")
        limits, decoder = self.ctx.limits, self.ctx.decoder
        predicted = decoder.labels(prediction_path, max_pixels=limits.score_pixels)
        if predicted.ndim != 2:
            raise ValueError(f"the prediction must be a single-channel label-id PNG, got shape {predicted.shape}")
        parsed = parse_ground_truth(decoder.labels(truth_path, max_pixels=limits.score_pixels),
                                    image_shape=predicted.shape, max_values=limits.class_ids)
        return {"ground_truth_format": parsed.format, **score(predicted, parsed.labels)}

    def parameters(self) -> dict[str, str]:
        """What each endpoint parameter takes, for the "Use via API" page (docs/api.md says the same at length)."""
        image = "the photo, uploaded (gradio_client: handle_file(path)); PNG, JPEG, WebP, GIF or BMP"
        xy = "in the photo's own pixels"
        return {
            "image": image,
            "model": f"a model's name, one of: {', '.join(self.ctx.zoo.semantic_names())}",
            "points": f'JSON list of [x, y] points {xy}, e.g. "[[240, 300]]"; "[]" for none',
            "labels": 'JSON list, one per point: 1 positive, 0 negative, e.g. "[1]"',
            "box": f'JSON [x0, y0, x1, y1] {xy}, or "" for none',
            "handle": 'the "photo" of an earlier /sam_prompt answer (that photo, already read)',
            "objects": ('JSON list of {"name", "points", "labels", "box", "class"} ' + xy
                        + f' ("class": one of {", ".join(CLASSES)})'),
            "text": 'a short noun phrase SAM 3 finds every instance of, e.g. "car" or "traffic light"',
            "threshold": "the least score an instance needs to be kept, 0 to 1 (default 0.5)",
            "grid": f"points per side of the prompt grid, 1 to {self.ctx.limits.everything_grid} (default "
                    f"{EVERYTHING_GRID})",
            "prediction": "a label-id PNG, uploaded (0 to 10 CamVid's classes, 11 other)",
            "truth": "the ground truth, uploaded: a label-id PNG (void 11 or 255) or CamVid's colours",
        }

    def declare(self) -> None:
        """The endpoints, inside the app's Blocks: same names and arguments as docs/api.md promises, each
        parameter named and described on the "Use via API" page."""
        described = self.parameters()
        for name in ENDPOINTS:
            gr.api(getattr(self, name), api_name=name, **API)
            private.describe_api_inputs(name, described)
