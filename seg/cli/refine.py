"""Does SAM make a semantic model's boundaries better? A model's predictions on a CamVid split,
refined by SAM (seg.sam.refine: each region prompts SAM with its box and interior point), scored
against the ground truth beside the unrefined ones: mIoU and boundary F over the split, and per class.

    python -m seg.cli.refine --data-dir DIR --split val --model unet [--limit 10] [--out runs/refine]

Needs real SAM weights to mean anything (random ones answer noise). Scores accumulate over the split
(one confusion matrix and one set of boundary counts for all images, as seg.cli.evaluate scores), with
CamVid's 11 classes; a model's "other" pixels count as wrong. Writes refine.json (the figures, and
per image the regions prompted and painted) and refine.png (IoU and boundary F per class, both ways).
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..charts import per_class_chart
from ..data.camvid import CLASSES, ENV_VAR, OTHER, CamVid, read_camvid_label
from ..data.io import read_image
from ..explorer.compare import run_model
from ..explorer.zoo import TITLES, Zoo
from ..metrics import SegmentationMetrics, mean_present, number
from ..sam.clicks import MIN_OBJECT_PIXELS
from ..sam.refine import MAX_REGIONS, MIN_IOU, refine
from ..sam.regions import SamRegions
from .common import add_sam_arguments, load_sam, run


def summary(metrics: SegmentationMetrics) -> dict:
    """mIoU and boundary F over CamVid's 11 classes, and both per class, from accumulated metrics."""
    s = metrics.compute()
    return {"miou": number(mean_present(s.iou[:OTHER])), "boundary_f": number(mean_present(s.boundary_f[:OTHER])),
            "pixel_accuracy": number(s.pixel_accuracy),
            "per_class": {name: {"iou": number(s.iou[i]), "boundary_f": number(s.boundary_f[i])}
                          for i, name in enumerate(CLASSES)}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seg.cli.refine", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get(ENV_VAR) or None, help=f"CamVid folder (default: ${ENV_VAR})")
    p.add_argument("--split", default="val", help="split to score on (default: val)")
    p.add_argument("--model", default="unet", help="a model of the weights folder: " + ", ".join(TITLES))
    p.add_argument("--weights", default=os.environ.get("SEG_WEIGHTS_DIR") or "weights", type=Path,
                   help="weights folder (default: $SEG_WEIGHTS_DIR, else weights/)")
    p.add_argument("--limit", type=int, help="only the first N images")
    add_sam_arguments(p)
    p.add_argument("--min-pixels", type=int, default=MIN_OBJECT_PIXELS,
                   help=f"regions smaller than this are not prompted (default: {MIN_OBJECT_PIXELS}, as the app)")
    p.add_argument("--max-regions", type=int, default=MAX_REGIONS, help=f"per image (default: {MAX_REGIONS})")
    p.add_argument("--min-iou", type=float, default=MIN_IOU,
                   help=f"a SAM mask overlapping its region less than this is not painted (default: {MIN_IOU})")
    p.add_argument("--out", type=Path, default=Path("runs/refine"), help="folder for refine.json and refine.png")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.min_pixels < 1 or args.max_regions < 1 or not 0 <= args.min_iou <= 1:
        p.error("--min-pixels and --max-regions must be at least 1, --min-iou between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = CamVid(args.data_dir, args.split)
    zoo = Zoo(args.weights, pretrained=())
    if args.model not in zoo.semantic_names():
        raise SystemExit(f"no model {args.model!r} in {args.weights}: choose one of {', '.join(zoo.semantic_names())}")
    model, title = zoo.semantic(args.model), zoo.semantic_names()[args.model]
    sam = load_sam(args)
    plain, refined = SegmentationMetrics(OTHER + 1), SegmentationMetrics(OTHER + 1)
    images, seconds = [], []
    paths = list(zip(data.images, data.labels))[:args.limit]
    for n, (image_path, label_path) in enumerate(paths, 1):
        image, truth = read_image(image_path), read_camvid_label(label_path)
        labels = run_model(model, image).labels
        started = time.perf_counter()
        result = refine(labels, SamRegions(sam, image), min_pixels=args.min_pixels, max_regions=args.max_regions,
                        min_iou=args.min_iou, started=started)
        seconds.append(result.seconds)
        plain.update(pred=labels, target=truth)
        refined.update(pred=result.labels, target=truth)
        painted = sum(r["painted"] for r in result.regions)
        images.append({"image": Path(image_path).name, "seconds": round(result.seconds, 3),
                       "regions": len(result.regions), "painted": painted,
                       "changed_pixels": int((result.labels != labels).sum())})
        print(f"[{n}/{len(paths)}] {Path(image_path).name}: {painted} of {len(result.regions)} regions painted "
              f"in {result.seconds:.2f} s", flush=True)
    before, after = summary(plain), summary(refined)
    report = {"split": args.split, "images": len(paths), "model": args.model, "sam": args.variant,
              "min_pixels": args.min_pixels, "max_regions": args.max_regions, "min_iou": args.min_iou,
              "seconds_per_image": round(float(np.median(seconds)), 3) if seconds else None,
              "model_alone": before, "refined": after, "per_image": images}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "refine.json").write_text(json.dumps(report, indent=1))
    series = {f"{name} {what}": {c: side["per_class"][c][key] for c in CLASSES}
              for what, key in (("IoU", "iou"), ("boundary F", "boundary_f"))
              for name, side in ((title, before), (f"{title} + SAM", after))}
    Image.fromarray(per_class_chart(series, CLASSES, title=f"{title} with and without SAM on CamVid {args.split} "
                                                           f"({len(paths)} images)")).save(args.out / "refine.png")
    print(f"{title}: mIoU {before['miou']:.4f} -> {after['miou']:.4f}, boundary F {before['boundary_f']:.4f} -> "
          f"{after['boundary_f']:.4f} with SAM {args.variant}; median {report['seconds_per_image']} s per image")
    print(f"wrote {args.out / 'refine.json'} and {args.out / 'refine.png'}")
    return 0


if __name__ == "__main__":
    run(main)
