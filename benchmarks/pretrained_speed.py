"""Speed and peak memory of the pretrained adapters on this machine's CPU.

    python benchmarks/pretrained_speed.py [--clicks 30] [--markdown FILE]

Measures, each model in its own process (so peak memory is that model's alone):
- SAM vit_t (MobileSAM) and vit_b: image-embedding time, and per-click time after the embedding
  (a positive point at a random place, multimask), p50 and p95;
- SegFormer-B0 (the ADE20K configuration, 150 classes): time per 512x512 image;
- Mask2Former with a Swin-T backbone (the swin-tiny Cityscapes-semantic architecture, 19 classes, 100
  queries): time per 360x480 photo, which its processor resizes to a 512 px shorter side.
Weights are random (the real ones are not reachable from here); time and memory do not depend on
their values, only on the architecture.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
MODELS = ("vit_t", "vit_b", "segformer-b0", "mask2former-swin-t")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def measure_sam(variant: str, clicks: int) -> dict:
    import torch

    from seg.sam.model import Sam
    from seg.sam.weights import sam_architecture

    model = sam_architecture(variant)
    sam = Sam(model, variant=variant, cache_size=4)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (360, 480, 3), dtype=np.uint8) for _ in range(3)]
    embed = []
    for img in images:
        start = time.perf_counter()
        sam.embed(img)
        embed.append(time.perf_counter() - start)
    click = []
    for _ in range(clicks):
        x, y = rng.uniform(0, 480), rng.uniform(0, 360)
        start = time.perf_counter()
        sam.predict(images[0], points=[[x, y]], labels=[1])
        click.append(time.perf_counter() - start)
    assert sam.encoder_runs == 3, "the clicks must reuse the cached embedding"
    return {"embed_ms": 1000 * statistics.median(embed[1:]), "click_p50_ms": 1000 * percentile(click, 50),
            "click_p95_ms": 1000 * percentile(click, 95), "threads": torch.get_num_threads()}


def median_ms(run, repeats: int) -> float:
    """Median wall time of `run()` over `repeats` calls, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure_segformer(repeats: int = 5) -> dict:
    import tempfile

    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    from seg.pretrained.segformer import SegFormerSegmenter

    # SegformerConfig's defaults are the B0 architecture (hidden sizes 32/64/160/256, decoder 256)
    config = SegformerConfig(num_labels=150, id2label={i: f"class{i}" for i in range(150)},
                             label2id={f"class{i}": i for i in range(150)})
    with tempfile.TemporaryDirectory() as folder:
        SegformerForSemanticSegmentation(config).save_pretrained(folder)
        SegformerImageProcessor(size={"height": 512, "width": 512}).save_pretrained(folder)
        segformer = SegFormerSegmenter.load(folder)
    image = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    return {"image_512_ms": median_ms(lambda: segformer.segment(image), repeats), "threads": torch.get_num_threads()}


def measure_mask2former(repeats: int = 5) -> dict:
    import tempfile

    import torch
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    from seg.pretrained.mask2former import Mask2FormerSegmenter

    # Swin-T (embed 96, depths 2-2-6-2) under Mask2Former's own defaults (6 pixel-decoder layers,
    # 10 decoder layers, 100 queries, width 256): the swin-tiny semantic checkpoints' architecture
    backbone = SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    names = [f"class{i}" for i in range(19)]
    config = Mask2FormerConfig(backbone_config=backbone, num_labels=19, id2label=dict(enumerate(names)),
                               label2id={n: i for i, n in enumerate(names)})
    with tempfile.TemporaryDirectory() as folder:
        Mask2FormerForUniversalSegmentation(config).save_pretrained(folder)
        Mask2FormerImageProcessor(size={"shortest_edge": 512, "longest_edge": 1024}).save_pretrained(folder)
        m2f = Mask2FormerSegmenter.load(folder)
    image = np.random.default_rng(0).integers(0, 256, (360, 480, 3), dtype=np.uint8)
    return {"photo_ms": median_ms(lambda: m2f.segment(image), repeats), "threads": torch.get_num_threads()}


def run_one(model: str, clicks: int) -> dict:
    measure = {"segformer-b0": measure_segformer, "mask2former-swin-t": measure_mask2former}.get(model)
    result = measure() if measure else measure_sam(model, clicks)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--markdown", type=Path, help="append the results table to this file")
    parser.add_argument("--one", choices=MODELS, help=argparse.SUPPRESS)  # internal: measure one model, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.clicks)))
        return 0
    from report import publish

    results = {}
    for model in MODELS:
        out = subprocess.run([sys.executable, __file__, "--one", model, "--clicks", str(args.clicks)],
                             capture_output=True, text=True, check=True)
        results[model] = json.loads(out.stdout.strip().splitlines()[-1])
        print(model, results[model], flush=True)
    rows = ["| model | image embedding (ms) | click p50 (ms) | click p95 (ms) | 512x512 image (ms) "
            "| 360x480 photo (ms) | peak memory (MiB) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for model, r in results.items():
        cells = [f"{r[k]:.0f}" if k in r else "" for k in ("embed_ms", "click_p50_ms", "click_p95_ms", "image_512_ms",
                                                            "photo_ms")]
        rows.append(f"| {model} | " + " | ".join(cells) + f" | {r['peak_rss_mib']:.0f} |")
    publish("Pretrained adapters on the CPU",
            f"SAM: image embedding, then {args.clicks} clicks on a 360x480 image; SegFormer-B0: one 512x512 image; "
            "Mask2Former Swin-T: one 360x480 photo (processed at 512x683); "
            "peak resident memory of each model's own process. Random weights (speed does not depend on their "
            "values).", rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
