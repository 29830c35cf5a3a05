"""No file outside the app's examples and its temporary uploads can be read through the app or its
API; weights load only as safetensors or with weights_only=True."""

import ast
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / "seg" / "zoo.py")]


@pytest.mark.parametrize("target", SECRETS + ["../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd",
                                              "%2Fetc%2Fpasswd", "weights/../app.py"])
def test_file_routes_refuse_paths_outside_uploads(server, target):
    for route in ("gradio_api/file=", "file="):
        response = httpx.get(server + route + target, follow_redirects=True, timeout=30)
        assert response.status_code in (403, 404), (route, target, response.status_code)
        assert "root:" not in response.text and "import gradio" not in response.text


@pytest.mark.parametrize("target", [*SECRETS, "an image on the server", "http://127.0.0.1:9/x.png"])
def test_file_inputs_refuse_server_paths(server, camvid_dir, target):
    """A client that names a server path (or a URL) in a file input instead of uploading gets an
    error, never the file. Raw HTTP, because gradio_client would upload a local path itself (and
    here client and server share a disk). The image case is a readable picture outside the
    uploads: only the server's path check stands between it and a successful answer."""
    if target == "an image on the server":
        target = str(sorted((camvid_dir / "val").glob("*.png"))[0])
    forged = {"path": target, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.png"}
    for api_name, data in [("segment", [forged, "fcn8s"]), ("score", [forged, forged]),
                           ("sam_prompt", [forged, "[[1, 1]]", "[1]", ""])]:
        url = f"{server}gradio_api/call/{api_name}"
        started = httpx.post(url, json={"data": data}, timeout=30)
        if started.status_code != 200:
            continue  # refused at the door
        with httpx.stream("GET", f"{url}/{started.json()['event_id']}", timeout=120) as events:
            answer = "".join(events.iter_text())
        assert "event: error" in answer and "event: complete" not in answer, (api_name, target, answer[:300])
        assert "root:" not in answer


def test_examples_are_served_but_nothing_beside_them(server, app):
    """The example photos are the only project files the browser may fetch."""
    assert app.EXAMPLES
    response = httpx.get(server + "gradio_api/file=" + str(ROOT / "examples" / "make_examples.py"), timeout=30)
    assert response.status_code in (403, 404)


def test_weights_load_only_through_safe_loaders():
    """Every torch.load in the code passes weights_only=True; model weights are read with safetensors."""
    calls = []
    sources = [ROOT / "app.py", *ROOT.glob("seg/**/*.py"), *ROOT.glob("recipes/*.py"), *ROOT.glob("leaderboard/*.py")]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load" and \
                    getattr(node.func.value, "id", None) == "torch":
                calls.append(path.name)
                options = {k.arg: k.value for k in node.keywords}
                weights_only = options.get("weights_only")
                assert isinstance(weights_only, ast.Constant) and weights_only.value is True, \
                    f"{path}: torch.load without weights_only=True"
    assert calls, "expected the SAM loader and the training resume to use torch.load"
