"""The ensemble of the shipped models (`seg.ensemble`): its members, their weights and its test-time
views chosen on a sequence the protocol models never saw, then written as a card over the shipped
weights. Run by `recipes/camvid_ensemble.sh choose` and `... card`.

    python recipes/ensemble_choice.py --runs runs --sequence 0006R0 --json runs/ensemble.json
    python recipes/ensemble_choice.py --card runs/ensemble.json --weights weights/camvid
    python recipes/ensemble_choice.py --protocol-card --runs runs   # the same choice over the protocol models

`--runs` holds one protocol model of each shipped kind (runs/e-<kind>/model.safetensors, trained with
the sequence held out and median-frequency weights). Each is scored with the logit adjustment at
tau 0.5, the correction the shipped models carry or were fine-tuned into (docs/training.md). First
every weighting of the members with weights 0, 1 or 2 is scored at the input size alone; then, with
the best weighting, each set of test-time views. Ties go to the fewer members and views (less time).
"""

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from seg.checkpoint import load_model, read_card  # noqa: E402
from seg.cli.tau import weights_of  # noqa: E402
from seg.data import build_dataset  # noqa: E402
from seg.data.camvid import ENV_VAR  # noqa: E402
from seg.data.transforms import eval_transform  # noqa: E402
from seg.ensemble import Ensemble  # noqa: E402
from seg.explorer.zoo import Zoo  # noqa: E402
from seg.inference import upsample_logits  # noqa: E402
from seg.labels import IGNORE_INDEX  # noqa: E402
from seg.metrics import ConfusionMatrix  # noqa: E402
from seg.prior import CARD_KEY, adjust, prior_offsets  # noqa: E402

KINDS = ("fcn32s", "fcn8s", "deeplabv3", "unet", "segformer_b0")
TAU = 0.5
GRID = (0, 1, 2)
VIEWS = {"1": ((1.0,), False), "1 + flip": ((1.0,), True), "0.75, 1, 1.25": ((0.75, 1.0, 1.25), False),
         "0.75, 1, 1.25 + flip": ((0.75, 1.0, 1.25), True), "1, 1.25": ((1.0, 1.25), False),
         "1, 1.25 + flip": ((1.0, 1.25), True), "0.5 to 1.5": ((0.5, 0.75, 1.0, 1.25, 1.5), False),
         "0.5 to 1.5 + flip": ((0.5, 0.75, 1.0, 1.25, 1.5), True)}


def protocol_models(runs: Path, data_dir: str) -> dict:
    """kind -> (model, offsets at TAU) of each protocol run (the class weights its card trained with)."""
    models = {}
    for kind in KINDS:
        model, card = load_model(runs / f"e-{kind}" / "model.safetensors")
        models[kind] = (model, prior_offsets(weights_of(card, data_dir), TAU))
    return models


def miou(matrix: ConfusionMatrix) -> float:
    return float(matrix.compute().miou)


@torch.inference_mode()
def choose(runs: Path, data_dir: str, sequence: str) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    models = protocol_models(runs, data_dir)
    card = read_card(runs / f"e-{KINDS[0]}" / "model.safetensors")
    classes, size = card["classes"], tuple(card["input_size"])
    frames = build_dataset("camvid", "train", root=data_dir, sequences=(sequence,),
                           transform=eval_transform(resize=size))
    loader = DataLoader(frames, batch_size=1)
    grids = [g for g in itertools.product(GRID, repeat=len(KINDS)) if any(g)]
    grid = torch.tensor(grids, dtype=torch.float32)  # (G, K)
    n = len(classes)
    single = {kind: ConfusionMatrix(n) for kind in KINDS}
    counts = torch.zeros(len(grids) * n * n, dtype=torch.int64)  # every weighting's confusion matrix at once
    started = time.time()
    for image, mask in loader:  # pass 1: each member once, at the input size
        probabilities = torch.stack([adjust(upsample_logits(m(image).float(), mask.shape[-2:]), o).softmax(1)[0]
                                     for m, o in models.values()])  # (K, C, H, W) at label resolution
        for kind, p in zip(KINDS, probabilities):
            single[kind].update(pred=p.argmax(0)[None], target=mask)
        # the weightings are ranked at half the label resolution (nearest): the choice, not the figure
        small, target = probabilities[..., ::2, ::2].flatten(1), mask[0, ::2, ::2].flatten()
        valid = target != IGNORE_INDEX
        votes = (grid @ small).view(len(grids), n, -1).argmax(1)[:, valid]  # (G, pixels)
        index = (torch.arange(len(grids)).view(-1, 1) * n + target[valid].view(1, -1).long()) * n + votes
        counts += torch.bincount(index.flatten(), minlength=counts.numel())
    matrices = counts.view(len(grids), n, n).double()
    hits = matrices.diagonal(dim1=1, dim2=2)
    union = matrices.sum(2) + matrices.sum(1) - hits
    present = matrices.sum(2) > 0  # classes in the ground truth
    ious = torch.where(union > 0, hits / union.clamp_min(1), torch.zeros_like(hits))
    scored = {g: float((ious[i] * present[i]).sum() / present[i].sum().clamp_min(1)) for i, g in enumerate(grids)}
    # the best, then the fewest members: a point of the grid is no evidence of a better one
    best = max(grids, key=lambda g: (round(scored[g], 4), -sum(1 for w in g if w)))
    print(f"pass 1 ({time.time() - started:.0f} s): members alone "
          + ", ".join(f"{k} {100 * miou(m):.2f}" for k, m in single.items())
          + f"; best weighting {dict(zip(KINDS, best))}: {100 * scored[best]:.2f} (at half resolution)")
    members = [models[k][0] for k, w in zip(KINDS, best) if w]
    offsets = [models[k][1] for k, w in zip(KINDS, best) if w]
    weights = [w for w in best if w]
    by_views = {}
    for name, (scales, flip) in VIEWS.items():  # pass 2: the chosen weighting over each set of views
        ensemble = Ensemble(members, weights=weights, offsets=offsets, scales=scales, flip=flip).eval()
        matrix = ConfusionMatrix(len(classes))
        for image, mask in loader:
            matrix.update(pred=upsample_logits(ensemble(image), mask.shape[-2:]).argmax(1), target=mask)
        by_views[name] = miou(matrix)
        print(f"views {name}: {100 * by_views[name]:.2f}", flush=True)
    order = list(VIEWS)
    views = max(order, key=lambda v: (round(by_views[v], 4), -order.index(v)))
    return {"sequence": sequence, "tau": TAU, "protocol": {k: str(runs / f"e-{k}") for k in KINDS},
            "alone": {k: round(miou(m), 5) for k, m in single.items()},
            "weights": dict(zip(KINDS, best)), "weighted_half_resolution": round(scored[best], 5),
            "top_weightings": [{"weights": dict(zip(KINDS, g)), "miou": round(scored[g], 5)}
                               for g in sorted(grids, key=lambda g: -scored[g])[:8]],
            "views": {"name": views, "scales": list(VIEWS[views][0]), "flip": VIEWS[views][1]},
            "by_views": {k: round(v, 5) for k, v in by_views.items()}, "seconds": round(time.time() - started)}


