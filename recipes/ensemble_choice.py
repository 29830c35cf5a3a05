"""The ensemble of the shipped models (`seg.ensemble`): its members, their weights and its test-time
views chosen on a sequence the protocol models never saw, then written as a card over the shipped
weights. Run by `recipes/camvid_ensemble.sh choose` and `... card`.

    python recipes/ensemble_choice.py --runs runs --sequence 0006R0 --json runs/ensemble.json
    python recipes/ensemble_choice.py --card runs/ensemble.json --weights weights/camvid
    python recipes/ensemble_choice.py --protocol-card --runs runs   # the same choice over the protocol models
    python recipes/ensemble_choice.py --runs runs --kinds fcn32s fcn8s deeplabv3 --views "1" "1 + flip" \
        --budget 1.5 --json runs/fast.json      # within 1.5 times LR-ASPP's time; --card ... --name fast

`--runs` holds one protocol model of each shipped kind (runs/e-<kind>/model.safetensors, trained with
the sequence held out and median-frequency weights). Each is scored with the logit adjustment at
tau 0.5, the correction the shipped models carry or were fine-tuned into (docs/training.md). First
every weighting of the members with weights 0, 1 or 2 is scored at the input size alone; then, with
the best weighting, each set of test-time views. Ties go to the fewer members and views (less time).
"""

import argparse
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
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
from seg.inference import segment, upsample_logits  # noqa: E402
from seg.labels import IGNORE_INDEX  # noqa: E402
from seg.metrics import ConfusionMatrix  # noqa: E402
from seg.models import build_model  # noqa: E402
from seg.prior import CARD_KEY, adjust, prior_offsets  # noqa: E402

KINDS = ("fcn32s", "fcn8s", "deeplabv3", "unet", "segformer_b0")
STAGES = {"ensemble": "recipes/camvid_ensemble.sh protocol && recipes/camvid_ensemble.sh choose && "
                      "recipes/camvid_ensemble.sh card",
          "fast": "recipes/camvid_ensemble.sh protocol && recipes/camvid_ensemble.sh fast && "
                  "recipes/camvid_ensemble.sh fast-card"}
TAU = 0.5
GRID = (0, 1, 2)
NOISE = 0.005  # mIoU: one seed's runs differ by about a point at this budget (docs/training.md); half of that
VIEWS = {"1": ((1.0,), False), "1 + flip": ((1.0,), True), "0.75, 1, 1.25": ((0.75, 1.0, 1.25), False),
         "0.75, 1, 1.25 + flip": ((0.75, 1.0, 1.25), True), "1, 1.25": ((1.0, 1.25), False),
         "1, 1.25 + flip": ((1.0, 1.25), True), "0.5 to 1.5": ((0.5, 0.75, 1.0, 1.25, 1.5), False),
         "0.5 to 1.5 + flip": ((0.5, 0.75, 1.0, 1.25, 1.5), True)}


def protocol_models(runs: Path, data_dir: str, kinds: tuple[str, ...]) -> dict:
    """kind -> (model, offsets at TAU) of each protocol run (the class weights its card trained with)."""
    models = {}
    for kind in kinds:
        model, card = load_model(runs / f"e-{kind}" / "model.safetensors")
        models[kind] = (model, prior_offsets(weights_of(card, data_dir), TAU))
    return models


def miou(matrix: ConfusionMatrix) -> float:
    return float(matrix.compute().miou)


class Timer:
    """What an ensemble of the shipped architectures costs: its whole prediction on a 360x480 photo
    (`seg.inference.segment`) over LR-ASPP MobileNetV3-Large's through the same path, 2 threads, the two
    interleaved, median of `rounds`, random weights (speed does not depend on them). The measure of
    benchmarks/fast_budget.py, which times the shipped card itself."""

    def __init__(self, kinds: tuple[str, ...], weights_dir: Path, rounds: int = 15):
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from fast_budget import Reference, interleaved_medians

        shipped = Zoo(weights_dir.parent, pretrained=()).entries
        self.reference, self.members, self.rounds = Reference().eval(), {}, rounds
        self.medians = interleaved_medians
        for kind in kinds:
            architecture = read_card(shipped[kind].source)["architecture"]
            self.members[kind] = build_model(architecture["name"], num_classes=11,
                                             **architecture.get("arguments", {})).eval()
        self.photo = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)

    @torch.inference_mode()
    def __call__(self, weighting: dict, views: tuple) -> float:
        scales, flip = views
        ensemble = Ensemble([self.members[k] for k, w in weighting.items() if w],
                            weights=[w for w in weighting.values() if w], scales=scales, flip=flip).eval()
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        median = self.medians({"ensemble": lambda: segment(ensemble, self.photo),
                               "reference": lambda: segment(self.reference, self.photo)},
                              rounds=self.rounds, warmup=1)
        torch.set_num_threads(threads)
        return median["ensemble"] / median["reference"]


