"""A SAM click through the API with gradio_client: the photo sent with every click (/sam_prompt)
against its handle (/sam_click, the JSON alone), beside a bare Gradio app's text echo.

    python benchmarks/sam_api_click.py [--clicks 30] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM made here) and, in this process, a
bare Gradio app whose one endpoint returns its text, queued as ours are. The three calls take turns
click by click, so a drift of this shared machine falls on all of them. The photo is a 360x480 PNG
whose embedding is computed before the first timed click. Target: /sam_click within 100 ms of the
echo.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from app_speed import app_env, random_sam_checkpoint, street  # noqa: E402
from load_test import running_app  # noqa: E402
from report import publish  # noqa: E402

PORT = 7991


def echo_app():
    import gradio as gr

    with gr.Blocks() as demo:
        text = gr.Textbox()
        gr.Button().click(lambda x: x, text, gr.Textbox(), api_name="echo")
    demo.queue(default_concurrency_limit=2)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=PORT + 1, ssr_mode=False, quiet=True)
    return demo


def main() -> int:
    from gradio_client import Client, handle_file

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    times = {"/sam_prompt (the photo uploaded, a PNG back)": [], "/sam_click (the handle, the JSON alone)": [],
             "bare Gradio echo": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photo = tmp / "street.png"
        Image.fromarray(street((360, 480))).save(photo)
        demo = echo_app()
        try:
            with running_app(app_env(random_sam_checkpoint(tmp), PORT)):
                client = Client(f"http://127.0.0.1:{PORT}/", verbose=False)
                echo = Client(f"http://127.0.0.1:{PORT + 1}/", verbose=False)
                _, first = client.predict(handle_file(str(photo)), "[[240, 180]]", "[1]", "", api_name="/sam_prompt")
                handle = first["photo"]
                echo.predict("hi", api_name="/echo")
                rng = np.random.default_rng(0)
                calls = [lambda p: client.predict(handle_file(str(photo)), p, "[1]", "", api_name="/sam_prompt"),
                         lambda p: client.predict(handle, p, "[1]", "", api_name="/sam_click"),
                         lambda p: echo.predict(p, api_name="/echo")]
                for _ in range(args.clicks):
                    point = f"[[{rng.uniform(0, 480):.0f}, {rng.uniform(0, 360):.0f}]]"
                    for name, call in zip(times, calls):
                        started = time.perf_counter()
                        call(point)
                        times[name].append(1000 * (time.perf_counter() - started))
        finally:
            demo.close()
    p50 = {name: np.percentile(v, 50) for name, v in times.items()}
    rows = ["| call | p50 (ms) | p95 (ms) |", "| --- | ---: | ---: |"]
    rows += [f"| {name} | {p50[name]:.0f} | {np.percentile(v, 95):.0f} |" for name, v in times.items()]
    names = list(times)
    over = p50[names[1]] - p50[names[2]]
    rows += ["", f"/sam_click over the echo: **{over:.0f} ms** at p50 (target: within 100 ms); /sam_prompt over "
             f"the echo: {p50[names[0]] - p50[names[2]]:.0f} ms."]
    publish("SAM click through the API: the photo each time, or its handle",
            f"gradio_client on loopback, {args.clicks} clicks of each kind, taking turns; a 360x480 PNG whose "
            "embedding is cached; the echo is a bare Gradio app in the benchmark's process.", rows, args.markdown)
    return 0 if over <= 100 else 1


if __name__ == "__main__":
    sys.exit(main())
