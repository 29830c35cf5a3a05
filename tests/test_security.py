"""No file outside the app's examples and its temporary uploads can be read through the app or its
API; weights load only as safetensors or with weights_only=True."""

import ast
import base64
import re
from pathlib import Path

import forge
import httpx
import numpy as np
import pytest
from PIL import Image

from ui.tabs.compare import examples

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / "seg" / "explorer" / "zoo.py")]


@pytest.mark.parametrize("target", SECRETS + ["../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd",
                                              "%2Fetc%2Fpasswd", "weights/../app.py"])
def test_file_routes_refuse_paths_outside_uploads(server, target):
    for route in ("gradio_api/file=", "file="):
        response = httpx.get(server + route + target, follow_redirects=True, timeout=30)
        assert response.status_code in (403, 404), (route, target, response.status_code)
        assert "root:" not in response.text and "import gradio" not in response.text


@pytest.fixture(scope="module")
def private(tmp_path_factory) -> Path:
    """A picture that lives on the server outside the uploads: no answer may carry its bytes."""
    folder = tmp_path_factory.mktemp("private")
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[::2, ::3] = (211, 17, 99)  # a pattern no upload in the tests has
    Image.fromarray(pixels).save(folder / "secret.png")
    return folder / "secret.png"


def file_events(server) -> list[dict]:
    found = [e for e in forge.events(server) if any(forge.takes_files(c) for c in e["inputs"])]
    # compare, disagreement, the SAM tab's two open events, relate, and the API's endpoints that take files
    assert len(found) >= 8, [e["fn_index"] for e in found]
    return found


def forged_calls(server, private):
    """(event, input index, form name, data) for every file input of every event and every forged form."""
    from gradio.utils import get_upload_folder

    forms = forge.forged_values(private, get_upload_folder(), str(ROOT))
    for event in file_events(server):
        files = [i for i, c in enumerate(event["inputs"]) if forge.takes_files(c)]
        for target in files:
            for name, value in forms.items():
                data = [value if i == target else None if i in files else forge.plain_value(c)
                        for i, c in enumerate(event["inputs"])]
                yield event, target, name, data


def test_no_event_reads_a_file_it_did_not_receive_as_an_upload(server, private):
    """Every event the page can trigger, called as the page calls it, with each forged form of a
    file value (with and without Gradio's marker; absolute, relative, `..`, data: URL, a bare
    string): refused, and no answer carries the private picture."""
    secret = base64.b64encode(private.read_bytes()).decode()
    refused = 0
    for event, target, name, data in forged_calls(server, private):
        answer = forge.call(server, event["fn_index"], data, timeout=60)
        case = (event["fn_index"], event["api_name"], target, name)
        assert answer["success"] is not True, case
        assert answer["status"] == 400 and "must be uploaded to this server" in answer["text"], (case, answer)
        assert secret[:200] not in answer["text"] and str(private.parent) not in answer["text"], case
        refused += 1
    print(f"{refused} forged calls refused")


def test_the_same_events_accept_real_uploads(server, sample):
    """The refusal above is about the forgery, not the events: a real upload passes the guard."""
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    labels, info = client.predict(handle_file(str(sample[0])), "fcn8s", api_name="/segment")
    assert info["height"] == 360
    uploaded = httpx.post(server + "gradio_api/upload", files={"files": open(sample[0], "rb")}, timeout=30).json()[0]
    value = {"path": uploaded, "orig_name": sample[0].name, **forge.MARKER}
    opened = next(e for e in forge.events(server) if e["api_name"] == "open")  # the tab's upload event (SamTab.open)
    data = [value] + [forge.plain_value(c) for c in opened["inputs"][1:]]
    answer = forge.call(server, opened["fn_index"], data, timeout=60)
    assert answer["success"] is True, answer["text"][-500:]


def test_the_component_guard_holds_without_the_middleware(app, private):
    """The second layer: each input component's own preprocessing refuses a forged value."""
    import gradio as gr
    from gradio.data_classes import FileData, ImageData

    demo = app.demo
    photo = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "photo")
    truth = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "truth")
    for component, model in ((photo, ImageData), (truth, FileData)):
        for value in ({"path": str(private)}, {"path": "../" * 12 + str(private)}, {"path": "x.png",
                                                                                    "url": "data:image/png;base64,AA"}):
            with pytest.raises(gr.Error, match="must be uploaded"):
                component.preprocess(model(**value))


def test_only_the_documented_endpoints_are_in_the_api(server, app):
    from ui.api import ENDPOINTS

    info = httpx.get(server + "gradio_api/info", timeout=30).json()
    assert sorted(info["named_endpoints"]) == sorted(f"/{name}" for name in ENDPOINTS)
    assert not info.get("unnamed_endpoints")
    # every parameter named and described on the "Use via API" page (Gradio said "1st", "2nd" and nothing)
    for endpoint, declared in info["named_endpoints"].items():
        for parameter in declared["parameters"]:
            assert parameter["label"] == parameter["parameter_name"], (endpoint, parameter)
            assert len(parameter["python_type"]["description"]) > 20, (endpoint, parameter)
    model = next(p for p in info["named_endpoints"]["/segment"]["parameters"] if p["parameter_name"] == "model")
    assert all(name in model["python_type"]["description"] for name in app.ctx.zoo.semantic_names())
    docs = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    words = {"four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
             "twelve": 12}
    stated = re.search(r"Only the (\w+) endpoints above are in the API", docs).group(1)
    assert words[stated] == len(info["named_endpoints"])  # the docs count them right
    assert all(f"`{name}`" in docs for name in info["named_endpoints"])  # and name each one
    direct = httpx.post(server + "gradio_api/run/segment", json={"data": [None, "fcn8s"]}, timeout=30)
    assert direct.status_code in (400, 404), direct.status_code  # REST calls that would skip the queue


def test_a_request_body_is_capped_whatever_it_carries(server, app):
    """A data: URL (or any padding) cannot carry a file past the upload limit inside a JSON body."""
    big = "data:image/png;base64," + "A" * (app.ctx.limits.request_bytes + 10)
    body = {"data": [{"path": None, "url": big, **forge.MARKER}], "fn_index": 0, "session_hash": "x" * 10}
    response = httpx.post(server + "gradio_api/queue/join", json=body, timeout=30)
    assert response.status_code == 413 and "files must be uploaded" in response.json()["detail"]
    chunked = httpx.post(server + "gradio_api/queue/join", timeout=30,  # no Content-Length: counted as it arrives
                         content=iter([b'{"data": ["' + b"A" * (1 << 16)] * 20 + [b'"]}']))
    assert chunked.status_code == 413


def test_examples_are_served_but_nothing_beside_them(server, app):
    """The example photos are the only project files the browser may fetch."""
    assert examples()
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
