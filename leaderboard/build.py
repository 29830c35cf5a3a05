"""Measure every shipped CamVid model and write the leaderboard: leaderboard.json, README.md, per_class_iou.png.

    python leaderboard/build.py [--weights weights] [--data-dir $SEG_CAMVID_DIR] [--repeats 20]
    python leaderboard/build.py --tests-only      # test_split.json changed: attach its figures, measure nothing

Accuracy comes from `python -m seg.cli.evaluate` on CamVid val (101 images, scored at 360x480, void
ignored, boundary tolerance 2 px), run on the shipped files themselves, with the card's logit
adjustment (`seg.prior`) and, for a card that has one, without it. A model that trained on val
(`--train-split train+val`) gets no val score: it would measure memory. Its held-out figures are
the test split's, measured by the maintainers and recorded in test_split.json by weights digest.
A model whose weights changed since the last build keeps its last figures, under "replaced". Latency is the whole
`seg.inference.segment` call on one 360x480 image (resize to the model's input size, forward,
upsample the logits, argmax): the median of --repeats runs after two warm-ups, batch 1, torch's
default threads, on this machine with nothing else running. Training time and hardware are read
from each model's card.
"""

import argparse
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from seg import system  # noqa: E402
from seg.charts import per_class_chart  # noqa: E402
from seg.checkpoint import load_model, read_card, saw_frames  # noqa: E402
from seg.cli.common import run  # noqa: E402
from seg.data.camvid import CLASSES, ENV_VAR, resolve_root  # noqa: E402
from seg.data.io import read_image  # noqa: E402
from seg.ensemble import member_paths  # noqa: E402
from seg.explorer.zoo import Zoo  # noqa: E402
from seg.fetch import file_digest  # noqa: E402
from seg.inference import segment  # noqa: E402

# A published lightweight CamVid network measured on this same machine (see the training issue):
# ESPNet, 0.36M parameters, 57.2% mIoU on the CamVid *test* split, about 95 ms per 360x480 image.
REFERENCE = {"title": "ESPNet (published; test split)", "miou": 0.572, "parameters": 360_000, "cpu_ms": 95}
TEST_SPLIT = ROOT / "leaderboard" / "test_split.json"  # {"source", "models": {sha256: {"miou", ...}}}


def latency_ms(model, image: np.ndarray, input_size, repeats: int) -> float:
    times = []
    for i in range(repeats + 2):
        started = time.perf_counter()
        segment(model, image, input_size=input_size)
        if i >= 2:
            times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 1)


def training_summary(training: dict, base: dict | None = None) -> str:
    """e.g. "best at epoch 81 of 99 run (100 planned), 7 min on <hardware>", or for a fine-tuned model
    "average of the last 4 of 8 epochs, 5 min on <hardware>, from: <its base's summary>"; a student says
    its teacher (`seg.distill`)."""
    planned, run = training["epochs"], training.get("epochs_completed", training["epochs"])
    epochs = f"{run} run ({planned} planned)" if run < planned else f"{planned}"
    averaged = training.get("averaged_epochs")
    if not averaged:
        chosen = f"best at epoch {training['epoch']} of {epochs}"
    elif averaged == 1:  # its last epoch kept
        chosen = f"the last of {epochs} epochs"
    else:
        chosen = f"average of the last {averaged} of {epochs} epochs"
    text = f"{chosen}, {training['time_s'] / 60:.0f} min on {training['hardware']}"
    if training.get("distillation"):
        taught = training["distillation"]
        text += f", taught by {Path(taught['teacher']).name} (share {taught['weight']:g})"
    if base:
        text += f"; fine-tuned from: {training_summary(base['training'], base.get('fine_tuned_from'))}"
    return text


