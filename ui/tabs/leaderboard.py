"""The Leaderboard tab: the shipped models' figures, read from leaderboard/ (built by
leaderboard/build.py from `python -m seg.evaluate` on the shipped weights)."""

import json
from pathlib import Path

import gradio as gr
import pandas as pd

from ..context import ROOT

LEADERBOARD = ROOT / "leaderboard"


def leaderboard(folder: Path = LEADERBOARD) -> tuple[str, pd.DataFrame]:
    """The caption and the table of `folder`/leaderboard.json (percentages, one decimal): the shipped
    models, then the ones they replaced."""
    path = folder / "leaderboard.json"
    if not path.is_file():
        return "No leaderboard yet: run `python leaderboard/build.py`.", pd.DataFrame(columns=["model"])
    board = json.loads(path.read_text())
    ref = board["reference"]
    caption = (f"Our from-scratch models on {board['split']}, measured with `python -m seg.evaluate` on the shipped "
               f"weights (scores in %), with the logit adjustment their cards set and without it; CPU ms: one "
               f"360x480 image on {board['machine']}, {board['date']}. A model trained on val has no val score. "
               f"Test: {board.get('test_source') or 'none recorded'}. For scale: {ref['title']} scores "
               f"{100 * ref['miou']:.1f} mIoU at about {ref['cpu_ms']} ms. How they were trained: `docs/training.md`.")
    measured = sorted({m["measured"] for m in board.get("replaced", [])})
    if measured:  # their CPU ms come from another day, maybe another machine
        caption += f" Replaced models keep the figures of their last measurement ({'; '.join(measured)})."
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}"  # noqa: E731 -- text: "62.0", not the number 62

    def row(m: dict, title: str) -> dict:
        return {"model": title, "val mIoU": "trained on val" if m.get("trained_on_val") else pct(m["miou"]),
                "without prior": pct(m.get("miou_no_prior")) if m.get("prior_tau") else "-",
                "test mIoU": pct((m.get("test") or {}).get("miou")),
                "boundary F": pct(m["boundary_f"]), "pixel acc.": pct(m["pixel_accuracy"]),
                "params (M)": f"{m['parameters'] / 1e6:.2f}", "CPU ms": f"{m['cpu_ms']:.0f}", "trained": m["training"]}

    table = pd.DataFrame([row(m, m["title"]) for m in board["models"]]
                         + [row(m, f"{m['title']} (replaced {m['replaced_on']})") for m in board.get("replaced", [])])
    return caption, table


def layout(folder: Path = LEADERBOARD) -> None:
    """The tab's components (it has no events)."""
    caption, table = leaderboard(folder)
    gr.Markdown(caption)
    gr.Dataframe(table, interactive=False, wrap=True, elem_id="leaderboard")
    if (folder / "per_class_iou.png").is_file():  # the chart carries its own title
        gr.Image(str(folder / "per_class_iou.png"), show_label=False, interactive=False)
