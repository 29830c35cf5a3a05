"""The ensemble of the shipped models (`seg.ensemble`): its members, their weights and its test-time
views chosen on a sequence the protocol models never saw, then written as a card over the shipped
weights. Run by `recipes/camvid_ensemble.sh choose` and `... card`.

    python recipes/ensemble_choice.py --runs runs --sequence 0006R0 --json runs/ensemble.json
    python recipes/ensemble_choice.py --card runs/ensemble.json --weights weights/camvid
    python recipes/ensemble_choice.py --protocol-card --runs runs   # the same choice over the protocol models
    python recipes/ensemble_choice.py --runs runs --kinds fcn32s fcn8s deeplabv3 --views "1" "1 + flip" \
        --budget 1.5 --json runs/fast.json      # within 1.5 times LR-ASPP's time; --card ... --name fast

`--runs` holds one protocol model of each shipped kind (runs/e-<kind>/model.safetensors, trained with
the sequence held out and median-frequency weights), or the one `--protocol KIND=RUN` names (e.g. a
fine-tuned one, made as the shipped model was). A protocol model trained from scratch is scored with the
logit adjustment at tau 0.5, the correction the shipped models carry or were fine-tuned into; a
fine-tuned one (its card names the weights it started from) as it is, as the shipped fine-tuned models
run (docs/training.md). First every weighting of the members with weights 0, 1 or 2 is scored at the
input size alone; then, with the best weighting, each set of test-time views. Ties go to the fewer
members and views (less time).
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

KINDS = ("fcn32s", "fcn8s", "deeplabv3", "unet", "segformer_b0")  # the members to choose from, unless told
SHIPPED = KINDS + ("unet_quarter",)  # every shipped model an ensemble may have (the app's catalogue keys)
PROTOCOL = ("recipes/camvid_quarter.sh protocol && recipes/camvid_ensemble.sh protocol && "
            "recipes/camvid_ensemble.sh tuned && ")  # every protocol model the recipe's choices read
STAGES = {"ensemble": PROTOCOL + "recipes/camvid_ensemble.sh choose && recipes/camvid_ensemble.sh card",
          "fast": PROTOCOL + "recipes/camvid_ensemble.sh fast && recipes/camvid_ensemble.sh fast-card"}
TAU = 0.5
GRID = (0, 1, 2)
NOISE = 0.005  # mIoU: one seed's runs differ by about a point at this budget (docs/training.md); half of that
VIEWS = {"1": ((1.0,), False), "1 + flip": ((1.0,), True), "0.75, 1, 1.25": ((0.75, 1.0, 1.25), False),
         "0.75, 1, 1.25 + flip": ((0.75, 1.0, 1.25), True), "1, 1.25": ((1.0, 1.25), False),
         "1, 1.25 + flip": ((1.0, 1.25), True), "0.5 to 1.5": ((0.5, 0.75, 1.0, 1.25, 1.5), False),
         "0.5 to 1.5 + flip": ((0.5, 0.75, 1.0, 1.25, 1.5), True)}


def protocol_runs(runs: Path, kinds: tuple[str, ...], named: dict[str, str] | None = None) -> dict[str, Path]:
    """kind -> the protocol run standing for it: `named`'s, else runs/e-<kind>."""
    return {kind: runs / (named or {}).get(kind, f"e-{kind}") for kind in kinds}


def fine_tuned(card: dict) -> bool:
    """Whether a run was fine-tuned (its card names the weights it started from): it then runs as it is,
    as the shipped fine-tuned models carry no logit adjustment."""
    return bool((card.get("training") or {}).get("init_from"))


def protocol_models(folders: dict[str, Path], data_dir: str) -> dict:
    """kind -> (model, offsets) of each protocol run: at TAU with the class weights its card trained with,
    or None for a fine-tuned run (the shipped fine-tuned models carry no adjustment)."""
    models = {}
    for kind, folder in folders.items():
        model, card = load_model(folder / "model.safetensors")
        models[kind] = (model, None if fine_tuned(card) else prior_offsets(weights_of(card, data_dir), TAU))
    return models