def evaluate(path: Path, data_dir: Path, *, prior: bool = True) -> dict:
    """`python -m seg.cli.evaluate` on val, exactly as a user runs it; its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.json"
        subprocess.run([sys.executable, "-m", "seg.cli.evaluate", "--checkpoint", str(path), "--data-dir",
                        str(data_dir),
                        "--split", "val", "--device", "cpu", "--json", str(out), *([] if prior else ["--no-prior"])],
                       cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def digest(source: Path) -> str:
    """sha256 of the weights file (a SegFormer folder's model.safetensors); of an ensemble, of its card
    and its members' digests (a member replaced is another ensemble)."""
    if source.suffix == ".json":
        parts = [file_digest(source)] + [digest(Path(p)) for p, _ in member_paths(read_card(source), source.parent)]
        return hashlib.sha256(" ".join(parts).encode()).hexdigest()
    return file_digest(source / "model.safetensors" if source.is_dir() else source)


def weight_files(source: Path) -> list[Path]:
    """The files a model's weights take (an ensemble's: its card and its members')."""
    if source.suffix == ".json":
        return [source] + [f for p, _ in member_paths(read_card(source), source.parent) for f in weight_files(Path(p))]
    return [source] if source.is_file() else list(source.iterdir())


def ensemble_summary(card: dict) -> str:
    """How an ensemble was made, for its row: its weights, its test-time views and where they were chosen."""
    chosen, views = card["chosen_on"], card["test_time"]
    weights = ", ".join(f"{m['weights'].removesuffix('.safetensors')} x{m['weight']:g}" for m in card["members"])
    scales = "/".join(f"{s:g}" for s in views["scales"])
    budget = chosen.get("budget")
    within = f", within {budget['times_lr_aspp']:g} times LR-ASPP's time" if budget else ""
    return (f"probabilities averaged ({weights}) at scales {scales}{' with flips' if views['flip'] else ''}, "
            f"chosen on {chosen['sequence']} with protocol models{within}")


def val_figures(source: Path, card: dict, data_dir: Path) -> dict:
    """The val scores, with the card's prior and without; all None for a model that trained on val."""
    if saw_frames(card, "val", None):
        return {"trained_on_val": True, "miou": None, "mean_dice": None, "pixel_accuracy": None,
                "boundary_f": None, "per_class_iou": None, "miou_no_prior": None}
    scores = evaluate(source, data_dir)
    raw = evaluate(source, data_dir, prior=False) if card.get("logit_adjustment") else scores
    return {"trained_on_val": False, "miou": scores["miou"], "mean_dice": scores["mean_dice"],
            "pixel_accuracy": scores["pixel_accuracy"], "boundary_f": scores["mean_boundary_f"],
            "per_class_iou": {c: v["iou"] for c, v in scores["per_class"].items()},
            "miou_no_prior": raw["miou"]}


def measure(key: str, entry, data_dir: Path, image: np.ndarray, repeats: int, tests: dict) -> dict:
    """One shipped model's row."""
    source = Path(entry.source)
    model, card = load_model(source)
    training, sha = card["training"], digest(source)
    files = weight_files(source)
    prior = card.get("logit_adjustment")
    ensemble = card["architecture"]["name"] == "ensemble"
    return {
        "key": key, "title": entry.title.replace(" (from scratch)", ""), "sha256": sha,
        **val_figures(source, card, data_dir),
        "test": tests.get(sha),  # the held-back split, measured by the maintainers, or None
        "prior_tau": prior and prior["tau"],
        "card_val_miou": None if ensemble else card["val_metrics"]["miou"],  # training's measure, if any
        "parameters": card["parameters"], "weights_mb": round(sum(f.stat().st_size for f in files) / 1e6, 2),
        "input_size": card.get("input_size"),
        "cpu_ms": latency_ms(model, image, card.get("input_size"), repeats),
        "training": ensemble_summary(card) if ensemble else training_summary(training, card.get("fine_tuned_from")),
        "loss": training.get("loss", "-"), "class_weights": training.get("class_weights", "-"),
        "command": training["command"],
    }


def replaced(previous: dict | None, rows: list[dict], today: str, tests: dict) -> list[dict]:
    """The previous board's models whose weights are no longer shipped, newest first, each once, with
    their test figures if any."""
    if not previous:
        return []
    shipped = {r["command"] for r in rows}
    gone = [{**r, "replaced_on": today, "test": tests.get(r.get("sha256")),
             "measured": f"{previous['date']} on {previous['machine']}"}  # CPU ms is that machine's
            for r in previous["models"] if r["command"] not in shipped]
    return gone + [r for r in previous.get("replaced", []) if r["command"] not in shipped]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=ROOT / "weights")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get(ENV_VAR) or None,
                        help="CamVid folder (default: $SEG_CAMVID_DIR)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "leaderboard")
    parser.add_argument("--tests-only", action="store_true",
                        help="attach test_split.json's figures to the board, and write README.md and the chart "
                             "again from it, measuring nothing")
    args = parser.parse_args()
    if args.tests_only:
        return attach_tests(args.out)
    data_dir = resolve_root(args.data_dir)
    image = read_image(sorted((data_dir / "val").glob("*.png"))[0])  # 360x480
    split = read_test_split()
    zoo = Zoo(args.weights, pretrained=())
    rows = []
    for key, entry in zoo.entries.items():
        rows.append(measure(key, entry, data_dir, image, args.repeats, split["models"]))
        r = rows[-1]
        val = "trained on val" if r["trained_on_val"] else f"val mIoU {r['miou']:.4f} ({r['miou_no_prior']:.4f} raw)"
        print(f"{r['title']}: {val}, {r['cpu_ms']} ms", flush=True)
    machine = system.describe(torch.device("cpu"))
    today = datetime.date.today().isoformat()
    board_path = args.out / "leaderboard.json"
    previous = json.loads(board_path.read_text()) if board_path.is_file() else None
    board = {"split": "CamVid val (101 images, 11 classes, void ignored)", "machine": machine, "date": today,
             "reference": REFERENCE, "models": rows, "replaced": replaced(previous, rows, today, split["models"]),
             "test_source": split["source"]}
    args.out.mkdir(parents=True, exist_ok=True)
    board_path.write_text(json.dumps(board, indent=2) + "\n")
    draw_chart(board, args.out / "per_class_iou.png")
    write_markdown(board, args.out / "README.md")
    return 0


