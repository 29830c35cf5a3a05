"""Every setting the README documents, set and seen to take effect: `Settings.from_environ` reads the
environment once, `ui.context.make_zoo` builds the catalogue from it (see also test_limits.py for
SEG_KEEP_FILES_SECONDS, SEG_OUTPUTS_DIR and SEG_SAM_VARIANT=vit_b through `python app.py`, and
test_space.py for SPACE_ID with the Hugging Face cache a Space preloads)."""

import re

import pytest

from conftest import ROOT
from seg.fetch import file_digest
from ui.app import build
from ui.context import make_zoo
from ui.settings import SettingError, Settings


def zoo(**env):
    return make_zoo(Settings.from_environ(env))


def labels_of(settings: Settings) -> list:
    """The labels of every component of the app built from `settings`."""
    built = build(settings)
    labels = [getattr(c, "label", None) for c in built.demo.blocks.values()]
    built.close()
    return labels


def test_the_defaults_need_no_setting():
    s = Settings.from_environ({})
    assert s.weights_dir == ROOT / "weights" and s.sam_variant == "vit_t" and s.sam_checkpoint is None
    assert not s.allow_download and not s.on_space and s.camvid_dir is None and s.keep_files_seconds == 3600
    assert "facebook/mask2former-swin-tiny-cityscapes-semantic" in s.pretrained
    assert "nvidia/segformer-b0-finetuned-ade-512-512" in s.pretrained


def test_weights_dir(weights_dir, tmp_path):
    assert "unet" in zoo(SEG_WEIGHTS_DIR=str(weights_dir), SEG_PRETRAINED_MODELS="").semantic_names()
    empty = zoo(SEG_WEIGHTS_DIR=str(tmp_path), SEG_PRETRAINED_MODELS="")
    assert empty.semantic_names() == {}
    assert any(str(tmp_path / "camvid") in how for _, how in empty.missing())


def test_pretrained_models(weights_dir, tmp_path):
    folder = str(weights_dir / "camvid" / "segformer_b0")  # a save_pretrained folder
    listed = zoo(SEG_WEIGHTS_DIR=str(tmp_path), SEG_PRETRAINED_MODELS=f" {folder} ,nobody/not-cached")
    assert list(listed.semantic_names()) == [folder]
    assert listed.entries[folder].kind == "segformer"
    assert [m for m, _ in listed.missing() if "not-cached" in m] == ["SegFormer pretrained (not-cached)"]
    none = zoo(SEG_WEIGHTS_DIR=str(tmp_path), SEG_PRETRAINED_MODELS="")
    assert not [m for m, _ in none.missing() if "pretrained" in m]  # set but empty: none asked for


def test_sam_checkpoint_and_cache_dir(vit_t_checkpoint, tmp_path):
    assert zoo(SEG_SAM_CHECKPOINT=str(vit_t_checkpoint)).sam_available()
    assert not zoo(SEG_SAM_CHECKPOINT=str(tmp_path / "missing.pt")).sam_available()
    cache = tmp_path / "cache"  # a download verified earlier, as seg.fetch leaves it
    cache.mkdir()
    (cache / "sam_vit_t.pt").write_bytes(vit_t_checkpoint.read_bytes())
    (cache / "sam_vit_t.pt.sha256").write_text(file_digest(vit_t_checkpoint) + "\n")
    assert not zoo(SEG_CACHE_DIR=str(tmp_path / "elsewhere")).sam_available()
    found = zoo(SEG_CACHE_DIR=str(cache))
    assert found.sam_available() and found.sam().variant == "vit_t"


def test_allow_download_and_space_id(tmp_path):
    env = {"SEG_WEIGHTS_DIR": str(tmp_path), "SEG_PRETRAINED_MODELS": "nobody/not-cached", "SEG_SAM_MODELS": ""}
    assert zoo(**env).semantic_names() == {}
    allowed = zoo(**env, SEG_ALLOW_DOWNLOAD="1")
    title = "SegFormer pretrained (not-cached) · downloads on first use"
    assert allowed.semantic_names() == {"nobody/not-cached": title}
    assert Settings.from_environ({"SPACE_ID": "us/space"}).allow_download  # a Space is connected
    assert not Settings.from_environ({"SPACE_ID": "us/space", "SEG_ALLOW_DOWNLOAD": "0"}).allow_download
    assert Settings.from_environ({"SPACE_ID": "us/space"}).on_space


def test_camvid_dir_adds_the_sample_picker(camvid_dir):
    def pickers(settings):  # the label goes on to name the shipped models that trained on these frames
        return [label for label in labels_of(settings) if (label or "").startswith("CamVid val sample")]

    shown = pickers(Settings.from_environ({"SEG_CAMVID_DIR": str(camvid_dir)}))
    assert len(shown) == 1 and shown[0].startswith("CamVid val sample (image + ground truth). FCN-8s and U-Net")
    assert pickers(Settings.from_environ({})) == []