def parse_protocol(pairs: list[str]) -> dict[str, str]:
    """["unet=c-unet-long-s0", ...] -> {"unet": "c-unet-long-s0", ...}; a clear message for anything else."""
    named = {}
    for pair in pairs:
        kind, sep, run = pair.partition("=")
        if not sep or kind not in SHIPPED or not run or "/" in run:
            raise SystemExit(f"--protocol {pair!r}: expected KIND=RUN, KIND one of {', '.join(SHIPPED)} and RUN a "
                             "folder of --runs")
        named[kind] = run
    return named


def passes_of(view: tuple) -> int:
    """How many times a set of views ((scales, flip)) runs each member."""
    return len(view[0]) * (2 if view[1] else 1)


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
           budget: float | None = None, weights_dir: Path = ROOT / "weights" / "camvid",
           named: dict[str, str] | None = None, shipped: dict | None = None) -> dict:
    """Without a budget: the best weighting, then its best views. With one (times LR-ASPP's prediction,
    `Timer`): the six best weightings that fit at their cheapest views, each with every set of views whose
    measured time fits, and of the pairs within NOISE of the best, the one with the fewest passes, then the
    best (a time measured near the budget may not hold on another run; a difference of mIoU under the noise
    is no reason to risk it).
    With `shipped` (the shipped card's chosen_on), that choice is scored too and kept unless beaten by more
    than NOISE (`keep_shipped`)."""
    timer, costs = (Timer(kinds, weights_dir), {}) if budget else (None, None)
    torch.set_num_threads(os.cpu_count() or 1)
    folders = protocol_runs(runs, kinds, named)
    models = protocol_models(folders, data_dir)
    card = read_card(folders[kinds[0]] / "model.safetensors")
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

    def score(g: tuple, view: tuple) -> float:  # a weighting over views, at label resolution
        ensemble = Ensemble([models[k][0] for k, w in zip(kinds, g) if w], weights=[w for w in g if w],
                            offsets=[models[k][1] for k, w in zip(kinds, g) if w], scales=view[0], flip=view[1])
        matrix = ConfusionMatrix(len(classes))
        for image, mask in loader:
            matrix.update(pred=upsample_logits(ensemble.eval()(image), mask.shape[-2:]).argmax(1), target=mask)
        return miou(matrix)

    order, pairs, fitted = list(views), {}, 0
    cheapest = min(order, key=lambda n: (passes_of(views[n]), sum(s * s for s in views[n][0])))
    for g in ranked[:1 if budget is None else len(ranked)]:  # pass 2: weightings over views, at label resolution
        weighting = dict(zip(kinds, g))
        if budget is not None:  # the six best weightings that fit at their cheapest views
            if fitted == 6:
                break
            costs[g, cheapest] = timer(weighting, views[cheapest])
            if costs[g, cheapest] > budget:
                print(f"{weighting}: {costs[g, cheapest]:.2f} times LR-ASPP at its cheapest views, over the budget")
                continue
            fitted += 1
        for name in order:
            if budget is not None:
                costs[g, name] = costs.get((g, name)) or timer(weighting, views[name])
                if costs[g, name] > budget:
                    print(f"{weighting}, views {name}: {costs[g, name]:.2f} times LR-ASPP, over the budget")
                    continue
            pairs[g, name] = score(g, views[name])
            print(f"{weighting}, views {name}: {100 * pairs[g, name]:.2f}", flush=True)
    if not pairs:
        raise SystemExit(f"no weighting and views fit the budget of {budget} times LR-ASPP")
    best, chosen = max(pairs, key=lambda p: (round(pairs[p], 4), -sum(1 for w in p[0] if w), -order.index(p[1])))
    if budget is not None:  # within a budget: of those less than a seed's noise from the best, the fewest passes
        close = [p for p in pairs if pairs[p] >= pairs[best, chosen] - NOISE]
        passes = {p: sum(1 for w in p[0] if w) * passes_of(views[p[1]]) for p in close}
        best, chosen = min(close, key=lambda p: (passes[p], -pairs[p]))
    kept = shipped and keep_shipped(shipped, kinds, pairs[best, chosen], score, timer, budget)
    if kept:
        best, chosen = tuple(shipped["weights"].get(k, 0) for k in kinds), shipped["views"]["name"]
        views = {**views, chosen: (tuple(shipped["views"]["scales"]), shipped["views"]["flip"])}
        pairs[best, chosen] = kept["miou"]
        if budget is not None:
            costs[best, chosen] = kept["times_lr_aspp"]
    return {"sequence": sequence, "tau": TAU, "protocol": {k: folder.name for k, folder in folders.items()},
            "tuned": [k for k, (_, offsets) in models.items() if offsets is None],
            "alone": {k: round(miou(m), 5) for k, m in single.items()},
            "weights": dict(zip(kinds, best)), "weighted_half_resolution": scored.get(best) and round(scored[best], 5),
            "top_weightings": [{"weights": dict(zip(kinds, g)), "miou": round(scored[g], 5)} for g in ranked[:8]],
            "views": {"name": chosen, "scales": list(views[chosen][0]), "flip": views[chosen][1]},
            "by_views": {name: round(v, 5) for (g, name), v in pairs.items() if g == best},
            **({} if budget is None else {
                "budget": {"times_lr_aspp": budget, "measured": round(costs[best, chosen], 3)},
                "candidates": [{"weights": dict(zip(kinds, g)), "views": name, "times_lr_aspp": round(c, 3),
                                "miou": pairs.get((g, name)) and round(pairs[g, name], 5)}
                               for (g, name), c in costs.items()]}),
            **({"kept": kept} if kept else {}), "seconds": round(time.time() - started)}


