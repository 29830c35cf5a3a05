"""Shared fixtures: where CamVid lives, a small trained checkpoint for the command-line tests, random
SAM and semantic weights, the app and its server, and a real browser."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


# Fixtures that need more than the virtual environment: data beside the project, an install (npm,
# apt-get), or the whole app built and served. A test that is not slow and needs none of them (directly
# or through another fixture) is in the unit tier: `python -m pytest -m unit`.
NEEDS_MORE_THAN_THE_VENV = frozenset({"camvid_dir", "ort_web", "chromium", "node", "app", "server", "running_app"})


def pytest_collection_modifyitems(items):
    for item in items:
        needs = NEEDS_MORE_THAN_THE_VENV & set(getattr(item, "fixturenames", ()))
        if not needs and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def tiny_sams(tmp_path_factory) -> dict[str, Path]:
    """{generation: its save_pretrained folder}: small SAM, SAM-HQ, SAM 2, EdgeTAM, SAM 3 (tracker and
    detector in one checkpoint, as released), and SAM 3's tracker alone and detector alone, with random
    weights (tests/tiny_sams.py)."""
    from tiny_sams import save_tiny

    root = tmp_path_factory.mktemp("sams")
    return {kind: save_tiny(kind, root / f"tiny-{kind.replace('_', '-')}")
            for kind in ("sam", "sam_hq", "sam2", "edgetam", "sam3_tracker", "sam3_detector", "sam3")}


@pytest.fixture(scope="session")
def camvid_dir() -> Path:
    """The real CamVid files: $SEG_CAMVID_DIR or ../shared/data/camvid beside the project.

    Missing data fails the test rather than skipping it, so CI can never pass without reading it.
    """
    path = Path(os.environ.get("SEG_CAMVID_DIR", ROOT.parent / "shared" / "data" / "camvid"))
    if not (path / "val").is_dir():
        pytest.fail(f"CamVid not found at {path}: set SEG_CAMVID_DIR or run `python -m seg.cli.download --out DIR`")
    return path


def run_module(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = True,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m ...` in a fresh interpreter, as a user would (from `cwd`, the project importable)."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", *args], cwd=cwd or ROOT, capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


# A U-Net recipe on 64x64 synthetic scenes that learns in about fifteen seconds on 2 CPU cores.
TINY_TRAIN = ["--model", "unet", "--width-mult", "0.25", "--synthetic-images", "192", "--image-size", "64", "64",
              "--batch-size", "16", "--lr", "3e-3", "--warmup-steps", "10", "--workers", "0", "--no-progress"]


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A U-Net trained for two epochs through the real command line."""
    out = tmp_path_factory.mktemp("run")
    run_module("seg.cli.train", *TINY_TRAIN, "--epochs", "2", "--out", str(out))
    return out / "model.safetensors"


def save_random_mobile_sam(folder: Path) -> Path:
    """MobileSAM's architecture with random weights, saved as the state-dict .pth the release ships."""
    from seg.sam.weights import sam_architecture

    torch.manual_seed(0)
    model = sam_architecture("vit_t")
    path = folder / "mobile_sam.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def vit_t_checkpoint(tmp_path_factory):
    return save_random_mobile_sam(tmp_path_factory.mktemp("sam"))


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """A weights folder in the shipped layout (see seg.explorer.zoo), with small random-initialised models:
    three CamVid CNNs, a SegFormer-B0 folder, and the synthetic demo models."""
    from seg.checkpoint import save_model
    from seg.data import camvid, synthetic
    from seg.models import build_model
    from seg.models.segformer import save_pretrained_folder

    root = tmp_path_factory.mktemp("weights")
    (root / "camvid").mkdir()
    (root / "synthetic").mkdir()
    torch.manual_seed(0)
    models = [(n, camvid.CLASSES, camvid.PALETTE, "camvid") for n in ("fcn32s", "fcn8s", "unet")]
    models += [(n, synthetic.CLASSES, synthetic.PALETTE, "synthetic") for n in ("fcn32s", "fcn8s", "unet")]
    for name, classes, palette, folder in models:
        arguments = {"width_mult": 0.25}
        model = build_model(name, num_classes=len(classes), **arguments)
        card = {"architecture": {"name": name, "arguments": arguments}, "classes": list(classes),
                "palette": [list(c) for c in palette], "input_size": [90, 120] if folder == "camvid" else None}
        save_model(model, root / folder / f"{name}.safetensors", card=card, half=True)
    segformer = build_model("segformer_b0", num_classes=len(camvid.CLASSES))
    save_pretrained_folder(segformer, root / "camvid" / "segformer_b0", classes=list(camvid.CLASSES),
                           input_size=(90, 120))
    return root