@torch.inference_mode()
def choose(runs: Path, data_dir: str, sequence: str, *, kinds: tuple[str, ...] = KINDS, views: dict = VIEWS,
           budget: float | None = None, weights_dir: Path = ROOT / "weights" / "camvid") -> dict:
    """Without a budget: the best weighting, then its best views. With one (times LR-ASPP's prediction,
    `Timer`): the six best weightings, each with every set of views whose measured time fits, and of the
    pairs within NOISE of the best, the one with the fewest passes, then the best (a time measured near the
    budget may not hold on another run; a difference of mIoU under the noise is no reason to risk it)."""
    timer, costs = (Timer(kinds, weights_dir), {}) if budget else (None, None)
    torch.set_num_threads(os.cpu_count() or 1)
    models = protocol_models(runs, data_dir, kinds)
    card = read_card(runs / f"e-{kinds[0]}" / "model.safetensors")
    classes, size = card["classes"], tuple(card["input_size"])
    frames = build_dataset("camvid", "train", root=data_dir, sequences=(sequence,),
                           transform=eval_transform(resize=size))
    loader = DataLoader(frames, batch_size=1)
    # every weighting once: (0, 2, 2) is (0, 1, 1) again
    grids = [g for g in itertools.product(GRID, repeat=len(kinds)) if any(g) and math.gcd(*g) == 1]
    grid = torch.tensor(grids, dtype=torch.float32)  # (G, K)
    n = len(classes)
    single = {kind: ConfusionMatrix(n) for kind in kinds}
    counts = torch.zeros(len(grids) * n * n, dtype=torch.int64)  # every weighting's confusion matrix at once
    started = time.time()
    for image, mask in loader:  # pass 1: each member once, at the input size
        probabilities = torch.stack([adjust(upsample_logits(m(image).float(), mask.shape[-2:]), o).softmax(1)[0]
                                     for m, o in models.values()])  # (K, C, H, W) at label resolution
        for kind, p in zip(kinds, probabilities):
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
    ranked = sorted(grids, key=lambda g: (-round(scored[g], 4), sum(1 for w in g if w)))
    print(f"pass 1 ({time.time() - started:.0f} s): members alone "
          + ", ".join(f"{k} {100 * miou(m):.2f}" for k, m in single.items())
          + f"; best weighting {dict(zip(kinds, ranked[0]))}: {100 * scored[ranked[0]]:.2f} (at half resolution)")
    order, pairs = list(views), {}
    for g in ranked[:1 if budget is None else 6]:  # pass 2: weightings over each set of views, at label resolution
        weighting = dict(zip(kinds, g))
        for name in order:
            if budget is not None:
                costs[g, name] = timer(weighting, views[name])
                if costs[g, name] > budget:
                    print(f"{weighting}, views {name}: {costs[g, name]:.2f} times LR-ASPP, over the budget")
                    continue
            scales, flip = views[name]
            ensemble = Ensemble([models[k][0] for k, w in zip(kinds, g) if w], weights=[w for w in g if w],
                                offsets=[models[k][1] for k, w in zip(kinds, g) if w], scales=scales, flip=flip)
            matrix = ConfusionMatrix(len(classes))
            for image, mask in loader:
                matrix.update(pred=upsample_logits(ensemble.eval()(image), mask.shape[-2:]).argmax(1), target=mask)
            pairs[g, name] = miou(matrix)
            print(f"{weighting}, views {name}: {100 * pairs[g, name]:.2f}", flush=True)
    if not pairs:
        raise SystemExit(f"no weighting and views fit the budget of {budget} times LR-ASPP")
    best, chosen = max(pairs, key=lambda p: (round(pairs[p], 4), -sum(1 for w in p[0] if w), -order.index(p[1])))
    if budget is not None:  # within a budget: of those less than a seed's noise from the best, the fewest passes
        close = [p for p in pairs if pairs[p] >= pairs[best, chosen] - NOISE]
        passes = {p: sum(1 for w in p[0] if w) * len(views[p[1]][0]) * (2 if views[p[1]][1] else 1) for p in close}
        best, chosen = min(close, key=lambda p: (passes[p], -pairs[p]))
    return {"sequence": sequence, "tau": TAU, "protocol": {k: str(runs / f"e-{k}") for k in kinds},
            "alone": {k: round(miou(m), 5) for k, m in single.items()},
            "weights": dict(zip(kinds, best)), "weighted_half_resolution": round(scored[best], 5),
            "top_weightings": [{"weights": dict(zip(kinds, g)), "miou": round(scored[g], 5)} for g in ranked[:8]],
            "views": {"name": chosen, "scales": list(views[chosen][0]), "flip": views[chosen][1]},
            "by_views": {name: round(v, 5) for (g, name), v in pairs.items() if g == best},
            **({} if budget is None else {
                "budget": {"times_lr_aspp": budget, "measured": round(costs[best, chosen], 3)},
                "candidates": [{"weights": dict(zip(kinds, g)), "views": name, "times_lr_aspp": round(c, 3),
                                "miou": pairs.get((g, name)) and round(pairs[g, name], 5)}
                               for (g, name), c in costs.items()]}),
            "seconds": round(time.time() - started)}


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


