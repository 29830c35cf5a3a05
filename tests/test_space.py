"""The app as a Hugging Face Space starts it: `SPACE_ID` set, no other setting, the network off, and
the models where the README's `preload_from_hub` puts them at build time, the Hugging Face cache.

The cache is made here with random-weight files in the real formats (MobileSAM's state-dict .pt;
save_pretrained folders with config, safetensors weights and processor config) at exactly the paths
the Hub's cache layout gives them: models--<owner>--<name>/snapshots/<commit>/<file>, with
refs/main naming the commit."""

import dataclasses
import os
import subprocess
import sys

import httpx
import pytest
import torch
import yaml
from tiny_sams import save_tiny

from conftest import ROOT, free_port, save_mask2former, wait_for_page
from seg.explorer.zoo import KNOWN_PRETRAINED, KNOWN_SAMS, Zoo
from seg.fetch import file_digest
from seg.pretrained.label_mapping import CITYSCAPES_TO_CAMVID
from seg.sam import weights as sam_weights
from seg.sam.family import GATED

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def preloaded() -> list[tuple[str, list[str]]]:
    """(repository, files or [] for all) for each line of the README's `preload_from_hub`."""
    front = (ROOT / "README.md").read_text().split("---")[1]
    return [(line.split()[0], line.split()[1].split(",") if len(line.split()) > 1 else [])
            for line in yaml.safe_load(front)["preload_from_hub"]]


def test_the_space_preloads_every_default_model_and_samss_exact_file():
    sam_hub = sam_weights.VARIANTS["vit_t"].hub
    repos = dict(preloaded())
    assert repos.pop(sam_hub.repo) == [sam_hub.filename]
    open_sams = {repo for repo in KNOWN_SAMS if repo not in GATED}  # a gated one fails at build: no token there
    assert set(repos) == set(KNOWN_PRETRAINED) | open_sams  # each preloaded, nothing preloaded for nothing
    assert all(files == [] for files in repos.values())  # whole repositories: config, weights, processor


def snapshot(hub: os.PathLike, repo: str) -> os.PathLike:
    folder = hub / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(COMMIT)
    (folder / "snapshots" / COMMIT).mkdir(parents=True)
    return folder / "snapshots" / COMMIT


def save_segformer(folder, names):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(0)
    config = SegformerConfig(num_labels=len(names), id2label=dict(enumerate(names)),  # the B0 architecture
                             label2id={n: i for i, n in enumerate(names)})
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 128, "width": 128}).save_pretrained(folder)


@pytest.fixture(scope="module")
def space_cache(tmp_path_factory, vit_t_checkpoint):
    """HF_HOME with the hub cache filled as the Space's build fills it."""
    home = tmp_path_factory.mktemp("hf_home")
    hub = home / "hub"
    cityscapes = list(CITYSCAPES_TO_CAMVID)
    ade = [f"thing{i}" for i in range(150)]
    ade[2], ade[6], ade[12] = "sky", "road, route", "person, individual, someone"
    for repo, files in preloaded():
        folder = snapshot(hub, repo)
        if files == ["mobile_sam.pt"]:
            (folder / "mobile_sam.pt").write_bytes(vit_t_checkpoint.read_bytes())
            continue
        if repo in KNOWN_SAMS:  # a small SAM of its generation
            save_tiny(KNOWN_SAMS[repo], folder)
            continue
        names = cityscapes if "cityscapes" in repo else ade
        (save_mask2former if "mask2former" in repo else save_segformer)(folder, names)
    return home


def test_a_file_that_is_not_mobilesams_release_is_refused(space_cache, weights_dir, monkeypatch):
    """The sha256 recorded for the Hub's mobile_sam.pt is checked: our random-weight stand-in is not it."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(space_cache / "hub"))
    zoo = Zoo(weights_dir, pretrained=(), allow_download=True)
    assert not zoo.sam_available()
    assert "is recorded as 6dbb9052" in zoo.sam_missing() and "delete it" in zoo.sam_missing()


def test_the_app_plays_a_space_with_no_setting_and_no_network(space_cache, vit_t_checkpoint, sample, tmp_path):
    """`python app.py` with SPACE_ID and the cache: SAM, both SegFormers and both Mask2Formers are listed
    as ready (not "downloads on first use"), and /segment and /sam_prompt answer with each of them.
    Only one thing differs from a real Space: the sha256 recorded for MobileSAM is replaced by the
    stand-in file's, in the app's process, so that the random weights pass the check."""
    from gradio_client import Client, handle_file

    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEG_")}
    temporary = tmp_path / "tmp"  # the process's temporary folder, to see what it leaves behind
    temporary.mkdir()
    env.update({"SPACE_ID": "us/segmentation-explorer", "HF_HOME": str(space_cache), "HF_HUB_OFFLINE": "1",
                "GRADIO_SERVER_PORT": str(port), "TMPDIR": str(temporary)})  # and the weights the repository ships
    env.pop("HF_HUB_CACHE", None)
    stand_in = dataclasses.replace(sam_weights.VARIANTS["vit_t"].hub, sha256=file_digest(vit_t_checkpoint))
    start = ("import dataclasses, runpy\nfrom seg.sam import weights as sam_weights\n"
             f"sam_weights.VARIANTS['vit_t'] = dataclasses.replace(sam_weights.VARIANTS['vit_t'], hub={stand_in!r})\n"
             "runpy.run_path('app.py', run_name='__main__')\n")
    start = start.replace("HubFile(", "sam_weights.HubFile(")
    server = subprocess.Popen([sys.executable, "-c", start], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_page(url, server, seconds=120)
        config = httpx.get(url + "config", timeout=30).json()
        header = next(c["props"]["value"] for c in config["components"]
                      if isinstance(c.get("props", {}).get("value"), str) and "**Ready:**" in c["props"]["value"])
        ready = header.split("**Ready:**")[1].split("\n")[0]
        for repo in KNOWN_PRETRAINED:
            assert f"pretrained ({repo.split('/')[1]})" in ready, header
        assert "SAM vit_t" in ready and "downloads on first use" not in ready, header
        assert "SAM 2 (sam2.1-hiera-tiny)" in ready and "SAM-HQ (sam-hq-vit-base)" in ready, header
        # the one thing not preloaded: SAM 3, gated, with no token on this Space; the header says how to get it
        assert "Unavailable models and how to enable them (1)" in header and "accept its terms" in header, header
        client = Client(url, verbose=False)
        photo = handle_file(str(sample[0]))
        for repo in KNOWN_PRETRAINED:
            _, summary = client.predict(photo, repo, api_name="/segment")
            assert summary["model"] == repo and (summary["height"], summary["width"]) == (360, 480), summary
        _, answer = client.predict(photo, "[[240, 180]]", "[1]", "", api_name="/sam_prompt")
        assert len(answer["scores"]) == 3 and answer["rle"]["size"] == [360, 480], answer
        assert {p.name.split("-")[1] for p in temporary.glob("seg-*")} == {"outputs", "sam"}  # made, in use
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[0]
    assert "Traceback" not in log, log[-3000:]  # HF_HUB_OFFLINE: a download attempt would have failed the requests
    made = sorted(p.name for p in temporary.glob("seg-*"))
    # SIGTERM: a clean exit
    assert server.returncode == 0 and made == [], f"exit {server.returncode}; left behind: {made}"
