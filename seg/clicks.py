"""SAM's click curve against a ground truth: the standard simulation of a person clicking (each
click where the error is largest), the IoU after every click, and NoC@85 / NoC@90.

    python -m seg.clicks --data-dir DIR --split val [--limit 10] [--out runs/clicks]

The simulation (Xu et al. 2016, as in RITM and SAM's evaluations): the first click is positive, at
the object's interior point farthest from its border; each next click goes to the largest
connected error region (by pixel count), at its point farthest from that region's border: positive
where the object was missed, negative where the mask spilled over. Image borders count as borders.
Void pixels of the ground truth are neither object nor error. SAM answers each click as the app
does: the best scored of its three masks for all the clicks so far, no earlier mask fed back.
Writes clicks.json (every object's curve and the means) and clicks.png (the mean curve).
"""

import argparse
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from .charts import click_chart
from .cli import run
from .data.camvid import CLASSES, ENV_VAR, CamVid, read_camvid_label
from .data.io import read_image
from .labels import IGNORE_INDEX
from .pretrained.sam import Sam
from .pretrained.sam_weights import DEFAULT_VARIANT

Click = tuple[int, int, bool]  # x, y in pixels; True for a positive click
Decoder = Callable[[np.ndarray, np.ndarray], np.ndarray]  # points (N, 2) xy, labels (N,) 1/0 -> (H, W) bool
THRESHOLDS = (0.85, 0.90)  # NoC@85 and NoC@90
MIN_OBJECT_PIXELS = 200  # objects smaller than this are specks of annotation, left out (here and in the app)


