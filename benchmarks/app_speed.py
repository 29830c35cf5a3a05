"""The app on this machine: cold start, memory with every model loaded, per-model latency,
the whole comparison, SAM in process and through the API. Each target is stated beside its figure
with "met" or "MISSED"; a missed one makes the exit status 1 (benchmarks/run.sh names it).

    python benchmarks/app_speed.py [--clicks 20] [--markdown FILE]

`python app.py` runs as a subprocess on the shipped weights (weights/) with a random-weight
MobileSAM checkpoint made here (the real one is not reachable from this machine; speed does not
depend on the values). Cold start: from launching the process to the page answering, and to the
first /segment answer (which loads the model). Latencies are medians after one warm-up.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from report import publish, target  # noqa: E402

from seg.explorer.compare import run_model  # noqa: E402
from seg.explorer.zoo import Zoo  # noqa: E402
from seg.sam.model import Sam  # noqa: E402
from seg.sam.weights import sam_architecture  # noqa: E402

PORT = 7961


def random_sam_checkpoint(folder: Path) -> Path:
    torch.manual_seed(0)
    model = sam_architecture("vit_t")
    path = folder / "mobile_sam_random.pt"
    torch.save(model.state_dict(), path)
    return path


def app_env(checkpoint: Path, port: int, **extra: str) -> dict:
    """The environment a benchmark runs `python app.py` in: the shipped weights, the random-weight
    MobileSAM at `checkpoint`, no pretrained models, serving on `port`; `extra` adds variables."""
    return {**os.environ, "SEG_SAM_CHECKPOINT": str(checkpoint), "SEG_SAM_VARIANT": "vit_t",
            "GRADIO_SERVER_PORT": str(port), "SEG_PRETRAINED_MODELS": "", **extra}


CHROMIUM = "/usr/bin/chromium"  # Debian's, never a browser Playwright downloads


def headless_chromium(playwright):
    """Debian's chromium, launched headless as the browser tests launch it."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmHWM:",)):  # peak resident set size of the process
            return int(line.split()[1]) / 1024
    return float("nan")