def draw_chart(board: dict, path: Path) -> None:
    """The per-class IoU chart of every model the board scored on val, replaced ones included."""
    scored = [r for r in board["models"] if r.get("per_class_iou")] + [
        {**r, "title": f"{r['title']} (replaced)"} for r in board.get("replaced", []) if r.get("per_class_iou")]
    chart = per_class_chart({r["title"]: r["per_class_iou"] for r in scored}, CLASSES,
                            title="IoU per class, CamVid val")
    Image.fromarray(chart).save(path)


def read_test_split() -> dict:
    """test_split.json: {"source", "models": {sha256: figures}}, or no figures where there is none."""
    return json.loads(TEST_SPLIT.read_text()) if TEST_SPLIT.is_file() else {"source": None, "models": {}}


def attach_tests(out: Path) -> int:
    """Give every row of the board the test split's figures recorded for its weights' digest, and draw
    its README and chart again from what it holds (nothing is measured)."""
    split = read_test_split()
    board_path = out / "leaderboard.json"
    board = json.loads(board_path.read_text())
    for row in board["models"] + board.get("replaced", []):
        row["test"] = split["models"].get(row.get("sha256"))
    board["test_source"] = split["source"]
    board_path.write_text(json.dumps(board, indent=2) + "\n")
    write_markdown(board, out / "README.md")
    draw_chart(board, out / "per_class_iou.png")
    print("\n".join(f"{r['title']}: test {r['test']}" for r in board["models"]))
    return 0


def write_markdown(board: dict, path: Path) -> None:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}"

    def row(r: dict) -> str:
        size = "x".join(map(str, r["input_size"])) if r["input_size"] else "image size"
        val = "trained on val" if r.get("trained_on_val") else pct(r["miou"])
        raw = pct(r.get("miou_no_prior")) if r.get("prior_tau") else "(no prior)"
        test = r.get("test") or {}
        test_raw = pct(test.get("miou_no_prior")) if r.get("prior_tau") else "(no prior)"
        return (f"| {r['title']} | {pct(test.get('miou'))} | {pct(test.get('miou_flip'))} | {test_raw} | {val} | "
                f"{raw} | "
                f"{pct(r['boundary_f'])} | {pct(r['pixel_accuracy'])} | {pct(r['mean_dice'])} | "
                f"{r['parameters'] / 1e6:.2f}M | {r['weights_mb']} MB | {r['cpu_ms']} | {size} | {r['training']} |")

    header = ["| model | test mIoU | test, flip | test, no prior | val mIoU | val, no prior | boundary F | pixel acc. "
              "| mean Dice | parameters | weights | CPU ms | input | trained |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    ref = board["reference"]
    reported = sorted({r["test"]["reported"] for r in board["models"] if (r.get("test") or {}).get("reported")})
    espnet = (f"| {ref['title']} | {pct(ref['miou'])} | - | - | - | - | - | - | - | "
              f"{ref['parameters'] / 1e6:.2f}M | - | "
              f"about {ref['cpu_ms']} | 360x480 | published |")
    lines = ["# Leaderboard: our from-scratch models on CamVid", "",
             f"Test: {board.get('test_source') or 'none recorded'} (reported {', '.join(reported) or '-'}). "
             f"Val: {board['split']}, measured with `python -m seg.cli.evaluate` on the shipped weights, with the "
             "logit adjustment their cards set (`seg.prior`) and without it; a model trained on val has no val "
             "score here. "
             f"CPU latency: one 360x480 image through `seg.inference.segment`, on {board['machine']}, {board['date']}. "
             "Regenerate with `python leaderboard/build.py` (`--tests-only` when only test_split.json changed).", "",
             *header, *map(row, board["models"]), espnet, "",
             f"{ref['title']}: {ref['parameters'] / 1e6:.2f}M parameters, about {ref['cpu_ms']} ms on this machine. "
             "Val figures run several points above test on CamVid (val shares its sequence with most of train), "
             "so only the test columns compare with it."]
    if board.get("replaced"):
        measured = "; ".join(sorted({r["measured"] for r in board["replaced"]}))
        lines += ["", "## Replaced models", "",
                  f"The figures they had when last measured ({measured}); their weights are in the git history.", "",
                  *header, *(row({**r, "title": f"{r['title']} (replaced {r['replaced_on']})"})
                             for r in board["replaced"])]
    lines += ["", "## IoU per class", "", "![per-class IoU](per_class_iou.png)", "",
              "| model | " + " | ".join(CLASSES) + " |", "| --- |" + " ---: |" * len(CLASSES)]
    for r in board["models"] + [{**r, "title": f"{r['title']} (replaced)"} for r in board.get("replaced", [])]:
        if r.get("per_class_iou"):
            lines.append(f"| {r['title']} | " + " | ".join(pct(r["per_class_iou"][c]) for c in CLASSES) + " |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    run(main)  # a missing or wrong CamVid folder: its message, not a traceback