def interior_point(region: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel of `(H, W)` bool `region` farthest from its border (the image's edge is a
    border too); the first in row-major order on a tie."""
    if not region.any():
        raise ValueError("the region is empty: it has no interior point")
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), region.shape)
    return int(x), int(y)


def next_click(mask: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> Click | None:
    """Where the simulated person clicks next: inside the largest connected error region (missed
    object pixels are positive clicks, spilled-over pixels negative), at its interior point. None
    when there is no error left. mask, target, valid: `(H, W)` bool."""
    valid = np.ones_like(target, dtype=bool) if valid is None else valid
    best, best_size, positive = None, 0, True
    for errors, is_positive in ((target & ~mask & valid, True), (mask & ~target & valid, False)):
        regions, count = ndimage.label(errors)  # 4-neighbour regions
        if count == 0:
            continue
        sizes = np.bincount(regions.ravel())[1:]
        largest = int(np.argmax(sizes))
        if sizes[largest] > best_size:  # on a tie the missed region wins: it is checked first
            best, best_size, positive = regions == largest + 1, int(sizes[largest]), is_positive
    if best is None:
        return None
    x, y = interior_point(best)
    return x, y, positive


def mask_iou(mask: np.ndarray, target: np.ndarray, valid: np.ndarray | None = None) -> float:
    """IoU of two `(H, W)` bool masks over the `valid` pixels (1.0 when both are empty)."""
    if valid is not None:
        mask, target = mask & valid, target & valid
    union = np.logical_or(mask, target).sum()
    return float(np.logical_and(mask, target).sum() / union) if union else 1.0


@dataclass(frozen=True)
class ClickCurve:
    """clicks: the simulated clicks in order; ious: IoU with the object after each of them;
    mask: the `(H, W)` bool mask after the last click."""

    clicks: tuple[Click, ...]
    ious: tuple[float, ...]
    mask: np.ndarray | None = None

    def noc(self, threshold: float) -> int | None:
        """Clicks needed to reach IoU `threshold` (1-based), None if the curve never does."""
        return next((k + 1 for k, value in enumerate(self.ious) if value >= threshold), None)


def click_curve(decode: Decoder, target: np.ndarray, *, max_clicks: int = 10,
                valid: np.ndarray | None = None) -> ClickCurve:
    """Simulate up to `max_clicks` clicks on the object `target` (`(H, W)` bool), asking `decode`
    for a mask after each. Stops early at a perfect mask (the curve then stays at 1.0)."""
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}")
    valid = np.ones_like(target, dtype=bool) if valid is None else valid
    target = target & valid
    x, y = interior_point(target)
    clicks: list[Click] = [(x, y, True)]
    ious: list[float] = []
    while True:
        points = np.array([(cx, cy) for cx, cy, _ in clicks], dtype=np.float32)
        labels = np.array([int(positive) for _, _, positive in clicks])
        mask = np.asarray(decode(points, labels), dtype=bool)
        ious.append(mask_iou(mask, target, valid))
        if len(clicks) == max_clicks:
            break
        click = next_click(mask, target, valid)
        if click is None:
            ious += [ious[-1]] * (max_clicks - len(ious))
            break
        clicks.append(click)
    return ClickCurve(tuple(clicks), tuple(ious), mask)


def objects_in(labels: np.ndarray, *, min_pixels: int = 1, classes=None,
               ignore_index: int = IGNORE_INDEX) -> list[dict]:
    """The objects of a label map: connected regions (4-neighbour) of one class, largest first.

    labels: `(H, W)` class ids. Each object: {"class": id, "mask": (H, W) bool, "pixels": count,
    "point": (x, y) its interior point}. min_pixels drops specks; classes keeps only those ids.
    """
    found = []
    for value in np.unique(labels):
        if value == ignore_index or (classes is not None and int(value) not in classes):
            continue
        regions, count = ndimage.label(labels == value)
        sizes = np.bincount(regions.ravel())
        for index in range(1, count + 1):
            if sizes[index] >= min_pixels:
                mask = regions == index
                found.append({"class": int(value), "mask": mask, "pixels": int(sizes[index]),
                              "point": interior_point(mask)})
    return sorted(found, key=lambda o: -o["pixels"])


def semantic_iou(prediction: np.ndarray, target: np.ndarray, class_id: int,
                 valid: np.ndarray | None = None) -> float:
    """How well a semantic model finds one object, for comparison with SAM's curve: its connected
    regions of `class_id` that touch the object, as one mask, against the object."""
    regions, _ = ndimage.label(prediction == class_id)
    touching = np.unique(regions[target & (regions > 0)])
    return mask_iou(np.isin(regions, touching) & (regions > 0), target, valid)


def sam_decoder(sam, image, *, digest: str | None = None) -> Decoder:
    """`decode` for `click_curve` from a `seg.pretrained.sam.Sam` on `image` (an `(H, W, 3) uint8`
    photo, whose `image_digest` may be given, or its embedding): the best scored of SAM's three
    masks, as the app shows."""
    embedding = sam.embed(image, digest=digest) if isinstance(image, np.ndarray) else image

    def decode(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return sam.predict(embedding, points=points, labels=labels, multimask=True).masks[0]
    return decode


def summarise(curves: list[ClickCurve], *, max_clicks: int) -> dict:
    """Mean IoU after each click, and the mean NoC at each threshold, counting `max_clicks` for a
    curve that never reaches it (the usual convention), with how many did not."""
    if not curves:
        raise ValueError("no objects to summarise: lower --min-pixels or score more images")
    ious = np.array([c.ious for c in curves])
    out = {"objects": len(curves), "mean_iou": [round(float(v), 4) for v in ious.mean(axis=0)]}
    for threshold in THRESHOLDS:
        reached = [c.noc(threshold) for c in curves]
        out[f"noc@{round(threshold * 100)}"] = round(float(np.mean([n or max_clicks for n in reached])), 3)
        out[f"not_reached@{round(threshold * 100)}"] = sum(n is None for n in reached)
    return out


def summary_line(summary: dict, *, max_clicks: int) -> str:
    """The summary in words: the mean IoU after the 1st, 5th and last click (those that exist), and each
    NoC with how many objects never reached its IoU, which the mean counts as `max_clicks` each."""
    shown = sorted({1, min(5, max_clicks), max_clicks})
    ious = " / ".join(f"{summary['mean_iou'][n - 1]:.3f}" for n in shown)
    parts = [f"{summary['objects']} objects: mean IoU after {' / '.join(map(str, shown))} "
             f"click{'s' if shown != [1] else ''} {ious}"]
    for threshold in THRESHOLDS:
        percent = round(threshold * 100)
        missed = summary[f"not_reached@{percent}"]
        if missed == summary["objects"]:
            parts.append(f"NoC@{percent}: none reached {percent}% within {max_clicks} clicks")
        else:
            note = f" ({missed} never reached {percent}%, counted as {max_clicks})" if missed else ""
            parts.append(f"NoC@{percent} {summary[f'noc@{percent}']}{note}")
    return "; ".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seg.clicks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get(ENV_VAR) or None,
                   help=f"CamVid folder (default: ${ENV_VAR})")
    p.add_argument("--split", default="val", help="split to simulate on (default: val)")
    p.add_argument("--limit", type=int, help="only the first N images")
    p.add_argument("--variant", default=os.environ.get("SEG_SAM_VARIANT") or DEFAULT_VARIANT,
                   help=f"SAM variant: vit_t (MobileSAM), vit_b, vit_l, vit_h (default: $SEG_SAM_VARIANT or "
                        f"{DEFAULT_VARIANT})")
    p.add_argument("--checkpoint", default=os.environ.get("SEG_SAM_CHECKPOINT") or None,
                   help="SAM checkpoint file (default: $SEG_SAM_CHECKPOINT, else the cache or a download)")
    p.add_argument("--no-download", action="store_true", help="never download SAM's checkpoint")
    p.add_argument("--max-clicks", type=int, default=10)
    p.add_argument("--min-pixels", type=int, default=MIN_OBJECT_PIXELS,
                   help=f"skip objects smaller than this many pixels (default: {MIN_OBJECT_PIXELS}, as the app)")
    p.add_argument("--classes", nargs="+", choices=CLASSES, help="only objects of these classes (default: all)")
    p.add_argument("--out", type=Path, default=Path("runs/clicks"), help="folder for clicks.json and clicks.png")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.max_clicks < 1:
        p.error("--max-clicks must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = CamVid(args.data_dir, args.split)
    sam = Sam.load(args.variant, args.checkpoint, download=not args.no_download)
    wanted = {CLASSES.index(c) for c in args.classes} if args.classes else None
    paths = list(zip(data.images, data.labels))[:args.limit]
    curves, objects = [], []
    for n, (image_path, label_path) in enumerate(paths, 1):
        image, truth = read_image(image_path), read_camvid_label(label_path)
        decode = sam_decoder(sam, image)
        found = objects_in(truth, min_pixels=args.min_pixels, classes=wanted)
        for item in found:
            curve = click_curve(decode, item["mask"], max_clicks=args.max_clicks, valid=truth != IGNORE_INDEX)
            curves.append(replace(curve, mask=None))  # the summary needs no masks: a dataset's would fill memory
            objects.append({"image": Path(image_path).name, "class": CLASSES[item["class"]],
                            "pixels": item["pixels"], "ious": [round(v, 4) for v in curve.ious],
                            "clicks": [list(c) for c in curve.clicks]})
        print(f"[{n}/{len(paths)}] {Path(image_path).name}: {len(found)} objects", flush=True)
    summary = summarise(curves, max_clicks=args.max_clicks)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"split": args.split, "images": len(paths), "variant": args.variant, "max_clicks": args.max_clicks,
              "min_pixels": args.min_pixels, "summary": summary, "objects": objects}
    (args.out / "clicks.json").write_text(json.dumps(report, indent=1))
    Image.fromarray(click_chart({f"SAM {args.variant}": summary["mean_iou"]},
                                title=f"SAM on CamVid {args.split}: mean IoU of {len(curves)} objects")
                    ).save(args.out / "clicks.png")
    print(summary_line(summary, max_clicks=args.max_clicks))
    print(f"wrote {args.out / 'clicks.json'} and {args.out / 'clicks.png'}")
    return 0


if __name__ == "__main__":
    run(main)