def street(size: tuple[int, int]) -> np.ndarray:
    """A photo-like test image: a smooth scene with noise (the content does not change the time)."""
    rng = np.random.default_rng(0)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([yy * 200 // h, xx * 200 // w, (yy + xx) * 100 // (h + w) + 50], -1)
    return np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def sam_clicks(rows: list[str], missed: list[str], clicks: int, checkpoint: Path, workdir: Path) -> None:
    """SAM's click in process, on one embedding, by the decoder the app serves with (the app's own
    `make_zoo`: ONNX Runtime, the threads it gives a job) and by PyTorch's, click by click in turn."""
    from ui.context import make_zoo
    from ui.settings import Settings

    zoo = make_zoo(Settings(pretrained=(), sam_checkpoint=checkpoint, cache_dir=workdir / "cache"))
    served = zoo.sam()
    decoders = {f"ONNX Runtime, {zoo.sam_threads} thread(s): what the app serves": served,
                "PyTorch": Sam(served.model, variant="vit_t")}
    image = street((360, 480))
    started = time.perf_counter()
    embedding = served.embed(image)
    embed_ms = 1000 * (time.perf_counter() - started)
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {name: [] for name in decoders}
    for _ in range(clicks + 1):  # the first is a warm-up
        point = [[float(rng.uniform(0, 480)), float(rng.uniform(0, 360))]]
        for name, sam in decoders.items():
            started = time.perf_counter()
            sam.predict(embedding, points=point, labels=[1])
            times[name].append(1000 * (time.perf_counter() - started))
    rows += ["", f"SAM vit_t in process, 360x480: embedding {embed_ms:.0f} ms; a click ({clicks}, the decoders in "
             "turn on the same embedding):", "", "| decoder | p50 (ms) | p95 (ms) |", "| --- | ---: | ---: |"]
    rows += [f"| {name} | {np.percentile(t[1:], 50):.0f} | {np.percentile(t[1:], 95):.0f} |"
             for name, t in times.items()]
    p50 = float(np.percentile(times[next(iter(decoders))][1:], 50))
    rows += ["", f"The served click: p50 **{p50:.0f} ms** {target(missed, 'SAM click in process', p50, 50, 'ms')}."]


def in_process(rows: list[str], missed: list[str]) -> None:
    """Each from-scratch model at two sizes, and the whole comparison of them all."""
    zoo = Zoo(ROOT / "weights", pretrained=())
    rows += ["| model | 360x480 (ms) | 1024x768 (ms) |", "| --- | ---: | ---: |"]
    small, large = street((360, 480)), street((768, 1024))
    for key, title in zoo.semantic_names().items():
        model = zoo.semantic(key)
        a = median_ms(lambda: run_model(model, small), 5)
        b = median_ms(lambda: run_model(model, large), 3)
        rows.append(f"| {title} | {a:.0f} | {b:.0f} |")
        print(rows[-1], flush=True)
    scratch = [k for k in zoo.semantic_names()]
    whole = median_ms(lambda: [run_model(zoo.semantic(k), small) for k in scratch], 3)
    rows += ["", f"Whole comparison, all {len(scratch)} from-scratch models on one 360x480 image: **{whole:.0f} ms** "
             f"{target(missed, 'whole comparison', whole, 1000, 'ms')}."]


def start_app(env: dict) -> tuple[subprocess.Popen, float]:
    """`python app.py` in a subprocess; seconds until its page answers."""
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/", timeout=1).status_code == 200:
                return server, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.perf_counter() - started > 120:
            server.kill()
            raise RuntimeError("app.py did not start")
        time.sleep(0.05)


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


def gradio_floor(photo: Path, repeats: int) -> tuple[float, float]:
    """What Gradio itself costs per call on this machine: a bare app whose endpoints return their
    input (text; a file in and out, as /sam_prompt does), through gradio_client. Medians, ms."""
    import gradio as gr
    from gradio_client import Client, handle_file

    with gr.Blocks() as demo:
        text, file = gr.Textbox(), gr.File(type="filepath")
        gr.Button().click(lambda x: x, text, gr.Textbox(), api_name="echo")
        gr.Button().click(lambda x: x, file, gr.File(), api_name="file")
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=PORT + 1, ssr_mode=False, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{PORT + 1}/", verbose=False)
        echo = median_ms(lambda: client.predict("hi", api_name="/echo"), repeats)
        file = median_ms(lambda: client.predict(handle_file(str(photo)), api_name="/file"), repeats)
    finally:
        demo.close()
    return echo, file


def through_the_app(rows: list[str], missed: list[str], clicks: int, checkpoint: Path, workdir: Path) -> None:
    from gradio_client import Client, handle_file
    from PIL import Image

    env = app_env(checkpoint, PORT)
    photo = workdir / "street.png"
    Image.fromarray(street((360, 480))).save(photo)
    url = f"http://127.0.0.1:{PORT}/"
    starts, firsts = [], []
    for _ in range(3):  # a fresh process each time: page answering, then the first /segment (loads a model)
        server, ready = start_app(env)
        try:
            t0 = time.perf_counter()
            Client(url, verbose=False).predict(handle_file(str(photo)), "fcn8s", api_name="/segment")
            firsts.append(ready + time.perf_counter() - t0)
        finally:
            stop(server)
        starts.append(ready)
    start = statistics.median(starts)
    rows += ["", f"Cold start of `python app.py`, 3 starts: page answering after **{start:.1f} s** "
             f"(median; {min(starts):.1f}-{max(starts):.1f} s) {target(missed, 'cold start', start, 10, 's')}; "
             f"first /segment answer after "
             f"{statistics.median(firsts):.1f} s. Importing gradio and torch is most of it."]
    server, _ = start_app(env)
    try:
        client = Client(url, verbose=False)
        client.predict(handle_file(str(photo)), "[[240, 180]]", "[1]", "", api_name="/sam_prompt")  # embeds once
        rng = np.random.default_rng(1)
        times = []
        for _ in range(clicks):
            point = f"[[{rng.uniform(0, 480):.1f}, {rng.uniform(0, 360):.1f}]]"
            t0 = time.perf_counter()
            client.predict(handle_file(str(photo)), point, "[1]", "", api_name="/sam_prompt")
            times.append(1000 * (time.perf_counter() - t0))
        p50 = float(np.percentile(times, 50))
        rows.append(f"SAM click through the API (gradio_client, upload included, embedding cached): p50 "
                    f"**{p50:.0f} ms**, p95 {np.percentile(times, 95):.0f} ms "
                    f"{target(missed, 'SAM click through the API', p50, 150, 'ms')}.")
        for key in Zoo(ROOT / "weights", pretrained=()).semantic_names():  # load every model, then read the peak
            client.predict(handle_file(str(photo)), key, api_name="/segment")
        rows.append(f"Peak memory of the app with every available model loaded and one SAM embedding: "
                    f"**{rss_mib(server.pid):.0f} MiB**.")
    finally:
        stop(server)
    echo, file = gradio_floor(photo, clicks)
    rows.append(f"Gradio's own cost per call here (a bare app through gradio_client, same machine): "
                f"{echo:.0f} ms for a text echo, {file:.0f} ms to send this photo and get a file back; "
                "the API figures above include it.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    rows: list[str] = []
    missed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = random_sam_checkpoint(Path(tmp))
        in_process(rows, missed)
        sam_clicks(rows, missed, args.clicks, checkpoint, Path(tmp))
        through_the_app(rows, missed, args.clicks, checkpoint, Path(tmp))
    rows += ["", f"Targets missed: {', '.join(missed)}." if missed else "Every target met."]
    publish("The app: latency per model, comparison, SAM, cold start, memory",
            "Shipped weights; SAM vit_t with random weights; medians after a warm-up.", rows, args.markdown)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
