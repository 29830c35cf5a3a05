"""On ZeroGPU, a handler that reaches a model runs inside the `spaces` package's GPU lease, for its
own deadline's seconds, and one that does not reach a model runs outside it. Each handler declares
both once (`@handler(limit, what, models=...)`); these tests hold the declarations to the code: the
lease follows the declaration, and no model layer runs outside a lease.

`spaces` here is a stand-in for the package ZeroGPU Spaces install (it is not on PyPI's CPU wheels
we test with): its `GPU(fn, duration=...)` marks the thread as holding a GPU while `fn` runs."""

import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import click, upload
from seg.sam.prompts import Objects
from ui.jobs import handlers

pytestmark = pytest.mark.slow  # builds the app and runs SAM (seconds)


class StandInSpaces(types.ModuleType):
    """What the app uses of `spaces`: GPU(fn, duration) returns fn run while a GPU is held."""

    def __init__(self):
        super().__init__("spaces")
        self.held = threading.local()

    def GPU(self, fn, duration: int):  # noqa: N802 -- the package's own name
        def leased(*args, **kwargs):
            self.held.on = True
            try:
                return fn(*args, **kwargs)
            finally:
                self.held.on = False
        leased.duration, leased.inner = duration, fn
        return leased

    def holding(self) -> bool:
        return getattr(self.held, "on", False)


@pytest.fixture
def zero_gpu_app(vit_t_checkpoint, tmp_path, monkeypatch):
    """The app built where `spaces` is installed, as on a ZeroGPU Space."""
    from ui.app import build
    from ui.settings import Settings

    spaces = StandInSpaces()
    monkeypatch.setitem(sys.modules, "spaces", spaces)
    app = build(Settings(pretrained=(), sam_checkpoint=vit_t_checkpoint, sam_variant="vit_t",
                         cache_dir=tmp_path / "cache", browser_decoder=False))
    yield app, spaces
    app.close()


def test_each_handler_is_leased_as_it_declares_for_its_deadlines_seconds(zero_gpu_app):
    from ui.app import handler_owners

    app, _ = zero_gpu_app
    seen = {}
    for owner in handler_owners(app.compare, app.sam, app.learn, app.api):
        for name, declared in handlers(owner).items():
            method = getattr(owner, name)
            seen[f"{type(owner).__name__}.{name}"] = declared.models
            if declared.models:
                assert method.duration == int(getattr(app.ctx.limits, declared.limit)), name
            else:
                assert not hasattr(method, "duration"), f"{name} reaches no model, yet holds a GPU"
    # the handlers that once held the wrong lease or none (issue 37): each now declares its own
    assert seen["SamFiles.import_coco"] and seen["Api.segment"] and seen["SamModels.relate"]
    assert app.api.segment.duration == int(app.ctx.limits.segment_seconds)
    assert app.sam.models.relate.duration == int(app.ctx.limits.compare_seconds)
    assert not seen["SamTab.add"] and not seen["Api.score"]
    assert len(seen) >= 30  # every tab's and every endpoint's handlers were found


def test_no_model_layer_runs_outside_a_gpu_lease(zero_gpu_app, sample, tmp_path):
    """Every layer's forward, in the handlers that reach SAM or a semantic model (the COCO import
    among them, which rebuilds each object's mask with SAM), runs while a GPU is held; the handlers
    declared without models run none."""
    app, spaces = zero_gpu_app
    forwards = []
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: forwards.append((type(module).__name__, spaces.holding())))
    try:
        photo = app.ctx.photo(str(sample[0]))
        view = app.sam.canvas_click(photo, Objects(), "positive", {}, click(240, 300))
        files, _ = app.sam.files.export(photo, view.objects, view.masks, {"path": str(sample[0])})
        model_free = len(forwards)
        added = app.sam.add(photo, view.objects, view.masks)
        app.sam.pick(photo, added.objects, added.masks, 0)
        assert len(forwards) == model_free, "a handler declared without models ran a model's layer"
        # imported onto a photo SAM has not read yet (the same one mirrored): SAM reads it, then rebuilds the mask
        mirrored = tmp_path / "mirrored.png"
        Image.fromarray(np.ascontiguousarray(photo.pixels[:, ::-1])).save(mirrored)
        other = app.ctx.photo(str(mirrored))
        imported = app.sam.files.import_coco(other, Objects(), {}, {"path": str(mirrored)}, files[1])
        assert len(imported.objects.items) == 1 and len(forwards) > model_free
        app.api.segment(upload(str(sample[0])), "unet")
    finally:
        hook.remove()
    assert forwards, "no model ran: the test would prove nothing"
    outside = sorted({name for name, held in forwards if not held})
    assert not outside, f"layers run with no GPU held: {outside}"
    assert "UNet" in {name for name, _ in forwards}  # /segment's model ran too
    assert Path(files[1]).name.endswith("_objects_coco.json")