def write_card(choice: dict, weights_dir: Path, name: str = "ensemble") -> Path:
    """weights_dir/<name>.json: the shipped models the choice weights above 0, with its views; each
    member where the app's catalogue finds it (a .safetensors file, or SegFormer-B0's folder)."""
    shipped = Zoo(weights_dir.parent, pretrained=()).entries
    members = [(Path(shipped[kind].source).name, w) for kind, w in choice["weights"].items() if w]
    trained = sorted({split for name, _ in members  # a card from before train_split was recorded trained on train
                      for split in read_card(weights_dir / name)["data"].get("train_split", "train").split("+")})
    card = ensemble_card(
        members, weights_dir, choice["views"],
        data={"dataset": "camvid", "train_split": "+".join(trained),
              "validation": "none of its own: its members' cards say what each trained and was scored on"},
        chosen_on={k: choice[k] for k in ("sequence", "tau", "alone", "weights", "views", "by_views", "budget")
                   if k in choice},
        training={"command": STAGES[name]})
    path = weights_dir / f"{name}.json"
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
    p.add_argument("--name", choices=list(STAGES), default="ensemble",
                   help="the card's name: ensemble (the most accurate) or fast (within --budget)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="the members to choose from")
    p.add_argument("--views", nargs="+", choices=list(VIEWS), default=list(VIEWS), help="the views to choose from")
    p.add_argument("--budget", type=float,
                   help="the most time an ensemble's whole prediction may take, in times LR-ASPP "
                        "MobileNetV3-Large's through the same path (Timer)")
    p.add_argument("--protocol-card", action="store_true",
                   help="write --runs/e-ensemble.json: the shipped card's choice over the protocol models")
    args = p.parse_args()
    if args.protocol_card:
        print(f"wrote {write_protocol_card(args.weights / 'ensemble.json', args.runs or ROOT / 'runs')}")
        return 0
    if args.card:
        print(f"wrote {write_card(json.loads(args.card.read_text()), args.weights, args.name)}")
        return 0
    if not args.runs or not args.json:
        p.error("give --runs and --json (to choose), or --card (to write the card)")
    choice = choose(args.runs, args.data_dir, args.sequence, kinds=tuple(args.kinds),
                    views={v: VIEWS[v] for v in args.views}, budget=args.budget, weights_dir=args.weights)
    args.json.write_text(json.dumps(choice, indent=2) + "\n")
    print(json.dumps({k: choice[k] for k in ("weights", "views", "by_views")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
