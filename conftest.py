"""Stand-ins for the Python blocks of README.md and docs/, which pytest-markdown-docs runs as tests
(`--markdown-docs` in pyproject.toml). A block names what it needs in its fence, e.g.
```python fixture:running_app: the app it talks to, or models it would fetch from the Hub. The tests'
own fixtures live in tests/conftest.py."""

import importlib.util
import shutil
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
PORT = 7860  # the address the README's client snippet uses: `python app.py`'s


def _tests_helpers():
    """tests/conftest.py as a plain module (its helpers that write models in their real formats)."""
    spec = importlib.util.spec_from_file_location("tests_conftest_helpers", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_sams():
    """tests/tiny_sams.py as a plain module (small SAMs of every generation, in their real formats)."""
    spec = importlib.util.spec_from_file_location("tests_tiny_sams", ROOT / "tests" / "tiny_sams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def running_app(tmp_path_factory):
    """The app as `python app.py` runs it, on its default address, with the shipped weights, and
    random-weight stand-ins of what the Hub would give (this machine cannot reach it): MobileSAM, and
    a small SAM 2 and SAM 3 as its SAM family."""
    from ui.app import build
    from ui.settings import Settings

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"port {PORT} is taken: stop what listens there (an app.py left running?) and run again")
    folder = tmp_path_factory.mktemp("readme-app")
    checkpoint = _tests_helpers().save_random_mobile_sam(folder)
    family = tuple(str(_tiny_sams().save_tiny(kind, folder / kind)) for kind in ("sam2", "sam3"))
    settings = Settings(pretrained=(), sam_checkpoint=checkpoint, sam_variant="vit_t", cache_dir=folder / "cache",
                        browser_decoder=False, sam_models=family)
    app = build(settings)
    app.demo.launch(server_name="127.0.0.1", server_port=PORT, prevent_thread_lock=True, quiet=True,
                    **app.launch_options())
    yield f"http://127.0.0.1:{PORT}/"
    app.demo.close()
    app.close()


@pytest.fixture
def hub_models(tmp_path, monkeypatch):
    """The Hub's models a block names, as random-weight stand-ins in their real formats: the SegFormer
    and Mask2Former ids load local save_pretrained folders, SAM a random MobileSAM. The block runs in
    a folder holding `photo.jpg` (an example photo), with HOME there, so nothing lands in the real home."""
    from seg.pretrained.hub_segmenter import HubSegmenter
    from seg.pretrained.label_mapping import CITYSCAPES_TO_CAMVID
    from seg.sam.model import Sam

    helpers = _tests_helpers()
    names = list(CITYSCAPES_TO_CAMVID)
    stand_ins = {"nvidia/segformer-b0-finetuned-cityscapes-1024-1024": tmp_path / "segformer",
                 "facebook/mask2former-swin-tiny-cityscapes-semantic": tmp_path / "mask2former"}
    helpers.save_segformer(stand_ins["nvidia/segformer-b0-finetuned-cityscapes-1024-1024"], names, size=128)
    helpers.save_mask2former(stand_ins["facebook/mask2former-swin-tiny-cityscapes-semantic"], names)
    checkpoint = helpers.save_random_mobile_sam(tmp_path)

    load_hub = HubSegmenter.load.__func__
    monkeypatch.setattr(HubSegmenter, "load", classmethod(
        lambda cls, name, **options: load_hub(cls, stand_ins.get(str(name), name), **options)))
    load_sam = Sam.load.__func__
    monkeypatch.setattr(Sam, "load", classmethod(
        lambda cls, variant="vit_t", checkpoint_path=None, **options: load_sam(cls, variant, checkpoint, **options)))
    shutil.copyfile(ROOT / "examples" / "street_1.jpg", tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))


def pytest_collection_modifyitems(items):
    """A README or docs block that needs the running app or stand-in Hub models takes seconds: it is
    left out of the quick subset (`-m "not slow"`), as the slow tests are."""
    for item in items:
        if {"running_app", "hub_models"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
