"""The caps of ui.limits, the strict parsing of prompts, deadlines, and the housekeeping that
keeps a public server up: each refused with a message, before any model or decoder runs."""

import json
import os
import re
import time
import tracemalloc
import uuid

import forge
import httpx
import numpy as np
import pytest
import torch
from gradio_client.exceptions import AppError
from PIL import Image

from conftest import ROOT, wait_for_page
from seg.data.ground_truth import read_ground_truth
from seg.data.io import fit_image, read_image, read_raw, resize_labels
from seg.deadline import DeadlineExceeded, check, deadline, watch
from seg.sam.prompt_text import parse_json_text, parse_prompt
from ui.api import ENDPOINTS
from ui.context import CONCURRENCY
from ui.limits import LIMITS, Limits

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)


def test_the_readme_lists_every_cap_with_its_value():
    """docs/deploy.md's "Limits" table and ui.limits agree, so the documented caps are the enforced ones."""
    text = (ROOT / "docs" / "deploy.md").read_text()
    text = text[text.index("## Limits"):]
    text = text[:text.index("\n##", 1)]  # that section only
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", text, flags=re.M))
    fields = Limits.__dataclass_fields__
    assert rows.keys() == fields.keys(), rows.keys() ^ fields.keys()
    for name, shown in rows.items():
        assert float(shown.strip().replace(",", "").replace("_", "")) == float(getattr(LIMITS, name)), name


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    """12000x12000 label ids in a PNG of a few hundred KB: 144 megapixels once decoded."""
    path = tmp_path_factory.mktemp("huge") / "truth.png"
    Image.fromarray(np.zeros((12000, 12000), np.uint8)).save(path, optimize=False)
    return path


def test_a_label_map_over_the_cap_is_refused_from_its_header(huge_png):
    tracemalloc.start()
    with pytest.raises(ValueError, match="12000x12000 = 144.0 megapixels; the limit is 16.8"):
        read_raw(huge_png, max_pixels=LIMITS.score_pixels)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB allocated: it was decoded"  # decoded, it is 137 MiB
    with pytest.raises(ValueError, match="megapixels"):
        read_image(huge_png, max_pixels=LIMITS.image_pixels)


def test_a_photo_given_as_ground_truth_is_refused_by_its_colour_count():
    from seg.data.ground_truth import parse_ground_truth

    photo = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="4,800 distinct colours.*at most 256.*looks like a photo"):
        parse_ground_truth(photo, image_shape=photo.shape, max_values=LIMITS.class_ids)


def test_a_lossy_ground_truth_is_refused(tmp_path):
    ids = np.repeat(np.arange(11, dtype=np.uint8), 10)[None].repeat(20, 0)
    Image.fromarray(ids).save(tmp_path / "ids.jpg", quality=95)
    with pytest.raises(ValueError, match="JPEG file, which changes label values.*save the label map as PNG"):
        read_ground_truth(tmp_path / "ids.jpg", image_shape=ids.shape)
    Image.fromarray(ids).save(tmp_path / "ids.png")
    assert (read_ground_truth(tmp_path / "ids.png", image_shape=ids.shape).labels == ids).all()


@pytest.mark.parametrize("text, message", [
    ("[" * 1000 + "]" * 1000, "must be JSON|nested deeper"),
    ("[[[[[1]]]]]", "nested deeper than 4"),
    ("[[" + "9" * 5000 + ", 1]]", "must be JSON"),
    ("x" * (LIMITS.text_bytes + 1), "characters long; the limit is"),
    ("{bad", "must be JSON"),
])
def test_json_text_inputs_are_bounded(text, message):
    with pytest.raises(ValueError, match=message):
        parse_json_text(text, "points", "[[1, 2]]", limits=LIMITS)


def test_prompt_counts_are_capped_before_anything_runs():
    with pytest.raises(ValueError, match="100 points; one object takes at most 64"):
        parse_prompt(json.dumps([[1, 1]] * 100), json.dumps([1] * 100), "", limits=LIMITS)
    with pytest.raises(ValueError, match="points is 80,000 characters long; the limit is 16,384"):
        parse_prompt(json.dumps([[1, 1]] * 10_000), json.dumps([1] * 10_000), "", limits=LIMITS)
    with pytest.raises(ValueError, match="labels must be a JSON list"):
        parse_prompt("[[1, 2]]", '{"a": 1}', "", limits=LIMITS)
    assert parse_prompt("[[1, 2]]", "[1]", "", limits=LIMITS) == {"points": [[1, 2]], "labels": [1], "box": None}