def ensemble_card(members: list[tuple[str, float]], folder: Path, views: dict, **entries) -> dict:
    """An ensemble card over `members` ((path under `folder`, weight)) with the test-time `views`
    ({"scales", "flip"}); classes, palette, size and parameters from the members' cards."""
    cards = [read_card(folder / name) for name, _ in members]
    first = cards[0]
    return {"architecture": {"name": "ensemble"},
            "members": [{"weights": name, "weight": w} for name, w in members],
            "test_time": {"scales": views["scales"], "flip": views["flip"]},
            "classes": first["classes"], "palette": first["palette"], "input_size": first["input_size"],
            "parameters": sum(c["parameters"] for c in cards), **entries}


def write_card(choice: dict, weights_dir: Path) -> Path:
    """weights_dir/ensemble.json: the shipped models the choice weights above 0, with its views; each
    member where the app's catalogue finds it (a .safetensors file, or SegFormer-B0's folder)."""
    shipped = Zoo(weights_dir.parent, pretrained=()).entries
    members = [(Path(shipped[kind].source).name, w) for kind, w in choice["weights"].items() if w]
    trained = sorted({split for name, _ in members for split in read_card(weights_dir / name)["data"]["train_split"]
                      .split("+")})
    card = ensemble_card(
        members, weights_dir, choice["views"],
        data={"dataset": "camvid", "train_split": "+".join(trained),
              "validation": "none of its own: its members' cards say what each trained and was scored on"},
        chosen_on={k: choice[k] for k in ("sequence", "tau", "alone", "weights", "views", "by_views")},
        training={"command": "recipes/camvid_ensemble.sh protocol && recipes/camvid_ensemble.sh choose && "
                             "recipes/camvid_ensemble.sh card"})
    path = weights_dir / "ensemble.json"
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def write_protocol_card(shipped: Path, runs: Path) -> Path:
    """runs/e-ensemble.json: the shipped ensemble's choice (the members' weights and the views) over the
    protocol models, which never saw the sequence it was chosen on. Each member must carry its logit
    adjustment in its card (`python -m seg.cli.tau set`), as the shipped members carry or were fine-tuned
    into: the teacher a distillation is chosen with (recipes/camvid_distill.sh)."""
    choice = json.loads(shipped.read_text())["chosen_on"]
    members = [(f"e-{kind}/model.safetensors", w) for kind, w in choice["weights"].items() if w]
    bare = [name for name, _ in members if not read_card(runs / name).get(CARD_KEY)]
    if bare:
        raise SystemExit(f"{', '.join(bare)}: no logit adjustment in the card; run python -m seg.cli.tau set first")
    card = ensemble_card(members, runs, choice["views"],
                         data={"dataset": "camvid", "train_split": "train", "holdout_sequence": choice["sequence"],
                               "validation": f"none of its own; its members never saw {choice['sequence']}"},
                         training={"command": "recipes/camvid_distill.sh protocol"})
    path = runs / "e-ensemble.json"
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, help="folder of the protocol runs (e-<kind>/)")
    p.add_argument("--data-dir", default=os.environ.get(ENV_VAR), help="CamVid folder (default: $SEG_CAMVID_DIR)")
    p.add_argument("--sequence", default="0006R0")
    p.add_argument("--json", type=Path, help="where the choice is written")
    p.add_argument("--card", type=Path, help="a choice written by --json: write the ensemble card from it")
    p.add_argument("--weights", type=Path, default=ROOT / "weights" / "camvid")
    p.add_argument("--protocol-card", action="store_true",
                   help="write --runs/e-ensemble.json: the shipped card's choice over the protocol models")
    args = p.parse_args()
    if args.protocol_card:
        print(f"wrote {write_protocol_card(args.weights / 'ensemble.json', args.runs or ROOT / 'runs')}")
        return 0
    if args.card:
        print(f"wrote {write_card(json.loads(args.card.read_text()), args.weights)}")
        return 0
    if not args.runs or not args.json:
        p.error("give --runs and --json (to choose), or --card (to write the card)")
    choice = choose(args.runs, args.data_dir, args.sequence)
    args.json.write_text(json.dumps(choice, indent=2) + "\n")
    print(json.dumps({k: choice[k] for k in ("weights", "views", "by_views")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
