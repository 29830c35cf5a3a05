"""SAM's clicks and hovers in a real browser: the decoder in the page (onnxruntime-web, wasm) against
every click through the server, idle and while eight other clients run comparisons; the decoder's own
time in wasm; a click through the API against a bare Gradio echo.

    python benchmarks/sam_browser.py [--rounds 2] [--clicks 6] [--api-clicks 20] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM made here) and drives headless
Chromium (Debian's, through Playwright). A person's browser runs on their own computer, so the server
(and the other clients) run on core 0 and this script with its browser on core 1. On the Prompt SAM
tab it uploads a new 360x480 photo, waits until the photo's embedding is read (and, with the browser
decoder, in the page), then moves the mouse to a point, waits, and clicks it, --clicks times.
Measured in the page, from the event to the next frame after the mask is drawn:
- hover: mousemove to the int8 preview on screen (browser decoder only);
- click, browser: click to the first mask on screen (the preview already decoded for that very
  prompt, else the float32 decoder's), and to the float32 mask;
- click, server: click to the server's new picture loaded and painted (both variants: the server
  still decodes every click).
Runs: the browser decoder and the server only, each idle and beside eight clients that each send a
comparison (/segment with FCN-32s, FCN-8s and U-Net) 0.5 s after its last answer; and, with the
browser on both cores (Chromium gives wasm no more threads than it has cores), the browser decoder
in a plain page (one wasm thread) and in a cross-origin isolated one (SEG_CROSS_ORIGIN_ISOLATION=1).
The runs alternate, a fresh server each. Then the API: /sam_prompt by raw HTTP (the photo uploaded
once, as a script does), interleaved with a bare Gradio app's text echo on the same core.
onnxruntime-web comes from SEG_ORT_WEB_DIR (default: the tests' copy in .ort-web/).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from app_speed import app_env, headless_chromium, random_sam_checkpoint, street  # noqa: E402
from load_test import pinned, running_app  # noqa: E402
from report import publish  # noqa: E402

PORT = 7989
ORT_WEB = Path(os.environ.get("SEG_ORT_WEB_DIR") or ROOT / ".ort-web/node_modules/onnxruntime-web/dist")
SERVER_CPUS, BROWSER_CPUS = {0}, {1}  # the server and the other clients; this script and its browser
VARIANTS = {"browser decoder": {"SEG_BROWSER_DECODER": "1"}, "server only": {"SEG_BROWSER_DECODER": "0"},
            "browser decoder, isolated page": {"SEG_BROWSER_DECODER": "1", "SEG_CROSS_ORIGIN_ISOLATION": "1"}}
LOADED, BOTH_CORES = "8 clients comparing", "idle, browser on both cores"
# Chromium gives wasm no more threads than the cores it may use, so the threaded decoder is measured
# with the browser on both cores, beside the one-thread decoder on both cores
RUNS = (("browser decoder", "idle"), ("server only", "idle"), ("browser decoder", LOADED), ("server only", LOADED),
        ("browser decoder", BOTH_CORES), ("browser decoder, isolated page", BOTH_CORES))
COMPARISON = ("fcn32s", "fcn8s", "unet")  # the Compare tab's default models
OTHERS, THINK_SECONDS = 8, 0.5
# In the page: when a click happened and when the server's picture that answers it was painted.
PROBE = """
window.probe = {clicks: [], painted: []};
document.addEventListener('click', () => probe.clicks.push(performance.now()), true);
new MutationObserver(async (changes) => {
  for (const change of changes) {
    if (change.target.tagName !== 'IMG' || change.attributeName !== 'src') continue;
    try { await change.target.decode(); } catch (e) { continue; }
    requestAnimationFrame(() => probe.painted.push(performance.now()));
  }
}).observe(document.querySelector('#sam-canvas'), {attributes: true, subtree: true, attributeFilter: ['src']});
"""


def session(url: str, photo: Path, clicks: int, browser_decoder: bool) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out = {"hover": [], "click, first mask": [], "click, float32": [], "click, server": [], "decoder int8": [],
           "decoder float32": [], "embedding bytes": [], "embedding ms": [], "wasm threads": [],
           "decoder bytes (once per checkpoint)": [], "float32 masks not shown (the server's came first)": []}
    with sync_playwright() as p:
        browser = headless_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # the decoder's state, which ui/tabs/sam/live.js keeps on its component's element
        page.add_init_script("Object.defineProperty(window, 'samLive', "
                             "{get: () => document.querySelector('[data-sam-live]')?.samLive})")
        page.goto(url)
        page.get_by_role("tab", name="Prompt SAM").click()
        page.locator("#sam-canvas input[type=file]").set_input_files(str(photo))
        page.locator("#sam-note").get_by_text("Click the object").wait_for(timeout=240_000)
        with httpx.Client(timeout=600) as http:  # returns once the server has the photo's embedding
            call(http, url, "sam_prompt", [upload(http, url, photo), "[[10, 10]]", "[1]", ""])
        if browser_decoder:
            page.wait_for_function("() => window.samLive && samLive.embedding && samLive.warm", timeout=240_000)
        page.evaluate(PROBE)
        img = page.locator("#sam-canvas img").first
        for n in range(clicks):
            box = img.bounding_box()
            x, y = box["x"] + box["width"] * (0.2 + 0.6 * n / max(clicks - 1, 1)), box["y"] + box["height"] * 0.6
            page.mouse.move(x, y)
            time.sleep(0.8)  # the preview is decoded; a person looks before clicking
            page.mouse.click(x, y)
            page.locator("#sam-note").get_by_text(f"{n + 1} prompt(s)").wait_for(timeout=120_000)
            page.wait_for_function(f"() => probe.painted.length >= {n + 1}", timeout=30_000)
            time.sleep(0.5)
        probe = page.evaluate("probe")
        # the last picture painted after each click answers it (a click's answer replaces the picture once)
        for clicked in probe["clicks"]:
            after = [t for t in probe["painted"] if t > clicked]
            if after:
                out["click, server"].append(after[0] - clicked)
        if browser_decoder:
            timings = page.evaluate("samLive.timings")
            out["hover"] = [t["total_ms"] for t in timings if t["kind"] == "preview"]
            out["decoder int8"] = [t["decode_ms"] for t in timings if t["decoder"] == "int8"]
            out["decoder float32"] = [t["decode_ms"] for t in timings if t["decoder"] == "float32"]
            shown = [t for t in timings if t["decoder"] == "float32" and t["total_ms"] is not None]
            out["click, float32"] = [t["total_ms"] for t in shown]
            out["float32 masks not shown (the server's came first)"] = [
                sum(t["decoder"] == "float32" for t in timings) - len(shown)]
            firsts, seen = [], set()
            for t in timings:  # the first click entry of each click: preview reused, else float32
                if t["kind"] == "click" and t["total_ms"] is not None and t["points"] not in seen:
                    seen.add(t["points"])
                    firsts.append(t["total_ms"])
            out["click, first mask"] = firsts
            out["embedding bytes"] = [page.evaluate("samLive.embeddingBytes")]
            out["embedding ms"] = [page.evaluate("samLive.embeddingMs")]
            out["wasm threads"] = [page.evaluate("samLive.threads")]
            out["decoder bytes (once per checkpoint)"] = [page.evaluate(
                "performance.getEntriesByType('resource').filter(e => e.name.endsWith('.onnx'))"
                ".reduce((sum, e) => sum + e.encodedBodySize, 0)")]
        browser.close()
    return out


def call(http: httpx.Client, url: str, name: str, data: list) -> list:
    """One request to the app's endpoint `name` by raw HTTP (Gradio's /call route, as a script or
    curl would): its outputs. RuntimeError with the server's message if it failed."""
    event = http.post(f"{url}gradio_api/call/{name}", json={"data": data})
    event.raise_for_status()
    with http.stream("GET", f"{url}gradio_api/call/{name}/{event.json()['event_id']}") as stream:
        kind = None
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                if kind == "error":
                    raise RuntimeError(f"{name} failed: {line[5:].strip()[:200]}")
                return json.loads(line[5:])
    raise RuntimeError(f"{name}: the stream ended without an answer")


