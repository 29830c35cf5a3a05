"""Copy the trained runs into weights/ (the layout seg.explorer.zoo reads), with their cards.

    python recipes/ship.py [--runs runs] [--weights weights] [--data-note TEXT]
    python recipes/ship.py --fine-tuned            # runs/ft-<model> (recipes/camvid_prior.sh ship)
    python recipes/ship.py --fine-tuned d          # runs/d-<model>, a student (recipes/camvid_distill.sh ship)
    python recipes/ship.py --run q-unet-e48 --as unet_quarter   # one run as a model of its own

A run shipped with --as becomes weights/camvid/<KEY>.safetensors (SegFormer-B0: the folder); where it was
tuned from a run or a shipped model (its --init-from), its card keeps that one's record under
"fine_tuned_from".

A fine-tuned run replaces the weights it started from (its --init-from); its card keeps that
model's training record, data and val metrics under "fine_tuned_from", since the file they
describe is overwritten.

CNNs keep the float16 safetensors that training wrote (--fp16-weights); SegFormer-B0 becomes a
transformers `save_pretrained` folder with its card as model.json, in float32 (15 MB): transformers
5 loads a folder in its stored dtype, and a float16 folder would hand `from_pretrained` users a
half-precision model on the CPU.
"""

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seg.checkpoint import load_model  # noqa: E402
from seg.explorer.zoo import TITLES  # noqa: E402
from seg.models.segformer import save_pretrained_folder  # noqa: E402

CAMVID = ("fcn32s", "fcn8s", "unet", "deeplabv3")
SYNTHETIC = ("fcn32s", "fcn8s", "unet")


def shipped_card(run: Path, card: dict, data_note: str | None) -> dict:
    """The run's card, plus how many epochs really ran (a run stopped by a time limit ran fewer than
    its --epochs) and, where given, how the data travelled."""
    card = copy.deepcopy(card)
    history = json.loads((run / "history.json").read_text()) if (run / "history.json").is_file() else None
    if history:
        card["training"]["epochs_completed"] = history[-1]["epoch"]
    if data_note:
        card["data"]["note"] = data_note
    return card


def copy_run(run: Path, target: Path, data_note: str | None, *, extra: dict | None = None) -> None:
    """The run's weights and card to `target`, the card with `extra` fields added."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run / "model.safetensors", target)
    card = {**shipped_card(run, json.loads((run / "model.json").read_text()), data_note), **(extra or {})}
    target.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"{run} -> {target} ({target.stat().st_size / 1e6:.1f} MB)")


def record(card: dict) -> dict:
    """What a tuned model's card keeps of the model it started from: how it was trained, on what, its
    val metrics and prior, and its own start's record."""
    return {k: card[k] for k in ("training", "data", "val_metrics", "fine_tuned_from", "logit_adjustment")
            if k in card}


def ship_fine_tuned(run: Path, target: Path) -> None:
    """Replace `target` by the fine-tuned `run`, keeping the replaced model's record in the card: `ship_as`
    for a run that started from `target` itself."""
    card = json.loads((run / "model.json").read_text())
    if Path(card["training"].get("init_from") or "").resolve() != target.resolve():
        raise SystemExit(f"{run} was fine-tuned from {card['training'].get('init_from')}, not {target}")
    ship_as(run, target)


def card_file(weights: Path) -> Path:
    """The card beside a weights file, or in SegFormer's folder."""
    return weights / "model.json" if weights.is_dir() else weights.with_suffix(".json")


def write_segformer(run: Path, folder: Path, card: dict) -> None:
    """A SegFormer run as a transformers `save_pretrained` folder, in float32, with `card` as model.json."""
    model, trained = load_model(run / "model.safetensors")
    shutil.rmtree(folder, ignore_errors=True)
    save_pretrained_folder(model.float(), folder, classes=trained["classes"], input_size=tuple(trained["input_size"]))
    card = {**card, "weights": "model.safetensors", "weights_dtype": "float32",
            "format": "transformers save_pretrained folder (SegformerForSemanticSegmentation)"}
    (folder / "model.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"{run} -> {folder} ({sum(f.stat().st_size for f in folder.iterdir()) / 1e6:.1f} MB)")


def ship_as(run: Path, target: Path) -> None:
    """The run to `target` (a weights file, or SegFormer's folder), a model of its own; the card keeps the
    record of the run or model it was tuned from, which may be `target` itself (SegFormer-B0's tune)."""
    card = json.loads((run / "model.json").read_text())
    start = Path(card["training"].get("init_from") or "")
    extra = {}
    if start.name:
        if not card_file(start).is_file():
            raise SystemExit(f"{run} was tuned from {start}, whose card is not there: its record would be lost")
        base = shipped_card(start.parent, json.loads(card_file(start).read_text()), None)
        if base["training"]["command"] == card["training"]["command"]:  # shipped already: no record of itself
            print(f"{target} is already {run}")
            return
        extra = {"fine_tuned_from": record(base)}
    if card["architecture"]["name"] == "segformer_b0":
        write_segformer(run, target, {**shipped_card(run, card, None), **extra})
    else:
        copy_run(run, target, None, extra=extra)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--data-note", help="how the training data travelled, recorded in the CamVid cards")
    parser.add_argument("--fine-tuned", nargs="?", const="ft", metavar="PREFIX",
                        help="ship runs/PREFIX-<model> (default PREFIX: ft) over the CamVid weights each started "
                             "from, and nothing else")
    parser.add_argument("--run", help="ship runs/RUN alone, as weights/camvid/KEY.safetensors (with --as)")
    parser.add_argument("--as", dest="key", metavar="KEY", help="the shipped model's name (seg.explorer.zoo.TITLES)")
    args = parser.parse_args()
    if bool(args.run) != bool(args.key):
        parser.error("--run and --as go together")
    if args.run:
        if args.key not in TITLES:
            parser.error(f"--as {args.key}: the app offers {', '.join(TITLES)}")
        target = args.key if args.key == "segformer_b0" else f"{args.key}.safetensors"  # SegFormer ships a folder
        ship_as(args.runs / args.run, args.weights / "camvid" / target)
        return 0
    if args.fine_tuned:
        for name in CAMVID:
            run = args.runs / f"{args.fine_tuned}-{name}"
            if (run / "model.safetensors").is_file():
                ship_fine_tuned(run, args.weights / "camvid" / f"{name}.safetensors")
        return 0
    for name in CAMVID:
        if (args.runs / name / "model.safetensors").is_file():
            copy_run(args.runs / name, args.weights / "camvid" / f"{name}.safetensors", args.data_note)
    run = args.runs / "segformer_b0"
    if (run / "model.safetensors").is_file():
        card = shipped_card(run, json.loads((run / "model.json").read_text()), args.data_note)
        write_segformer(run, args.weights / "camvid" / "segformer_b0", card)
    for name in SYNTHETIC:
        if (args.runs / f"synthetic-{name}" / "model.safetensors").is_file():
            copy_run(args.runs / f"synthetic-{name}", args.weights / "synthetic" / f"{name}.safetensors", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
