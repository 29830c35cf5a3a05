"""Score a checkpoint on a dataset split, or a folder of predicted label PNGs against ground truth.

    python -m seg.cli.evaluate --checkpoint runs/unet/model.safetensors --data-dir DIR --split val [--json out.json]
    python -m seg.cli.evaluate --pred-dir PRED --gt-dir GT    # PRED as seg.cli.predict writes it (else --num-classes N)

A card's logit adjustment (`seg.prior`) is applied unless --no-prior; --flip adds mirror-image
test-time augmentation. Prints a per-class table (IoU, Dice, accuracy, boundary F) and the summary. Scores are always at
the ground truth's resolution; classes absent from both sides show as "-" and stay out of the means.
"""

import argparse
import json
import os
from pathlib import Path

from torch.utils.data import DataLoader
from tqdm import tqdm

from ..checkpoint import load_model, saw_frames
from ..data import DATASETS, build_dataset
from ..data.camvid import ENV_VAR
from ..data.io import read_labels
from ..data.transforms import eval_transform
from ..engine import evaluate
from ..labels import IGNORE_INDEX, LABELS_SUFFIX, PREDICTIONS_CARD
from ..metrics import BOUNDARY_TOLERANCE, SegmentationMetrics, SegmentationScores
from ..prior import CARD_KEY, card_offsets
from .common import choose_device, run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seg.cli.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    c = p.add_argument_group("a checkpoint on a dataset")
    c.add_argument("--checkpoint", type=Path,
                   help="model .safetensors with its .json card beside it, or a SegFormer folder we trained")
    c.add_argument("--data", choices=DATASETS, help="dataset (default: the one in the card)")
    c.add_argument("--data-dir", default=os.environ.get(ENV_VAR) or None,
                   help="CamVid folder (default: $SEG_CAMVID_DIR)")
    c.add_argument("--split", default="val", help="split to score (default: val)")
    c.add_argument("--sequence", metavar="SEQ",
                   help="CamVid: score only this video sequence's frames of the split (e.g. --split train "
                        "--sequence 0006R0, the sequence a --holdout-sequence run never trained on)")
    c.add_argument("--limit", type=int, help="score only the first N images")
    c.add_argument("--batch-size", type=int, default=4)
    c.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    c.add_argument("--no-prior", action="store_true",
                   help="ignore the card's logit adjustment (seg.prior): the model's raw argmax")
    c.add_argument("--tau", type=float, help="logit adjustment strength instead of the card's (seg.prior)")
    c.add_argument("--flip", action="store_true",
                   help="test-time augmentation: average each image's logits with its mirror image's")
    f = p.add_argument_group("a folder of predictions")
    f.add_argument("--pred-dir", type=Path,
                   help="predicted label-id PNGs, named as the ground truth's or as seg.cli.predict names them "
                        f"(x.png or x{LABELS_SUFFIX}.png); seg.cli.predict's {PREDICTIONS_CARD} there gives the "
                        "classes, their names and the ignored label")
    f.add_argument("--gt-dir", type=Path, help="ground-truth label-id PNGs")
    f.add_argument("--num-classes", type=int, help=f"number of classes (default: from {PREDICTIONS_CARD})")
    f.add_argument("--ignore-index", type=int,
                   help=f"ground-truth label to ignore (default: {PREDICTIONS_CARD}'s, else {IGNORE_INDEX}; "
                        "CamVid's raw void is 11)")
    f.add_argument("--class-names", nargs="+", help=f"names for the table (default: {PREDICTIONS_CARD}'s, else ids)")
    p.add_argument("--boundary-tolerance", type=int, default=BOUNDARY_TOLERANCE,
                   help=f"boundary F-score tolerance in pixels (default: {BOUNDARY_TOLERANCE})")
    p.add_argument("--json", type=Path, help="also write the scores to this JSON file")
    args = p.parse_args(argv)
    if (args.checkpoint is None) == (args.pred_dir is None):
        p.error("give either --checkpoint (score a model) or --pred-dir with --gt-dir")
    if args.pred_dir is not None:
        if args.gt_dir is None:
            p.error("--pred-dir needs --gt-dir")
        described = read_predictions_card(args.pred_dir)
        args.num_classes = args.num_classes or len(described.get("classes", [])) or None
        if args.num_classes is None:
            p.error(f"--pred-dir needs --num-classes: {args.pred_dir} has no {PREDICTIONS_CARD} "
                    "(seg.cli.predict writes it)")
        if args.class_names is None and len(described.get("classes", [])) == args.num_classes:
            args.class_names = described["classes"]
        if args.ignore_index is None:
            args.ignore_index = described.get("ground_truth_ignore", IGNORE_INDEX)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.num_classes is not None and args.num_classes < 1:
        p.error("--num-classes must be at least 1")
    return args


def format_table(scores: SegmentationScores, class_names: list[str]) -> str:
    """The per-class table and the summary lines, as printed."""
    def cell(x: float | None) -> str:
        return "     -" if x is None else f"{100 * x:6.2f}"

    table = scores.to_dict(class_names)
    width = max(10, *(len(n) for n in class_names))
    lines = [f"{'class':<{width}}    IoU   Dice    Acc  BndF"]
    for name, row in table["per_class"].items():
        lines.append(f"{name:<{width}} {cell(row['iou'])} {cell(row['dice'])} {cell(row['accuracy'])}"
                     f" {cell(row['boundary_f'])}")
    lines.append(f"mIoU {cell(table['miou'])}  mean Dice {cell(table['mean_dice'])}  pixel acc "
                 f"{cell(table['pixel_accuracy'])}  mean class acc {cell(table['mean_class_accuracy'])}  "
                 f"fwIoU {cell(table['fwiou'])}  boundary F {cell(table['mean_boundary_f'])}")
    return "\n".join(lines)