def test_cross_origin_isolation_sends_the_two_headers_on_every_response():
    """The browser side (several wasm threads in an isolated page) is measured by
    benchmarks/sam_browser.py; here: the setting adds the middleware, and it adds the headers."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from ui.isolation import CrossOriginIsolation

    def middleware(**env):
        built = build(Settings.from_environ(env))
        found = [m.cls for m in built.launch_options()["app_kwargs"]["middleware"]]
        built.close()
        return found

    assert CrossOriginIsolation not in middleware()
    assert CrossOriginIsolation in middleware(SEG_CROSS_ORIGIN_ISOLATION="1")
    page = Starlette(routes=[Route("/", lambda request: PlainTextResponse("page", headers={"x-own": "kept"}))],
                     middleware=[Middleware(CrossOriginIsolation)])
    answer = TestClient(page).get("/")
    assert answer.text == "page" and answer.headers["x-own"] == "kept"
    assert answer.headers["cross-origin-opener-policy"] == "same-origin"
    assert answer.headers["cross-origin-embedder-policy"] == "credentialless"


@pytest.mark.parametrize("env, message", [
    ({"SEG_SAM_VARIANT": "vit_x"}, "SEG_SAM_VARIANT='vit_x' is not a SAM variant: choose one of vit_t"),
    ({"SEG_ALLOW_DOWNLOAD": "yes"}, "SEG_ALLOW_DOWNLOAD='yes': use 1"),
    ({"SEG_KEEP_FILES_SECONDS": "an hour"}, "SEG_KEEP_FILES_SECONDS='an hour': give a whole number"),
    ({"SEG_KEEP_FILES_SECONDS": "5"}, "60 or more"),
    ({"SEG_CROSS_ORIGIN_ISOLATION": "on"}, "SEG_CROSS_ORIGIN_ISOLATION='on': use 1"),
])
def test_a_setting_that_cannot_work_stops_the_start_with_a_message(env, message):
    with pytest.raises(SettingError, match=re.escape(message)):
        Settings.from_environ(env)


def test_every_documented_variable_is_read_by_the_settings():
    """The README's settings table and the one place that reads them agree."""
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`((?:SEG_|SPACE_|SPACES_)[A-Z_]+)`", readme))
    source = (ROOT / "ui" / "settings.py").read_text()
    read = set(re.findall(r'get\("((?:SEG_|SPACE_|SPACES_)[A-Z_]+)"\)|env\.get\("((?:SEG_|SPACE_|SPACES_)[A-Z_]+)"\)',
                          source))
    read = {a or b for a, b in read}
    assert "SPACES_ZERO_GPU" in read  # the one a ZeroGPU Space sets: the pattern reaches its name
    assert documented == read, (documented ^ read)


def test_sam_models(tiny_sams, tmp_path):
    """SEG_SAM_MODELS: folders and Hub ids of the SAM family; missing ones listed with how to get them,
    a checkpoint that is not a SAM named as such; set but empty, MobileSAM alone."""
    sam2 = str(tiny_sams["sam2"])
    listed = zoo(SEG_WEIGHTS_DIR=str(tmp_path), SEG_PRETRAINED_MODELS="",
                 SEG_SAM_MODELS=f" {sam2} ,nobody/not-cached")
    assert listed.family_names() == {sam2: "SAM 2 (tiny-sam2)"}
    assert [m for m, _ in listed.missing() if "not-cached" in m] == ["SAM (not-cached)"]
    assert set(Settings.from_environ({}).sam_models) == {
        "facebook/sam2.1-hiera-tiny", "syscv-community/sam-hq-vit-base", "yonigozlan/EdgeTAM-hf", "facebook/sam3"}
    none = zoo(SEG_WEIGHTS_DIR=str(tmp_path), SEG_PRETRAINED_MODELS="", SEG_SAM_MODELS="")
    assert none.family_names() == {} and not [m for m, _ in none.missing() if m.startswith("SAM (")]


def test_a_gated_sam_downloads_on_first_use_only_with_a_token(tmp_path, monkeypatch):
    """On a Space (downloads on) SAM 3 is offered to download only where a token is set (HF_TOKEN, a
    Space's secret); without one it is listed as missing, saying how to get it."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no token saved by `hf auth login` either
    env = {"SEG_WEIGHTS_DIR": str(tmp_path), "SEG_PRETRAINED_MODELS": "", "SEG_SAM_MODELS": "facebook/sam3",
           "SPACE_ID": "us/space"}
    anonymous = zoo(**env)
    assert anonymous.family_names() == {} and "sam3" not in anonymous.semantic_names()
    assert "HF_TOKEN" in dict(anonymous.missing())["SAM 3 (sam3)"]
    signed = zoo(**env, HF_TOKEN="hf_stand_in")
    assert signed.family_names() == {"facebook/sam3": "SAM 3 (sam3) · downloads on first use"}
    assert "sam3" in signed.semantic_names()