def upload(http: httpx.Client, url: str, path: Path) -> dict:
    """The file uploaded once, as the value a file input takes."""
    with open(path, "rb") as file:
        answer = http.post(f"{url}gradio_api/upload", files={"files": file})
    answer.raise_for_status()
    return {"path": answer.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def compare_forever(url: str, photo: Path, clients: int) -> None:
    """The other clients (run as `--others`, in a process of its own): each sends a comparison (every
    model of COMPARISON on the photo), looks THINK_SECONDS at it, and again, until stopped."""
    def client() -> None:
        with httpx.Client(timeout=600) as http:
            value = upload(http, url, photo)
            while True:
                for model in COMPARISON:
                    call(http, url, "segment", [value, model])
                time.sleep(THINK_SECONDS)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    [t.start() for t in threads]
    [t.join() for t in threads]


@contextmanager
def others_comparing(url: str, photo: Path):
    """OTHERS clients running comparisons on the server's core while the block runs."""
    load = subprocess.Popen([sys.executable, __file__, "--others", url, "--photo", str(photo)],
                            preexec_fn=pinned(SERVER_CPUS))
    try:
        time.sleep(5)  # every client has sent its first comparison
        yield
    finally:
        load.terminate()
        load.wait(timeout=30)


def serve_echo() -> None:
    """A bare Gradio app (run as `--echo`): one endpoint that returns its text, queued as ours are."""
    import gradio as gr

    with gr.Blocks() as demo:
        text = gr.Textbox()
        gr.Button().click(lambda x: x, text, gr.Textbox(), api_name="echo")
    demo.queue(default_concurrency_limit=2).launch(server_name="127.0.0.1", ssr_mode=False, quiet=True)


def api_against_echo(env: dict, photo: Path, clicks: int) -> dict[str, list[float]]:
    """/sam_prompt on an uploaded photo against the echo's round trip, interleaved, by raw HTTP;
    both servers on the server's core."""
    echo_env = {**env, "GRADIO_SERVER_PORT": str(PORT + 1)}
    url, echo_url = f"http://127.0.0.1:{PORT}/", f"http://127.0.0.1:{PORT + 1}/"
    times = {"API click (/sam_prompt)": [], "bare Gradio echo": []}
    with running_app(env, warm_up_seconds=20, cpus=SERVER_CPUS), \
            running_app(echo_env, (__file__, "--echo"), cpus=SERVER_CPUS), httpx.Client(timeout=120) as http:
        value = upload(http, url, photo)
        call(http, url, "sam_prompt", [value, "[[10, 10]]", "[1]", ""])  # the embedding
        call(http, echo_url, "echo", ["hi"])
        rng = np.random.default_rng(2)
        for _ in range(clicks):
            started = time.perf_counter()
            call(http, echo_url, "echo", ["hi"])
            times["bare Gradio echo"].append((time.perf_counter() - started) * 1000)
            point = f"[[{rng.uniform(0, 480):.1f}, {rng.uniform(0, 360):.1f}]]"
            started = time.perf_counter()
            call(http, url, "sam_prompt", [value, point, "[1]", ""])
            times["API click (/sam_prompt)"].append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=6)
    parser.add_argument("--api-clicks", type=int, default=20)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--others", help=argparse.SUPPRESS)  # this script as the other clients (see RUNS)
    parser.add_argument("--photo", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)  # this script as the bare app
    args = parser.parse_args()
    if args.others:
        return compare_forever(args.others, args.photo, OTHERS)
    if args.echo:
        return serve_echo()
    if not (ORT_WEB / "ort.wasm.min.js").is_file():
        sys.exit(f"no onnxruntime-web in {ORT_WEB}: run the tests once (they install it) or set SEG_ORT_WEB_DIR")
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("this benchmark gives the server and the browser a core each: it needs 2 cores")
    os.sched_setaffinity(0, BROWSER_CPUS)  # this script and the browser it starts; the servers get SERVER_CPUS
    results = {run: {} for run in RUNS}
    url = f"http://127.0.0.1:{PORT}/"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = random_sam_checkpoint(tmp)
        others_photo = tmp / "others.png"
        Image.fromarray(street((360, 480))[::-1].copy()).save(others_photo)
        for round_ in range(args.rounds):
            for number, run in enumerate(RUNS):
                name, condition = run
                picture = street((360, 480))
                picture[:8, : 8 + round_] = 20 * round_ + number  # a new photo each run: its embedding is new
                photo = tmp / f"{round_}_{number}.png"
                Image.fromarray(picture).save(photo)
                env = app_env(checkpoint, PORT, SEG_ORT_WEB_DIR=str(ORT_WEB), SEG_CACHE_DIR=str(tmp / "cache"),
                              **VARIANTS[name])
                # models and SAM loaded, the decoder exported, before the other clients or the browser come
                with running_app(env, warm_up_seconds=20, cpus=SERVER_CPUS):
                    with others_comparing(url, others_photo) if condition == LOADED else nullcontext():
                        os.sched_setaffinity(0, SERVER_CPUS | BROWSER_CPUS if condition == BOTH_CORES else BROWSER_CPUS)
                        got = session(url, photo, args.clicks, VARIANTS[name]["SEG_BROWSER_DECODER"] == "1")
                        os.sched_setaffinity(0, BROWSER_CPUS)
                for key, values in got.items():
                    results[run].setdefault(key, []).extend(values)
                print(run, {k: [round(v) for v in vs] for k, vs in got.items() if vs}, flush=True)
        api = {}
        for round_ in range(args.rounds):
            env = app_env(checkpoint, PORT, SEG_CACHE_DIR=str(tmp / "cache"), SEG_BROWSER_DECODER="0")
            for key, values in api_against_echo(env, others_photo, args.api_clicks).items():
                api.setdefault(key, []).extend(values)
            print({k: round(statistics.median(v)) for k, v in api.items()}, flush=True)
    rows = ["| variant | condition | measure | p50 | runs |", "| --- | --- | --- | ---: | ---: |"]
    for (name, condition), measures in results.items():
        for key, values in measures.items():
            if values:
                unit = "" if "bytes" in key or "threads" in key or "not shown" in key else " ms"
                rows.append(f"| {name} | {condition} | {key} | {np.median(values):.0f}{unit} | {len(values)} |")
    for key, values in api.items():
        rows.append(f"| API, raw HTTP | idle | {key} | {np.median(values):.0f} ms | {len(values)} |")
    publish("SAM in the browser: hover and click",
            f"`benchmarks/sam_browser.py`: headless Chromium on the Prompt SAM tab, a new 360x480 photo per run, "
            f"{args.clicks} clicks per photo, each after the mouse rested 0.8 s on its point; times from the event to "
            "the next frame after the mask is drawn, measured in the page. The server (and the other clients) on "
            "core 0, the browser on core 1 (both cores where the row says so). \"8 clients comparing\": eight "
            f"clients each sending a comparison (/segment with {', '.join(COMPARISON)}) {THINK_SECONDS} s after "
            "the last one's answer. Random-weight MobileSAM (vit_t); onnxruntime-web 1.30.0 wasm, one thread unless "
            f"the page is cross-origin isolated; {args.rounds} rounds, the runs alternating, a fresh server each. "
            "The API rows: /sam_prompt by raw "
            f"HTTP on a photo uploaded once, interleaved with a bare Gradio app's text echo, {args.api_clicks} "
            "of each per round.", rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
