"""The Leaderboard tab: the shipped models' figures, read from leaderboard/ (built by
leaderboard/build.py from `python -m seg.cli.evaluate` on the shipped weights, with the held-back test
split's figures from leaderboard/test_split.json)."""

import json
import re
from pathlib import Path

import gradio as gr
import pandas as pd

from ..context import ROOT

LEADERBOARD = ROOT / "leaderboard"
SIDEWAYS = "*The table scrolls sideways: swipe it to see every column.*"  # shown on a phone alone


def compact(training: str) -> str:
    """A card's training summary with its machines named briefly: "5 min on 2 CPU cores" for
    "5 min on Intel(R) Xeon(R) Processor (2 cores, torch ... with 2 threads)", "on an H100"."""
    training = re.sub(r"on [^;]*?\((\d+) cores, torch [^)]*\)", r"on \1 CPU cores", training)
    return re.sub(r"on NVIDIA (\S+)[^;,)]*", r"on an \1", training)


def leaderboard(folder: Path = LEADERBOARD) -> tuple[str, pd.DataFrame]:
    """The caption and the table of `folder`/leaderboard.json (percentages, one decimal): the shipped
    models, the published reference, then the models they replaced."""
    path = folder / "leaderboard.json"
    if not path.is_file():
        return "No leaderboard yet: run `python leaderboard/build.py`.", pd.DataFrame(columns=["model"])
    board = json.loads(path.read_text())
    ref = board["reference"]
    reported = sorted({m["test"]["reported"] for m in board["models"] if (m.get("test") or {}).get("reported")})
    caption = (f"Our from-scratch models on **CamVid's test split**: 233 frames that no model or choice here ever "
               f"saw, scored by the project's maintainers on the shipped weights "
               f"(reported {', '.join(reported) or '-'}). "
               f"*flip*: with the photo's mirror image averaged in (test-time augmentation); *no prior*: without "
               f"the logit adjustment the card sets. {ref['title']} is there for scale. "
               f"Val columns: {board['split']}, run here with `python -m seg.cli.evaluate`; they read several points "
               f"above test, and a model fine-tuned on val frames has none. CPU ms: one 360x480 image on "
               f"{board['machine']}, {board['date']}. How each was trained: `docs/training.md`.")
    measured = sorted({m["measured"] for m in board.get("replaced", [])})
    if measured:  # their CPU ms come from another day, maybe another machine
        caption += f" Replaced models keep the figures of their last measurement ({'; '.join(measured)})."
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}"  # noqa: E731 -- text: "62.0", not the number 62

    def row(m: dict, title: str) -> dict:
        test = m.get("test") or {}
        return {"model": title, "test mIoU": pct(test.get("miou")), "flip": pct(test.get("miou_flip")),
                "no prior": pct(test.get("miou_no_prior")) if m.get("prior_tau") else "-",
                "val mIoU": "fine-tuned on val" if m.get("trained_on_val") else pct(m["miou"]),
                "val boundary F": pct(m["boundary_f"]), "params (M)": f"{m['parameters'] / 1e6:.2f}",
                "CPU ms": f"{m['cpu_ms']:.0f}", "trained": compact(m["training"])}

    reference = {"model": ref["title"], "test mIoU": pct(ref["miou"]), "flip": "-", "no prior": "-", "val mIoU": "-",
                 "val boundary F": "-", "params (M)": f"{ref['parameters'] / 1e6:.2f}", "CPU ms": f"{ref['cpu_ms']}",
                 "trained": "published figures"}
    table = pd.DataFrame([row(m, m["title"]) for m in board["models"]] + [reference]
                         + [row(m, f"{m['title']} (replaced {m['replaced_on']})") for m in board.get("replaced", [])])
    return caption, table


def layout(folder: Path = LEADERBOARD) -> None:
    """The tab's components (it has no events)."""
    caption, table = leaderboard(folder)
    gr.Markdown(caption)
    gr.Markdown(SIDEWAYS, elem_classes="phone-only")
    with gr.Column(elem_classes="sideways"):  # on a phone: readable columns, scrolled sideways
        # the training summary gets the room it needs; the figures, what theirs need. Every row in the
        # page's flow: Gradio's default height (500 px) scrolled the last rows out of sight inside the table
        gr.Dataframe(table, interactive=False, wrap=True, elem_id="leaderboard", max_height=10_000,
                     column_widths=["15%", "7%", "6%", "7%", "9%", "8%", "7%", "6%", "35%"])
    if (folder / "per_class_iou.png").is_file():  # the chart carries its own title
        with gr.Column(elem_classes="sideways"):
            gr.Image(str(folder / "per_class_iou.png"), show_label=False, interactive=False, elem_classes="chart",
                     alt_text="IoU per class on CamVid val for each shipped model scored there (a bar chart)")
