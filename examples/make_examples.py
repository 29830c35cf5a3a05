"""Draw the app's example street scenes, with exact CamVid ground truth (we drew every pixel, so we
know its class; no photo is shipped, so no licence question arises).

    python examples/make_examples.py      # writes street_<n>.jpg, street_<n>_labels.png, street_<n>_colour.png

The scenes are cartoons, not photographs: models trained on CamVid see them as out-of-domain
input, which is itself instructive. For real images, point SEG_CAMVID_DIR at CamVid and use the
app's "CamVid val sample" picker.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from seg.data.camvid import CLASSES, PALETTE  # noqa: E402
from seg.visualize import colorize  # noqa: E402

C = {name: i for i, name in enumerate(CLASSES)}
HERE = Path(__file__).resolve().parent


def scene(seed: int, size: tuple[int, int] = (360, 480)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = size
    image, labels = Image.new("RGB", (w, h)), Image.new("L", (w, h))
    draw, mark = ImageDraw.Draw(image), ImageDraw.Draw(labels)

    def paint(shape: str, xy, colour, cls: str, **kw):
        getattr(draw, shape)(xy, fill=tuple(int(c) for c in colour), **kw)
        getattr(mark, shape)(xy, fill=C[cls], **kw)

    horizon = int(h * rng.uniform(0.38, 0.48))
    for y in range(horizon):  # sky: a vertical gradient
        t = y / horizon
        paint("line", (0, y, w, y), (150 + 60 * t, 180 + 40 * t, 230), "Sky")
    x = 0
    while x < w:  # a row of buildings with windows
        bw, top = int(rng.integers(60, 140)), int(rng.integers(20, horizon - 30))
        base = rng.integers(90, 200, 3)
        paint("rectangle", (x, top, x + bw, horizon + 40), base, "Building")
        for wy in range(top + 10, horizon + 20, 22):
            for wx in range(x + 8, x + bw - 14, 20):
                paint("rectangle", (wx, wy, wx + 10, wy + 12), base * 0.45, "Building")
        x += bw
    paint("rectangle", (0, horizon + 40, w, h), (110, 110, 115), "Road")
    paint("polygon", [(0, horizon + 40), (w, horizon + 40), (w, horizon + 62), (0, horizon + 62)], (170, 160, 150),
          "Pavement")
    for lx in range(10, w, 70):  # lane markings are part of the road in CamVid's 11 classes
        paint("rectangle", (lx, int(h * 0.8), lx + 35, int(h * 0.8) + 5), (235, 235, 225), "Road")
    fence_y = horizon + 30
    for fx in range(0, w, 9):
        paint("rectangle", (fx, fence_y, fx + 3, fence_y + 30), (120, 90, 60), "Fence")
    paint("rectangle", (0, fence_y + 6, w, fence_y + 9), (120, 90, 60), "Fence")
    for _ in range(int(rng.integers(1, 3))):  # trees
        tx = int(rng.integers(20, w - 60))
        paint("rectangle", (tx + 22, horizon - 10, tx + 30, horizon + 50), (90, 60, 30), "Tree")
        paint("ellipse", (tx, horizon - 80, tx + 55, horizon - 5), (40, 110 + rng.integers(0, 40), 40), "Tree")
    px = int(rng.integers(30, w - 30))  # a pole with a sign
    paint("rectangle", (px, horizon - 90, px + 4, horizon + 60), (70, 70, 70), "Pole")
    paint("rectangle", (px - 14, horizon - 95, px + 18, horizon - 68), (200, 30, 30), "SignSymbol")
    for _ in range(int(rng.integers(1, 3))):  # cars on the road
        cx, cy = int(rng.integers(10, w - 150)), int(rng.integers(horizon + 75, h - 80))
        body = rng.integers(30, 220, 3)
        paint("rounded_rectangle", (cx, cy, cx + 140, cy + 50), body, "Car", radius=10)
        paint("rounded_rectangle", (cx + 25, cy - 28, cx + 110, cy + 5), body, "Car", radius=8)
        paint("rectangle", (cx + 35, cy - 22, cx + 100, cy), (60, 80, 100), "Car")
        for wx in (cx + 20, cx + 100):
            paint("ellipse", (wx, cy + 38, wx + 24, cy + 62), (20, 20, 20), "Car")
    qx = int(rng.integers(20, w - 40))  # a pedestrian on the pavement
    paint("ellipse", (qx + 5, horizon + 10, qx + 19, horizon + 24), (230, 190, 160), "Pedestrian")
    paint("rectangle", (qx + 3, horizon + 24, qx + 21, horizon + 60), rng.integers(20, 200, 3), "Pedestrian")
    paint("rectangle", (qx + 5, horizon + 60, qx + 19, horizon + 85), (40, 40, 70), "Pedestrian")
    bx = int(rng.integers(40, w - 80))  # a bicyclist
    by = int(h * 0.72)
    for wx in (bx, bx + 44):
        paint("ellipse", (wx, by, wx + 30, by + 30), (30, 30, 30), "Bicyclist", outline=None)
    paint("rectangle", (bx + 22, by - 40, bx + 40, by + 10), (0, 120, 200), "Bicyclist")
    paint("ellipse", (bx + 24, by - 58, bx + 38, by - 42), (230, 190, 160), "Bicyclist")
    # texture and a little blur, so the picture is not flat colour (the labels stay exact)
    pixels = np.array(image.filter(ImageFilter.GaussianBlur(0.8))).astype(np.float32)
    pixels += rng.normal(0, 6, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8), np.array(labels)


def main() -> int:
    for n, seed in enumerate((3, 11), start=1):
        image, labels = scene(seed)
        Image.fromarray(image).save(HERE / f"street_{n}.jpg", quality=92)
        Image.fromarray(labels).save(HERE / f"street_{n}_labels.png")
        Image.fromarray(colorize(labels, PALETTE)).save(HERE / f"street_{n}_colour.png")
        print(f"street_{n}: classes {sorted(set(labels.ravel().tolist()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