@pytest.fixture(scope="session")
def sample(camvid_dir, tmp_path_factory) -> tuple[Path, Path]:
    """The first CamVid val image and its label-id ground truth, as uploads: copied into Gradio's
    upload folder, the only place the app's handlers read files from."""
    from gradio.utils import get_upload_folder

    image = sorted((camvid_dir / "val").glob("*.png"))[0]
    # named after this run's temporary folder: two runs on one machine share Gradio's upload folder
    run = tmp_path_factory.getbasetemp().name
    folder = Path(get_upload_folder()) / f"{run}-{tmp_path_factory.mktemp('upload').name}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image, folder / image.name)
    shutil.copyfile(camvid_dir / "valannot" / image.name, folder / f"{image.stem}_labels.png")
    return folder / image.name, folder / f"{image.stem}_labels.png"


@pytest.fixture(scope="session")
def node() -> str:
    """Node.js, which runs the page scripts' own tests (Debian's nodejs, installed with npm)."""
    found = shutil.which("node")
    if found is None:
        pytest.fail("Node.js is needed for the page scripts' tests: apt-get install -y nodejs")
    return found


@pytest.fixture(scope="session")
def ort_web() -> Path:
    """onnxruntime-web's dist folder at the pinned version (tests/prepare.py installs it when missing)."""
    from prepare import Missing, ensure_ort_web

    try:
        return ensure_ort_web()
    except Missing as error:
        pytest.fail(str(error))


def test_settings(weights_dir, vit_t_checkpoint, camvid_dir, ort_web, cache_dir, **changes):
    """The settings the tests' app runs with: the test weights, a random SAM checkpoint, CamVid
    samples and a local onnxruntime-web."""
    from ui.settings import Settings

    return Settings(weights_dir=weights_dir, sam_checkpoint=vit_t_checkpoint, sam_variant="vit_t",
                    camvid_dir=camvid_dir, ort_web_dir=ort_web, cache_dir=cache_dir, **changes)


@pytest.fixture(scope="session")
def app(weights_dir, vit_t_checkpoint, camvid_dir, ort_web, tiny_sams, tmp_path_factory):
    """The app built from the tests' settings (see `test_settings`) with the small SAM 2 and SAM 3 as its
    SAM family; SAM's decoder is exported into a temporary cache. Its temporary folders are removed at
    the end."""
    from ui.app import build

    family = tuple(str(tiny_sams[kind]) for kind in ("sam2", "sam3"))
    built = build(test_settings(weights_dir, vit_t_checkpoint, camvid_dir, ort_web,
                                tmp_path_factory.mktemp("cache"), sam_models=family))
    yield built
    built.close()


def save_segformer(folder, names, *, size=512, seed=0):
    """A SegFormer (MiT-B0's shape) with random weights and its processor, as save_pretrained writes them."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(seed)
    config = SegformerConfig(num_labels=len(names), id2label=dict(enumerate(names)),
                             label2id={n: i for i, n in enumerate(names)})
    model = SegformerForSemanticSegmentation(config)
    model.save_pretrained(folder)
    SegformerImageProcessor(size={"height": size, "width": size}).save_pretrained(folder)
    return model


def save_mask2former(folder, names, *, seed=0):
    """A Mask2Former (Swin backbone, pixel decoder, masked-attention decoder) small enough for a test."""
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    torch.manual_seed(seed)
    backbone = SwinConfig(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, hidden_dim=32, mask_feature_size=32, feature_size=32,
                               encoder_layers=1, decoder_layers=2, num_queries=8, num_attention_heads=2,
                               dim_feedforward=64, encoder_feedforward_dim=64, num_labels=len(names),
                               id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    model = Mask2FormerForUniversalSegmentation(config)
    model.save_pretrained(folder)
    Mask2FormerImageProcessor(size={"shortest_edge": 128, "longest_edge": 256}).save_pretrained(folder)
    return model


def wait_for_page(url: str, server, *, seconds: float = 90) -> None:
    """Return once the app started as the process `server` answers at `url`; fail with its output
    if it ends first or does not answer within `seconds`."""
    import httpx

    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            if server.poll() is not None:
                pytest.fail(f"the app ended before it answered (exit status {server.returncode})")
            time.sleep(0.1)
    pytest.fail(f"the app did not answer at {url} within {seconds:g} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server(app):
    """The app launched on a free loopback port, as `python app.py` does."""
    port = free_port()
    app.demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **app.launch_options())
    yield f"http://127.0.0.1:{port}/"
    app.demo.close()


def click_when_answered(page, fx: float, fy: float, press=None) -> None:
    """A click on the SAM tab's photo at (fx, fy), fractions of its width and height, once the last
    click's event has closed, as the page tells a person to: Gradio drops a click made while that event
    is still open, even after its mask shows. The photo's place is measured at the click (scrolled into
    view, loaded, still): one measured earlier is stale once the page has scrolled.
    press: how to click (a phone's `page.touchscreen.tap`); the mouse's click by default."""
    last_click_answered(page)
    photo = page.locator("#sam-canvas img").first
    photo.scroll_into_view_if_needed()
    box = photo_box(photo)
    (press or page.mouse.click)(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def last_click_answered(page) -> None:
    """Wait until the SAM tab's last click (a mouse's or a key's) has its event closed: one made before is
    dropped by Gradio, and the page tells a person to click again."""
    import json

    from ui.gradio_private import open_event

    page.wait_for_function(f"() => !document.querySelector({json.dumps(open_event('sam-note'))})",
                           timeout=120_000)


def photo_box(locator) -> dict:
    """The bounding box of an image once it has loaded and its box stays put for a moment. Measured
    earlier (the element shown but its picture still loading on a slow machine), a click computed from
    it can land beside the picture, where Gradio's select never fires."""
    locator.wait_for(timeout=60_000)
    locator.evaluate("img => img.decode ? img.decode().catch(() => null) : null")
    locator.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=locator.element_handle(),
                                   timeout=60_000)
    box = locator.bounding_box()
    for _ in range(50):
        locator.page.wait_for_timeout(200)
        now = locator.bounding_box()
        if now == box:
            return box
        box = now
    raise AssertionError(f"the picture kept moving: {box}")


