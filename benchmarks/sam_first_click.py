"""The first SAM click on a new photo, in a real browser, and the second: SAM reads the photo as it
arrives, so the first click should cost little more than the second.

    python benchmarks/sam_first_click.py [--rounds 2] [--photos 3] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM made here) and drives headless
Chromium (Debian's, through Playwright): on the Prompt SAM tab it uploads a new 360x480 photo,
waits until the tab says "Click the object", waits THINK_SECONDS more (a person looks before
clicking), clicks, and times the click until the note says the mask is there; then a second click
on the same photo. A fresh server each round.
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
from app_speed import app_env, headless_chromium, random_sam_checkpoint, street  # noqa: E402
from load_test import running_app  # noqa: E402
from report import publish  # noqa: E402

PORT = 7988
THINK_SECONDS = 3


def clicks_on_new_photos(url: str, photos: list[Path]) -> tuple[list[float], list[float]]:
    """Milliseconds from click to mask note: the first click on each photo, and a second one."""
    from playwright.sync_api import sync_playwright

    first, second = [], []
    with sync_playwright() as p:
        browser = headless_chromium(p)
        for photo in photos:  # a fresh page (and storage) each: nothing of the last photo comes back
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(url)
            page.get_by_role("tab", name="Prompt SAM").click()
            page.locator("#sam-canvas input[type=file]").set_input_files(str(photo))
            page.locator("#sam-note").get_by_text("Click the object").wait_for(timeout=120_000)
            time.sleep(THINK_SECONDS)
            box = page.locator("#sam-canvas img").first.bounding_box()
            for n, times in ((1, first), (2, second)):
                started = time.perf_counter()
                page.mouse.click(box["x"] + box["width"] * (0.3 + 0.2 * n), box["y"] + box["height"] * 0.6)
                page.locator("#sam-note").get_by_text(f"{n} prompt(s)").wait_for(timeout=120_000)
                times.append((time.perf_counter() - started) * 1000)
            page.context.close()
        browser.close()
    return first, second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    results = {"first": [], "second": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = app_env(random_sam_checkpoint(tmp), PORT)
        for round_ in range(args.rounds):
            photos = []
            for i in range(args.photos):  # new photos every run: each needs its own embedding
                picture = street((360, 480))
                picture[: 10 + i, : 10 + round_] = 17 * i + 3 * round_
                photos.append(tmp / f"{round_}_{i}.png")
                Image.fromarray(picture).save(photos[-1])
            with running_app(env, ("app.py",), warm_up_seconds=20):  # models and SAM loaded by then
                first, second = clicks_on_new_photos(f"http://127.0.0.1:{PORT}/", photos)
            results["first"] += first
            results["second"] += second
            print([round(v) for v in first], [round(v) for v in second], flush=True)
    rows = ["| click on a new photo | to mask on screen, p50 (ms) | runs (ms) |", "| --- | ---: | --- |"]
    for name, times in results.items():
        rows.append(f"| {name} | {np.median(times):.0f} | {' / '.join(f'{v:.0f}' for v in times)} |")
    publish("SAM's first click on a new photo, in the browser",
            f"Headless Chromium on the Prompt SAM tab: upload a new 360x480 photo, {THINK_SECONDS} s after the tab "
            "asks for a click, click; time until the note says the mask is there; then a second click. Random-weight "
            f"MobileSAM (vit_t); {args.rounds} rounds x {args.photos} photos, a fresh server each round.", rows,
            args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