def keep_shipped(shipped: dict, kinds: tuple[str, ...], best: float, score, timer, budget: float | None) -> dict | None:
    """The shipped card's choice (`shipped`, its chosen_on) scored over the same protocol models: kept,
    with its figure, when the new best beats it by no more than NOISE (and it still fits the budget);
    None otherwise. A card changes only on evidence: its test figures are recorded by its digest, which a
    rewritten card changes."""
    members = [k for k, w in shipped["weights"].items() if w]
    if any(k not in kinds for k in members):
        print(f"the shipped choice has members not chosen from now ({', '.join(members)}): not compared")
        return None
    g, view = tuple(shipped["weights"].get(k, 0) for k in kinds), shipped["views"]
    entry = {"weights": dict(zip(kinds, g)), "views": view["name"]}
    if budget is not None:
        entry["times_lr_aspp"] = round(timer(entry["weights"], (tuple(view["scales"]), view["flip"])), 3)
        if entry["times_lr_aspp"] > budget:
            print(f"the shipped choice {entry}: over the budget now")
            return None
    entry["miou"] = round(score(g, (tuple(view["scales"]), view["flip"])), 5)
    verdict = entry["miou"] >= best - NOISE
    print(f"the shipped choice {entry['weights']}, views {view['name']}: {100 * entry['miou']:.2f} against the best "
          f"{100 * best:.2f}: {'kept' if verdict else 'replaced'} (noise {100 * NOISE:.1f})")
    return {**entry, "best": round(best, 5), "reason": f"within {NOISE} of the best"} if verdict else None


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