@pytest.mark.parametrize("objects, message", [
    ([{"points": [[1, 1]], "labels": [1]}] * 33, "33 objects; one request takes at most 32"),
    ([{"points": [[1, 1]] * 60, "labels": [1] * 60}] * 5, r"object 5 has 60 points \(300 so far;"),
    ([{"points": [[1, 1]] * 65, "labels": [1] * 65}], "65 points"),
    ([{"points": [[1, 1]] * 63, "labels": [1] * 63, "box": [0, 0, 5, 5]}], "65 points .*a box counts as two"),
    ([{"points": [[1, 1]], "labels": [True]}], "its label 1 or 0"),
    ([{"points": [[1, 1]], "labels": [1, 0]}], "the same length"),
    ([{"mask": 1}], "name, points, labels and/or box"),
    ([{"name": "x"}], "needs a prompt"),
    ([], "non-empty JSON list"),
    ({"points": []}, "non-empty JSON list"),
])
def test_object_lists_are_checked_and_capped(objects, message):
    from seg.sam.prompt_text import parse_objects

    with pytest.raises(ValueError, match=message):
        parse_objects(json.dumps(objects, separators=(",", ":")), limits=LIMITS)


@pytest.fixture(scope="module")
def sam(vit_t_checkpoint):
    from seg.sam.model import Sam

    return Sam.load("vit_t", vit_t_checkpoint, download=False)


@pytest.mark.parametrize("points, labels, box, message", [
    ([[True, False]], [1], None, "points must be numbers"),
    ([["10", "20"]], [1], None, "points must be numbers"),
    ([[10 ** 400, 1]], [1], None, "points must be numbers"),
    ([[10, 20]], [True], None, "labels must be numbers"),
    ([[10, 20]], ["1"], None, "labels must be numbers"),
    ([[10, 20]], [[1]], None, "labels must be a flat list"),
    (None, None, ["0", 0, 5, 5], "a box must be numbers"),
    ([[1, 2, 3]], [1], None, r"shaped \[\[x, y\]"),
    (None, None, [[1, 2], [30, 40]], r"a box is a flat list of 4 finite numbers"),  # not read as [1, 2, 30, 40]
])
def test_sam_takes_numbers_only_and_checks_them_before_the_embedding(sam, points, labels, box, message):
    image = np.zeros((40, 60, 3), np.uint8)
    before = sam.encoder_runs
    with pytest.raises(ValueError, match=message):
        sam.predict(image, points=points, labels=labels, box=box)
    assert sam.encoder_runs == before


def test_sam_takes_a_photo_already_shrunk_with_its_original_size(sam):
    """What the API does with a photo kept at the working size (app.ctx.photos): the same masks as
    shrinking it per call, in the original's pixels."""
    image = np.random.default_rng(0).integers(0, 255, (300, 900, 3), dtype=np.uint8)
    small, _ = fit_image(image, 300)
    prompts = [{"points": [[900, 300]], "labels": [1]}, {"box": [10, 10, 400, 200]}]
    scale = 300 / 900
    scaled = [{"points": [[900 * scale, 300 * scale]], "labels": [1]}, {"box": np.array([10, 10, 400, 200]) * scale}]
    for prompt, by_hand in zip(prompts, scaled):
        kept = sam.predict(small, **prompt, original_size=(300, 900))
        # the same by hand: the prompt mapped onto the small copy (the corner kept inside it), masks enlarged
        small_masks = sam.predict(small, **by_hand).masks
        enlarged = np.stack([resize_labels(m, (300, 900)) for m in small_masks])
        assert kept.masks.shape[1:] == (300, 900) and np.array_equal(kept.masks, enlarged)
    with pytest.raises(ValueError, match="outside"):  # the prompts are checked against the original's size
        sam.predict(small, points=[[901, 5]], labels=[1], original_size=(300, 900))
    with pytest.raises(ValueError, match="smaller than the image"):
        sam.predict(small, points=[[5, 5]], labels=[1], original_size=(50, 100))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        sam.predict(small, points=[[5, 5]], labels=[1], original_size=(300.5, 900))


def test_a_deadline_stops_a_watched_model_at_its_next_layer():
    model = watch(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)))
    x = torch.zeros(1, 4)
    with deadline(60, "outer"):
        assert model(x).shape == (1, 2)
        with deadline(0, "segmenting"), pytest.raises(DeadlineExceeded, match="segmenting took longer than its 0 s"):
            time.sleep(0.01)
            model(x)
        check()  # the inner deadline is gone, the outer one still far away
    assert model(x).shape == (1, 2)  # no deadline outside the block


