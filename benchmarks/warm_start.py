"""The first requests after a start against the same requests later: the background warm-up
(`ui.app.App.warm_up`) should leave the first visitor no slower than the next.

    python benchmarks/warm_start.py [--rounds 2] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM made here), waits until it
answers and then a fixed 40 s (time a visitor might take to arrive; the warm-up needs less), then
sends what a first comparison costs through the API: /segment with each default model (FCN-32s,
FCN-8s, U-Net) and one /sam_prompt on a new photo; then the same again on another photo ("later").
A fresh server each round. Measured through the API, not in a browser: the browser adds the same
page overhead to both.
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
    results = {"first": [], "later": []}
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
            server = start_app(env, ("app.py",))
            try:
                time.sleep(WAIT_SECONDS)
                url = f"http://127.0.0.1:{PORT}/"
                results["first"].append(first_requests(url, photos[0]))
                results["later"].append(first_requests(url, photos[1]))
            finally:
                server.terminate()
                server.wait(timeout=30)
            print({k: [round(v, 2) for v in vs] for k, vs in results.items()}, flush=True)
    rows = ["| requests | each round (s) | median (s) |", "| --- | ---: | ---: |"]
    for name, times in (("first, after the start", results["first"]), ("later, on another photo", results["later"])):
        rows.append(f"| {name} | {' / '.join(f'{v:.2f}' for v in times)} | {np.median(times):.2f} |")
    publish("Warm start: the first requests after a start",
            f"/segment with FCN-32s, FCN-8s and U-Net, then one /sam_prompt on a new 360x480 photo, {WAIT_SECONDS} s "
            "after the server first answers; 'later' is the same on a second photo. Each run in a fresh server; "
            f"{args.rounds} rounds.", rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