def photo_and_truth(page, photo, truth) -> None:
    """Compare's photo and ground truth uploaded, both on the page: Segment pressed before the truth
    arrived compares without it, and the truth's arrival then clears those results (as it should)."""
    page.locator("#photo input[type=file]").set_input_files(str(photo))
    page.locator("#photo img").first.wait_for(timeout=30_000)
    page.locator("#truth input[type=file]").set_input_files(str(truth))
    page.locator("#truth").get_by_text(Path(truth).stem).first.wait_for(timeout=30_000)


def sam_photo(page, server: str, photo):
    """The page opened on the Prompt SAM tab with `photo` read by SAM and ready for clicks; its note."""
    from playwright.sync_api import expect

    page.goto(server)
    page.get_by_role("tab", name="Prompt SAM").click()
    page.locator("#sam-canvas input[type=file]").set_input_files(str(photo))
    note = page.locator("#sam-note")
    expect(note).to_contain_text("Click the object", timeout=120_000)
    return note


def click(x, y):
    """A click on an image component at pixel (x, y), as Gradio hands it to a select handler."""
    import gradio as gr

    return gr.SelectData(None, {"index": [x, y], "value": None})


def upload(path) -> dict:
    """`path` copied into Gradio's upload folder, as the file value an API call receives (what
    gradio_client's handle_file sends once the file is uploaded)."""
    import uuid

    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()) / f"test-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(path).name
    shutil.copyfile(path, target)
    return {"path": str(target), "orig_name": target.name, "meta": {"_type": "gradio.FileData"}}


# A real browser (tests/test_browser*.py): Debian's chromium, never Playwright's own download; the
# screenshots it takes, for a person to look at.
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium (tests/prepare.py installs it with apt-get when missing; never Playwright's own)."""
    from prepare import Missing, ensure_chromium

    try:
        return str(ensure_chromium())
    except Missing as error:
        pytest.fail(str(error))


# The browser decoder's state (ui/tabs/sam/live.js keeps it on its component's element), named `samLive`
# in the tests' own pages only: the app puts nothing on `window`.
READ_SAM_LIVE = ("Object.defineProperty(window, 'samLive', "
                 "{get: () => document.querySelector('[data-sam-live]')?.samLive})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on its test, for a fixture to see whether the test failed."""
    report = (yield).get_result()
    setattr(item, f"report_{report.when}", report)


def busy_threads(limit: int = 12000) -> str:
    """The stack of every thread of this process (the tests' server runs in it) that is inside the
    project's code: what a job was doing when a browser test gave up waiting for it."""
    import threading
    import traceback

    names = {t.ident: t.name for t in threading.enumerate()}
    stacks = []
    for ident, frame in sys._current_frames().items():
        stack = traceback.format_stack(frame)
        if any(f"{os.sep}seg{os.sep}" in line or f"{os.sep}ui{os.sep}" in line for line in stack):
            stacks.append(f"thread {names.get(ident, ident)}:\n" + "".join(stack[-25:]))
    return ("\n".join(stacks) or "no thread in the project's code")[-limit:]


@pytest.fixture
def page(chromium, request):
    """A fresh headless chromium page. When its test fails, the page as it was then: a screenshot in
    SCREENSHOTS and its text in the failure's report (CI's log shows what the page said)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.add_init_script(READ_SAM_LIVE)
        yield page
        if getattr(request.node, "report_call", None) is not None and request.node.report_call.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"failed_{request.node.name}.png"), full_page=True)
            # a section of the failure's report, which the summary prints (output at teardown is not shown)
            request.node.report_call.sections.append(("Captured the page's text when it failed",
                                                      page.locator("body").inner_text()[:4000]))
            request.node.report_call.sections.append(("Captured the server's busy threads when it failed",
                                                      busy_threads()))
        browser.close()
