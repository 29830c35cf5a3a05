"""Train a segmentation model from scratch, keeping the best checkpoint by validation mIoU.

    python -m seg.cli.train                        # U-Net on synthetic scenes, about 4 minutes on 2 CPU cores
    python -m seg.cli.train --model unet --data camvid --data-dir DIR --loss ce+dice --class-weights median
    python -m seg.cli.train --model fcn8s --data camvid --train-split train+val \
        --init-from weights/camvid/fcn8s.safetensors --lr 2e-4 --epochs 6 --average-last 3
                                                   # fine-tune a model on every labelled frame we hold
    python -m seg.cli.train --model fcn8s --data camvid --init-from weights/camvid/fcn8s.safetensors \
        --teacher weights/camvid/ensemble.json --distill-weight 0.5   # taught by the ensemble (seg.distill)
    torchrun --nproc_per_node 4 -m seg.cli.train --model deeplabv3 --data camvid ...   # several GPUs (DDP)

Every epoch it trains, evaluates on val at label resolution, and writes `last.pt` (everything
needed to --resume). When val mIoU improves it writes `model.safetensors` and its JSON card
`model.json` (architecture, classes, palette, input size, data, the command, val metrics, time).
With --average-last K it instead writes, at the end, the average of the last K epochs' weights with
BatchNorm statistics recomputed for them (stochastic weight averaging), the model a fixed budget ends with.
"""

import argparse
import json
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, update_bn
from torch.utils.data import DataLoader, DistributedSampler

