"""Parameters and CPU latency of every registered model on one 360x480 image (CamVid's size).

    python benchmarks/model_speed.py [--widths 0.5 1.0] [--repeats 10] [--markdown FILE]

Latency is the median of `--repeats` forward passes in eval mode under `torch.inference_mode`,
batch 1, after two warm-up passes, with torch's default thread count. Weights are random: speed
does not depend on them.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from report import publish  # noqa: E402

from seg.models import MODELS, build_model, count_parameters  # noqa: E402

VARIANTS = [(name, {}) for name in MODELS] + [("deeplabv3", {"output_stride": 8, "rates": (12, 24, 36)})]


def latency_ms(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    times = []
    with torch.inference_mode():
        for i in range(repeats + 2):
            start = time.perf_counter()
            model(x)
            if i >= 2:
                times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=float, nargs="+", default=(0.5, 1.0))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--markdown", type=Path, help="append the results table to this file")
    args = parser.parse_args()
    x = torch.randn(1, 3, 360, 480)
    rows = ["| model | width | parameters | latency (ms) |", "| --- | ---: | ---: | ---: |"]
    for name, kwargs in VARIANTS:
        for width in args.widths if name != "segformer_b0" else (None,):  # SegFormer-B0's widths are fixed
            options = {**kwargs, **({"width_mult": width} if width is not None else {})}
            model = build_model(name, num_classes=11, **options).eval()
            label = name + (f" (output stride {kwargs['output_stride']})" if kwargs else "")
            rows.append(f"| {label} | {width or 'B0'} | {count_parameters(model) / 1e6:.2f}M | "
                        f"{latency_ms(model, x, args.repeats):.0f} |")
            print(rows[-1], flush=True)
    publish("Model latency, one 360x480 image, batch 1, CPU", f"Median of {args.repeats} runs.", rows,
            args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
