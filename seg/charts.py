"""Charts drawn with Pillow alone (no plotting library): per-class IoU as grouped horizontal bars."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Colour-blind-safe series colours (Okabe-Ito), one per model.
SERIES = ((0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0),
          (240, 228, 66), (0, 0, 0))


def per_class_chart(values: dict[str, dict[str, float | None]], classes, *, title: str = "IoU per class",
                    width: int = 760) -> np.ndarray:
    """Grouped horizontal bars: one group per class, one bar per series, values in [0, 1].

    values: series name -> {class name: value or None (absent: drawn as a hollow stub)}.
    Returns `(H, W, 3) uint8`.
    """
    font = ImageFont.load_default(size=13)
    series = list(values)
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
            colour = SERIES[j % len(SERIES)]
            y = y0 + j * bar
            if value is None:
                draw.rectangle((left, y + 1, left + 3, y + bar - 2), outline=colour)
            else:
                draw.rectangle((left, y + 1, left + max(1.0, value * plot), y + bar - 2), fill=colour)
    y = top + group * len(classes) + 26
    for j, s in enumerate(series):
        x = 10 + (j % 3) * (width // 3)
        row_y = y + (j // 3) * 20
        draw.rectangle((x, row_y + 3, x + 12, row_y + 13), fill=SERIES[j % len(SERIES)])
        draw.text((x + 18, row_y), s, fill=(40, 40, 40), font=font)
    return np.array(canvas)
