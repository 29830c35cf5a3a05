"""What one request can cost in memory at its worst, measured in a fresh process, and docs/deploy.md's
table of those figures held to the measurement; a request whose output would pass the cap is
refused before anything is decoded."""

import json
import os
import re

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_module, upload
from ui.limits import LIMITS

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)


def readme_memory() -> dict[str, float]:
    """endpoint -> MiB, from docs/deploy.md's table of worst-case memory."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    text = text[text.index("### Memory per request"):]
    end = text.find("\n#", 1)
    text = text if end < 0 else text[:end]  # that section only (the file's last, or not)
    return {name: float(mib) for name, mib in re.findall(r"^\| `/(\w+)` \|[^|]+\| ([\d.]+) MiB \|", text, re.M)}


def test_each_endpoints_worst_case_memory_is_the_readmes(weights_dir, vit_t_checkpoint, tmp_path):
    env = {"SEG_WEIGHTS_DIR": str(ROOT / "weights"), "SEG_SAM_CHECKPOINT": str(vit_t_checkpoint),
           "SEG_SAM_VARIANT": "vit_t", "SEG_PRETRAINED_MODELS": "", "SEG_CACHE_DIR": str(tmp_path / "cache"),
           "SEG_BROWSER_DECODER": "0", "SEG_OUTPUTS_DIR": str(tmp_path / "outputs")}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SEG_")}, **env}
    done = run_module("tests.memory_probe", str(tmp_path), env=env)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    print(measured)
    assert measured["side"] ** 2 <= LIMITS.image_pixels and measured["objects"] * measured["side"] ** 2 <= \
        LIMITS.output_pixels
    stated = readme_memory()
    text = (ROOT / "docs" / "deploy.md").read_text()
    child = float(re.search(r"a decoding child's peak of ([\d.]+) MiB", text).group(1))
    assert measured["decoding_MiB"] <= child <= measured["decoding_MiB"] * 1.5 + 32, measured["decoding_MiB"]
    assert stated.keys() == measured["MiB"].keys()
    for endpoint, mib in measured["MiB"].items():
        # docs/deploy.md states the largest seen; a figure far above the measurement would be as wrong as one
        # below it (the high-water mark of one request varies by up to a quarter between runs here)
        assert mib <= stated[endpoint] <= mib * 1.5 + 96, f"/{endpoint}: measured {mib:.0f} MiB, stated " \
                                                           f"{stated[endpoint]:.0f}"


def test_more_objects_than_the_output_cap_are_refused_from_the_header(app, tmp_path):
    side = int(LIMITS.image_pixels ** 0.5)
    Image.fromarray(np.zeros((side, side), np.uint8)).save(tmp_path / "big.png")
    objects = json.dumps([{"points": [[10 + i, 10]], "labels": [1]} for i in range(32)])
    decodes = app.ctx.photos.decodes
    with pytest.raises(gr.Error, match=r"32 objects on a 7071x7071 photo is 1,600 million mask pixels; the limit "
                                       r"is 400 million: send at most 8 objects at this size"):
        app.api.sam_objects(upload(str(tmp_path / "big.png")), objects)
    assert app.ctx.photos.decodes == decodes  # refused from the file's header, before decoding it