from .. import system
from ..checkpoint import load_model, save_model
from ..data import DATASETS, build_dataset
from ..data.camvid import ENV_VAR
from ..data.transforms import eval_transform, train_transform
from ..distill import Distillation, load_teacher
from ..engine import evaluate, train_one_epoch
from ..labels import IGNORE_INDEX
from ..losses import LOSSES, WEIGHTINGS, build_loss, class_pixel_stats, class_weights
from ..metrics import BOUNDARY_TOLERANCE
from ..models import MODELS, build_model, count_parameters
from ..slim import slim_unet
from ..train_state import TrainState
from .common import choose_device, run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seg.cli.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=list(MODELS), default="unet", help="architecture (default: unet)")
    m.add_argument("--width-mult", type=float, default=0.5, help="channel width multiplier (default: 0.5)")
    m.add_argument("--model-args", type=json.loads, default={},
                   help='extra constructor arguments as JSON, e.g. \'{"output_stride": 8, "rates": [12, 24, 36]}\'')
    d = p.add_argument_group("data")
    d.add_argument("--data", choices=DATASETS, default="synthetic", help="dataset (default: synthetic)")
    d.add_argument("--data-dir", default=os.environ.get(ENV_VAR) or None,
                   help="CamVid folder in the SegNet layout (default: $SEG_CAMVID_DIR)")
    d.add_argument("--resize", type=int, nargs=2, metavar=("H", "W"),
                   help="train and run the model at this size (e.g. 180 240 on a CPU); scores stay at label size")
    d.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), help="random crop size (default: the image size)")
    d.add_argument("--scale", type=float, nargs=2, default=(0.75, 1.5), metavar=("MIN", "MAX"),
                   help="random scale range (default: 0.75 1.5)")
    d.add_argument("--jitter", type=float, default=0.3, help="colour jitter strength, 0 for none (default: 0.3)")
    d.add_argument("--focus-classes", nargs="+", default=[], metavar="CLASS",
                   help="class-uniform crops: a share of the crop windows is placed around a pixel of one of these "
                        "classes, drawn uniformly among those in the image (e.g. Pole SignSymbol Pedestrian); a "
                        "window chooses only where the scaled image is larger than the crop")
    d.add_argument("--focus-share", type=float, default=0.5,
                   help="with --focus-classes: the share of the windows placed so, 0 to 1 (default: 0.5)")
    d.add_argument("--train-split", default="train",
                   help="CamVid split(s) to train on, e.g. train+val for a final model (default: train)")
    d.add_argument("--holdout-sequence", metavar="SEQ",
                   help="CamVid: validate on the train split's frames of this video sequence (e.g. 0006R0) and "
                        "train on the others, instead of the val split, whose sequence 0016E5 is also in train")
    d.add_argument("--limit-train", type=int, help="use only the first N training images")
    d.add_argument("--limit-val", type=int, help="use only the first N validation images")
    d.add_argument("--synthetic-images", type=int, default=256, help="synthetic training scenes (val: a quarter)")
    d.add_argument("--image-size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"),
                   help="synthetic scene size (default: 128 128)")
    d.add_argument("--object-size", type=float, default=0.2,
                   help="synthetic object radius as a fraction of the shorter side (default: 0.2)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--loss", choices=LOSSES, default="ce", help="loss (default: ce)")
    o.add_argument("--class-weights", choices=WEIGHTINGS, default="none",
                   help="cross-entropy class weights from the training set's pixel counts (default: none)")
    o.add_argument("--epochs", type=int, default=10, help="epochs (default: 10)")
    o.add_argument("--batch-size", type=int, default=8, help="images per step, per process (default: 8)")
    o.add_argument("--lr", type=float, default=2e-3, help="peak AdamW learning rate (default: 2e-3)")
    o.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay (default: 1e-4)")
    o.add_argument("--warmup-steps", type=int, default=50, help="linear warm-up steps (default: 50)")
    o.add_argument("--init-from", type=Path, metavar="WEIGHTS",
                   help="start from these weights (a .safetensors with its card, same architecture): fine-tuning; "
                        "a wider U-Net is cut to --width-mult, keeping its strongest channels (seg.slim)")
    o.add_argument("--teacher", type=Path, metavar="CARD",
                   help="distil from this model or ensemble card (seg.distill): its probabilities on each batch join "
                        "the labels in the loss")
    o.add_argument("--distill-weight", type=float, default=0.5,
                   help="with --teacher: the teacher's share of the loss, 0 to 1 (default: 0.5)")
    o.add_argument("--distill-temperature", type=float, default=1.0,
                   help="with --teacher: the softening temperature, above 0 (default: 1)")
    o.add_argument("--average-last", type=int, default=0, metavar="K",
                   help="save the average of the last K epochs' weights, BatchNorm recomputed, instead of the "
                        "best epoch (default: 0, off)")
    r = p.add_argument_group("run")
    r.add_argument("--out", type=Path, default=None, help="output folder (default: runs/<model>)")
    r.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    r.add_argument("--seed", type=int, default=0, help="seed for weights, sampling and augmentation")
    r.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    r.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    r.add_argument("--workers", type=int, default=2, help="data-loading processes (default: 2)")
    r.add_argument("--fp16-weights", action="store_true", help="store the best weights as float16")
    r.add_argument("--boundary-tolerance", type=int, default=BOUNDARY_TOLERANCE,
                   help=f"boundary F-score tolerance in pixels (default: {BOUNDARY_TOLERANCE})")
    r.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "synthetic_images"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("limit_train", "limit_val"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.lr <= 0:
        p.error("--lr must be positive")
    if not isinstance(args.model_args, dict):
        p.error('--model-args must be a JSON object, e.g. \'{"output_stride": 8}\'')
    if args.holdout_sequence and args.data != "camvid":
        p.error("--holdout-sequence applies to --data camvid")
    if args.train_split != "train" and args.data != "camvid":
        p.error("--train-split applies to --data camvid")
    if not 0 <= args.average_last <= args.epochs:
        p.error(f"--average-last must be between 0 and --epochs ({args.epochs})")
    if not 0 <= args.distill_weight <= 1 or args.distill_temperature <= 0:
        p.error("--distill-weight must be between 0 and 1 and --distill-temperature above 0")
    if not 0 <= args.focus_share <= 1:
        p.error("--focus-share is a share of the crops, 0 to 1")
    if args.loss == "dice" and args.class_weights != "none":
        p.error("--class-weights applies to cross-entropy: use --loss ce or ce+dice")
    args.out = args.out or Path("runs") / args.model
    # what the card records; SegFormer-B0 has its published, fixed widths
    width = {} if args.model == "segformer_b0" else {"width_mult": args.width_mult}
    args.model_arguments = {**width, **args.model_args}
    return args


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_lr(step: int, *, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up to `peak`, then polynomial decay (power 0.9) to zero at `total` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (1 - progress) ** 0.9


def load_start(model: torch.nn.Module, path: Path, *, name: str, arguments: dict, classes: list[str]) -> float | None:
    """Copy the weights at `path` into `model`, after checking that its card describes the same network,
    or a wider U-Net, which is slimmed to `model`'s width first (seg.slim); the wider width, or None."""
    start, card = load_model(path)
    theirs = (card["architecture"]["name"], card["architecture"].get("arguments", {}), card["classes"])
    wider = theirs[1].get("width_mult", 1.0)
    if name == "unet" == theirs[0] and theirs[2] == classes and wider > arguments.get("width_mult", 1.0) and \
            {**theirs[1], "width_mult": None} == {**arguments, "width_mult": None}:
        model.load_state_dict(slim_unet(start, arguments.get("width_mult", 1.0)).state_dict())
        return wider
    if theirs != (name, arguments, classes):
        raise ValueError(f"--init-from {path} holds {theirs[0]} {theirs[1]} for classes {theirs[2]}, not "
                         f"{name} {arguments} for {classes}: give the same --model, --width-mult and data")
    model.load_state_dict(start.state_dict())
    return None


def setup_distributed(device: torch.device, world_size: int) -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun with several processes."""
    if world_size > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")  # gloo: CPU runs and tests
        return dist.get_rank(), world_size
    return 0, 1


def run_command(argv: list[str] | None, world: int) -> str:
    argv = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--resume"]  # the run it continues
    launcher = f"torchrun --nproc_per_node {world} -m seg.cli.train" if world > 1 else "python -m seg.cli.train"
    return " ".join([launcher] + [shlex.quote(a) for a in argv])


def model_card(args: argparse.Namespace, argv: list[str] | None, *, model: torch.nn.Module, classes: list[str],
               palette: list[list[int]], input_size: tuple[int, int], scores, epoch: int, elapsed: float,
               world_size: int, device: torch.device, train_images: int, val_images: int,
               weights: torch.Tensor | None, slimmed: float | None = None) -> dict:
    """Everything a reader needs to rebuild, reproduce and judge the checkpoint."""
    validation = (f"sequence {args.holdout_sequence}, held out of the {args.train_split} split" if args.holdout_sequence
                  else "the val split" + (", also trained on" if "val" in args.train_split.split("+") else ""))
    data = {"dataset": args.data, "train_split": args.train_split, "holdout_sequence": args.holdout_sequence,
            "train_images": train_images, "val_images": val_images, "validation": validation}
    if args.data == "synthetic":  # the scenes are defined by these, not by a folder
        data.update(synthetic_images=args.synthetic_images, image_size=list(args.image_size),
                    object_size=args.object_size)
    return {
        "architecture": {"name": args.model, "arguments": args.model_arguments},
        "classes": classes, "palette": palette, "ignore_index": IGNORE_INDEX,
        "input_size": list(input_size),  # what it was trained at: the app and seg.cli.evaluate run it there
        "parameters": count_parameters(model),
        "data": data,
        "training": {"command": run_command(argv, world_size), "epoch": epoch, "epochs": args.epochs, "seed": args.seed,
                     "loss": args.loss, "class_weights": args.class_weights,
                     "class_weight_values": None if weights is None else [round(w, 6) for w in weights.tolist()],
                     "init_from": args.init_from and str(args.init_from), "slimmed_from_width": slimmed,
                     "distillation": args.teacher and {"teacher": str(args.teacher), "weight": args.distill_weight,
                                                       "temperature": args.distill_temperature},
                     "focus_crops": args.focus_classes and {"classes": args.focus_classes, "share": args.focus_share},
                     "averaged_epochs": args.average_last or None, "hardware": system.describe(device),
                     "processes": world_size, "time_s": round(elapsed, 1)},
        "val_metrics": scores.to_dict(classes),
    }


class Data(NamedTuple):
    train: DataLoader
    val: DataLoader
    sampler: DistributedSampler | None
    size: tuple[int, int]  # the training size (height, width)
    classes: list[str]
    palette: list[list[int]]


def make_data(args: argparse.Namespace, *, rank: int, world_size: int, device: torch.device) -> Data:
    """The loaders: the training split (sharded over the processes, augmented) and the validation frames
    (the val split, or a sequence held out of train), at the size the model trains at."""
    options = dict(root=args.data_dir, synthetic_images=args.synthetic_images, image_size=tuple(args.image_size),
                   object_size=args.object_size)
    held_out = (args.holdout_sequence,) if args.holdout_sequence else ()
    train_set = build_dataset(args.data, args.train_split, limit=args.limit_train, exclude=held_out, **options)
    val_split, val_only = ("train", held_out) if held_out else ("val", None)
    val_set = build_dataset(args.data, val_split, limit=args.limit_val, sequences=val_only,
                            transform=eval_transform(resize=args.resize), **options)
    height, width = args.resize or train_set.read(0)[1].shape  # CamVid's images are all one size
    classes = list(train_set.classes)
    unknown = [name for name in args.focus_classes if name not in classes]
    if unknown:
        raise SystemExit(f"--focus-classes: {', '.join(unknown)} not among {args.data}'s classes "
                         f"({', '.join(classes)})")
    train_set.transform = train_transform(crop_size=tuple(args.crop or (height, width)), scale_range=tuple(args.scale),
                                          resize=args.resize, jitter=args.jitter, focus_share=args.focus_share,
                                          focus=tuple(classes.index(name) for name in args.focus_classes))
    sampler = DistributedSampler(train_set, seed=args.seed) if world_size > 1 else None
    train = DataLoader(train_set, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler,
                       num_workers=args.workers, drop_last=len(train_set) >= args.batch_size,
                       pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(args.seed + rank),
                       persistent_workers=args.workers > 0)
    val = DataLoader(val_set, batch_size=args.batch_size, num_workers=args.workers)
    return Data(train, val, sampler, (height, width), classes, [list(c) for c in train_set.palette])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # set by torchrun; a plain run is process 0 of 1
    local_rank, world_size = int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    device = choose_device(args.device, index=local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # before the process group, so NCCL binds each process to its GPU
    rank, world_size = setup_distributed(device, world_size)
    is_main = rank == 0
    log = print if is_main else (lambda *a, **k: None)
    seed_everything(args.seed + rank)  # different augmentations per process, same initial weights below
    data = make_data(args, rank=rank, world_size=world_size, device=device)
    classes, num_classes = data.classes, len(data.classes)

    weights = None
    if args.class_weights != "none":
        stats = class_pixel_stats(data.train.dataset.masks(), num_classes, ignore_index=IGNORE_INDEX)
        weights = class_weights(stats, args.class_weights)
        log("class weights:", ", ".join(f"{c}={w:.2f}" for c, w in zip(classes, weights.tolist())))
    loss_fn = build_loss(args.loss, class_weights=weights)
    teacher = None
    if args.teacher:
        teacher, _ = load_teacher(args.teacher, classes=classes, device=device)
        loss_fn = Distillation(loss_fn, weight=args.distill_weight, temperature=args.distill_temperature)
        log(f"teacher: {args.teacher} (weight {args.distill_weight}, temperature {args.distill_temperature})")

    torch.manual_seed(args.seed)  # identical initial weights on every process
    net = build_model(args.model, num_classes=num_classes, **args.model_arguments).to(device)  # evaluated, saved
    slimmed = None  # the width of the U-Net it was cut from, if it was
    if args.init_from:
        slimmed = load_start(net, args.init_from, name=args.model, arguments=args.model_arguments, classes=classes)
        if slimmed:
            log(f"started from {args.init_from} (width {slimmed}), cut to width {args.model_arguments['width_mult']}")
    if world_size > 1 and device.type == "cuda":
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)  # BN statistics over the whole batch
    model = net if world_size == 1 else \
        DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    use_amp = device.type == "cuda" and not args.no_amp
    amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if use_amp else None
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    total_steps = args.epochs * len(data.train)
    lr_at = lambda step: get_lr(step, peak=args.lr, warmup=args.warmup_steps, total=total_steps)  # noqa: E731
    averaged = AveragedModel(net) if args.average_last else None  # a running mean of the last epochs' weights
    parts = {"model": net, "optimizer": optimizer, "scaler": scaler, "averaged": averaged}
    last = args.out / "last.pt"
    state = TrainState(args.model, args.model_arguments)
    if args.resume:
        state = TrainState.load(last, name=args.model, arguments=args.model_arguments, device=device, **parts)
        log(f"resumed from {last} at epoch {state.epoch}, best val mIoU {state.best_miou:.4f}")

    def card(weights_of: torch.nn.Module, scores, epoch: int) -> dict:
        return model_card(args, argv, model=weights_of, classes=classes, palette=data.palette, input_size=data.size,
                          scores=scores, epoch=epoch, elapsed=state.elapsed_s, world_size=world_size, device=device,
                          train_images=len(data.train.dataset), val_images=len(data.val.dataset), weights=weights,
                          slimmed=slimmed)

    def validate(weights_of: torch.nn.Module):
        return evaluate(weights_of, data.val, num_classes=num_classes, boundary_tolerance=args.boundary_tolerance,
                        amp_dtype=amp_dtype, progress=progress)

    log(f"{args.model}: {count_parameters(net) / 1e6:.2f}M parameters on {system.describe(device)}"
        f"{f' x {world_size} processes' if world_size > 1 else ''}")
    validation = f"sequence {args.holdout_sequence} held out" if args.holdout_sequence else "val split"
    log(f"data: {args.data}, {len(data.train.dataset)} train / {len(data.val.dataset)} val images ({validation}) at "
        f"{data.size[0]}x{data.size[1]}, {len(data.train)} steps per epoch, {total_steps} in all")
    progress = is_main and not args.no_progress
    for epoch in range(state.epoch, args.epochs):
        started = time.time()
        if data.sampler is not None:
            data.sampler.set_epoch(epoch)
        loss, state.step = train_one_epoch(model, data.train, loss_fn=loss_fn, optimizer=optimizer, lr_at=lr_at,
                                           step=state.step, scaler=scaler, amp_dtype=amp_dtype, progress=progress,
                                           desc=f"epoch {epoch + 1}/{args.epochs}", teacher=teacher)
        if averaged is not None and epoch >= args.epochs - args.average_last:
            averaged.update_parameters(net)
        if is_main:
            scores = validate(net)
            state.epoch, state.elapsed_s = epoch + 1, state.elapsed_s + time.time() - started
            state.history.append({"epoch": epoch + 1, "train_loss": round(loss, 5), "val_miou": round(scores.miou, 5)})
            improved = scores.miou > state.best_miou
            log(f"epoch {epoch + 1}: loss {loss:.4f}  val mIoU {scores.miou:.4f}  pixel acc "
                f"{scores.pixel_accuracy:.4f}  boundary F {scores.mean_boundary_f:.4f}  "
                f"({time.time() - started:.0f}s){'  *best*' if improved else ''}")
            if improved:
                state.best_miou = scores.miou
                if averaged is None:
                    save_model(net, args.out / "model.safetensors", card=card(net, scores, epoch + 1),
                               half=args.fp16_weights)
            state.save(last, **parts)
            (args.out / "history.json").write_text(json.dumps(state.history, indent=2) + "\n")
        if world_size > 1:
            dist.barrier()
    if averaged is not None and is_main:
        started = time.time()
        update_bn(data.train, averaged.module, device=device)  # BatchNorm statistics of the averaged weights
        scores = validate(averaged.module)
        state.elapsed_s += time.time() - started
        save_model(averaged.module, args.out / "model.safetensors", card=card(averaged.module, scores, args.epochs),
                   half=args.fp16_weights)
        log(f"average of the last {args.average_last} epochs: val mIoU {scores.miou:.4f}  pixel acc "
            f"{scores.pixel_accuracy:.4f}  boundary F {scores.mean_boundary_f:.4f}")
    log(f"best epoch's val mIoU {state.best_miou:.4f}; weights in {args.out / 'model.safetensors'}"
        + (f" (the average of the last {args.average_last} epochs)" if averaged is not None else ""))
    if world_size > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    run(main)
