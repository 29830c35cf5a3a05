"""The first requests after a start, with and without the background warm-up (`ui.app.App.warm_up`).

    python benchmarks/warm_start.py [--rounds 2] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM made here), waits until it
answers and then a fixed 40 s (time a visitor might take to arrive; the warm-up needs less), then
sends what a first comparison costs through the API: /segment with each default model (FCN-32s,
FCN-8s, U-Net) and one /sam_prompt on a new photo; then the same again on another photo ("later").
"Cold" starts the same app with the warm-up replaced by nothing. The variants alternate, cold
first, so that a drift of this shared machine falls on both. Measured through the API, not in a
browser: the browser adds the same page overhead to both variants.
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
from app_speed import app_env, random_sam_checkpoint, street  # noqa: E402
from load_test import start_app  # noqa: E402
from report import publish  # noqa: E402

PORT = 7987
WAIT_SECONDS = 40
MODELS = ("fcn32s", "fcn8s", "unet")
VARIANTS = {"cold": ("-c", "import app, ui.app; ui.app.App.warm_up = lambda self: None; app.main()"),
            "warm": ("app.py",)}


def first_requests(url: str, photo: Path) -> float:
    """Seconds for /segment with each default model, then one SAM click, on `photo`."""
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    started = time.perf_counter()
    for model in MODELS:
        client.predict(handle_file(str(photo)), model, api_name="/segment")
    client.predict(handle_file(str(photo)), "[[240, 180]]", "[1]", "", api_name="/sam_prompt")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    results = {name: {"first": [], "later": []} for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = []
        for i in range(2):
            picture = street((360, 480))
            picture[: 20 + i] = 40 * i  # two distinct photos: the second needs its own SAM embedding
            Image.fromarray(picture).save(tmp / f"photo_{i}.png")
            photos.append(tmp / f"photo_{i}.png")
        env = app_env(random_sam_checkpoint(tmp), PORT)
        for _ in range(args.rounds):
            for name, argv in VARIANTS.items():
                server = start_app(env, argv)
                try:
                    time.sleep(WAIT_SECONDS)
                    url = f"http://127.0.0.1:{PORT}/"
                    results[name]["first"].append(first_requests(url, photos[0]))
                    results[name]["later"].append(first_requests(url, photos[1]))
                finally:
                    server.terminate()
                    server.wait(timeout=30)
                print(name, {k: [round(v, 2) for v in vs] for k, vs in results[name].items()}, flush=True)
    rows = ["| start | first requests (s) | the same, later (s) |", "| --- | ---: | ---: |"]
    for name, r in results.items():
        rows.append(f"| {name} | {' / '.join(f'{v:.2f}' for v in r['first'])} | "
                    f"{' / '.join(f'{v:.2f}' for v in r['later'])} |")
    median = {name: float(np.median(r["first"])) for name, r in results.items()}
    rows += ["", f"Median first requests: cold {median['cold']:.2f} s, warm {median['warm']:.2f} s."]
    publish("Warm start: the first requests after a start",
            f"/segment with FCN-32s, FCN-8s and U-Net, then one /sam_prompt on a new 360x480 photo, {WAIT_SECONDS} s "
            "after the server first answers; 'later' is the same on a second photo. Each run in a fresh server; "
            f"{args.rounds} rounds, the variants alternating.", rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