def test_messages_name_no_server_path():
    from ui.jobs import scrub

    message = scrub("no SAM checkpoint at /root/private/models/sam.pth (see /tmp/gradio/abc/x.png)")
    assert message == "no SAM checkpoint at sam.pth (see x.png)"
    assert len(scrub("m" * 10_000)) <= 501
    url = "download https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth and set it"
    assert scrub(url) == url  # a URL is not a server path


def test_caps_through_the_api(server, sample, huge_png, tmp_path):
    """The 10,000-point prompt and the 144-megapixel ground truth are refused with a message."""
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    image = handle_file(str(sample[0]))
    started = time.perf_counter()
    with pytest.raises(AppError, match="80,000 characters long; the limit is 16,384"):
        client.predict(image, json.dumps([[5, 5]] * 10_000), json.dumps([1] * 10_000), "", api_name="/sam_prompt")
    print(f"10,000-point prompt refused in {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    with pytest.raises(AppError, match="144.0 megapixels"):
        client.predict(handle_file(str(huge_png)), handle_file(str(huge_png)), api_name="/score")
    print(f"144-megapixel ground truth refused in {time.perf_counter() - started:.2f} s")
    for points, labels in [("[[true, false]]", "[1]"), ('[["10", "20"]]', "[1]"), ("[[10, 20]]", '{"a": 1}'),
                           ("[[" + "9" * 400 + ", 1]]", "[1]")]:
        with pytest.raises(AppError, match="must be"):
            client.predict(image, points, labels, "", api_name="/sam_prompt")
    with pytest.raises(AppError, match=r"unknown or unavailable model 'x{40}'…: choose one of") as refused:
        client.predict(image, "x" * 200_000, api_name="/segment")
    assert len(str(refused.value)) < 2000
    ids = np.array(Image.open(sample[1]))
    Image.fromarray(ids).save(tmp_path / "truth.jpg", quality=95)
    with pytest.raises(AppError, match="JPEG"):
        client.predict(handle_file(str(sample[1])), handle_file(str(tmp_path / "truth.jpg")), api_name="/score")


def test_one_client_cannot_fill_the_queue(server, sample):
    """Joins from one session beyond `jobs_per_client` (queued or running), sent at once, get a "busy"
    answer; another session is still let in. (Sent one after another, each job could end before the
    next join when SAM's embedding was already cached, and the cap was never reached.)"""
    import asyncio

    uploaded = httpx.post(server + "gradio_api/upload", files={"files": open(sample[0], "rb")}, timeout=30).json()[0]
    value = {"path": uploaded, "orig_name": sample[0].name, **forge.MARKER}
    sam = next(e for e in forge.events(server) if e["api_name"] == "sam_prompt")
    session = uuid.uuid4().hex
    bodies = [{"data": [value, f"[[{10 + i}, 10]]", "[1]", ""], "fn_index": sam["fn_index"], "session_hash": session}
              for i in range(LIMITS.jobs_per_client + 4)]  # new points each time: each job decodes

    async def join_all():
        async with httpx.AsyncClient(base_url=server, timeout=30) as client:
            return await asyncio.gather(*(client.post("gradio_api/queue/join", json=b) for b in bodies))

    answers = asyncio.run(join_all())
    codes = [a.status_code for a in answers]
    assert codes.count(200) >= LIMITS.jobs_per_client and set(codes) <= {200, 429}, codes
    assert 429 in codes and "busy: you already have" in answers[codes.index(429)].json()["detail"]
    other = {"data": [value, "[[5, 5]]", "[1]", ""], "fn_index": sam["fn_index"], "session_hash": uuid.uuid4().hex}
    assert httpx.post(server + "gradio_api/queue/join", json=other, timeout=30).status_code == 200
    with httpx.stream("GET", server + "gradio_api/queue/data", params={"session_hash": session}, timeout=120) as s:
        done = 0
        for line in s.iter_lines():
            done += '"process_completed"' in line
            if done == codes.count(200):
                break


def test_a_job_past_its_deadline_ends_in_a_message_and_frees_its_thread():
    import gradio as gr

    from ui.jobs import job

    model = watch(torch.nn.Sequential(*[torch.nn.Linear(64, 64) for _ in range(4)]))

    @job(0.2, "segmenting")
    def slow():
        while True:  # a job that would never end on its own
            model(torch.zeros(1, 64))

    started = time.perf_counter()
    with pytest.raises(gr.Error, match="segmenting took longer than its 0.2 s limit"):
        slow()
    assert time.perf_counter() - started < 5  # it stopped at a layer, not when the test gave up


def test_every_cpu_event_shares_one_concurrency_limit(app):
    """"Two jobs at once" holds for the whole app, not per event."""
    demo = app.demo
    backend = [fn for fn in demo.fns.values() if fn.fn is not None and fn.name != "load_example"]
    light = [fn for fn in backend if fn.concurrency_id == "light"]  # they compute nothing: no job's place
    assert sorted(fn.name for fn in light) == ["cleared", "cleared", "everything_button", "refresh_costs"]
    backend = [fn for fn in backend if fn not in light]
    assert len(backend) >= 15
    assert {fn.concurrency_id for fn in backend} == {"cpu"}  # loading an example (no computation) is not a job
    assert {fn.concurrency_limit for fn in backend} == {CONCURRENCY}
    assert {fn.api_name for fn in backend if fn.api_visibility == "public"} == set(ENDPOINTS)


def test_the_retention_and_the_outputs_folder_come_from_the_environment(tmp_path):
    """SEG_KEEP_FILES_SECONDS and SEG_OUTPUTS_DIR, read by app.py and passed down."""
    import subprocess
    import sys

    code = ("import os; from ui.app import build; from ui.settings import Settings; "
            "app = build(Settings.from_environ(os.environ)); "
            "print(app.ctx.limits.keep_files_seconds, app.ctx.outputs.max_age, app.ctx.outputs.root, "
            "app.demo.delete_cache); app.close()")
    env = {**os.environ, "SEG_KEEP_FILES_SECONDS": "300", "SEG_OUTPUTS_DIR": str(tmp_path / "out")}
    shown = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert shown[:3] == ["300", "300", str(tmp_path / "out")] and shown[3:] == ["(300,", "300)"]


def test_a_failed_request_logs_one_line_not_a_traceback(weights_dir, vit_t_checkpoint, sample, tmp_path):
    """`python app.py` as deployed, its log read after a series of bad requests."""
    import subprocess
    import sys

    from gradio_client import Client, handle_file

    from conftest import free_port

    port = free_port()
    env = {**os.environ, "SEG_WEIGHTS_DIR": str(weights_dir), "SEG_SAM_CHECKPOINT": str(vit_t_checkpoint),
           "SEG_SAM_VARIANT": "vit_t", "GRADIO_SERVER_PORT": str(port), "SEG_PRETRAINED_MODELS": ""}
    log = open(tmp_path / "app.log", "w")
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_page(url, server)
        client = Client(url, verbose=False)
        image = handle_file(str(sample[0]))
        ids = np.array(Image.open(sample[1]))
        Image.fromarray(ids).save(tmp_path / "truth.jpg")
        bad = [(lambda: client.predict(image, "nope", api_name="/segment"), "unknown or unavailable model"),
               (lambda: client.predict(image, "[[1, 2]", "[1]", "", api_name="/sam_prompt"), "points must be JSON"),
               (lambda: client.predict(image, "[" * 1000 + "]" * 1000, "[1]", "", api_name="/sam_prompt"),
                "points (is nested deeper than 4 levels|must be JSON)"),  # by depth, or by the parser's own limit
               (lambda: client.predict(image, "[[1, 2]]", '{"a": 1}', "", api_name="/sam_prompt"),
                "labels must be a JSON list"),
               (lambda: client.predict(handle_file(str(sample[1])), handle_file(str(tmp_path / "truth.jpg")),
                                       api_name="/score"), "PNG")]
        for request, message in bad:  # each refused with its own message, which the client reads
            with pytest.raises(AppError, match=message):
                request()
        segment = next(e["fn_index"] for e in forge.events(url) if e["api_name"] == "segment")
        forged = {"data": [{"path": "/etc/passwd", **forge.MARKER}, "fcn8s"], "fn_index": segment,
                  "session_hash": "x"}
        assert httpx.post(url + "gradio_api/queue/join", json=forged, timeout=30).status_code == 400
        # every event of the page, called by hand with values of every wrong kind and count: Gradio's own
        # checks (choices, file data, event data, the examples' loader) refuse many before any handler
        answers = []
        for event in forge.events(url):
            n = len(event["inputs"])
            for data in ([], ["x"] * 12, [{"a": 1}] * n, [None] * n, [123456789] * n, [[1, 2]] * n, [-1] * n):
                answers.append(forge.call(url, event["fn_index"], data, timeout=60))
        assert {a["status"] for a in answers} == {200, 400} and any(a["success"] is False for a in answers)
        unknown = httpx.get(url + "gradio_api/queue/data", params={"session_hash": "nobody"}, timeout=30)
        assert unknown.status_code == 404 and "no events whose messages are waiting" in unknown.json()["detail"]
        assert httpx.get(url + "gradio_api/call/segment/nothing", timeout=30).status_code == 404
        client.predict(image, "fcn8s", api_name="/segment")  # and a good one
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    text = (tmp_path / "app.log").read_text()
    assert "Traceback" not in text, text[-3000:]
    refusals = [line for line in text.splitlines() if re.search(r"Api\.\w+ refused: ", line)]  # the API's handlers
    assert len(refusals) >= 5, text[-3000:]  # the five above, and the sweep's that reached a handler
    assert not any(str(tmp_path) in line or "/tmp/gradio" in line for line in refusals), refusals


def test_sam_variant_from_the_environment_is_the_one_served(tmp_path, weights_dir):
    """SEG_SAM_VARIANT=vit_b with a vit_b checkpoint: the app offers and loads vit_b (it used to build
    the catalogue for vit_t whatever the variable said, and list SAM as unavailable)."""
    import subprocess
    import sys

    from seg.sam.weights import sam_architecture

    torch.manual_seed(0)
    model = sam_architecture("vit_b")
    torch.save(model.state_dict(), tmp_path / "sam_vit_b.pth")
    del model
    code = ("import os; from ui.app import build; from ui.settings import Settings; "
            "app = build(Settings.from_environ(os.environ)); "
            "print(app.ctx.zoo.sam_variant, app.ctx.zoo.sam_available(), 'SAM vit_b' in app.ctx.status_markdown()); "
            "s = app.ctx.zoo.sam(); print(s.variant, type(s.model.image_encoder).__name__, "
            "s.model.image_encoder.blocks[0].attn.qkv.in_features)")  # loading checks every weight's shape
    env = {**os.environ, "SEG_WEIGHTS_DIR": str(weights_dir), "SEG_SAM_VARIANT": "vit_b",
           "SEG_SAM_CHECKPOINT": str(tmp_path / "sam_vit_b.pth"), "SEG_PRETRAINED_MODELS": ""}
    shown = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split("\n")[:2] == ["vit_b True True", "vit_b ImageEncoderViT 768"], shown.stdout
    wrong = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env={**env, "SEG_SAM_VARIANT": "vit_x"})
    assert wrong.returncode != 0 and "SEG_SAM_VARIANT='vit_x' is not a SAM variant" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_freed_heap_goes_back_to_the_os():
    """ui.memory.trim: pages freed inside the heap (kept from the OS by a few live chunks among them,
    as after a big job) are returned, so the server's resident size falls back."""
    import subprocess
    import sys

    code = ("from ui.memory import trim\n"
            "def rss():\n"
            "    return next(int(l.split()[1]) / 1024 for l in open('/proc/self/status') if l.startswith('VmRSS'))\n"
            "chunks = [bytearray(60_000) for _ in range(5000)]\n"  # 300 MB in heap chunks, below mmap's threshold
            "keep = chunks[::50]\n"  # a live chunk every 3 MB: the allocator cannot shrink the heap's top
            "del chunks\n"
            "before = rss()\n"
            "print(trim(), before, rss())\n")
    shown = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    trimmed, before, after = shown.stdout.split()
    assert trimmed == "True" and float(before) - float(after) > 200, shown.stdout


@pytest.mark.parametrize("choice", [1.0, True, 3, -1, "1"])
def test_a_saved_objects_mask_choice_is_a_whole_number_of_sams_three(choice):
    from seg.sam.prompts import Objects

    saved = {"objects": [{"id": 1, "name": "car", "clicks": [[10, 10, "positive"]], "choice": choice}]}
    with pytest.raises(ValueError, match=r"object 1: \"choice\" is which of SAM's three masks was kept, 0, 1 or 2"):
        Objects.from_json(saved, limits=LIMITS)
    assert Objects.from_json({"objects": [{**saved["objects"][0], "choice": 2}]}, limits=LIMITS).items[0].choice == 2
