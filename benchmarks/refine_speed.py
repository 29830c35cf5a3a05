"""Refine with SAM: the seconds to refine a semantic model's prediction on a 720x960 photo whose map
has at least 30 regions, the 30 largest prompted (the app's cap), on this machine's cores.

    python benchmarks/refine_speed.py [--rounds 5] [--markdown FILE]

A random-weight MobileSAM (the real weights are not reachable here; the work does not depend on
them) with its decoder exported to ONNX, as the app runs it: the batched decoder on every core.
The label map is a 6x5 checkerboard of two classes inside a border of a third (31 regions, so the
cap is what limits the prompts), and `min_iou` is 0 so that every region's mask is enlarged and
painted: the figures are those of the whole path. Measured in process, interleaved round by round:
- cold: the photo new to SAM, its embedding computed first (Compare's refinement of a new photo);
- warm: its embedding already cached (the photo read by the Prompt SAM tab, or refined before);
and, for the warm path, where its time goes: finding the regions, decoding the prompts, enlarging
the chosen masks.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from app_speed import random_sam_checkpoint, street  # noqa: E402
from report import publish, target  # noqa: E402

from seg.sam.model import Sam  # noqa: E402
from seg.sam.refine import MAX_REGIONS, find_regions, refine  # noqa: E402
from seg.sam.regions import SamRegions  # noqa: E402

SIZE = (720, 960)


def checkerboard(size: tuple[int, int]) -> np.ndarray:
    """A 6x5 checkerboard of classes 1 and 8 (30 blocks, none touching another of its class but by a
    corner) inside a 40 px border of class 3: 31 regions."""
    h, w = size
    labels = np.full(size, 3, np.uint8)
    rows, cols = np.linspace(40, h - 40, 6).astype(int), np.linspace(40, w - 40, 7).astype(int)
    for i in range(5):
        for j in range(6):
            labels[rows[i]:rows[i + 1], cols[j]:cols[j + 1]] = (1, 8)[(i + j) % 2]
    return labels


GOAL_SECONDS = 3  # a person waits for a refinement, SAM's reading of the photo included


class Timed:
    """SamRegions with its decoding and enlarging timed."""

    def __init__(self, decoder: SamRegions):
        self.decoder, self.decode, self.enlarge = decoder, 0.0, 0.0

    def candidates(self, boxes, points):
        started = time.perf_counter()
        out = self.decoder.candidates(boxes, points)
        self.decode += time.perf_counter() - started
        return out

    def full_size(self, logits):
        started = time.perf_counter()
        out = self.decoder.full_size(logits)
        self.enlarge += time.perf_counter() - started
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    labels = checkerboard(SIZE)
    assert len(find_regions(labels, max_regions=100)) > MAX_REGIONS
    seconds = {"cold": [], "warm": []}
    parts = {"regions": [], "decode": [], "enlarge": []}
    with tempfile.TemporaryDirectory() as tmp:
        sam = Sam.load("vit_t", random_sam_checkpoint(Path(tmp)), download=False, onnx_dir=Path(tmp) / "onnx",
                       everything_threads=cores, cache_size=2)
        photos = [street(SIZE) for _ in range(args.rounds + 1)]
        for n, photo in enumerate(photos):
            photo[..., 0] = (photo[..., 0].astype(int) + n) % 256  # each round a photo SAM has not read
            started = time.perf_counter()
            refined = refine(labels, SamRegions(sam, photo), min_iou=0.0, started=started)
            cold = time.perf_counter() - started
            started = time.perf_counter()
            timed = Timed(SamRegions(sam, photo))
            embedded = time.perf_counter() - started  # from the cache: the warm path's start
            refined = refine(labels, timed, min_iou=0.0, started=started)
            warm = time.perf_counter() - started
            found = time.perf_counter()
            find_regions(labels)
            regions = time.perf_counter() - found
            if n == 0:
                continue  # the first round warms the sessions
            seconds["cold"].append(cold)
            seconds["warm"].append(warm)
            parts["regions"].append(regions)
            parts["decode"].append(timed.decode + embedded)
            parts["enlarge"].append(timed.enlarge)
    assert len(refined.regions) == MAX_REGIONS and all(r["painted"] for r in refined.regions)
    median = {k: statistics.median(v) for k, v in {**seconds, **parts}.items()}
    rows = ["| refinement of a 720x960 photo, 30 regions | seconds (median) |", "| --- | ---: |",
            f"| cold: SAM's embedding of the photo, then the refinement | {median['cold']:.2f} |",
            f"| warm: the embedding cached | {median['warm']:.2f} |",
            f"| of which: finding the regions (connected components, interior points) | {median['regions']:.2f} |",
            f"| of which: decoding 30 box-and-point prompts (ONNX Runtime, {cores} threads) | {median['decode']:.2f} |",
            f"| of which: enlarging the 30 chosen masks to 720x960 | {median['enlarge']:.2f} |"]
    missed: list[str] = []
    rows += ["", f"A refinement on a photo SAM has not read: **{median['cold']:.2f} s** "
                 f"{target(missed, 'refinement (cold)', median['cold'], GOAL_SECONDS, 's')}."]
    publish("Refine with SAM: a model's regions as SAM's prompts",
            f"MobileSAM with random weights and its decoder exported (the app's path), every region painted; "
            f"median of {args.rounds} rounds, a new photo each round; in process, not in a browser; "
            f"`benchmarks/refine_speed.py`.", rows, args.markdown)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