def write_card(choice: dict, weights_dir: Path, name: str = "ensemble", command: str | None = None) -> Path:
    """weights_dir/<name>.json: the shipped models the choice weights above 0, with its views; each
    member where the app's catalogue finds it (a .safetensors file, or SegFormer-B0's folder), and
    `command` (default: the recipe's stages for `name`) as what made it. A choice that kept the shipped
    card leaves it as it is, byte for byte."""
    if choice.get("kept"):
        print(f"{weights_dir / name}.json stays as it is: the new best {100 * choice['kept']['best']:.2f} beats its "
              f"{100 * choice['kept']['miou']:.2f} by no more than the noise")
        return weights_dir / f"{name}.json"
    members = [kind for kind, w in choice["weights"].items() if w]
    if len(members) == 1 and passes_of((choice["views"]["scales"], choice["views"]["flip"])) == 1:
        raise SystemExit(f"the choice is the shipped {members[0]} alone at one view: a card would only repeat it, "
                         f"so {weights_dir / name}.json is left as it is")
    shipped = Zoo(weights_dir.parent, pretrained=()).entries
    members = [(Path(shipped[kind].source).name, w) for kind, w in choice["weights"].items() if w]
    trained = sorted({split for name, _ in members  # a card from before train_split was recorded trained on train
                      for split in read_card(weights_dir / name)["data"].get("train_split", "train").split("+")})
    card = ensemble_card(
        members, weights_dir, choice["views"],
        data={"dataset": "camvid", "train_split": "+".join(trained),
              "validation": "none of its own: its members' cards say what each trained and was scored on"},
        chosen_on={k: choice[k] for k in ("sequence", "tau", "protocol", "tuned", "alone", "weights", "views",
                                          "by_views", "budget") if k in choice},
        training={"command": command or STAGES[name]})
    path = weights_dir / f"{name}.json"
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def write_protocol_card(shipped: Path, runs: Path) -> Path:
    """runs/e-ensemble.json: the shipped ensemble's choice (the members' weights and the views) over the
    protocol models (those the choice names, else e-<kind>), which never saw the sequence it was chosen on.
    Each member trained from scratch must carry its logit adjustment in its card (`python -m seg.cli.tau
    set`), as the shipped members carry or were fine-tuned into; a fine-tuned one runs as it is. The
    teacher a distillation is chosen with (recipes/camvid_distill.sh)."""
    choice = json.loads(shipped.read_text())["chosen_on"]
    named = choice.get("protocol", {})  # a choice over fine-tuned protocol runs names them
    members = [(f"{named.get(kind, f'e-{kind}')}/model.safetensors", w) for kind, w in choice["weights"].items() if w]
    cards = {name: read_card(runs / name) for name, _ in members}
    bare = [name for name, card in cards.items() if not card.get(CARD_KEY) and not fine_tuned(card)]
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
    p.add_argument("--command", help="with --card: the commands that made the choice, for the card (default: "
                                     "recipes/camvid_ensemble.sh's stages over the 12-epoch protocol models)")
    p.add_argument("--weights", type=Path, default=ROOT / "weights" / "camvid")
    p.add_argument("--name", choices=list(STAGES), default="ensemble",
                   help="the card's name: ensemble (the most accurate) or fast (within --budget); a choice is "
                        "compared with the shipped card of that name, kept unless beaten by more than the noise")
    p.add_argument("--kinds", nargs="+", choices=SHIPPED, default=list(KINDS), help="the members to choose from")
    p.add_argument("--protocol", nargs="+", default=[], metavar="KIND=RUN",
                   help="the protocol run of --runs standing for a kind, instead of e-<kind> (e.g. one fine-tuned "
                        "as the shipped model was: unet=c-unet-long-s0)")
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
        choice = json.loads(args.card.read_text())
        path = write_card(choice, args.weights, args.name, args.command)
        if not choice.get("kept"):
            print(f"wrote {path}")
        return 0
    if not args.runs or not args.json:
        p.error("give --runs and --json (to choose), or --card (to write the card)")
    named = parse_protocol(args.protocol)
    missing = [f"{folder}/model.safetensors" for folder in protocol_runs(args.runs, tuple(args.kinds), named).values()
               if not (folder / "model.safetensors").is_file()]
    if missing:
        raise SystemExit(f"no protocol model at {', '.join(missing)}: train it first (recipes/camvid_ensemble.sh "
                         "protocol, or recipes/camvid_tune.sh protocol for a fine-tuned one)")
    card = args.weights / f"{args.name}.json"
    shipped = json.loads(card.read_text()).get("chosen_on") if card.is_file() else None
    choice = choose(args.runs, args.data_dir, args.sequence, kinds=tuple(args.kinds),
                    views={v: VIEWS[v] for v in args.views}, budget=args.budget, weights_dir=args.weights,
                    named=named, shipped=shipped)
    args.json.write_text(json.dumps(choice, indent=2) + "\n")
    print(json.dumps({k: choice[k] for k in ("weights", "views", "by_views", "kept") if k in choice}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
