"""SAM's click curve over a CamVid split (the simulation is `seg.sam.clicks`'s): every object's
IoU after each simulated click, NoC@85 / NoC@90, and the mean curve.

    python -m seg.cli.clicks --data-dir DIR --split val [--limit 10] [--out runs/clicks]

Writes clicks.json (every object's curve and the means) and clicks.png (the mean curve).
"""

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path

from PIL import Image

from ..charts import click_chart
from ..data.camvid import CLASSES, ENV_VAR, CamVid, read_camvid_label
from ..data.io import read_image
from ..labels import IGNORE_INDEX
from ..sam.clicks import MIN_OBJECT_PIXELS, click_curve, objects_in, sam_decoder, summarise, summary_line
from .common import add_sam_arguments, load_sam, run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seg.cli.clicks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=os.environ.get(ENV_VAR) or None,
                   help=f"CamVid folder (default: ${ENV_VAR})")
    p.add_argument("--split", default="val", help="split to simulate on (default: val)")
    p.add_argument("--limit", type=int, help="only the first N images")
    add_sam_arguments(p)
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
    sam = load_sam(args)
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
