"""Charts drawn with Pillow alone (no plotting library): per-class IoU as grouped horizontal bars, a
confusion matrix as a heat map, and IoU against the number of clicks."""

import itertools

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Colour-blind-safe series colours (Okabe-Ito), one per model.
SERIES = ((0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
          (240, 228, 66), (0, 0, 0))
# Each model keeps its colour in every chart, whichever others share it: a series is coloured by the
# model its name begins with (the longest match: "SegFormer-B0 ..." is not "SegFormer ...").
MODEL_COLOURS = {"FCN-32s": SERIES[0], "FCN-8s": SERIES[1], "U-Net": SERIES[2], "DeepLabv3": SERIES[3],
                 "SegFormer-B0": SERIES[4], "SegFormer": SERIES[5], "Mask2Former": SERIES[6], "SAM": SERIES[7]}


def series_colours(names) -> list[tuple[int, int, int]]:
    """A colour for each series name: its model's (MODEL_COLOURS), lighter for a second series of the same
    model in the chart ("U-Net (plain)", "U-Net (replaced)") and darker for a third ("U-Net + SAM");
    a name of no known model takes a series colour no model in this chart has."""
    models = [max((m for m in MODEL_COLOURS if str(name).startswith(m)), key=len, default=None) for name in names]
    spare = itertools.cycle([c for c in SERIES if c not in {MODEL_COLOURS[m] for m in models if m}] or SERIES)
    colours, seen = [], {}
    for model in models:
        if model is None:
            colours.append(next(spare))
            continue
        base, n = np.array(MODEL_COLOURS[model], float), seen.get(model, 0)
        seen[model] = n + 1
        shade = base if n == 0 else base + (255 - base) * 0.55 if n == 1 else base * 0.55
        colours.append(tuple(int(round(v)) for v in shade))
    return colours


def per_class_chart(values: dict[str, dict[str, float | None]], classes, *, title: str = "IoU per class",
                    width: int = 760) -> np.ndarray:
    """Grouped horizontal bars: one group per class, one bar per series, values in [0, 1].

    values: series name -> {class name: value or None (absent: drawn as a hollow stub)}.
    Returns `(H, W, 3) uint8`.
    """
    font = ImageFont.load_default(size=13)
    series = list(values)
    colours = series_colours(series)
    bar, gap, left, right, top = 9, 10, 110, 30, 34
    legend_rows = (len(series) + 2) // 3
    group = bar * max(1, len(series)) + gap
    height = top + group * len(classes) + 30 + 20 * legend_rows
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 8), title, fill=(20, 20, 20), font=ImageFont.load_default(size=15))
    plot = width - left - right
    for tick in np.linspace(0, 1, 6):  # gridlines at 0, 0.2, ... 1.0
        x = left + tick * plot
        draw.line((x, top - 4, x, top + group * len(classes)), fill=(225, 225, 225))
        draw.text((x - 8, top + group * len(classes) + 4), f"{tick:.1f}", fill=(90, 90, 90), font=font)
    for i, name in enumerate(classes):
        y0 = top + i * group
        draw.text((8, y0 + (group - gap) / 2 - 7), str(name), fill=(40, 40, 40), font=font)
        for j, s in enumerate(series):
            value = values[s].get(name)
            colour = colours[j]
            y = y0 + j * bar
            if value is None:
                draw.rectangle((left, y + 1, left + 3, y + bar - 2), outline=colour)
            else:
                draw.rectangle((left, y + 1, left + max(1.0, value * plot), y + bar - 2), fill=colour)
    y = top + group * len(classes) + 26
    for j, s in enumerate(series):
        x = 10 + (j % 3) * (width // 3)
        row_y = y + (j // 3) * 20
        draw.rectangle((x, row_y + 3, x + 12, row_y + 13), fill=colours[j])
        draw.text((x + 18, row_y), s, fill=(40, 40, 40), font=font)
    return np.array(canvas)


def _vertical_text(text: str, font, colour=(40, 40, 40)) -> Image.Image:
    """`text` written bottom to top on a transparent strip (a column label)."""
    left, top, right, bottom = font.getbbox(text)
    strip = Image.new("RGBA", (right + 2, bottom + 2), (0, 0, 0, 0))
    ImageDraw.Draw(strip).text((0, 0), text, fill=colour, font=font)
    return strip.rotate(90, expand=True)


def confusion_chart(counts: np.ndarray, true_names, predicted_names, *, title: str = "Confusion matrix",
                    cell: int = 38) -> np.ndarray:
    """Rows normalised to 100 %: row t, column p is the share of true class t's pixels predicted p.

    counts: `(T, P)` int pixel counts (P >= T: extra predicted columns such as "other"). A cell
    prints its percentage when it is at least 1 %; a row without pixels is left blank and its name
    greyed. Returns `(H, W, 3) uint8`.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (len(true_names), len(predicted_names)):
        raise ValueError(f"counts are {counts.shape}, names give {len(true_names)} x {len(predicted_names)}")
    font, small = ImageFont.load_default(size=13), ImageFont.load_default(size=11)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    left = 20 + max(font.getbbox(str(n))[2] for n in true_names)
    top = 40 + max(font.getbbox(str(n))[2] for n in predicted_names)
    width, height = left + cell * len(predicted_names) + 12, top + cell * len(true_names) + 40
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 8), title, fill=(20, 20, 20), font=ImageFont.load_default(size=15))
    for j, name in enumerate(predicted_names):
        label = _vertical_text(str(name), font)
        canvas.paste(label, (left + j * cell + (cell - label.width) // 2, top - label.height - 4), label)
    for i, name in enumerate(true_names):
        empty = totals[i, 0] == 0
        draw.text((8, top + i * cell + cell // 2 - 7), str(name), fill=(170, 170, 170) if empty else (40, 40, 40),
                  font=font)
        for j in range(len(predicted_names)):
            share = shares[i, j]
            shade = tuple(int(255 - share * (255 - c)) for c in (8, 48, 107))  # white to dark blue
            box = (left + j * cell, top + i * cell, left + (j + 1) * cell - 1, top + (i + 1) * cell - 1)
            draw.rectangle(box, fill=shade, outline=(0, 0, 0) if i == j else (235, 235, 235))
            if share >= 0.01:
                text = f"{share * 100:.0f}"
                tw = small.getbbox(text)[2]
                draw.text((box[0] + (cell - tw) / 2, box[1] + cell / 2 - 6), text, font=small,
                          fill=(255, 255, 255) if share > 0.5 else (30, 30, 30))
    draw.text((left, top + cell * len(true_names) + 10), "rows: true class · columns: predicted · % of the row",
              fill=(90, 90, 90), font=font)
    return np.array(canvas)


def click_chart(curves: dict[str, list[float]], *, levels: dict[str, float | None] | None = None,
                title: str = "IoU after each click", width: int = 640, height: int = 360) -> np.ndarray:
    """IoU (0 to 1) against the number of clicks: one line per curve (values after clicks 1, 2, ...),
    one dashed horizontal line per level (a semantic model's IoU, which takes no clicks), and thin
    grey lines at 0.85 and 0.90, the NoC thresholds. Returns `(H, W, 3) uint8`."""
    levels = {k: v for k, v in (levels or {}).items() if v is not None}
    clicks = max((len(v) for v in curves.values()), default=1)
    font = ImageFont.load_default(size=13)
    names = list(curves) + list(levels)
    legend_rows = (len(names) + 1) // 2
    left, right, top = 46, 20, 34
    canvas = Image.new("RGB", (width, height + 20 * legend_rows), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 8), title, fill=(20, 20, 20), font=ImageFont.load_default(size=15))
    plot_w, plot_h = width - left - right, height - top - 40

    def xy(k: float, value: float) -> tuple[float, float]:  # k: click number from 1
        return left + (k - 1) / max(1, clicks - 1) * plot_w, top + (1 - value) * plot_h

    for tick in np.linspace(0, 1, 6):
        y = xy(1, tick)[1]
        draw.line((left, y, left + plot_w, y), fill=(232, 232, 232))
        draw.text((8, y - 7), f"{tick:.1f}", fill=(90, 90, 90), font=font)
    for threshold in (0.85, 0.90):
        y = xy(1, threshold)[1]
        draw.line((left, y, left + plot_w, y), fill=(170, 170, 170))
        draw.text((left + plot_w - 30, y - 15 if threshold > 0.875 else y + 1), f"{threshold:.2f}",
                  fill=(120, 120, 120), font=font)
    for k in range(1, clicks + 1):
        x = xy(k, 0)[0]
        draw.text((x - 4, top + plot_h + 6), str(k), fill=(90, 90, 90), font=font)
    draw.text((left + plot_w / 2 - 20, top + plot_h + 22), "clicks", fill=(90, 90, 90), font=font)
    for j, (name, colour) in enumerate(zip(names, series_colours(names))):
        if name in curves:
            points = [xy(k + 1, v) for k, v in enumerate(curves[name])]
            if len(points) > 1:
                draw.line(points, fill=colour, width=3)
            for px, py in points:
                draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=colour)
        else:
            y = xy(1, levels[name])[1]
            for x in range(left, left + plot_w, 12):  # dashed: it is a level, not a curve
                draw.line((x, y, min(x + 7, left + plot_w), y), fill=colour, width=2)
        lx, ly = 10 + (j % 2) * (width // 2), height + (j // 2) * 20 - 4
        draw.rectangle((lx, ly + 3, lx + 12, ly + 13), fill=colour)
        label = name if name in curves else f"{name} (no clicks): {levels[name]:.2f}"
        draw.text((lx + 18, ly), label, fill=(40, 40, 40), font=font)
    return np.array(canvas)
