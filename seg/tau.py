"""Choose the logit adjustment's tau on frames no model saw, and write it into model cards.

    python -m seg.tau sweep --checkpoint runs/a/model.safetensors runs/b/model.safetensors \
        --data-dir DIR --split train --sequence 0006R0 --json tau.json
    python -m seg.tau set --checkpoint weights/camvid/unet.safetensors --tau 0.5 \
        --class-weights-from DIR --chosen-on "0006R0, protocol models runs/a, runs/b"

`sweep` scores each model once per tau from one pass of its logits, and prints the tau best on
average; `set` stores tau with the class weights the model was trained with (see `seg.prior`).
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from .checkpoint import card_path, load_model, read_card
from .cli import choose_device, run
from .data import build_dataset
from .data.camvid import ENV_VAR
from .data.transforms import eval_transform
from .inference import upsample_logits
from .labels import IGNORE_INDEX
from .losses import class_pixel_stats, class_weights
from .metrics import SegmentationMetrics
from .prior import CARD_KEY, adjust, prior_offsets

DEFAULT_TAUS = tuple(round(0.1 * i, 1) for i in range(16))  # 0.0 to 1.5


def training_weights(data_dir: str | os.PathLike | None, method: str, *, num_classes: int,
                     exclude: tuple[str, ...] = ()) -> list[float]:
    """The class weights a model was trained with, recomputed from CamVid's train split (the weights
    depend only on its label maps)."""
    masks = build_dataset("camvid", "train", root=data_dir, exclude=exclude).masks()
    stats = class_pixel_stats(masks, num_classes, ignore_index=IGNORE_INDEX)
    return [round(float(w), 6) for w in class_weights(stats, method)]


@torch.inference_mode()
def sweep(model: nn.Module, loader: DataLoader, *, weights, taus, num_classes: int,
          progress: bool = True) -> dict[float, float]:
    """mIoU for each tau, from one pass of the model over `loader` (logits computed once per batch)."""
    device = next(model.parameters()).device
    model.eval()
    metrics = {tau: SegmentationMetrics(num_classes, boundary_tolerance=None) for tau in taus}
    offsets = {tau: prior_offsets(weights, tau) for tau in taus}
    for images, masks in tqdm(loader, desc="sweep", disable=not progress, leave=False):
        logits = upsample_logits(model(images.to(device)).float(), masks.shape[-2:])
        masks = masks.to(device)
        for tau in taus:
            metrics[tau].update(pred=adjust(logits, offsets[tau]).argmax(1), target=masks)
    return {tau: metrics[tau].compute().miou for tau in taus}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seg.tau", description=__doc__,
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
        scores = sweep(model, DataLoader(dataset, batch_size=4), weights=weights, taus=args.taus,
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