def read_predictions_card(pred_dir: Path) -> dict:
    """seg.cli.predict's description of the folder's classes, or {} where there is none."""
    path = pred_dir / PREDICTIONS_CARD
    if not path.is_file():
        return {}
    try:
        described = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not seg.cli.predict's JSON ({error}): remove it, or give --num-classes") from None
    return described if isinstance(described, dict) else {}


def prediction_for(gt_path: Path, pred_dir: Path) -> Path | None:
    """The prediction of the ground truth `x.png`: `x.png`, or `x_labels.png` as seg.cli.predict names it."""
    for name in (gt_path.name, f"{gt_path.stem}{LABELS_SUFFIX}.png"):
        if (pred_dir / name).is_file():
            return pred_dir / name
    return None


def score_folders(pred_dir: Path, gt_dir: Path, *, num_classes: int, ignore_index: int,
                  boundary_tolerance: int) -> tuple[SegmentationScores, int]:
    """Score every ground-truth PNG against its prediction (`prediction_for`); (scores, image count)."""
    gt_files = sorted(gt_dir.glob("*.png"))
    if not gt_files:
        raise FileNotFoundError(f"{gt_dir} holds no PNG label maps")
    predictions = {p: prediction_for(p, pred_dir) for p in gt_files}
    missing = [p.name for p, found in predictions.items() if found is None]
    if missing:
        raise FileNotFoundError(f"{len(missing)} ground-truth files have no prediction in {pred_dir}, "
                                f"e.g. {missing[0]}: name it {missing[0]} or "
                                f"{Path(missing[0]).stem}{LABELS_SUFFIX}.png")
    metrics = SegmentationMetrics(num_classes, ignore_index=ignore_index, boundary_tolerance=boundary_tolerance)
    for gt_path in tqdm(gt_files, desc="scoring", leave=False):
        pred, gt = read_labels(predictions[gt_path]), read_labels(gt_path)
        if pred.shape != gt.shape:
            raise ValueError(f"{gt_path.name}: prediction is {pred.shape}, ground truth {gt.shape}: "
                             "predictions must be at the ground truth's size")
        metrics.update(pred=pred, target=gt)
    return metrics.compute(), len(gt_files)


def chosen_offsets(card: dict, *, no_prior: bool, tau: float | None) -> tuple:
    """(logit offsets or None, a few words saying which) for the card and the command line's choice."""
    entry = card.get(CARD_KEY)
    if no_prior:
        return None, "no logit adjustment" if entry else ""
    offsets = card_offsets(card, tau=tau)
    return offsets, "" if offsets is None else f"logit adjustment tau {entry['tau'] if tau is None else tau:g}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.checkpoint is not None:
        device = choose_device(args.device)
        model, card = load_model(args.checkpoint, device=device)
        class_names = card["classes"]
        data = args.data or card.get("data", {}).get("dataset", "camvid")
        options = {k: card["data"][k] for k in ("synthetic_images", "image_size", "object_size")
                   if data == "synthetic" and k in card.get("data", {})}
        sequences = (args.sequence,) if args.sequence else None
        dataset = build_dataset(data, args.split, root=args.data_dir, limit=args.limit, sequences=sequences,
                                transform=eval_transform(resize=card.get("input_size")), **options)
        loader = DataLoader(dataset, batch_size=args.batch_size)
        offsets, prior = chosen_offsets(card, no_prior=args.no_prior, tau=args.tau)
        scores = evaluate(model, loader, num_classes=len(class_names), boundary_tolerance=args.boundary_tolerance,
                          logit_offsets=offsets, flip=args.flip)
        where = f" (sequence {args.sequence})" if args.sequence else ""
        how = ", ".join(x for x in (prior, "flip TTA" if args.flip else "") if x)
        source, count = f"{args.checkpoint} on {data} {args.split}{where}{f' ({how})' if how else ''}", len(dataset)
        seen = saw_frames(card, args.split, args.sequence)
        if seen:
            print(f"note: this model was trained on the {args.split} frames scored here, so the score is not "
                  "a held-out one: score it on a split or --sequence its card says it never saw")
    else:
        seen = None
        scores, count = score_folders(args.pred_dir, args.gt_dir, num_classes=args.num_classes,
                                      ignore_index=args.ignore_index, boundary_tolerance=args.boundary_tolerance)
        class_names = args.class_names or [str(i) for i in range(args.num_classes)]
        if len(class_names) != args.num_classes:
            raise ValueError(f"--class-names gives {len(class_names)} names for {args.num_classes} classes")
        source = f"{args.pred_dir} against {args.gt_dir}"
    print(f"{source}: {count} images")
    print(format_table(scores, class_names))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {"source": source, "images": count, "boundary_tolerance": args.boundary_tolerance,
                  "trained_on_these_frames": seen,
                  **scores.to_dict(class_names)}
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run(main)
