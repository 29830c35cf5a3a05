"""SAM's clicks and hovers in a real browser: the decoder in the page (onnxruntime-web, wasm) against
every click through the server, and the decoder's own time in wasm.

    python benchmarks/sam_browser.py [--rounds 2] [--clicks 6] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM made here) and drives headless
Chromium (Debian's, through Playwright). On the Prompt SAM tab it uploads a new 360x480 photo, waits
until the photo's embedding is read (and, with the browser decoder, in the page), then moves the mouse
to a point, waits, and clicks it, --clicks times. Measured in the page, from the event to the next
frame after the mask is drawn:
- hover: mousemove to the int8 preview on screen (browser decoder only);
- click, browser: click to the first mask on screen (the preview already decoded for that very
  prompt, else the float32 decoder's), and to the float32 mask;
- click, server: click to the server's new picture loaded and painted (both variants: the server
  still decodes every click).
The variants alternate, a fresh server each. onnxruntime-web comes from SEG_ORT_WEB_DIR (default:
the tests' copy in .ort-web/); the page is not cross-origin isolated, so wasm runs one thread.
"""

import argparse
import os
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

PORT = 7989
ORT_WEB = Path(os.environ.get("SEG_ORT_WEB_DIR") or ROOT / ".ort-web/node_modules/onnxruntime-web/dist")
VARIANTS = {"browser decoder": {"SEG_BROWSER_DECODER": "1"}, "server only": {"SEG_BROWSER_DECODER": "0"}}
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
           "decoder float32": [], "embedding bytes": [], "embedding ms": []}
    with sync_playwright() as p:
        browser = headless_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("tab", name="Prompt SAM").click()
        page.locator("#sam-canvas input[type=file]").set_input_files(str(photo))
        page.locator("#sam-note").get_by_text("Click the object").wait_for(timeout=120_000)
        if browser_decoder:
            page.wait_for_function("() => window.samLive && samLive.embedding", timeout=120_000)
        else:
            time.sleep(8)  # the embedding, read on arrival, is done by then (about 3 s here)
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
            out["click, float32"] = [t["total_ms"] for t in timings if t["decoder"] == "float32"]
            firsts, seen = [], set()
            for t in timings:  # the first click entry of each click: preview reused, else float32
                if t["kind"] == "click" and t["points"] not in seen:
                    seen.add(t["points"])
                    firsts.append(t["total_ms"])
            out["click, first mask"] = firsts
            out["embedding bytes"] = [page.evaluate("samLive.embeddingBytes")]
            out["embedding ms"] = [page.evaluate("samLive.embeddingMs")]
        browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=6)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    if not (ORT_WEB / "ort.wasm.min.js").is_file():
        sys.exit(f"no onnxruntime-web in {ORT_WEB}: run the tests once (they install it) or set SEG_ORT_WEB_DIR")
    results = {name: {} for name in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = random_sam_checkpoint(tmp)
        for round_ in range(args.rounds):
            for name, extra in VARIANTS.items():
                picture = street((360, 480))
                picture[:8, : 8 + round_] = 40 * round_ + (name == "server only")  # a new photo each run
                photo = tmp / f"{round_}_{name.replace(' ', '_')}.png"
                Image.fromarray(picture).save(photo)
                env = app_env(checkpoint, PORT, SEG_ORT_WEB_DIR=str(ORT_WEB), SEG_CACHE_DIR=str(tmp / "cache"),
                              **extra)
                with running_app(env, warm_up_seconds=20):  # models and SAM loaded, the decoder exported
                    got = session(f"http://127.0.0.1:{PORT}/", photo, args.clicks, extra["SEG_BROWSER_DECODER"] == "1")
                for key, values in got.items():
                    results[name].setdefault(key, []).extend(values)
                print(name, {k: [round(v) for v in vs] for k, vs in got.items() if vs}, flush=True)
    rows = ["| variant | measure | p50 | runs |", "| --- | --- | ---: | ---: |"]
    for name, measures in results.items():
        for key, values in measures.items():
            if values:
                unit = "" if key == "embedding bytes" else " ms"
                rows.append(f"| {name} | {key} | {np.median(values):.0f}{unit} | {len(values)} |")
    publish("SAM in the browser: hover and click",
            f"Headless Chromium on the Prompt SAM tab, a new 360x480 photo per run, {args.clicks} clicks per photo, "
            "each after the mouse rested 0.8 s on its point; times from the event to the next frame after the mask "
            "is drawn, measured in the page. Random-weight MobileSAM (vit_t); onnxruntime-web 1.30.0 wasm, one "
            f"thread (a Gradio page is not cross-origin isolated); {args.rounds} rounds, the variants alternating, "
            "a fresh server each; browser and server share this machine's 2 cores.", rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
