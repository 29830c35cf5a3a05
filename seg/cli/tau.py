"""Choose the logit adjustment's tau on frames no model saw, and write it into model cards.

    python -m seg.cli.tau sweep --checkpoint runs/a/model.safetensors runs/b/model.safetensors \
        --data-dir DIR --split train --sequence 0006R0 --json tau.json
    python -m seg.cli.tau set --checkpoint weights/camvid/unet.safetensors --tau 0.5 \
        --class-weights-from DIR --chosen-on "0006R0, protocol models runs/a, runs/b"

`sweep` scores each model once per tau from one pass of its logits, and prints the tau best on
average; `set` stores tau with the class weights the model was trained with (see `seg.prior`).
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from ..checkpoint import card_path, load_model, read_card
from ..data import build_dataset
from ..data.camvid import ENV_VAR
from ..data.transforms import eval_transform
from ..engine import tau_sweep
from ..labels import IGNORE_INDEX
from ..losses import class_pixel_stats, class_weights
from ..prior import CARD_KEY
from .common import choose_device, run

DEFAULT_TAUS = tuple(round(0.1 * i, 1) for i in range(16))  # 0.0 to 1.5


def training_weights(data_dir: str | os.PathLike | None, method: str, *, num_classes: int,
                     exclude: tuple[str, ...] = ()) -> list[float]:
    """The class weights a model was trained with, recomputed from CamVid's train split (the weights
    depend only on its label maps)."""
    masks = build_dataset("camvid", "train", root=data_dir, exclude=exclude).masks()
    stats = class_pixel_stats(masks, num_classes, ignore_index=IGNORE_INDEX)
    return [round(float(w), 6) for w in class_weights(stats, method)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seg.cli.tau", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sweep", help="mIoU of each checkpoint for each tau, and the tau best on average")
    s.add_argument("--checkpoint", type=Path, nargs="+", required=True,
                   help="models trained with class weights, none of which saw the frames scored")
    s.add_argument("--data-dir", default=os.environ.get(ENV_VAR) or None, help="CamVid folder")
    s.add_argument("--split", default="train")
    s.add_argument("--sequence", help="score only this sequence's frames (e.g. 0006R0)")
    s.add_argument("--taus", type=float, nargs="+", default=DEFAULT_TAUS)
    s.add_argument("--device", default=None)
    s.add_argument("--json", type=Path, help="also write the table here")
    t = sub.add_parser("set", help="write tau and the training class weights into a model card")
    t.add_argument("--checkpoint", type=Path, nargs="+", required=True)
    t.add_argument("--tau", type=float, required=True)
    t.add_argument("--class-weights-from", default=os.environ.get(ENV_VAR) or None, metavar="DATA_DIR",
                   help="CamVid folder whose train split the models were trained on (their weights are recomputed)")
    t.add_argument("--chosen-on", required=True, help="where tau was chosen, for the card")
    args = p.parse_args(argv)
    if args.command == "set" and args.tau < 0:
        p.error("--tau must be 0 or more")
    return args


def weights_of(card: dict, data_dir, *, holdout: str | None = None) -> list[float]:
    training = card.get("training", {})
    if training.get("class_weight_values"):
        return training["class_weight_values"]
    method = training.get("class_weights", "none")
    if method == "none":
        raise ValueError("the card says the model was trained without class weights: there is no prior to undo")
    return training_weights(data_dir, method, num_classes=len(card["classes"]),
                            exclude=(holdout,) if holdout else ())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "set":
        for path in args.checkpoint:
            card = read_card(path)
            weights = weights_of(card, args.class_weights_from)
            card[CARD_KEY] = {"tau": args.tau, "class_weights": weights, "chosen_on": args.chosen_on}
            card_path(path).write_text(json.dumps(card, indent=2) + "\n")
            print(f"{card_path(path)}: tau {args.tau}")
        return 0
    device = choose_device(args.device)
    table = {}
    for path in args.checkpoint:
        model, card = load_model(path, device=device)
        holdout = card.get("data", {}).get("holdout_sequence")  # its class weights were counted without it
        weights = weights_of(card, args.data_dir, holdout=holdout)
        dataset = build_dataset("camvid", args.split, root=args.data_dir,
                                sequences=(args.sequence,) if args.sequence else None,
                                transform=eval_transform(resize=card.get("input_size")))
        scores = tau_sweep(model, DataLoader(dataset, batch_size=4), weights=weights, taus=args.taus,
                       num_classes=len(card["classes"]))
        table[str(path)] = scores
        print(path, "  ".join(f"{tau:.1f}:{100 * m:.2f}" for tau, m in scores.items()))
    mean = {tau: float(np.mean([row[tau] for row in table.values()])) for tau in args.taus}
    best = max(mean, key=mean.get)
    print("mean", "  ".join(f"{tau:.1f}:{100 * m:.2f}" for tau, m in mean.items()))
    print(f"best tau {best} (mean mIoU {100 * mean[best]:.2f}; tau 0: {100 * mean.get(0.0, float('nan')):.2f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"split": args.split, "sequence": args.sequence, "best_tau": best,
                                         "mean": mean, "models": table}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run(main)
