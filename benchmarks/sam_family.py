"""What each SAM of the family costs on this machine's CPU: reading a photo, answering a prompt, memory.

    python benchmarks/sam_family.py [--prompts 10] [--markdown FILE]

Each model in its own process (so peak memory is that model's alone), through the app's own classes
(`seg.sam.model.Sam` for MobileSAM, `seg.sam.family.FamilySam` and `seg.sam.concepts.ConceptSam`),
on a 360x480 photo (a CamVid frame's size): the encoder's time on new photos (median of 2, after one),
then the time of a prompt on the photo read last (a positive point at a random place; for SAM 3's text
model, one phrase), p50 and p95. The architectures are the released checkpoints' (transformers'
default configurations, which name them); the weights are random, as the real ones are not
reachable from here: time and memory do not depend on their values.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# name -> the released checkpoint whose architecture it has (transformers' default configuration; for
# EdgeTAM, its default with the timm backbone the checkpoint names, RepViT-M1)
MODELS = {
    "MobileSAM (vit_t)": "dhkim2810/MobileSAM",
    "SAM ViT-B": "facebook/sam-vit-base",
    "SAM-HQ ViT-B": "syscv-community/sam-hq-vit-base",
    "SAM 2.1 Hiera-T": "facebook/sam2.1-hiera-tiny",
    "EdgeTAM": "yonigozlan/EdgeTAM-hf",
    "SAM 3 (clicks: its tracker)": "facebook/sam3",
    "SAM 3 (text: its detector)": "facebook/sam3",
}


def family(name: str, folder: str):
    """The model `name` at its checkpoint's architecture, random weights, saved in `folder` and loaded
    back as the app loads it."""
    import transformers as T

    from seg.sam.concepts import ConceptSam
    from seg.sam.family import FamilySam

    if name == "SAM ViT-B":
        model, processor = T.SamModel(T.SamConfig()), T.SamProcessor(T.SamImageProcessor())
    elif name == "SAM-HQ ViT-B":
        model, processor = T.SamHQModel(T.SamHQConfig()), T.SamHQProcessor(T.SamImageProcessor())
    elif name == "SAM 2.1 Hiera-T":
        model, processor = T.Sam2Model(T.Sam2Config()), T.Sam2Processor(T.Sam2ImageProcessor())
    elif name == "EdgeTAM":  # transformers' default names timm's resnet50; the checkpoint's backbone is RepViT-M1
        backbone = dict(model_type="timm_wrapper", architecture="repvit_m1.dist_in1k", do_pooling=False,
                        num_classes=1000, model_args=dict(features_only=True, out_indices=[0, 1, 2, 3], in_chans=3))
        model = T.EdgeTamModel(T.EdgeTamConfig(vision_config=dict(backbone_config=backbone)))
        processor = T.Sam2Processor(T.Sam2ImageProcessor())
    elif name.startswith("SAM 3 (clicks"):
        model = T.Sam3TrackerModel(T.Sam3TrackerConfig())
        processor = T.Sam3TrackerProcessor(T.Sam2ImageProcessor(size={"height": 1008, "width": 1008}))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from tiny_sams import byte_level  # a tokenizer built here: the real one's vocabulary is not reachable

        tokenizer = byte_level(Path(folder))
        model = T.Sam3Model(T.Sam3Config())
        processor = T.Sam3Processor(T.Sam3ImageProcessor(), tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    return (ConceptSam if name.startswith("SAM 3 (text") else FamilySam).load(folder)


def measure(name: str, prompts: int) -> dict:
    import torch

    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (360, 480, 3), dtype=np.uint8) for _ in range(3)]
    with tempfile.TemporaryDirectory() as folder:
        if name.startswith("MobileSAM"):
            from seg.sam.model import Sam
            from seg.sam.weights import sam_architecture

            sam = Sam(sam_architecture("vit_t"), variant="vit_t", cache_size=4)
        else:
            sam = family(name, folder)
        params = sum(p.numel() for p in sam.model.parameters())
        text = name.startswith("SAM 3 (text")
        read = sam.encode if text else sam.embed
        encode = []
        for photo in photos:
            started = time.perf_counter()
            read(photo)
            encode.append(time.perf_counter() - started)
        times = []
        for _ in range(prompts):
            x, y = rng.uniform(0, 480), rng.uniform(0, 360)
            started = time.perf_counter()
            if text:  # on the photo read last: SAM 3's detector keeps two photos' features
                sam.find(photos[-1], "car", threshold=0.5)
            else:
                sam.predict(photos[-1], points=[[x, y]], labels=[1])
            times.append(time.perf_counter() - started)
        assert sam.encoder_runs == 3, "the prompts must reuse the photo's embedding"
    return {"params_m": params / 1e6, "encode_s": statistics.median(encode[1:]),
            "prompt_p50_ms": 1000 * float(np.percentile(times, 50)),
            "prompt_p95_ms": 1000 * float(np.percentile(times, 95)),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--markdown", type=Path, help="append the results table to this file")
    parser.add_argument("--one", choices=MODELS, help=argparse.SUPPRESS)  # internal: one model, JSON out
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.prompts)))
        return 0
    from report import publish

    rows = ["| model | checkpoint's architecture | parameters (M) | reading a new photo (s) | a prompt p50 (ms) "
            "| a prompt p95 (ms) | peak memory (MiB) |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, source in MODELS.items():
        out = subprocess.run([sys.executable, __file__, "--one", name, "--prompts", str(args.prompts)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(name, "failed:", out.stderr.strip().splitlines()[-1], flush=True)
            rows.append(f"| {name} | {source} | failed: {out.stderr.strip().splitlines()[-1][:80]} | | | | |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(name, r, flush=True)
        rows.append(f"| {name} | {source} | {r['params_m']:.1f} | {r['encode_s']:.2f} | {r['prompt_p50_ms']:.0f} "
                    f"| {r['prompt_p95_ms']:.0f} | {r['peak_rss_mib']:.0f} |")
    publish("The SAM family on the CPU",
            f"A 360x480 photo; reading a new photo (median of 2, after one), then {args.prompts} prompts on it: "
            "a positive point at a random place (multimask), or for SAM 3's text model the phrase \"car\" "
            "(its text encoder and detector; its masks at the photo's size). Peak resident memory of each "
            "model's own process. Random weights at the released checkpoints' architectures (speed does not "
            "depend on their values); EdgeTAM's backbone is RepViT-M1, the one its checkpoint names "
            "(transformers' default configuration names another).",
            rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
