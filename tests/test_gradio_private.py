"""Gradio's private parts the app relies on are all there, named in one module (ui/gradio_private.py);
on another Gradio release a renamed one fails here with its name, and the ZeroGPU seam (ui/gpu.py)
leaves jobs on the CPU where there is no ZeroGPU."""

import gradio as gr
import httpx

from ui import gradio_private
from ui.gpu import on_gpu


def test_every_private_part_used_is_there(app):
    assert gradio_private.problems(app.demo) == []
    assert gr.__version__ == gradio_private.TESTED_WITH, (
        f"Gradio {gr.__version__} is installed; ui/gradio_private.py names the private parts of "
        f"{gradio_private.TESTED_WITH}: check each again, then update TESTED_WITH")


def test_a_missing_private_part_is_named(app, monkeypatch):
    monkeypatch.delattr(type(app.demo._queue), "active_jobs", raising=False)
    monkeypatch.delattr(app.demo._queue, "active_jobs", raising=False)
    found = gradio_private.problems(app.demo)
    assert any("Blocks._queue.active_jobs" in p and gradio_private.TESTED_WITH in p for p in found), found
    monkeypatch.setattr(gradio_private, "INTERNAL_CLASSES", ("no-such-class-in-gradio",))
    assert any(".no-such-class-in-gradio" in p for p in gradio_private.problems(app.demo))


def test_the_routes_the_guard_matches_are_gradios(server):
    """Each route the request guard recognises answers something other than 404 on the live server."""
    for path in gradio_private.ROUTES:
        assert gradio_private.EVENT.search(path) or gradio_private.STREAM.search(path) or "upload" in path
        answer = httpx.post(server.rstrip("/") + path, json={}, timeout=30) if "data" not in path else \
            httpx.get(server.rstrip("/") + path, params={"session_hash": "x"}, timeout=30)
        assert answer.status_code != 404 or "session" in answer.text, (path, answer.status_code, answer.text[:200])


def test_jobs_decorated_for_zerogpu_still_run_on_the_cpu(app, sample, monkeypatch):
    """With the `spaces` package installed and no ZeroGPU (SPACES_ZERO_GPU unset), its decorator hands the
    job back unchanged: a decorated comparison runs here as any other."""
    import spaces  # in requirements-test.txt: a missing package fails here, it is not skipped
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    decorated = on_gpu(app.compare.run, seconds=60)
    assert decorated is app.compare.run and spaces.GPU(app.compare.run) is app.compare.run  # nothing in between
    view = decorated(str(sample[0]), str(sample[1]), ["fcn8s"], False, False)
    # the test weights are random: what is checked is that the job ran whole, not its score
    assert view.metrics.shape[0] == 1 and 0 <= view.metrics["mIoU"][0] <= 1 and len(view.gallery) == 3 + 3
