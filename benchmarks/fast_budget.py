"""Which of our architectures fit the fast model's time budget (issue 39, goal 2): at most 1.5 times
torchvision's LR-ASPP MobileNetV3-Large on a 360x480 image with 2 CPU threads.

    python benchmarks/fast_budget.py [--rounds 15] [--markdown FILE]

The shipped ensemble cards are timed as the app runs them (their members' weights, their views).
Every model runs once per round, in turn, the reference among them (interleaved, so a slower minute
of the machine slows them all alike); each one's figure is the median of its rounds, after two warm-up
rounds. Two measures: the forward pass alone (batch 1, eval mode, `torch.inference_mode`), and the
whole prediction a person waits for, a photo in and a label map out (`seg.inference.segment`: the
tensor, the normalisation, the forward pass, the argmax), the reference through the same path. Random
weights (speed does not depend on them). A verdict per model and measure: its median over the
reference's, against 1.5.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from report import publish  # noqa: E402

from seg.checkpoint import load_model  # noqa: E402
from seg.explorer.zoo import ENSEMBLES, Zoo  # noqa: E402
from seg.inference import segment  # noqa: E402
from seg.models import build_model, count_parameters  # noqa: E402

BUDGET = 1.5  # times the reference's median
REFERENCE = "LR-ASPP MobileNetV3-Large (torchvision)"
# (label, architecture, its arguments): the shipped models' networks, and a U-Net between the two widths
# shipped
CANDIDATES = [("FCN-32s (shipped, width 0.5)", "fcn32s", {"width_mult": 0.5}),
              ("FCN-8s (shipped, width 0.5)", "fcn8s", {"width_mult": 0.5}),
              ("DeepLabv3 (shipped, width 0.5)", "deeplabv3", {"width_mult": 0.5}),
              ("U-Net (shipped, width 0.5)", "unet", {"width_mult": 0.5}),
              ("U-Net, width 0.35", "unet", {"width_mult": 0.35}),
              ("U-Net, quarter width (shipped, width 0.25)", "unet", {"width_mult": 0.25}),
              ("SegFormer-B0 (shipped)", "segformer_b0", {})]


class Reference(torch.nn.Module):
    """torchvision's LR-ASPP MobileNetV3-Large, returning its logits as our models do (not a dict)."""

    def __init__(self):
        super().__init__()
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=11)

    def forward(self, x):
        return self.net(x)["out"]


@torch.inference_mode()
def interleaved_medians(jobs: dict, *, rounds: int, warmup: int) -> dict:
    """{key: the median seconds of `jobs[key]()`}: every job run once per round, in turn, so that a slower
    minute of the machine slows them all alike; the first `warmup` rounds are not counted."""
    times = {key: [] for key in jobs}
    for round_ in range(warmup + rounds):
        for key, job in jobs.items():
            start = time.perf_counter()
            job()
            if round_ >= warmup:
                times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--markdown", type=Path, help="write the section to this file")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    models = {REFERENCE: Reference().eval()}
    models.update({label: build_model(name, num_classes=11, **kwargs).eval() for label, name, kwargs in CANDIDATES})
    zoo = Zoo(ROOT / "weights", pretrained=())
    for key in ENSEMBLES:  # the shipped ensemble cards, as the app runs them
        if key in zoo.entries:
            models[f"{zoo.entries[key].title} (weights/camvid/{key}.json)"] = load_model(zoo.entries[key].source)[0]
    x = torch.randn(1, 3, 360, 480)
    photo = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    measures = {"forward": lambda model: model(x), "prediction": lambda model: segment(model, photo)}
    median = interleaved_medians({(label, measure): (lambda run=run, model=model: run(model))
                                  for label, model in models.items() for measure, run in measures.items()},
                                 rounds=args.rounds, warmup=2)
    rows = ["| model | parameters (M) | forward (ms) | times the reference | prediction (ms) | times the reference "
            "| within 1.5 times |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for label, model in models.items():
        ratios = [median[label, m] / median[REFERENCE, m] for m in measures]
        verdict = "(the reference)" if label == REFERENCE else ("yes" if max(ratios) <= BUDGET else "no")
        rows.append(f"| {label} | {count_parameters(model) / 1e6:.2f} | {1000 * median[label, 'forward']:.0f} | "
                    f"{ratios[0]:.2f} | {1000 * median[label, 'prediction']:.0f} | {ratios[1]:.2f} | {verdict} |")
    publish("The fast model's time budget (1.5 times LR-ASPP)",
            f"A 360x480 image, batch 1, 2 threads; {args.rounds} interleaved rounds after 2 warm-up rounds, the "
            "median of each; random weights. Forward: the network alone on a tensor. Prediction: a photo in, a "
            "label map out (seg.inference.segment), the reference through the same path. Within the budget: both "
            "ratios at most 1.5.", rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
