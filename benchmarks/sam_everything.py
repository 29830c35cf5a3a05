"""SAM's automatic masks ("Find every object"): prompts decoded, seconds and masks for each way of
finding them, on this machine's cores.

    python benchmarks/sam_everything.py [--rounds 3] [--markdown FILE]

A random-weight MobileSAM (the real weights are not reachable here) on a 360x480 photo, its
embedding computed once beforehand. Random weights predict an IoU near 0.15 and no stable mask, so
every variant runs with both thresholds at 0 and SAM's box NMS at 0.7: every mask goes through the
whole path (filters, suppression, enlarging), and the figures are those of the work, not of how
good the masks are. The variants, interleaved round by round:
- segment-anything's `SamAutomaticMaskGenerator` on the same model, 8x8 grid, 64 prompts per batch
  (what the app ran before; its `generate` embeds the photo again, so its encoder time, measured
  apart, is taken off);
- ours, the 8x8 grid decoded by PyTorch (the `BatchGraph` module, batches of 16);
- ours, the 8x8 grid decoded by ONNX Runtime, one thread and every core;
- ours, a 4x4 grid first, then only the 8x8 grid's points no mask covers yet (ONNX, every core).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from app_speed import random_sam_checkpoint, street  # noqa: E402
from report import publish  # noqa: E402

from seg.sam.everything import Everything, everything, torch_decoder  # noqa: E402
from seg.sam.model import Sam  # noqa: E402
from seg.sam.onnx_decoder import BatchDecoder  # noqa: E402
from seg.sam.weights import sam_package  # noqa: E402


class Counting:
    """A batch decoder that counts the prompts it decodes."""

    def __init__(self, decode):
        self.decode, self.prompts = decode, 0

    def __call__(self, features, coords, labels):
        self.prompts += len(coords)
        return self.decode(features, coords, labels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    with tempfile.TemporaryDirectory() as tmp:
        sam = Sam.load("vit_t", random_sam_checkpoint(Path(tmp)), download=False, onnx_dir=Path(tmp) / "onnx")
        image = street((360, 480))
        started = time.perf_counter()
        sam.embed(image)
        encoder = time.perf_counter() - started
        low = dict(pred_iou_thresh=0, stability_score_thresh=0)
        fine, coarse = Everything(points_per_side=8, **low), Everything(points_per_side=8, coarse=4, **low)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            generator = sam_package("mobile_sam").SamAutomaticMaskGenerator(
                sam.model, points_per_side=8, pred_iou_thresh=0, stability_score_thresh=0)
        onnx = {threads: BatchDecoder(sam.onnx.batch, threads=threads) for threads in sorted({1, cores})}
        variants = {
            "segment-anything's generator (PyTorch)": lambda: (generator.generate(image), 64, encoder),
            "ours, PyTorch, 8x8": lambda: run(sam, image, fine, torch_decoder(sam.model)),
            **{f"ours, ONNX Runtime {t} thread{'s' * (t > 1)}, 8x8": (lambda t=t: run(sam, image, fine, onnx[t]))
               for t in onnx},
            f"ours, ONNX Runtime {cores} threads, 4x4 then the uncovered of 8x8":
                lambda: run(sam, image, coarse, onnx[cores]),
        }
        for variant in variants.values():
            variant()  # warm: sessions, caches
        seconds = {name: [] for name in variants}
        found = {}
        for _ in range(args.rounds):
            for name, variant in variants.items():
                started = time.perf_counter()
                masks, prompts, extra = variant()
                seconds[name].append(time.perf_counter() - started - extra)
                found[name] = (prompts, len(masks))
    rows = ["| variant | prompts | masks | seconds (median) |", "| --- | ---: | ---: | ---: |"]
    rows += [f"| {name} | {found[name][0]} | {found[name][1]} | {statistics.median(s):.2f} |"
             for name, s in seconds.items()]
    rows += ["", f"The encoder, once per photo and not counted above: {encoder:.2f} s."]
    publish("Find every object: SAM's automatic masks on a 360x480 photo",
            f"MobileSAM with random weights, thresholds at 0 so that every mask takes the whole path; the "
            f"embedding computed beforehand; median of {args.rounds} rounds, variants interleaved; "
            f"`benchmarks/sam_everything.py`.", rows, args.markdown)
    return 0


def run(sam: Sam, image: np.ndarray, settings: Everything, decode) -> tuple[list, int, float]:
    counting = Counting(decode)
    return everything(sam, image, settings, decode=counting), counting.prompts, 0.0


if __name__ == "__main__":
    sys.exit(main())
