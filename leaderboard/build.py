"""Measure every shipped CamVid model and write the leaderboard: leaderboard.json, README.md, per_class_iou.png.

    python leaderboard/build.py [--weights weights] [--data-dir $SEG_CAMVID_DIR] [--repeats 20]

Accuracy comes from `python -m seg.evaluate` on CamVid val (101 images, scored at 360x480, void
ignored, boundary tolerance 2 px), run on the shipped files themselves. Latency is the whole
`seg.inference.segment` call on one 360x480 image (resize to the model's input size, forward,
upsample the logits, argmax): the median of --repeats runs after two warm-ups, batch 1, torch's
default threads, on this machine with nothing else running. Training time and hardware are read
from each model's card.
"""

import argparse
import datetime
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
from seg.checkpoint import load_model  # noqa: E402
from seg.data.camvid import CLASSES, ENV_VAR, resolve_root  # noqa: E402
from seg.data.io import read_image  # noqa: E402
from seg.explorer.zoo import Zoo  # noqa: E402
from seg.inference import segment  # noqa: E402

# A published lightweight CamVid network measured on this same machine (see the training issue):
# ESPNet, 0.36M parameters, 57.2% mIoU on the CamVid *test* split, about 95 ms per 360x480 image.
REFERENCE = {"title": "ESPNet (published; test split)", "miou": 0.572, "parameters": 360_000, "cpu_ms": 95}


def latency_ms(model, image: np.ndarray, input_size, repeats: int) -> float:
    times = []
    for i in range(repeats + 2):
        started = time.perf_counter()
        segment(model, image, input_size=input_size)
        if i >= 2:
            times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 1)


def training_summary(training: dict) -> str:
    """e.g. "best at epoch 81 of 99 run (100 planned), 7 min on <hardware>"."""
    planned, run = training["epochs"], training.get("epochs_completed", training["epochs"])
    epochs = f"{run} run ({planned} planned)" if run < planned else f"{planned}"
    return f"best at epoch {training['epoch']} of {epochs}, {training['time_s'] / 60:.0f} min on {training['hardware']}"


def evaluate(path: Path, data_dir: Path) -> dict:
    """`python -m seg.evaluate` on val, exactly as a user runs it; its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.json"
        subprocess.run([sys.executable, "-m", "seg.evaluate", "--checkpoint", str(path), "--data-dir", str(data_dir),
                        "--split", "val", "--device", "cpu", "--json", str(out)], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=ROOT / "weights")
    parser.add_argument("--data-dir", type=Path, default=os.environ.get(ENV_VAR) or None,
                        help="CamVid folder (default: $SEG_CAMVID_DIR)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "leaderboard")
    args = parser.parse_args()
    data_dir = resolve_root(args.data_dir)
    image = read_image(sorted((data_dir / "val").glob("*.png"))[0])  # 360x480
    zoo = Zoo(args.weights, pretrained=())
    rows = []
    for key, entry in zoo.entries.items():
        source = Path(entry.source)
        model, card = load_model(source)
        scores = evaluate(source, data_dir)
        training = card["training"]
        files = [source] if source.is_file() else list(source.iterdir())
        rows.append({
            "key": key, "title": entry.title.replace(" (from scratch)", ""),
            "miou": scores["miou"], "mean_dice": scores["mean_dice"], "pixel_accuracy": scores["pixel_accuracy"],
            "boundary_f": scores["mean_boundary_f"],
            "per_class_iou": {c: v["iou"] for c, v in scores["per_class"].items()},
            "card_val_miou": card["val_metrics"]["miou"],  # what training measured before storing the weights
            "parameters": card["parameters"], "weights_mb": round(sum(f.stat().st_size for f in files) / 1e6, 2),
            "input_size": card.get("input_size"),
            "cpu_ms": latency_ms(model, image, card.get("input_size"), args.repeats),
            "training": training_summary(training),
            "loss": training["loss"], "class_weights": training["class_weights"], "command": training["command"],
        })
        print(f"{rows[-1]['title']}: val mIoU {rows[-1]['miou']:.4f}, boundary F {rows[-1]['boundary_f']:.4f}, "
              f"{rows[-1]['cpu_ms']} ms", flush=True)
    machine = system.describe(torch.device("cpu"))
    board = {"split": "CamVid val (101 images, 11 classes, void ignored)", "machine": machine,
             "date": datetime.date.today().isoformat(), "reference": REFERENCE, "models": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "leaderboard.json").write_text(json.dumps(board, indent=2) + "\n")
    chart = per_class_chart({r["title"]: r["per_class_iou"] for r in rows}, CLASSES,
                            title="IoU per class, CamVid val")
    Image.fromarray(chart).save(args.out / "per_class_iou.png")
    write_markdown(board, args.out / "README.md")
    return 0


def write_markdown(board: dict, path: Path) -> None:
    def pct(x):
        return "-" if x is None else f"{100 * x:.1f}"

    lines = ["# Leaderboard: our from-scratch models on CamVid", "",
             f"{board['split']}, measured with `python -m seg.evaluate` on the shipped weights; CPU latency of one "
             f"360x480 image through `seg.inference.segment`, on {board['machine']}, {board['date']}. "
             "Regenerate with `python leaderboard/build.py`.", "",
             "| model | val mIoU | boundary F | pixel acc. | mean Dice | parameters | weights | CPU ms | input "
             "| trained |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in board["models"]:
        size = "x".join(map(str, r["input_size"])) if r["input_size"] else "image size"
        lines.append(f"| {r['title']} | {pct(r['miou'])} | {pct(r['boundary_f'])} | {pct(r['pixel_accuracy'])} | "
                     f"{pct(r['mean_dice'])} | {r['parameters'] / 1e6:.2f}M | {r['weights_mb']} MB | {r['cpu_ms']} | "
                     f"{size} | {r['training']} |")
    ref = board["reference"]
    lines += ["", f"Reference: {ref['title']}: {pct(ref['miou'])} mIoU on the *test* split, "
              f"{ref['parameters'] / 1e6:.2f}M parameters, about {ref['cpu_ms']} ms on this machine. Val figures run "
              "several points above test on CamVid, so they are not directly comparable.", "",
              "## IoU per class", "", "![per-class IoU](per_class_iou.png)", "",
              "| model | " + " | ".join(CLASSES) + " |", "| --- |" + " ---: |" * len(CLASSES)]
    for r in board["models"]:
        lines.append(f"| {r['title']} | " + " | ".join(pct(r["per_class_iou"][c]) for c in CLASSES) + " |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
