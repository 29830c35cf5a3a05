"""Segment images with a checkpoint; write a label-id PNG and a colour overlay for each.

    python -m seg.cli.predict photo.jpg more/*.png --checkpoint runs/unet/model.safetensors --out predictions/

For `photo.jpg` it writes `photo_labels.png` (class ids, 8-bit) and `photo_overlay.png` (the card's
palette over the photo); and once, `classes.json`: the card's class names and palette, and the value
its dataset's label files hold where unlabelled. The folder then scores as it is:

    python -m seg.cli.evaluate --pred-dir predictions/ --gt-dir DIR/valannot
"""

import argparse
import json
import sys
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..checkpoint import load_model
from ..data import files_ignore_label
from ..data.io import read_image, write_labels
from ..inference import segment, working_size
from ..labels import LABELS_SUFFIX, PREDICTIONS_CARD
from ..prior import card_offsets
from ..visualize import overlay
from .common import choose_device, run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seg.cli.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", type=Path, help="image files (PNG, JPEG, ...)")
    p.add_argument("--checkpoint", type=Path, required=True, help="model .safetensors with its .json card")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity in [0, 1] (default: 0.5)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--no-prior", action="store_true", help="ignore the card's logit adjustment (seg.prior)")
    args = p.parse_args(argv)
    if not 0 <= args.alpha <= 1:
        p.error("--alpha must be in [0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = choose_device(args.device)
    model, card = load_model(args.checkpoint, device=device)
    offsets = None if args.no_prior else card_offsets(card)
    args.out.mkdir(parents=True, exist_ok=True)
    described = {"classes": card["classes"], "palette": card["palette"], "checkpoint": str(args.checkpoint),
                 "ground_truth_ignore": files_ignore_label(card.get("data", {}).get("dataset"))}
    (args.out / PREDICTIONS_CARD).write_text(json.dumps(described) + "\n")
    failed = 0
    for path in tqdm(args.images, desc="segmenting", disable=len(args.images) < 2):
        try:
            image = read_image(path)
        except ValueError as error:  # refused by its structure or format (seg.data.screen): the message says why
            print(f"skipped {path}: {error}", file=sys.stderr)
            failed += 1
            continue
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
            print(f"skipped {path}: not a readable image ({error})", file=sys.stderr)
            failed += 1
            continue
        labels = segment(model, image, input_size=working_size(image.shape[:2], card.get("input_size")),
                         logit_offsets=offsets)
        write_labels(args.out / f"{path.stem}{LABELS_SUFFIX}.png", labels)
        coloured = overlay(image, labels, card["palette"], alpha=args.alpha)
        Image.fromarray(coloured).save(args.out / f"{path.stem}_overlay.png")
    print(f"wrote {2 * (len(args.images) - failed)} files to {args.out}"
          + (f"; {failed} inputs skipped" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    run(main)
